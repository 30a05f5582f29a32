"""Several slots at once, as the operator page drives them: each with its own port, progress and result."""

from __future__ import annotations

import pytest

from station.core.errors import Conflict, NotFound
from station.rig import Rig
from station.rig.settings import from_mapping
from station.store import IssueRequest
from tests.rig.conftest import FAST, PASSWORD, PRODUCT, QUICK, kinds


def test_four_slots_at_once_with_one_hanging_unit(station, store, make_unit) -> None:
    units = {name: make_unit(faults=["hang"] if name == "D" else []) for name in "ABCD"}
    slots = {name: {"port": unit.path} for name, unit in units.items()}
    slots["D"]["command_timeout"] = 600  # the hanging unit would hold its slot for ten minutes
    settings = from_mapping({"password": PASSWORD, "baud": FAST, "register_timeout": 20, **QUICK}, slots)
    devices = {name: store.issue(IssueRequest(PRODUCT, actor="test"))[0] for name in units}
    rig = Rig(settings, station["db"])
    seen: list[tuple[str, str]] = []
    jobs = {name: rig.start(name, devices[name].uci, on_progress=lambda p: seen.append((p.slot, p.uci)))
            for name in units}
    try:
        for name in "ABC":
            result = jobs[name].wait(60)
            assert result is not None and result.passed, result
            assert units[name].fs.files["/etc/ioto/device.json5"] == store.product(PRODUCT).device_file(devices[name].uci)
            assert store.device(devices[name].uci).state == "registered"
        assert not jobs["D"].done  # the other three finished while D's unit hangs
        with pytest.raises(Conflict, match="slot D is busy"):
            rig.start("D", devices["A"].uci)
        jobs["D"].cancel()
        failed = jobs["D"].wait(30)
        assert failed is not None and not failed.passed and failed.step == "write" and failed.reason == "cancelled"
    finally:
        rig.close()
    assert store.device(devices["D"].uci).state == "issued"
    assert kinds(store, devices["D"].uci)[-1] == "flash-cancelled"
    assert all(uci == devices[slot].uci for slot, uci in seen)  # each slot reported only its own device
    assert {slot for slot, _ in seen} == set("ABCD")


def test_a_job_reports_its_steps_then_ends(station, store, make_unit) -> None:
    unit = make_unit()
    settings = from_mapping({"password": PASSWORD, "baud": FAST, **QUICK}, {"A": {"port": unit.path}})
    device = store.issue(IssueRequest(PRODUCT, actor="test"))[0]
    rig = Rig(settings, station["db"])
    job = rig.start("A", device.uci)
    steps = [progress.step for progress in job.progress(timeout=60)]
    assert job.done and job.result is not None and job.result.passed
    assert steps[0] == "connect" and steps[-1] == "register"
    assert rig.job("A") is job
    with pytest.raises(NotFound, match="no rig slot 'Z'"):
        rig.start("Z", device.uci)
