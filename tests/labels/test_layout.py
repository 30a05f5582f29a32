"""Layouts: the shipped ones load; every refusal rule refuses at load and names the element."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from station import config as config_mod
from station.core.errors import Invalid, NotFound, StationError
from station.labels import layout as layout_mod
from tests.labels.conftest import REPO_LAYOUTS, write_config

QR = {"type": "qr", "name": "claim", "x": 1, "y": 1, "size": 14, "module": 0.375}
TEXT = {"type": "text", "name": "id", "x": 16, "y": 2, "width": 30, "size": 2.5, "text": "{display_id}"}


def write_layout(folder: Path, elements: list[dict[str, Any]], name: str = "test", **top: Any) -> Path:
    folder.mkdir(exist_ok=True)
    spec = {"size": {"width": 50, "height": 25}, "dpi": 203, "elements": elements, **top}
    path = folder / f"{name}.json5"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def refused(folder: Path, elements: list[dict[str, Any]], **top: Any) -> str:
    write_layout(folder, elements, **top)
    with pytest.raises(StationError) as caught:
        layout_mod.load("test", folder)
    return str(caught.value)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "layouts"
    path.mkdir()
    Image.new("L", (40, 20), 0).save(path / "logo.png")
    return path


def test_shipped_layouts_load() -> None:
    names = layout_mod.names(REPO_LAYOUTS)
    assert {"thermal-50x25-203", "thermal-50x25-300", "a4-3x8-70x37"} <= set(names)
    for dpi in (203, 300):
        thermal = layout_mod.load(f"thermal-50x25-{dpi}", REPO_LAYOUTS)
        assert (thermal.width_mm, thermal.height_mm, thermal.dpi, thermal.sheet) == (50, 25, dpi, None)
        assert thermal.width == round(50 * dpi / 25.4)
    sheet = layout_mod.load("a4-3x8-70x37", REPO_LAYOUTS)
    assert (sheet.width_mm, sheet.height_mm) == (70, 37)
    assert (sheet.sheet.columns, sheet.sheet.rows, sheet.sheet.page_width, sheet.sheet.page_height) == (3, 8, 210, 297)


def test_layouts_directory_defaults_to_the_repository_and_follows_the_config(data_dir: Path) -> None:
    assert layout_mod.directory(config_mod.load(data_dir)).resolve() == REPO_LAYOUTS
    configured = write_config(data_dir, {"label_layouts": "my-layouts"})
    assert layout_mod.directory(configured) == data_dir / "my-layouts"


def test_a_minimal_layout_loads_in_dots(folder: Path) -> None:
    write_layout(folder, [QR, TEXT])
    loaded = layout_mod.load("test", folder)
    qr, text = loaded.elements
    assert (loaded.width, loaded.height) == (400, 200)
    assert (qr.x, qr.y, qr.w, qr.module) == (8, 8, 112, 3)  # 0.375 mm at 203 dpi is 3 dots
    assert text.fields == ("display_id",)


def test_a_changed_file_is_read_again(folder: Path) -> None:
    write_layout(folder, [QR, TEXT])
    first = layout_mod.load("test", folder)
    assert layout_mod.load("test", folder) is first
    path = write_layout(folder, [QR, {**TEXT, "size": 3.0}])
    os.utime(path, ns=(1, 1))
    assert layout_mod.load("test", folder) is not first


def test_element_wider_than_the_label(folder: Path) -> None:
    message = refused(folder, [QR, {**TEXT, "width": 40}])
    assert "element 2 (text 'id')" in message and "50 mm wide" in message


def test_element_below_the_label(folder: Path) -> None:
    message = refused(folder, [{**QR, "y": 12}])
    assert "element 1 (qr 'claim')" in message and "25 mm high" in message


def test_unknown_field(folder: Path) -> None:
    message = refused(folder, [QR, {**TEXT, "text": "{display_id} {colour}"}])
    assert "element 2 (text 'id')" in message and "{colour}" in message and "product_name" in message


def test_formatted_field_and_stray_brace(folder: Path) -> None:
    assert "element 2 (text 'id')" in refused(folder, [QR, {**TEXT, "text": "{serial!r}"}])
    assert "stray brace" in refused(folder, [QR, {**TEXT, "text": "{serial"}])


def test_unknown_image(folder: Path) -> None:
    message = refused(folder, [QR, {"type": "image", "name": "logo", "x": 20, "y": 15, "width": 10, "height": 5,
                                    "file": "missing.png"}])
    assert "element 2 (image 'logo')" in message and "missing.png" in message


def test_image_that_is_not_an_image(folder: Path) -> None:
    (folder / "notes.png").write_text("not a picture")
    message = refused(folder, [{"type": "image", "name": "logo", "x": 20, "y": 15, "width": 10, "height": 5,
                                "file": "notes.png"}])
    assert "element 1 (image 'logo')" in message and "not an image" in message


@pytest.mark.parametrize("dpi,module", [(203, 0.15), (300, 0.2)])
def test_qr_modules_too_small_to_scan(folder: Path, dpi: int, module: float) -> None:
    message = refused(folder, [{**QR, "module": module}], dpi=dpi)
    assert "element 1 (qr 'claim')" in message and "under 0.25 mm" in message


def test_qr_module_snaps_to_whole_dots_before_the_check(folder: Path) -> None:
    write_layout(folder, [{**QR, "module": 0.2}], dpi=203)  # 1.6 dots -> 2 dots = 0.2502 mm
    assert layout_mod.load("test", folder).elements[0].module == 2


def test_qr_quiet_zone_below_four_modules(folder: Path) -> None:
    assert "element 1 (qr 'claim')" in refused(folder, [{**QR, "quiet": 2}])


def test_qr_box_too_small_for_any_code(folder: Path) -> None:
    message = refused(folder, [{**QR, "size": 10}])
    assert "element 1 (qr 'claim')" in message and "smallest QR code" in message


def test_nothing_may_overlap_a_qr_quiet_zone(folder: Path) -> None:
    message = refused(folder, [QR, {**TEXT, "x": 14}])
    assert "element 2 (text 'id') overlaps element 1 (qr 'claim')" in message


def test_a_box_around_a_qr_code_does_not_touch_it(folder: Path) -> None:
    write_layout(folder, [QR, {"type": "box", "x": 0, "y": 0, "width": 50, "height": 25, "thickness": 0.3}])
    assert len(layout_mod.load("test", folder).elements) == 2


def test_code128_too_narrow_and_bars_too_thin(folder: Path) -> None:
    bars = {"type": "code128", "name": "serial", "x": 20, "y": 18, "width": 4, "height": 5, "module": 0.25}
    assert "element 1 (code128 'serial')" in refused(folder, [bars])
    message = refused(folder, [{**bars, "width": 28, "module": 0.1}], dpi=300)
    assert "element 1 (code128 'serial')" in message and "too narrow to scan" in message


def test_static_text_that_cannot_fit(folder: Path) -> None:
    message = refused(folder, [{**TEXT, "text": "A fixed caption far too long for its narrow box", "width": 10}])
    assert "element 1 (text 'id')" in message


def test_unknown_type_key_and_value(folder: Path) -> None:
    assert "element 1 (barcode 'x')" in refused(folder, [{"type": "barcode", "name": "x"}])
    assert "unknown key 'colour'" in refused(folder, [{**TEXT, "colour": "red"}])
    assert "align" in refused(folder, [{**TEXT, "align": "middle"}])


def test_bad_json5_and_bad_top_level(folder: Path) -> None:
    (folder / "test.json5").write_text("{size: ", encoding="utf-8")
    with pytest.raises(Invalid, match="not valid JSON5"):
        layout_mod.load("test", folder)
    assert "dpi" in refused(folder, [TEXT], dpi=50)
    assert "elements" in refused(folder, [])


def test_sheet_that_does_not_fit_its_page(folder: Path) -> None:
    sheet = {"page": "A4", "columns": 4, "rows": 8, "pitch": {"x": 70, "y": 37}}
    message = refused(folder, [TEXT], sheet=sheet, size={"width": 70, "height": 37})
    assert "sheet" in message and "210 x 297" in message


@pytest.mark.parametrize("path", ["/etc/hostname", "../outside.png", "sub/../../outside.png", "C:/logo.png"])
def test_images_cannot_leave_the_layouts_directory(folder: Path, path: str) -> None:
    (folder.parent / "outside.png").write_bytes((folder / "logo.png").read_bytes())
    message = refused(folder, [{"type": "image", "name": "logo", "x": 20, "y": 15, "width": 10, "height": 5, "file": path}])
    assert "element 1 (image 'logo')" in message and "inside" in message


def test_symlinks_out_of_the_layouts_directory_are_refused(folder: Path) -> None:
    outside = folder.parent / "outside.png"
    outside.write_bytes((folder / "logo.png").read_bytes())
    (folder / "link.png").symlink_to(outside)
    message = refused(folder, [{"type": "image", "name": "logo", "x": 20, "y": 15, "width": 10, "height": 5,
                                "file": "link.png"}])
    assert "element 1 (image 'logo')" in message and "outside" in message
    elsewhere = write_layout(folder.parent, [TEXT], name="elsewhere")
    (folder / "linked.json5").symlink_to(elsewhere)
    with pytest.raises(Invalid, match="outside"):
        layout_mod.load("linked", folder)


def test_symlinks_inside_the_directory_are_fine(folder: Path) -> None:
    (folder / "alias.png").symlink_to(folder / "logo.png")
    write_layout(folder, [{"type": "image", "x": 20, "y": 15, "width": 10, "height": 5, "file": "alias.png"}])
    assert layout_mod.load("test", folder).elements[0].bitmap.size == (80, 40)


@pytest.mark.parametrize("name", ["../test", "/etc/passwd", "sub/test", ".hidden", ""])
def test_layout_names_are_file_names_in_the_directory(folder: Path, name: str) -> None:
    write_layout(folder, [TEXT])
    with pytest.raises(Invalid, match="layout name"):
        layout_mod.load(name, folder)


def test_unknown_layout_lists_the_known_ones(folder: Path) -> None:
    write_layout(folder, [TEXT], name="known")
    with pytest.raises(NotFound, match="known"):
        layout_mod.load("unknown", folder)
