"""The line's one unit cycle (station.line.cycle), as the operator pages and `station rig run` drive it: a real
store and configuration in a temporary data directory, a real file printer, and the in-memory console of
tests/rig/memory.py in place of a serial port (fast; the pages' tests run the same cycle on pseudo-terminals)."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest

from station import config as config_mod
from station.config import Config
from station.core.errors import Conflict, NotFound, StationError
from station.line.cycle import FAIL, PASS, UnitCycle
from station.rig.errors import StepFailed
from station.rig.flash import Progress
from station.rig.settings import from_mapping
from station.rig.slots import Rig
from station.serve.writer import Writer
from station.store import Store
from station.web.line import Line
from tests.conftest import PRODUCT
from tests.rig.memory import DEVICE_JSON, MemoryUnit, registering

PASSWORD = "line-console-pw"
RIG = {"password": PASSWORD, "login_timeout": 20, "command_timeout": 5, "wake_interval": 0.3, "register_timeout": 10}
VERDICT_WITHIN = 30  # s: bounds the wait for a tile's verdict on the line's thread; never a measurement


@pytest.fixture
def config(data_dir: Path) -> Config:
    """A file printer into labels-out, and a broken one whose folder is a file."""
    (data_dir / "taken").write_text("a file where a folder should be")
    (data_dir / "station.json5").write_text(json.dumps({
        "printers": {"files": {"type": "file", "path": str(data_dir / "labels-out"), "format": "png"},
                     "broken": {"type": "file", "path": str(data_dir / "taken"), "format": "png"}},
        "rig": RIG, "slots": {"A": {"port": "memory://A"}},
    }))
    return config_mod.load(data_dir)


@pytest.fixture
def unit(config: Config) -> MemoryUnit:
    return MemoryUnit(password=PASSWORD, on_boot=registering(config.database))


def unit_cycle(config: Config, connect, printer: str = "files", port: str = "memory://A"):  # type: ignore[no-untyped-def]
    settings = from_mapping(RIG, {"A": {"port": port}})
    steps: list[Progress] = []
    rig = Rig(settings, config.database, connect=connect) if connect else Rig(settings, config.database)
    cycle = UnitCycle(config, rig, settings.slot("A"), actor="operator:olga", printer=printer, progress=steps.append)
    return cycle, steps


def kinds(store: Store, uci: str) -> list[str]:
    return [event.kind for event in store.events(uci) if event.uci == uci]


def devices(store: Store) -> int:
    return sum(1 for _ in store.devices(product=PRODUCT))


def test_a_unit_is_checked_issued_labelled_flashed_and_passes(store: Store, config: Config, unit: MemoryUnit) -> None:
    cycle, steps = unit_cycle(config, unit.connect)
    cycle.check(label=True)
    device = cycle.issue(store, PRODUCT, "SN-7")
    verdict = cycle.run(store, device.uci, label=True)
    assert verdict.passed, verdict.summary()
    assert verdict.summary().startswith(f"PASS {device.display} flashed, verified and registered in ")
    assert unit.fs.files[DEVICE_JSON] == store.product(PRODUCT).device_file(device.uci, "SN-7")
    assert json.loads(unit.fs.files[DEVICE_JSON])["serial"] == "SN-7"  # the unit names its serial, as its label does
    assert list((config.data_dir / "labels-out").iterdir())
    assert kinds(store, device.uci) == ["issued", "printed", "flash-started", "flashed", "boot-triggered", "registered",
                                        "registration-confirmed", PASS]
    last = store.events(device.uci)[-1]
    assert (last.actor, last.details) == ("operator:olga", {"slot": "A", "step": None, "reason": verdict.reason})
    assert store.device(device.uci).serial == "SN-7" and store.device(device.uci).state == "registered"
    seen = [step.step for step in steps]
    assert seen[:3] == ["label", "label", "connect"] and seen[-1] == "register"
    assert all(PASSWORD not in str(event.details) for event in store.events(device.uci))


def test_a_console_that_does_not_open_issues_nothing(store: Store, config: Config) -> None:
    cycle, _ = unit_cycle(config, None, port="/dev/ttyUSB-station-missing")  # the real serial port's connect
    before = devices(store)
    with pytest.raises(StepFailed, match=r"^connect: serial port /dev/ttyUSB-station-missing of slot A does not exist"):
        cycle.check(label=True)
    assert devices(store) == before
    assert not (config.data_dir / "labels-out").exists()


def test_an_unknown_printer_issues_nothing(store: Store, config: Config, unit: MemoryUnit) -> None:
    cycle, _ = unit_cycle(config, unit.connect, printer="nowhere")
    before = devices(store)
    with pytest.raises(NotFound, match="no printer named 'nowhere'"):
        cycle.check(label=True)
    assert devices(store) == before and unit.connections == 0


def test_a_product_that_may_not_issue_is_refused_before_the_unit_is_touched(store: Store, config: Config,
                                                                            unit: MemoryUnit) -> None:
    store.set_product_enabled(PRODUCT, False, actor="test")
    cycle, _ = unit_cycle(config, unit.connect)
    before = devices(store)
    cycle.check(label=False)
    with pytest.raises(Conflict, match=f"product {PRODUCT} is disabled"):
        cycle.issue(store, PRODUCT, None)
    assert devices(store) == before and unit.fs.files == {}


def test_a_flash_failure_is_a_line_fail_with_its_step(store: Store, config: Config) -> None:
    lost = MemoryUnit(password=PASSWORD, lose_at_chunk=2)
    cycle, _ = unit_cycle(config, lost.connect)
    device = cycle.issue(store, PRODUCT, None)
    verdict = cycle.run(store, device.uci, label=True)
    assert (verdict.passed, verdict.step) == (False, "write")
    assert verdict.summary().startswith("FAIL at write: the memory console went away")
    assert kinds(store, device.uci) == ["issued", "printed", "flash-started", "flash-failed", FAIL]
    assert store.events(device.uci)[-1].details == {"slot": "A", "step": "write", "reason": verdict.reason}
    assert store.device(device.uci).state == "labeled" and DEVICE_JSON not in lost.fs.files


def test_a_label_that_does_not_print_fails_the_cycle_before_the_flash(store: Store, config: Config,
                                                                      unit: MemoryUnit) -> None:
    cycle, _ = unit_cycle(config, unit.connect, printer="broken")
    cycle.check(label=True)  # the printer is configured: only printing can tell that it fails
    device = cycle.issue(store, PRODUCT, None)
    verdict = cycle.run(store, device.uci, label=True)
    assert (verdict.passed, verdict.step) == (False, "label")
    assert verdict.reason.startswith("the label did not print: cannot write the label to ")
    assert kinds(store, device.uci) == ["issued", "print-failed", FAIL]
    assert store.device(device.uci).state == "issued" and unit.fs.files == {}


def test_the_line_pages_drive_the_same_cycle(store: Store, config: Config, unit: MemoryUnit) -> None:
    writer = Writer(config.database)
    line = Line(config, writer, connect=unit.connect)
    tiles = line.admit()
    try:
        scanned = line.scan("operator:olga", PRODUCT, "files", "A", "SN-8")
        assert scanned["status"] == "busy"
        tile = verdict_of(tiles, "A")
    finally:
        line.leave(tiles)
        line.close()
        writer.close()
    assert (tile["status"], tile["uci"]) == ("pass", scanned["uci"])
    assert kinds(store, scanned["uci"])[-1] == PASS
    assert line.today(store)["A"] == {"pass": 1, "fail": 0}


def verdict_of(tiles: queue.Queue[str], slot: str) -> dict:  # type: ignore[type-arg]
    """The first tile of ``slot`` that shows a verdict, from the line's event stream."""
    while True:
        try:
            message = tiles.get(timeout=VERDICT_WITHIN)
        except queue.Empty:
            raise StationError(f"slot {slot} showed no verdict within {VERDICT_WITHIN} s") from None
        tile = json.loads(message.split("data: ", 1)[1])
        if tile["slot"] == slot and tile["status"] in ("pass", "fail"):
            return tile
