"""Batches from lists that production engineers bring: one claim ID per manufacturer serial, and claim IDs
made elsewhere imported; both all or nothing, each refusal naming the lines to fix. Through the real CLI on a
real database, and the store beneath it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.core import uci
from station.core.errors import BadRows, Conflict
from station.store import IssueRequest, Store
from tests.conftest import PRODUCT, dump
from tests.test_cli import fails, run


@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    run(path, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    return path


def test_a_batch_of_serials_gives_each_its_claim_id_and_device_file(station_dir: Path, tmp_path: Path) -> None:
    serials = tmp_path / "serials.txt"
    serials.write_text("SN-0001\n\nSN-0002\r\nSN-0003\n")
    out = run(station_dir, "generate", "--product", PRODUCT, "--serials", str(serials), "--batch", "week-48",
              "--csv", str(tmp_path / "m.csv"), "--device-json", str(tmp_path / "files")).stdout
    assert "issued 3 claim IDs" in out
    rows = [line.split(",") for line in (tmp_path / "m.csv").read_text().splitlines()[1:]]
    assert sorted(row[5] for row in rows) == ["SN-0001", "SN-0002", "SN-0003"]
    for row in rows:
        device = json.loads((tmp_path / "files" / f"{row[0]}.json5").read_text())
        assert device["id"] == row[0] and device["serial"] == row[5]


def test_serials_from_a_csv_column(station_dir: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "erp.csv"
    sheet.write_text("\ufefforder,serial,colour\n1,A-1,red\n2,A-2,blue\n")
    fails(station_dir, "generate", "--product", PRODUCT, "--serials", str(sheet), message="name the column with --column")
    fails(station_dir, "generate", "--product", PRODUCT, "--serials", str(sheet), "--column", "sn",
          message="no column 'sn' (its columns: order, serial, colour)")
    assert "issued 2" in run(station_dir, "generate", "--product", PRODUCT, "--serials", str(sheet), "--column",
                             "serial").stdout


def test_a_bad_list_of_serials_stores_nothing_and_names_every_line(station_dir: Path, tmp_path: Path) -> None:
    run(station_dir, "generate", "--product", PRODUCT, "--serials", str(_file(tmp_path, "first.txt", "OLD-1\n")))
    before = dump(station_dir / "station.db")
    bad = _file(tmp_path, "bad.txt", "NEW-1\nOLD-1\nNEW-1\nSN\u00e9\n" + "X" * 65 + "\n")
    result = run(station_dir, "generate", "--product", PRODUCT, "--serials", str(bad), ok=False)
    line = result.stderr.strip()
    assert result.returncode == 1 and len(line.splitlines()) == 1 and "4 bad rows, nothing was stored" in line
    for expected in ("line 2: serial OLD-1 already has claim ID", "line 3: serial NEW-1 repeats line 1",
                     "line 4: serial holds U+00E9", "line 5: serial is longer than 64"):
        assert expected in line
    assert dump(station_dir / "station.db") == before
    fails(station_dir, "generate", "--product", PRODUCT, "--count", "2", "--serials", str(bad),
          message="either --count or --serials")


def test_claim_ids_made_elsewhere_are_imported_whole(station_dir: Path, tmp_path: Path) -> None:
    codes = [uci.generate() for _ in range(3)]
    listed = _file(tmp_path, "ids.txt", f"{uci.display(codes[0])}\n{codes[1].lower()}\n{codes[2]}\n")
    assert "imported 3 claim IDs" in run(station_dir, "import", "--product", PRODUCT, "--csv", str(listed),
                                         "--batch", "old-system").stdout
    exported = run(station_dir, "export", "--batch", "old-system").stdout.splitlines()[1:]
    assert sorted(row.split(",")[0] for row in exported) == sorted(codes)
    assert "batch-imported" in run(station_dir, "show", codes[0]).stdout
    before = dump(station_dir / "station.db")
    wrong_check = uci.display(codes[0])[:-1] + ("0" if uci.display(codes[0])[-1] != "0" else "1")
    fresh = uci.generate()
    bad = _file(tmp_path, "bad.txt", f"{fresh}\n{codes[1]}\n{fresh}\n{wrong_check}\nSHORT\n{fresh[:-1]}U\n")
    result = run(station_dir, "import", "--product", PRODUCT, "--csv", str(bad), ok=False)
    line = result.stderr.strip()
    assert result.returncode == 1 and "5 bad rows, nothing was stored" in line
    for expected in ("line 2: ", "is held by the station already", "line 3: ", "repeats line 1", "line 4: ",
                     "mistyped", "line 5: ", "has 5 symbols", "line 6: ", "'U' at symbol 16"):
        assert expected in line
    assert dump(station_dir / "station.db") == before


def test_ids_that_agents_made_are_imported_at_their_own_lengths(store: Store) -> None:
    ten, twenty = uci.generate(50), uci.generate(100)  # `ioto --gen` makes 10 symbols; agents allow up to 20
    batch = store.import_batch(PRODUCT, [(1, ten.lower()), (2, twenty)], name="agents")
    assert batch.issued == 2 and {d.uci for d in store.devices(batch="agents")} == {ten, twenty}
    assert store.find(store.device(ten).display).uci == ten  # its label's form reads back
    with pytest.raises(BadRows) as refused:
        store.import_batch(PRODUCT, [(1, uci.generate(105)), (2, "0123456789U")])
    assert "line 1: " in str(refused.value) and "has 21 symbols" in str(refused.value)
    assert "line 2: " in str(refused.value) and "'U' at symbol 11" in str(refused.value)


def test_the_store_refuses_an_empty_list_and_a_disabled_product(store: Store) -> None:
    with pytest.raises(BadRows, match="no serials"):
        store.generate_for_serials(PRODUCT, [])
    store.set_product_enabled(PRODUCT, False)
    with pytest.raises(Conflict, match="disabled"):
        store.import_batch(PRODUCT, [(1, uci.generate())])


def test_a_serial_of_a_batch_is_taken_for_single_issues_too(store: Store) -> None:
    batch = store.generate_for_serials(PRODUCT, [(1, "SN-9")])
    assert batch.complete and batch.issued == 1
    with pytest.raises(Conflict, match="already has claim ID"):
        store.issue(IssueRequest(PRODUCT, serial="SN-9"))


def _file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
