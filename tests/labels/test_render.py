"""PNG, PDF and ZPL from one layout model: every QR code decodes back to its payload."""

from __future__ import annotations

import re
from collections import Counter

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest

from station.core import uci
from station.core.errors import Invalid
from station.labels import code128, pdf, png, zpl
from station.labels import layout as layout_mod
from station.labels.compose import LabelData, QRPart, dynamic_parts
from tests.labels.conftest import CLAIM_URL, REPO_LAYOUTS, decode, pdf_pages, pdf_text, png_image, qr_texts

LAYOUTS = ("thermal-50x25-203", "thermal-50x25-300", "a4-3x8-70x37")
SIZES = (50, 80, 120)
EVERY_SIZE_WITH_AND_WITHOUT_URL = pytest.mark.parametrize(
    "bits,claim_url", [(bits, url) for bits in SIZES for url in (None, CLAIM_URL)])


def label(bits: int, claim_url: str | None, serial: str = "SN-0001", name: str = "Blank",
          code: str | None = None) -> LabelData:
    code = code or uci.generate(bits)
    return LabelData(uci=code, display_id=uci.display(code), product_name=name, model="Blank-01", serial=serial,
                     batch="B1", date="2026-01-31", claim_url=claim_url)


def payload(data: LabelData) -> str:
    return uci.qr_payload(data.uci, data.claim_url)


@pytest.mark.parametrize("name", LAYOUTS)
@EVERY_SIZE_WITH_AND_WITHOUT_URL
def test_png_qr_and_code128_decode(name: str, bits: int, claim_url: str | None) -> None:
    layout = layout_mod.load(name, REPO_LAYOUTS)
    data = label(bits, claim_url)
    image = png_image(png.render(layout, data))
    assert image.size == (layout.width, layout.height)
    assert round(image.info["dpi"][0]) == layout.dpi
    found = dict((fmt, text) for fmt, text in decode(image))
    assert found == {"QRCode": payload(data), "Code128": "SN-0001"}


def test_qr_payload_has_no_check_symbol_and_display_id_has_it() -> None:
    data = label(80, None)
    assert data.display_id.endswith("-" + uci.check_symbol(data.uci))
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    assert qr_texts(png_image(png.render(layout, data))) == [data.uci]


def test_png_qr_keeps_its_quiet_zone() -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    data = label(120, CLAIM_URL)
    image = png_image(png.render(layout, data))
    part = next(p for p in dynamic_parts(layout, data) if isinstance(p, QRPart))
    quiet = 4 * part.module
    side = part.symbol.size * part.module
    ring = image.crop((part.x - quiet, part.y - quiet, part.x + side + quiet, part.y + side + quiet))
    inner = (quiet, quiet, quiet + side, quiet + side)
    dark = [(x, y) for x in range(ring.width) for y in range(ring.height)
            if ring.getpixel((x, y)) < 128 and not (inner[0] <= x < inner[2] and inner[1] <= y < inner[3])]
    assert dark == []
    assert image.getpixel((part.x, part.y)) == 0  # the finder pattern's corner


def test_a_device_without_serial_has_no_barcode_and_no_serial_line() -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    data = label(80, None, serial="")
    assert [fmt for fmt, _ in decode(png_image(png.render(layout, data)))] == ["QRCode"]
    assert "S/N" not in zpl.render(layout, data).decode()


@EVERY_SIZE_WITH_AND_WITHOUT_URL
def test_pdf_one_label_per_page_decodes_and_has_the_display_id(bits: int, claim_url: str | None) -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    items = [label(bits, claim_url, serial=f"SN-{i}") for i in range(3)]
    data = pdf.render(layout, items)
    pages = pdf_pages(data)
    assert len(pages) == 3
    for page, item in zip(pages, items, strict=True):
        assert abs(page.width - 50 / 25.4 * 300) <= 1 and abs(page.height - 25 / 25.4 * 300) <= 1  # 50 x 25 mm
        assert dict(decode(page)) == {"QRCode": payload(item), "Code128": item.serial}
    for text, item in zip(pdf_text(data), items, strict=True):
        assert item.display_id in text and "Blank-01" in text


def test_pdf_qr_code_is_vector_paths_not_an_image() -> None:
    layout = layout_mod.load("thermal-50x25-300", REPO_LAYOUTS)  # a layout without a picture
    document = pypdfium2.PdfDocument(pdf.render(layout, [label(80, CLAIM_URL)]))
    kinds = Counter(obj.type for obj in document[0].get_objects())
    document.close()
    assert kinds[pdfium_c.FPDF_PAGEOBJ_IMAGE] == 0
    assert kinds[pdfium_c.FPDF_PAGEOBJ_PATH] == 2  # the QR code and the barcode


@EVERY_SIZE_WITH_AND_WITHOUT_URL
def test_pdf_sheet_decodes_every_label(bits: int, claim_url: str | None) -> None:
    layout = layout_mod.load("a4-3x8-70x37", REPO_LAYOUTS)
    items = [label(bits, claim_url, serial=f"SN-{i:04d}") for i in range(26)]
    data = pdf.render(layout, items)
    pages = pdf_pages(data, dpi=200)
    assert len(pages) == 2
    first, second = (sorted(qr_texts(page)) for page in pages)
    assert first == sorted(payload(i) for i in items[:24])
    assert second == sorted(payload(i) for i in items[24:])
    texts = pdf_text(data)
    assert all(item.display_id in texts[0] for item in items[:24])
    assert all(item.display_id in texts[1] for item in items[24:])


