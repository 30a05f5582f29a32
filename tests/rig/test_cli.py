"""`station rig flash`, `station rig run` and `station simulate` as an operator runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from station.cli import cli
from tests.rig.conftest import FAST, PASSWORD, PRODUCT


@pytest.fixture
def run(station, monkeypatch):
    monkeypatch.setenv("STATION_RIG_PASSWORD", PASSWORD)

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--data-dir", str(station["data_dir"]), *args])

    return invoke


def test_rig_flash_prints_progress_and_pass(run, store, device, make_unit) -> None:
    unit = make_unit()
    result = run("rig", "flash", device.display.lower(), "--port", unit.path, "--baud", str(FAST))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"[cli] flashing {device.display} on {unit.path}"
    assert "[cli] write: chunk 1/3 written" in lines
    assert lines[-1].startswith(f"PASS {device.display} flashed, verified and registered in ")
    assert store.device(device.uci).state == "registered"
    assert PASSWORD not in result.output


def test_rig_flash_fail_exits_non_zero_with_the_reason(run, store, device, make_unit) -> None:
    unit = make_unit(faults=["no-register"])
    result = run("rig", "flash", device.uci, "--port", unit.path, "--register-timeout", "1")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("FAIL at register: the unit did not register with the station within 1 s")
    assert store.device(device.uci).state == "flashed"


def test_rig_flash_on_a_port_that_does_not_exist(run, device) -> None:
    result = run("rig", "flash", device.uci, "--port", "/dev/ttyUSB-station-missing")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == ("FAIL at connect: serial port /dev/ttyUSB-station-missing of slot cli "
                                              "does not exist: check the cable and the slot's port in station.json5")


def test_rig_run_on_a_port_that_does_not_exist_issues_nothing(run, store) -> None:
    before = sum(1 for _ in store.devices(product=PRODUCT))
    result = run("rig", "run", "--product", PRODUCT, "--port", "/dev/ttyUSB-station-missing")
    assert result.exit_code == 1
    assert result.output == ("FAIL at connect: serial port /dev/ttyUSB-station-missing of slot cli does not exist: "
                             "check the cable and the slot's port in station.json5\n")
    assert sum(1 for _ in store.devices(product=PRODUCT)) == before


def test_rig_flash_needs_a_port_or_a_slot(run, device) -> None:
    result = run("rig", "flash", device.uci)
    assert result.exit_code == 1 and "name a slot (--slot) or a serial port (--port)" in result.output


def test_rig_run_issues_flashes_and_confirms(run, store, make_unit) -> None:
    unit = make_unit()
    result = run("rig", "run", "--product", PRODUCT, "--port", unit.path, "--serial", "SN-0042")
    assert result.exit_code == 0, result.output
    [device] = store.devices(product=PRODUCT, serial="SN-0042")
    assert result.output.splitlines()[0] == f"[cli] issued {device.display} for {PRODUCT} (serial SN-0042)"
    assert device.state == "registered"
    assert [e.actor for e in store.events(device.uci) if e.kind == "issued"] == ["rig:cli"]
    verdict = store.events(device.uci)[-1]
    assert (verdict.kind, verdict.actor, verdict.details["slot"]) == ("line-pass", "rig:cli", "cli")


def test_rig_run_with_label_prints_it_before_flashing(run, station, store, make_unit, tmp_path) -> None:
    config = station["data_dir"] / "station.json5"
    config.write_text(json.dumps({"label_printer": "bench", "printers": {
        "bench": {"type": "file", "path": str(tmp_path), "format": "png"}}}))
    try:
        unit = make_unit()
        result = run("rig", "run", "--product", PRODUCT, "--port", unit.path, "--label")
    finally:
        config.unlink()
    assert result.exit_code == 0, result.output
    device = store.find(result.output.split()[2])
    assert "[cli] label: printed on bench" in result.output
    assert [e.kind for e in store.events(device.uci) if e.kind in ("printed", "flashed")] == ["printed", "flashed"]
    assert device.state == "registered" and list(tmp_path.iterdir())


def test_rig_run_with_a_label_that_cannot_print_fails_before_flashing(run, station, store, make_unit, tmp_path) -> None:
    config = station["data_dir"] / "station.json5"
    (tmp_path / "taken").write_text("a file where the printer's folder should be")
    config.write_text(json.dumps({"printers": {"broken": {"type": "file", "path": str(tmp_path / "taken"), "format": "png"}}}))
    try:
        unit = make_unit()
        result = run("rig", "run", "--product", PRODUCT, "--port", unit.path, "--label", "--printer", "broken")
    finally:
        config.unlink()
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("FAIL at label: ")
    device = store.find(result.output.split()[2])
    assert device.state == "issued" and unit.fs.files == {}
    assert [e.kind for e in store.events(device.uci)][-1] == "line-fail"


def test_rig_run_with_an_unknown_printer_issues_nothing(run, store, make_unit) -> None:
    unit = make_unit()
    before = sum(1 for _ in store.devices(product=PRODUCT))
    result = run("rig", "run", "--product", PRODUCT, "--port", unit.path, "--label", "--printer", "nowhere")
    assert result.exit_code == 1
    assert "no printer named 'nowhere'" in result.output
    assert sum(1 for _ in store.devices(product=PRODUCT)) == before and unit.fs.files == {}


def test_rig_run_with_label_says_clearly_when_labels_are_missing(run, store, make_unit, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "station.labels.printing", None)  # as on a station without the labels part
    unit = make_unit()
    before = sum(1 for _ in store.devices(product=PRODUCT))
    result = run("rig", "run", "--product", PRODUCT, "--port", unit.path, "--label")
    assert result.exit_code == 1
    assert "labels are not available in this station" in result.output
    assert sum(1 for _ in store.devices(product=PRODUCT)) == before  # no claim ID issued for a unit left unlabelled


def test_simulate_runs_a_unit_the_rig_can_flash(run, station, store, device) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from station.cli import main; main()", "simulate", "--station", station["url"],
         "--baud", str(FAST), "--password", PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    said: list[str] = []  # its stderr, line by line: a registration is said once the unit has kept its reply
    reader = threading.Thread(target=lambda: said.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        path = process.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        result = run("rig", "flash", device.uci, "--port", path)
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 10
        while not any(line.startswith("registered with") for line in said) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        reader.join(timeout=20)
    assert process.returncode == 0
    assert f"registered with {station['url']} (1 so far)\n" in said
    assert said[-1] == "stopped (1 registration)\n"


def test_simulate_refuses_an_unknown_fault(run) -> None:
    result = run("simulate", "--fault", "meltdown")
    assert result.exit_code == 1 and "unknown fault 'meltdown': faults are flip, drop" in result.output
