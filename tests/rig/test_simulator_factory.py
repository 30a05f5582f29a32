"""The simulated agent in factory mode (DESIGN.md section 2) against the real `station serve`: it asks
/ioto/serialize for its ID while device.json5 has none, keeps the ID in memory unless started with the four
flags (``save_id``), registers with it, and asks again every 2 s while the station is down or refuses."""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import json5
import pytest

from station.rig.port import Link, open_port
from station.rig.shell import Shell
from station.simulator import Unit
from station.simulator.agent import SERIALIZE_RETRY
from station.store import Store
from tests.rig.conftest import FAST, PASSWORD, PRODUCT, kinds, rig_settings, slot_for
from tests.web.conftest import Server, prepare

DEVICE_JSON = "/etc/ioto/device.json5"
BLANK = {"product": PRODUCT, "name": "Blank", "description": "Blank slate app", "model": "Blank-01"}
WITHIN = 20.0  # seconds a test waits for what the agent must do; a bound, never a measure
FAILED = "ioto: error serialize: Cannot fetch device ID from "


def until(condition: Callable[[], Any], what: str, within: float = WITHIN) -> Any:
    """Poll ``condition`` until it holds (bounded); its value."""
    deadline = time.monotonic() + within
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {within:g} s: {what}"
        time.sleep(0.05)
    return value


def factory_unit(url: str, device: dict[str, Any], **options: Any) -> Unit:
    """A unit in factory mode whose device.json5 (without id) is ``device``; the caller powers it on."""
    return Unit(station=url, baud=FAST, password=PASSWORD, serialize="factory",
                device_json=json.dumps(device, indent=4).encode(), **options)


@pytest.fixture
def power_on(station: dict[str, Any]) -> Callable[..., Unit]:
    """Power on factory-mode units of the session's station (its agent starts at boot); all are stopped after."""
    units: list[Unit] = []

    def start(device: dict[str, Any] = BLANK, url: str | None = None, **options: Any) -> Unit:
        unit = factory_unit(url or station["url"], device, **options)
        units.append(unit)
        unit.start()
        return unit

    yield start
    for unit in units:
        unit.stop()


def restart(unit: Unit) -> None:
    """`systemctl restart ioto` on the unit's console, as an operator (or the rig's trigger) types it."""
    _, slot = slot_for(unit)
    with Link(open_port(slot), slot.name) as link:
        shell = Shell(link, slot)
        shell.login()
        assert shell.run("systemctl restart ioto", "trigger").status == 0


def registered(unit: Unit, count: int) -> list[str]:
    """The IDs of the unit's first ``count`` registrations, once it has made them."""
    until(lambda: len(unit.registrations) >= count, f"{count} registration(s) of the unit; its log: {unit.agent_log}")
    return [reply["id"] for reply in unit.registrations]


def claim_ids(unit: Unit) -> list[str]:
    return [line.rsplit(" ", 1)[1] for line in unit.agent_log if line.startswith("ioto: info ioto: Device Claim ID: ")]


def saved(unit: Unit) -> dict[str, Any]:
    return json5.loads(unit.fs.files[DEVICE_JSON].decode())


def test_without_save_id_the_id_lives_in_memory_and_a_restart_is_a_new_unit(power_on, store: Store) -> None:
    unit = power_on()
    first = registered(unit, 1)[0]
    assert claim_ids(unit) == [first]
    assert saved(unit) == BLANK  # the stock agent, started without the four flags, writes nothing
    assert kinds(store, first) == ["issued", "registered"]
    restart(unit)
    second = registered(unit, 2)[1]
    assert second != first and claim_ids(unit) == [first, second]
    assert saved(unit) == BLANK
    assert store.device(first).state == store.device(second).state == "registered"  # two devices for one unit
    assert kinds(store, second) == ["issued", "registered"]


def test_with_save_id_device_json5_holds_the_id_and_a_restart_does_not_ask(power_on, store: Store) -> None:
    unit = power_on(save_id=True)
    code = registered(unit, 1)[0]
    assert saved(unit) == {**BLANK, "id": code}
    assert oct(unit.fs.modes[DEVICE_JSON]) == oct(0o600)
    restart(unit)
    assert registered(unit, 2) == [code, code]
    assert claim_ids(unit) == [code]  # the restarted agent read its ID and asked the station nothing
    assert kinds(store, code) == ["issued", "registered", "registered"]


