"""Adopting a unit whose agent made its own ID: its device.json5 read over a real pseudo-terminal from the
simulator, its ID recorded, its label printed to a file printer and its QR code read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from station import config as config_mod
from station.core import uci
from station.core.errors import Conflict, Invalid
from station.rig.adopt import adopt
from station.rig.errors import StepFailed
from station.simulator import Unit
from station.store import Store
from tests.conftest import dump
from tests.labels.conftest import png_image, qr_texts
from tests.rig.conftest import FAST, PASSWORD, PRODUCT, slot_for

REFUSING = "01REFUSESAGENTIDS000000001"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A station whose product takes agent-made IDs and prints to a folder; another product takes none."""
    with Store.open(tmp_path / config_mod.DB_NAME) as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
        store.add_product(REFUSING, "Strict", "Strict-01")
    (tmp_path / config_mod.CONFIG_NAME).write_text(json.dumps({
        "printers": {"folder": {"type": "file", "path": "labels", "format": "png"}}, "label_printer": "folder",
        "products": {PRODUCT: {"agent_ids": True}}}))
    return tmp_path


@pytest.fixture
def units() -> Iterator[list[Unit]]:
    started: list[Unit] = []
    yield started
    for unit in started:
        unit.stop()


def unit_with(units: list[Unit], device: dict | bytes) -> Unit:
    data = device if isinstance(device, bytes) else json.dumps(device).encode()
    unit = Unit(baud=FAST, password=PASSWORD, device_json=data)
    unit.start()
    units.append(unit)
    return unit


def test_a_units_own_id_is_recorded_and_labelled(data_dir: Path, units: list[Unit]) -> None:
    code = uci.generate(50)  # what `ioto --gen` writes
    unit = unit_with(units, {"product": PRODUCT, "name": "Blank", "model": "Blank-01", "id": code})
    settings, slot = slot_for(unit)
    config = config_mod.load(data_dir)
    with Store.open(config.database) as store:
        adopted = adopt(store, config, settings, slot)
        assert adopted.device.uci == code and store.device(code).state == "labeled"
        assert [e.kind for e in store.events(code)] == ["adopted", "printed"]
        assert store.events(code)[0].details["origin"] == "agent"
        with pytest.raises(Conflict, match="held by the station already"):
            adopt(store, config, settings, slot)  # the same unit again: one device, one label
    labels = list((data_dir / "labels").iterdir())
    assert len(labels) == 1 and qr_texts(png_image(labels[0].read_bytes())) == [code]


@pytest.mark.parametrize("device, error, says", [
    ({"product": REFUSING, "id": "0123456789"}, Conflict, "set agent_ids: true"),
    ({"product": PRODUCT, "id": "0123456789U"}, Invalid, "'U' at symbol 11"),
    ({"product": PRODUCT}, StepFailed, "has no `id` and `product`"),
    (b"{product: 'x', id: ", StepFailed, "not valid JSON5"),
])
def test_a_unit_that_cannot_be_adopted_leaves_nothing(data_dir: Path, units: list[Unit], device: dict | bytes,
                                                      error: type[Exception], says: str) -> None:
    unit = unit_with(units, device)
    settings, slot = slot_for(unit)
    config = config_mod.load(data_dir)
    before = dump(config.database)
    with Store.open(config.database) as store, pytest.raises(error, match=says.replace("(", r"\(")):
        adopt(store, config, settings, slot)
    assert dump(config.database) == before and not (data_dir / "labels").exists()


def test_station_rig_adopt_on_the_command_line(data_dir: Path, units: list[Unit]) -> None:
    code = uci.generate(50)
    unit = unit_with(units, {"product": PRODUCT, "id": code})
    done = subprocess.run([sys.executable, "-c", "from station.cli import main; main()", "--data-dir", str(data_dir),
                           "rig", "adopt", "--port", unit.path, "--baud", str(FAST)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "STATION_RIG_PASSWORD": PASSWORD}, check=False)
    assert done.returncode == 0, done.stderr
    with Store.open(data_dir / config_mod.DB_NAME) as store:
        assert store.device(code).display in done.stdout and "folder" in done.stdout
    again = subprocess.run([sys.executable, "-c", "from station.cli import main; main()", "--data-dir", str(data_dir),
                            "rig", "adopt", "--port", unit.path, "--baud", str(FAST)], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "STATION_RIG_PASSWORD": PASSWORD}, check=False)
    assert again.returncode == 1 and "held by the station already" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
