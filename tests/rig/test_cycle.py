"""Flash cycles end to end: simulated units on pseudo-terminals, the real `station serve` receiving their
registrations, the real store recording every attempt."""

from __future__ import annotations

import hashlib
import json
import re
import threading

import pytest

from station.rig import registration
from station.rig.flash import Progress, flash
from station.rig.settings import from_mapping
from tests.rig.conftest import PRODUCT, kinds, last_registration, slot_for


def cycle(store, unit, device, **rig):
    settings, slot = slot_for(unit, **rig)
    steps: list[Progress] = []
    result = flash(store, settings, slot, device.uci, progress=steps.append)
    return result, steps


def details(store, uci: str, kind: str) -> dict:
    return next(e.details for e in reversed(store.events(uci)) if e.kind == kind)


def test_a_clean_flash_registers_the_unit(store, device, make_unit) -> None:
    unit = make_unit()
    result, steps = cycle(store, unit, device)
    assert result.passed, result.summary()
    assert result.summary().startswith(f"PASS {device.display} flashed, verified and registered in ")
    data = store.product(PRODUCT).device_file(device.uci)
    assert unit.fs.files["/etc/ioto/device.json5"] == data
    assert store.device(device.uci).state == "registered"
    assert kinds(store, device.uci) == ["issued", "flash-started", "flashed", "boot-triggered", "registered",
                                        "registration-confirmed"]
    flashed = details(store, device.uci, "flashed")
    assert flashed["sha256"] == hashlib.sha256(data).hexdigest() and flashed["slot"] == "A"
    assert [e.actor for e in store.events(device.uci) if e.kind == "registered"] == ["device"]
    assert last_registration(unit)["id"] == device.uci and last_registration(unit)["registered"] is True
    seen = [s.step for s in steps]
    assert seen[:2] == ["connect", "login"] and seen[-2:] == ["trigger", "register"]
    assert {"prepare", "write", "verify", "install"} <= set(seen)


@pytest.mark.parametrize("fault", ["flip", "drop", "flip-readback", "kernel-log=100", "garbled-boot", "slow-boot=1"])
def test_faults_that_a_retry_or_patience_overcomes(store, device, make_unit, fault: str) -> None:
    unit = make_unit(faults=[fault])
    result, _ = cycle(store, unit, device)
    assert result.passed, result.summary()
    assert store.device(device.uci).state == "registered"
    flashed = details(store, device.uci, "flashed")
    retried = {"flip": "chunk_retries", "drop": "chunk_retries", "flip-readback": "readback_retries"}.get(fault)
    if retried:
        assert flashed[retried] == 1


@pytest.mark.parametrize("fault, step, reason", [
    ("flip=4", "write", r"chunk 2/\d+ failed 4 times; last: "),
    ("flip-readback=4", "verify", r"readback of /etc/ioto/device.json5.station-new failed 4 times; last: SHA-256 "),
    ("disconnect", "write", r"the serial port /dev/\S+ went away"),
    ("hang", "write", r"the unit stopped answering"),
])
def test_faults_that_fail_the_flash_never_reach_flashed(store, device, make_unit, fault, step, reason) -> None:
    unit = make_unit(faults=[fault])
    result, _ = cycle(store, unit, device, command_timeout=2)
    assert not result.passed and result.step == step
    assert re.search(reason, result.reason), result.reason
    assert store.device(device.uci).state == "issued"
    assert kinds(store, device.uci) == ["issued", "flash-started", "flash-failed"]
    assert details(store, device.uci, "flash-failed")["step"] == step
    assert "/etc/ioto/device.json5" not in unit.fs.files


def test_a_unit_that_never_registers_stays_flashed(store, device, make_unit) -> None:
    unit = make_unit(faults=["no-register"])
    result, _ = cycle(store, unit, device, register_timeout=1)
    assert not result.passed and result.step == "register"
    assert result.reason.startswith("the unit did not register with the station within 1 s")
    assert store.device(device.uci).state == "flashed"
    assert kinds(store, device.uci)[-2:] == ["boot-triggered", "registration-timeout"]


