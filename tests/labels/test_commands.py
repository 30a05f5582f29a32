"""The label commands, run through click as a person would."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from station.cli import cli
from station.store import Store
from tests.labels.conftest import pdf_pages, png_image, qr_texts, write_config


@pytest.fixture
def run(data_dir: Path):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def batch(run, data_dir: Path) -> list[str]:
    assert run("product", "add", "--id", "PRODUCTA", "--name", "Blank", "--model", "Blank-01", "--bits", "50").exit_code == 0
    assert run("generate", "--product", "PRODUCTA", "--count", "4", "--batch", "B4").exit_code == 0
    with Store.open(data_dir / "station.db") as store:
        return [d.uci for d in store.devices(batch="B4")]


def test_label_to_a_file_then_reprint(run, batch, tmp_path) -> None:
    first = tmp_path / "first.png"
    done = run("label", batch[0].lower(), "--out", str(first))
    assert done.exit_code == 0, done.output
    assert "1 first print(s)" in done.output and qr_texts(png_image(first.read_bytes())) == [batch[0]]
    again = run("label", batch[0], "--out", str(first))
    assert again.exit_code == 1 and "already has a label" in again.output
    assert "Traceback" not in again.output
    missing = run("reprint", batch[0], "--out", str(tmp_path / "again.zpl"))
    assert missing.exit_code == 2 and "--reason" in missing.output
    reprinted = run("reprint", batch[0], "--reason", "torn", "--out", str(tmp_path / "again.zpl"))
    assert reprinted.exit_code == 0 and "1 reprint(s)" in reprinted.output
    shown = run("show", batch[0]).output
    assert "printed" in shown and "reprinted" in shown and "reason=torn" in shown and "state:   labeled" in shown


def test_labels_for_a_batch_on_sheets(run, batch, tmp_path) -> None:
    target = tmp_path / "sheet.pdf"
    done = run("labels", "--batch", "B4", "--layout", "a4-3x8-70x37", "--out", str(target), "--start-at", "23")
    assert done.exit_code == 0, done.output
    pages = pdf_pages(target.read_bytes(), dpi=150)
    assert len(pages) == 2 and len(qr_texts(pages[0])) == 2 and len(qr_texts(pages[1])) == 2
    bad = run("labels", "--batch", "B4", "--layout", "a4-3x8-70x37", "--out", str(target), "--start-at", "30",
              "--reason", "test")
    assert bad.exit_code == 1 and "slots 1 to 24" in bad.output


def test_label_on_a_configured_printer(run, batch, data_dir) -> None:
    write_config(data_dir, {"printers": {"folder": {"type": "file", "path": "out", "format": "zpl"}},
                            "label_printer": "folder"})
    done = run("label", batch[1])
    assert done.exit_code == 0, done.output
    written = list((data_dir / "out").glob("*.zpl"))
    assert len(written) == 1 and written[0].read_text().startswith("^XA")


def test_unknown_code_and_printer_are_one_line_errors(run, batch) -> None:
    unknown = run("label", "ZZZZ-ZZZZ-ZZ", "--printer", "nope")
    assert unknown.exit_code == 1 and unknown.output.count("\n") == 1
    no_printer = run("label", batch[2], "--printer", "nope")
    assert no_printer.exit_code == 1 and "no printer named 'nope'" in no_printer.output


def test_layouts_lists_and_checks(run, data_dir) -> None:
    listed = run("layouts")
    assert listed.exit_code == 0
    assert "thermal-50x25-203" in listed.output and "a4-3x8-70x37" in listed.output and "refused" not in listed.output
    folder = data_dir / "my-layouts"
    folder.mkdir()
    (folder / "broken.json5").write_text('{size: {width: 10, height: 10}, dpi: 203, elements: '
                                         '[{type: "text", name: "t", x: 0, y: 0, width: 20, size: 2, text: "{x}"}]}')
    write_config(data_dir, {"label_layouts": "my-layouts"})
    checked = run("layouts")
    assert checked.exit_code == 1
    assert "broken" in checked.output and "element 1 (text 't')" in checked.output