def test_a_hardware_key_gets_the_same_id_back_while_the_unit_is_in_the_factory(power_on, store: Store) -> None:
    serial = "SN-" + secrets.token_hex(6)
    unit = power_on({**BLANK, "serial": serial}, faults=["no-register=1"])  # the first start cannot register
    until(lambda: claim_ids(unit) and any("Cannot connect" in line for line in unit.agent_log),
          f"an ID, then a failed registration; the log: {unit.agent_log}")
    first = claim_ids(unit)[0]
    assert store.device(first).state == "issued"
    restart(unit)
    assert registered(unit, 1) == [first]
    assert claim_ids(unit) == [first, first]
    assert kinds(store, first) == ["issued", "issued-repeat", "registered"]
    assert saved(unit) == {**BLANK, "serial": serial}


def test_a_registered_unit_with_a_hardware_key_is_refused_and_keeps_asking(power_on, store: Store) -> None:
    """What a stock agent does when it restarts after it registered, before the factory wrote its device.json5:
    the station does not give the ID of a unit that left the factory again, so the agent asks for ever."""
    serial = "SN-" + secrets.token_hex(6)
    unit = power_on({**BLANK, "serial": serial})
    code = registered(unit, 1)[0]
    restart(unit)
    until(lambda: sum(FAILED in line and "status 409" in line for line in unit.agent_log) >= 2,
          f"two refused requests after the restart; the log: {unit.agent_log}")
    assert claim_ids(unit) == [code] and len(unit.registrations) == 1
    seen = kinds(store, code)
    assert seen[:2] == ["issued", "registered"] and len(seen) >= 4 and set(seen[2:]) == {"refused"}, seen
    assert store.device(code).state == "registered"


def test_the_agent_asks_every_2_s_until_the_station_is_up(tmp_path) -> None:
    with socket.socket() as probe:  # a port nothing listens on yet, for the station started later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unit = factory_unit(f"http://127.0.0.1:{port}", BLANK)
    server = None
    try:
        unit.start()
        until(lambda: sum(line.startswith(FAILED) for line in unit.agent_log) >= 2,
              f"two failed requests while the station is down; the log: {unit.agent_log}")
        assert not claim_ids(unit) and not unit.registrations
        prepare(tmp_path)
        server = Server(tmp_path, ("--port", str(port)))
        code = registered(unit, 1)[0]
        assert claim_ids(unit) == [code]
        with Store.open(server.db) as store:
            assert store.device(code).state == "registered"
    finally:
        unit.stop()
        if server is not None:
            assert server.stop() == 0


def test_an_error_status_is_retried_and_gives_no_id(power_on, store: Store) -> None:
    """A product the station does not know yet: 404 again and again; a restart stops the agent that was asking,
    and once the product is added the one agent left gets one ID."""
    product = "01H4R15D3478JD26YDY" + secrets.token_hex(4).upper()
    unit = power_on({**BLANK, "product": product})
    until(lambda: sum(line.startswith(FAILED) and line.endswith("status 404") for line in unit.agent_log) >= 2,
          f"two refused requests; the log: {unit.agent_log}")
    assert not claim_ids(unit) and not unit.registrations and "id" not in saved(unit)
    restart(unit)
    until(lambda: sum(line.startswith("ioto: info main: Starting") for line in unit.agent_log) == 2, "the restart")
    store.add_product(product, "Blank", "Blank-01", description="Blank slate app")
    code = registered(unit, 1)[0]
    with pytest.raises(AssertionError):  # the agent stopped by the restart never asks again
        until(lambda: len(list(store.devices(product=product))) > 1, "a second device", within=3 * SERIALIZE_RETRY)
    assert [device.uci for device in store.devices(product=product)] == [code] and claim_ids(unit) == [code]


def test_station_simulate_in_factory_mode(station: dict[str, Any], store: Store, tmp_path) -> None:
    serial = "SN-" + secrets.token_hex(6)
    device_file = tmp_path / "device.json5"
    device_file.write_text(json.dumps({**BLANK, "serial": serial}))
    process = subprocess.Popen(
        [sys.executable, "-c", "from station.cli import main; main()", "simulate", "--station", station["url"],
         "--baud", str(FAST), "--serialize", "factory", "--device-file", str(device_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        path = process.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        slot = rig_settings({"A": path}).slot("A")
        with Link(open_port(slot), slot.name) as link:  # the agent's log lines, on the unit's console
            claimed = link.expect(re.compile(rb"ioto: info ioto: Device Claim ID: (\w+)\r\n"), "serialize", WITHIN,
                                  "an ID").group(1).decode()
            link.expect(re.compile(rb"ioto: info register: Device registered"), "register", WITHIN, "a registration")
        device = store.device(claimed)
        assert device.hwkey == f"serial:{serial}" and device.state == "registered"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0 and "stopped (1 registration)" in err