def test_a_reboot_as_the_trigger(store, device, make_unit) -> None:
    unit = make_unit(trigger="reboot")
    result, _ = cycle(store, unit, device, trigger="reboot", trigger_wait=0.5)
    assert result.passed, result.summary()
    assert store.device(device.uci).state == "registered"


def test_a_trigger_command_that_fails(store, device, make_unit) -> None:
    unit = make_unit()
    result, _ = cycle(store, unit, device, trigger="systemctl restart no-such-agent")
    assert not result.passed and result.step == "trigger"
    assert result.reason == "`systemctl restart no-such-agent` exited with status 1"
    assert store.device(device.uci).state == "flashed"
    assert kinds(store, device.uci)[-2:] == ["boot-triggered", "trigger-failed"]


def test_a_second_flash_of_a_registered_device_is_recorded_and_moves_nothing_back(store, device, make_unit) -> None:
    unit = make_unit()
    assert cycle(store, unit, device)[0].passed
    again, _ = cycle(store, unit, device)
    assert again.passed, again.summary()
    assert store.device(device.uci).state == "registered"
    assert kinds(store, device.uci).count("registration-confirmed") == 2


def test_a_void_device_never_reaches_a_unit(store, device, make_unit) -> None:
    unit = make_unit()
    store.void(device.uci, "label damaged", actor="test")
    result, _ = cycle(store, unit, device)
    assert not result.passed and result.step == "connect" and "is void" in result.reason
    assert kinds(store, device.uci)[-1] == "flash-failed"
    assert unit.fs.files == {}


def test_a_port_that_does_not_exist_fails_the_cycle_clearly(store, device) -> None:
    settings = from_mapping({}, {"A": {"port": "/dev/ttyUSB-station-missing"}})
    result = flash(store, settings, settings.slot("A"), device.uci)
    assert result.summary() == "FAIL at connect: serial port /dev/ttyUSB-station-missing of slot A does not exist: " \
                               "check the cable and the slot's port in station.json5"
    assert details(store, device.uci, "flash-failed")["step"] == "connect"


def test_the_registration_watch_reports_a_refusal(store, device) -> None:
    triggered = store.record(device.uci, "boot-triggered", "rig:A")
    store.record(device.uci, "refused", "device", {"attempted": "registered", "reason": "wrong product"})
    with pytest.raises(registration.RegistrationRefused, match="the station refused the registration: wrong product"):
        registration.wait(store, device.uci, triggered, 5)


def test_the_registration_watch_ignores_registrations_before_the_trigger(store, device) -> None:
    # In the same millisecond as the trigger, or with the clock stepped back: only the order of events counts.
    store.advance(device.uci, "registered", "registered", "device", {})
    triggered = store.record(device.uci, "boot-triggered", "rig:A")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(registration.Cancelled):
        registration.wait(store, device.uci, triggered, 5, cancel)
    store.advance(device.uci, "registered", "registered", "device", {})
    assert registration.wait(store, device.uci, triggered, 5).id > triggered


def test_the_console_password_reaches_no_event_nor_log(store, device, make_unit, station, no_password_in) -> None:
    unit = make_unit()
    assert cycle(store, unit, device)[0].passed
    failing = make_unit(password="other")
    assert not cycle(store, failing, device)[0].passed
    no_password_in(station["data_dir"])


def test_a_pre_claimed_batchs_unit_gets_its_account_and_cloud(store, make_unit) -> None:
    account, cloud = "01HRIGACCOUNT0000000000001", "01HRIGCLOUD00000000000001"
    batch = store.generate_batch(PRODUCT, 1, name=f"rig-owned-{threading.get_ident()}", owner=(account, cloud))
    [device] = store.devices(batch=batch.name)
    unit = make_unit()
    result, _ = cycle(store, unit, device)
    assert result.passed, result.summary()
    written = json.loads(unit.fs.files["/etc/ioto/device.json5"])
    assert (written["account"], written["cloud"], written["id"]) == (account, cloud, device.uci)
    assert (last_registration(unit)["id"], store.events(device.uci)[-2].details["account"]) == (device.uci, account)
