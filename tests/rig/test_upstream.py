"""The rig's flash cycle through a station that relays registrations to an upstream Builder: the unit (the
simulator on a real pseudo-terminal) gets the Builder's reply, and a Builder that fails makes the FAIL name it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.rig.flash import flash
from station.simulator import Unit
from station.store import IssueRequest, Store
from tests.builder import Builder, builder_fixture  # noqa: F401 (the fixture `builder`)
from tests.rig.conftest import FAST, PASSWORD, PRODUCT, kinds, last_registration, slot_for
from tests.web.conftest import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, builder: Builder) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("station-data")
    with Store.open(data_dir / "station.db") as store:
        store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
    (data_dir / "station.json5").write_text(json.dumps({"registration_upstream": builder.url,
                                                        "registration_timeout": 2}))
    running = Server(data_dir)
    yield running
    assert running.stop() == 0


@pytest.fixture
def unit(server: Server) -> Iterator[Unit]:
    simulated = Unit(station=f"http://127.0.0.1:{server.port}", baud=FAST, password=PASSWORD)
    simulated.start()
    yield simulated
    simulated.stop()


@pytest.mark.parametrize("mode", ["register", "fail", "hang"])
def test_the_flash_passes_through_the_builder_or_names_it(server: Server, builder: Builder, unit: Unit,
                                                          mode: str) -> None:
    builder.mode = mode
    with Store.open(server.db) as store:
        device = store.issue(IssueRequest(PRODUCT, actor="test"))[0]
        settings, slot = slot_for(unit, register_timeout=20)
        result = flash(store, settings, slot, device.uci)
        if mode == "register":
            assert result.passed, result.summary()
            assert last_registration(unit) == json.loads(builder.replies[-1])  # the Builder's reply reached the unit
            assert store.device(device.uci).state == "registered"
        else:
            assert not result.passed and result.step == "register" and builder.url in result.reason, result.summary()
            assert kinds(store, device.uci)[-1] == "registration-refused"
            assert store.device(device.uci).state == "flashed"