def test_pdf_sheet_start_at_leaves_used_slots_empty() -> None:
    layout = layout_mod.load("a4-3x8-70x37", REPO_LAYOUTS)
    items = [label(80, None) for _ in range(3)]
    page = pdf_pages(pdf.render(layout, items, start_at=5), dpi=150)[0]
    px_per_mm = 150 / 25.4
    for slot in range(1, 25):
        column, row = (slot - 1) % 3, (slot - 1) // 3
        box = tuple(round(v * px_per_mm) for v in (column * 70 + 1, 0.5 + row * 37 + 1, column * 70 + 69, 0.5 + row * 37 + 36))
        found = qr_texts(page.crop(box))
        expected = [items[slot - 5].uci] if 5 <= slot <= 7 else []
        assert found == expected, slot


@pytest.mark.parametrize("start_at", [0, 25, -1])
def test_start_at_outside_the_sheet_is_refused(start_at: int) -> None:
    layout = layout_mod.load("a4-3x8-70x37", REPO_LAYOUTS)
    with pytest.raises(Invalid, match="slots 1 to 24"):
        pdf.render(layout, [label(80, None)], start_at=start_at)


def test_zpl_has_the_commands_and_payload() -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    # A claim ID whose check symbol ZPL takes as it is (a ~ goes escaped: test_zpl_escapes_field_data's case).
    data = label(80, CLAIM_URL, serial="SN-0012345678", code="01H4R15D3478JD26")
    text = zpl.render(layout, data).decode("utf-8")
    assert text.startswith("^XA") and text.rstrip().endswith("^XZ")
    assert "^PW400^LL200" in text
    module = layout.elements[0].module
    assert f"^BQN,2,{module}^FDMM,A{payload(data)}^FS" in text
    assert "^BCN," in text and "^FD>:SN->50012345678^FS" in text  # subset B, then C for the digit pairs
    assert f"^FD{data.display_id}^FS" in text


def test_zpl_300_dpi_scales_positions_and_fonts() -> None:
    low = zpl.render(layout_mod.load("thermal-50x25-203", REPO_LAYOUTS), label(80, None)).decode()
    high = zpl.render(layout_mod.load("thermal-50x25-300", REPO_LAYOUTS), label(80, None)).decode()
    assert "^PW591^LL295" in high
    low_font = int(re.search(r"\^A0N,(\d+),", low).group(1))
    high_font = int(re.search(r"\^A0N,(\d+),", high).group(1))
    assert abs(high_font / low_font - 300 / 203) < 0.1


def test_zpl_escapes_field_data() -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    text = zpl.render(layout, label(80, None, name="Caret^Tilde~Under_score")).decode()
    assert "^FDCaret_5ETilde_7EUnder_5Fscore^FS" in text
    tilde = zpl.render(layout, label(80, None, code="HE0YRQ2KWE09M71S")).decode()  # its check symbol is ~
    assert "^FH_^FDHE0Y-RQ2K-WE09-M71S-_7E^FS" in tilde


def test_zpl_code128_escapes_zpl_characters() -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    text = zpl.render(layout, label(80, None, serial="A^B>C~D")).decode()
    assert "^FD>:A><B>0C>=D^FS" in text


def test_zpl_image_is_a_graphic_field() -> None:
    layout = layout_mod.load("a4-3x8-70x37", REPO_LAYOUTS)
    text = zpl.render(layout, label(80, None)).decode()
    graphic = re.search(r"\^GFA,(\d+),(\d+),(\d+),([0-9A-F]+)\^FS", text)
    assert graphic and int(graphic.group(1)) * 2 == len(graphic.group(4))


def test_long_product_names_are_cut_with_an_ellipsis() -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    data = label(80, None, name="A product name that is much too long for a small thermal label")
    texts = [p.text for p in dynamic_parts(layout, data) if hasattr(p, "text")]
    assert any(t.endswith("\u2026") and t.startswith("A product") for t in texts)


def test_a_claim_url_too_long_for_the_qr_element_is_refused_naming_it() -> None:
    layout = layout_mod.load("thermal-50x25-203", REPO_LAYOUTS)
    data = label(120, "https://claims.example.com/a/very/long/path/for/claiming/devices/{id}/and/more/of/it")
    with pytest.raises(Invalid, match=r"element 1 \(qr 'claim'\)"):
        png.render(layout, data)


def read_zpl_code128(data: str) -> tuple[str, int]:
    """What a Zebra prints for ^BC field data with invocation codes: the text and the code words."""
    escapes = {"<": "^", "0": ">", "=": "~"}
    text, words, i = "", 0, 2
    subset = {">:": "B", ">;": "C"}[data[:2]]
    while i < len(data):
        if data[i] == ">":
            code = data[i + 1]
            if code in "56":
                subset = "C" if code == "5" else "B"
            else:
                text += escapes[code]
            i += 2
        elif subset == "C":
            text += data[i:i + 2]
            i += 2
        else:
            text += data[i]
            i += 1
        words += 1
    return text, words


@pytest.mark.parametrize("serial", ["SN-0001", "12345678901234", "A1B2C3", "X^Y>Z~", "0042-ABC-99999", "7"])
def test_zpl_code128_is_the_symbol_drawn_in_png_and_pdf(serial: str) -> None:
    symbol = code128.encode(serial)
    text, words = read_zpl_code128(symbol.zpl)
    assert text == serial
    assert 11 * (words + 2) + 13 == symbol.modules  # start + data + check (11 each) + stop (13): same width


def test_serials_that_code128_cannot_carry_are_refused() -> None:
    with pytest.raises(Invalid, match="printable ASCII"):
        code128.encode("SN\u00e9")
