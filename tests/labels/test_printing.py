"""Printing through real parts: a SQLite store, files, a TCP listener on 127.0.0.1 playing a Zebra printer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from station.core import uci
from station.core.errors import Conflict, Invalid, NotFound, StationError, Unavailable
from station.labels import printing
from tests.labels.conftest import CLAIM_URL, decode, hs_reply, pdf_pages, png_image, qr_texts, write_config


def kinds(store, code: str) -> list[str]:
    return [e.kind for e in store.events(code) if e.kind not in ("issued", "product-added")]


def raw_config(data_dir: Path, port: int, **extra) -> object:
    printer = {"type": "raw", "host": "127.0.0.1", "port": port, "format": "zpl", "timeout": 2, **extra}
    return write_config(data_dir, {"printers": {"zebra1": printer}})


def test_first_print_moves_the_device_to_labeled_and_records_it(store, config, make_device, data_dir) -> None:
    device = make_device(bits=80, claim_url=CLAIM_URL)
    result = printing.print_label(store, config, device, printer="folder", actor="operator")
    assert (result.printed, result.reprinted, result.format, result.layout) == (1, 0, "png", "thermal-50x25-203")
    written = Path(result.where)
    assert written.parent == data_dir / "labels-out" and device.uci in written.name
    assert dict(decode(png_image(written.read_bytes()))) == {"QRCode": uci.qr_payload(device.uci, CLAIM_URL),
                                                             "Code128": "SN-0001"}
    assert store.device(device.uci).state == "labeled"
    event = store.events(device.uci)[-1]
    assert (event.kind, event.actor) == ("printed", "operator")
    assert {k: event.details[k] for k in ("printer", "layout", "format", "where", "from", "to")} == {
        "printer": "folder", "layout": "thermal-50x25-203", "format": "png", "where": str(written),
        "from": "issued", "to": "labeled"}


def test_preview_records_nothing(store, config, make_device) -> None:
    device = make_device()
    image = png_image(printing.preview_png(store, config, device.uci))
    assert qr_texts(image) == [device.uci]
    assert kinds(store, device.uci) == []
    assert store.device(device.uci).state == "issued"


def test_why_a_label_cannot_be_made_is_said_not_raised(store, config, make_device) -> None:
    assert printing.label_problem(store, config, make_device().uci) is None
    assert "cannot fit 'S/N WWWW" in (printing.label_problem(store, config, make_device(serial="W" * 64).uci) or "")
    gone = printing.label_problem(store, config, make_device(layout="gone").uci)  # a layout file that is not there
    assert gone is not None and "gone" in gone


def test_a_second_print_needs_a_reason(store, config, make_device) -> None:
    device = make_device()
    printing.print_label(store, config, device, printer="folder")
    with pytest.raises(Conflict, match="already has a label"):
        printing.print_label(store, config, device, printer="folder", reason="   ")
    assert kinds(store, device.uci) == ["printed", "print-failed"]
    assert store.device(device.uci).state == "labeled"


def test_a_reprint_records_its_reason_and_moves_nothing_back(store, config, make_device) -> None:
    device = make_device()
    printing.print_label(store, config, device, printer="folder")
    store.advance(device.uci, "flashed", "flashed", "rig")
    result = printing.print_label(store, config, device.display, printer="folder", actor="cli", reason="label smudged")
    assert (result.printed, result.reprinted) == (0, 1)
    event = store.events(device.uci)[-1]
    assert (event.kind, event.actor, event.details["reason"]) == ("reprinted", "cli", "label smudged")
    assert store.device(device.uci).state == "flashed"


def test_a_void_device_gets_no_label(store, config, make_device) -> None:
    device = make_device()
    store.void(device.uci, "dropped", actor="cli")
    with pytest.raises(Conflict, match="void"):
        printing.print_label(store, config, device, printer="folder")
    assert kinds(store, device.uci)[-1] == "print-failed"
    assert store.device(device.uci).state == "void"


def test_a_raw_zpl_job_reaches_the_printer_after_a_status_query(store, data_dir, make_device, fake_zebra) -> None:
    printer = fake_zebra(hs_reply())
    config = raw_config(data_dir, printer.port)
    device = make_device(bits=120, claim_url=CLAIM_URL)
    result = printing.print_label(store, config, device, printer="zebra1")
    assert printer.wait()
    assert printer.queries == 1 and len(printer.jobs) == 1
    job = printer.jobs[0].decode()
    assert job.startswith("^XA") and f"^FDMM,A{uci.qr_payload(device.uci, CLAIM_URL)}^FS" in job
    assert result.where == f"127.0.0.1:{printer.port}" and result.format == "zpl"
    assert store.device(device.uci).state == "labeled"


@pytest.mark.parametrize("status,message", [
    (hs_reply(paper_out=1), "out of paper"),
    (hs_reply(head_up=1), "head open"),
    (hs_reply(paused=1), "paused"),
    (hs_reply(ribbon_out=1, transfer=1), "out of ribbon"),
])
def test_a_printer_that_cannot_print_is_refused_cleanly(store, data_dir, make_device, fake_zebra, status, message) -> None:
    printer = fake_zebra(status)
    config = raw_config(data_dir, printer.port)
    device = make_device()
    with pytest.raises(Unavailable, match=message) as caught:
        printing.print_label(store, config, device, printer="zebra1")
    assert "zebra1" in str(caught.value) and "nothing was printed" in str(caught.value)
    assert printer.wait() and printer.jobs == []
    failed = store.events(device.uci)[-1]
    assert failed.kind == "print-failed" and message in failed.details["error"]
    assert failed.details["printer"] == "zebra1"
    assert store.device(device.uci).state == "issued"


def test_ribbon_flag_does_not_stop_a_direct_thermal_printer(store, data_dir, make_device, fake_zebra) -> None:
    printer = fake_zebra(hs_reply(ribbon_out=1, transfer=0))
    device = make_device()
    printing.print_label(store, raw_config(data_dir, printer.port), device, printer="zebra1")
    assert printer.wait() and len(printer.jobs) == 1


def test_a_silent_printer_is_refused(store, data_dir, make_device, fake_zebra) -> None:
    printer = fake_zebra(None)
    config = raw_config(data_dir, printer.port, timeout=0.5)
    device = make_device()
    with pytest.raises(Unavailable, match="did not answer the status query"):
        printing.print_label(store, config, device, printer="zebra1")
    assert printer.wait() and printer.jobs == []
    assert store.device(device.uci).state == "issued"


def test_a_garbled_status_is_refused(store, data_dir, make_device, fake_zebra) -> None:
    printer = fake_zebra(b"\x02hello\x03\r\n\x02world\x03\r\n\x02!\x03\r\n")
    with pytest.raises(Unavailable, match="not a ZPL host status"):
        printing.print_label(store, raw_config(data_dir, printer.port), make_device(), printer="zebra1")


def test_a_printer_that_is_not_there(store, data_dir, make_device) -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    device = make_device()
    with pytest.raises(Unavailable, match="refused the connection"):
        printing.print_label(store, raw_config(data_dir, port), device, printer="zebra1")
    assert kinds(store, device.uci) == ["print-failed"]
    assert store.device(device.uci).state == "issued"


def test_raw_without_status_query(store, data_dir, make_device, fake_zebra) -> None:
    printer = fake_zebra(None)
    printing.print_label(store, raw_config(data_dir, printer.port, status=False), make_device(), printer="zebra1")
    assert printer.wait() and printer.queries == 0 and printer.jobs[0].startswith(b"^XA")


def test_cups_queue_that_does_not_exist(store, data_dir, make_device) -> None:
    config = write_config(data_dir, {"printers": {"office": {"type": "cups", "queue": "NoSuchQueue-4711", "timeout": 20}}})
    device = make_device()
    with pytest.raises(Unavailable, match="office"):
        printing.print_label(store, config, device, printer="office")
    assert store.device(device.uci).state == "issued"
    assert kinds(store, device.uci) == ["print-failed"]


def test_a_folder_that_cannot_be_written(store, data_dir, make_device) -> None:
    (data_dir / "blocked").write_text("a file, not a folder")
    config = write_config(data_dir, {"printers": {"folder": {"type": "file", "path": "blocked/labels", "format": "pdf"}}})
    device = make_device()
    with pytest.raises(Unavailable, match="cannot write"):
        printing.print_label(store, config, device, printer="folder")
    assert store.device(device.uci).state == "issued"


@pytest.mark.parametrize("printers,name,error,message", [
    ({}, None, Invalid, "no printer given"),
    ({"folder": {"type": "file", "path": "x"}}, "zebra9", NotFound, "no printer named 'zebra9'.*folder"),
    ({"p": {"type": "fax"}}, "p", Invalid, "type 'fax'"),
    ({"p": {"type": "raw", "host": "127.0.0.1", "colour": 1}}, "p", Invalid, "unknown key 'colour'"),
    ({"p": {"type": "raw", "host": "127.0.0.1", "format": "png"}}, "p", Invalid, "format 'png'"),
    ({"p": {"type": "raw", "host": "127.0.0.1", "port": 70000}}, "p", Invalid, "port"),
    ({"p": {"type": "cups"}}, "p", Invalid, "needs 'queue'"),
])
def test_printer_configuration_errors(store, data_dir, make_device, printers, name, error, message) -> None:
    config = write_config(data_dir, {"printers": printers})
    device = make_device()
    with pytest.raises(error, match=message):
        printing.print_label(store, config, device, printer=name)
    assert store.device(device.uci).state == "issued"


def test_layout_choice_order(store, data_dir, make_device) -> None:
    config = write_config(data_dir, {"printers": {
        "plain": {"type": "file", "path": "out", "format": "zpl"},
        "hires": {"type": "file", "path": "out", "format": "zpl", "layout": "thermal-50x25-300"}}})
    device = make_device(layout="a4-3x8-70x37")
    assert printing.print_label(store, config, device, printer="plain").layout == "a4-3x8-70x37"
    assert printing.print_label(store, config, device, printer="hires", reason="test").layout == "thermal-50x25-300"
    explicit = printing.print_label(store, config, device, printer="hires", layout="thermal-50x25-203", reason="test")
    assert explicit.layout == "thermal-50x25-203"
    with pytest.raises(NotFound, match="unknown label layout 'nope'"):
        printing.print_label(store, config, device, printer="plain", layout="nope", reason="test")


def test_a_format_the_printer_does_not_take(store, data_dir, make_device) -> None:
    config = write_config(data_dir, {"printers": {"folder": {"type": "file", "path": "out", "format": "png"}}})
    with pytest.raises(Invalid, match="takes png, not zpl"):
        printing.print_label(store, config, make_device(), printer="folder", fmt="zpl")


def test_out_file_takes_its_format_from_the_suffix(store, config, make_device, tmp_path) -> None:
    device = make_device()
    target = tmp_path / "label.pdf"
    result = printing.print_label(store, config, device, out=target)
    assert result.format == "pdf" and target.read_bytes().startswith(b"%PDF")
    assert qr_texts(pdf_pages(target.read_bytes())[0]) == [device.uci]


def test_batch_sheet_in_order_skipping_void_devices(store, config, tmp_path) -> None:
    store.add_product("SHEETS", "Blank", "Blank-01", bits=50, layout="a4-3x8-70x37")
    batch = store.generate_batch("SHEETS", 30, name="B30", actor="cli")
    devices = list(store.devices(batch=batch.name))
    store.void(devices[3].uci, "damaged", actor="cli")
    target = tmp_path / "b30.pdf"
    seen = []
    result = printing.print_batch(store, config, "B30", out=target, start_at=2, progress=seen.append)
    assert (result.printed, result.reprinted, sum(seen)) == (29, 0, 29)
    pages = pdf_pages(target.read_bytes(), dpi=200)
    assert len(pages) == 2  # 23 slots left on the first sheet, 6 on the second
    assert sorted(qr_texts(pages[0]) + qr_texts(pages[1])) == sorted(d.uci for i, d in enumerate(devices) if i != 3)
    states = [d.state for d in store.devices(batch="B30")]
    assert states.count("labeled") == 29 and states[3] == "void"
    with pytest.raises(Conflict, match="and 28 more already has a label"):
        printing.print_batch(store, config, "B30", out=target)
    again = printing.print_batch(store, config, "B30", out=target, reason="sheet jammed")
    assert (again.printed, again.reprinted) == (0, 29)


def test_batch_as_zpl_is_one_format_per_label(store, config, tmp_path) -> None:
    store.add_product("ZPL", "Blank", "Blank-01")
    store.generate_batch("ZPL", 5, name="Z5", actor="cli")
    target = tmp_path / "z5.zpl"
    printing.print_batch(store, config, "Z5", out=target, fmt="zpl")
    text = target.read_text()
    assert text.count("^XA") == 5 and text.count("^XZ") == 5


def test_png_holds_one_label(store, config, tmp_path) -> None:
    store.add_product("PNG", "Blank", "Blank-01")
    store.generate_batch("PNG", 2, name="P2", actor="cli")
    with pytest.raises(StationError, match="PNG holds one label"):
        printing.print_batch(store, config, "P2", out=tmp_path / "x.png", fmt="png")
    assert all(d.state == "issued" for d in store.devices(batch="P2"))


def test_a_batch_refused_before_printing_is_one_event_not_one_per_device(store, config, make_device) -> None:
    product = make_device().product
    store.generate_batch(product, 50, name="b-refused")
    with pytest.raises(NotFound, match="printer"):
        printing.print_batch(store, config, "b-refused", printer="no-such-printer")
    failed = store.conn.execute("SELECT uci, details FROM events WHERE kind = 'print-failed'").fetchall()
    assert len(failed) == 1 and failed[0][0] is None and '"batch": "b-refused"' in failed[0][1]
    assert {d.state for d in store.devices(batch="b-refused")} == {"issued"}
