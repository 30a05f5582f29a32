"""The ship-ready unit: after its registration, the rig writes the product's production files from the data
directory, removes what the agent's --reset removes, syncs and proves it all by readback (station/rig/finalize.py),
on simulated units and on a real shell, with the real `station serve` confirming the registrations."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from station.config import Config, check
from station.line.cycle import UnitCycle
from station.rig import settings as rig_settings
from station.rig.flash import Progress, flash
from station.rig.settings import RigSettings
from station.rig.slots import Rig
from station.simulator.agent import DATABASE, PROVISION
from station.simulator.fs import MemoryFS
from station.simulator.sh import Shell
from tests.rig import test_real_shell
from tests.rig.conftest import FAST, PASSWORD, PRODUCT, QUICK, kinds, last_registration

real_unit = test_real_shell.real_unit  # the fixture: /bin/sh on a pseudo-terminal
PRODUCTION = b'{\n    api: {builder: "https://api.admin.embedthis.com/api"},\n    services: {serialize: "none"},\n}\n'
FINALIZE = {"write": {"/etc/ioto/ioto.json5": "production/ioto.json5"},
            "remove": [PROVISION, "/var/lib/ioto/db"]}


def configured(data_dir: Path, port: str, finalize: dict[str, Any], **rig: Any) -> tuple[Config, RigSettings]:
    """station.json5's values as the station checks and loads them: one slot, the product's own finalize."""
    values = check({"rig": {"password": PASSWORD, "baud": FAST, "register_timeout": 20, **QUICK, **rig},
                    "slots": {"A": {"port": port}}, "products": {PRODUCT: {"finalize": finalize}}},
                   data_dir / "station.json5")
    config = Config(data_dir, values)
    return config, rig_settings.load(config)


def with_production_file(data_dir: Path) -> Path:
    (data_dir / "production").mkdir(exist_ok=True)
    source = data_dir / "production" / "ioto.json5"
    source.write_bytes(PRODUCTION)
    return source


def details(store, uci: str, kind: str) -> dict:
    return next(e.details for e in reversed(store.events(uci)) if e.kind == kind)


def test_a_finalized_unit_is_ship_ready(store, device, make_unit, tmp_path: Path) -> None:
    source = with_production_file(tmp_path)
    unit = make_unit()
    _, settings = configured(tmp_path, unit.path, FINALIZE)
    steps: list[Progress] = []
    result = flash(store, settings, settings.slot("A"), device.uci, progress=steps.append)
    assert result.passed, result.summary()
    assert result.reason.startswith(f"{device.display} flashed, verified, registered and finalized in ")
    assert last_registration(unit)["id"] == device.uci  # the agent wrote provision.json5, and its database at start
    assert unit.fs.files["/etc/ioto/ioto.json5"] == PRODUCTION
    assert not unit.fs.exists(PROVISION) and not unit.fs.exists(DATABASE) and not unit.fs.exists("/var/lib/ioto/db")
    data = store.product(PRODUCT).device_file(device.uci)
    assert unit.fs.files["/etc/ioto/device.json5"] == data
    assert not [path for path in unit.fs.files if path.endswith(".station-new") or path.startswith("/tmp/")]
    assert kinds(store, device.uci)[-3:] == ["registered", "registration-confirmed", "finalized"]
    finalized = details(store, device.uci, "finalized")
    assert finalized["written"] == [{"path": "/etc/ioto/ioto.json5", "source": str(source), "bytes": len(PRODUCTION),
                                     "sha256": hashlib.sha256(PRODUCTION).hexdigest()}]
    assert finalized["removed"] == [PROVISION, "/var/lib/ioto/db"] and finalized["slot"] == "A"
    assert finalized["device_sha256"] == hashlib.sha256(data).hexdigest()
    assert "embedthis" not in json.dumps(finalized)  # paths and SHA-256s, never contents
    assert [s.step for s in steps][-1] == "finalize" and "register" in [s.step for s in steps]


def test_a_path_that_cannot_be_removed_fails_the_unit_at_finalize(store, device, make_unit, tmp_path: Path) -> None:
    with_production_file(tmp_path)
    unit = make_unit(faults=["immutable"])
    config, settings = configured(tmp_path, unit.path, FINALIZE)
    slot = settings.slot("A")
    rig = Rig(settings, store.location)
    try:
        verdict = UnitCycle(config, rig, slot, actor=slot.actor).run(store, device.uci, label=False)
    finally:
        rig.close()
    assert not verdict.passed and verdict.step == "finalize"
    assert verdict.reason.startswith("removing /var/lib/ioto/db: `rm -rf /var/lib/ioto/db` exited with status 1: "
                                     "rm: cannot remove '/var/lib/ioto/db': Operation not permitted"), verdict.reason
    assert kinds(store, device.uci)[-3:] == ["registration-confirmed", "finalize-failed", "line-fail"]
    assert "line-pass" not in kinds(store, device.uci)
    failed = details(store, device.uci, "finalize-failed")
    assert failed["step"] == "finalize" and failed["reason"] == verdict.reason
    assert unit.fs.exists(DATABASE) and not unit.fs.exists(PROVISION)  # removed in order, up to the one that failed


def test_a_missing_station_file_is_refused_before_the_unit_is_touched(store, device, make_unit, tmp_path) -> None:
    unit = make_unit()
    _, settings = configured(tmp_path, unit.path, FINALIZE)
    result = flash(store, settings, settings.slot("A"), device.uci)
    assert not result.passed and result.step == "finalize"
    missing = tmp_path / "production" / "ioto.json5"
    assert result.reason == (f"cannot read {missing} (No such file or directory), the station file that "
                             f"products.{PRODUCT}.finalize in station.json5 writes to /etc/ioto/ioto.json5: put the "
                             f"file there or correct products.{PRODUCT}.finalize")
    assert kinds(store, device.uci) == ["issued", "finalize-failed"]  # no flash-started: nothing reached the unit
    assert unit.fs.files == {} and result.bytes_sent == 0
    assert store.device(device.uci).state == "issued"


def test_a_product_takes_its_own_finalize_else_the_stations(tmp_path: Path) -> None:
    other = "01H4R15D3478JD26YDYK408XE7"
    values = check({"finalize": {"remove": ["/var/lib/ioto/provision.json5"]},
                    "products": {other: {"finalize": FINALIZE}, PRODUCT: {"agent_ids": True}}}, tmp_path / "s.json5")
    settings = rig_settings.load(Config(tmp_path, values))
    own = settings.finalize(other)
    assert own is not None and own.key == f"products.{other}.finalize"
    assert own.write == (("/etc/ioto/ioto.json5", tmp_path / "production" / "ioto.json5"),)
    station = settings.finalize(PRODUCT)
    assert station is not None and station.key == "finalize" and station.remove == (PROVISION,)
    assert settings.finalize("01H4R15D3478JD26YDYK408XE8") == station
    assert rig_settings.load(Config(tmp_path, {})).finalize(PRODUCT) is None


def test_a_finalize_on_a_real_shell(store, device, real_unit, tmp_path: Path) -> None:
    with_production_file(tmp_path)
    database = real_unit.root / "var/lib/ioto/db"
    database.mkdir()
    (database / "ioto.db").write_bytes(b"SQLite format 3\x00")
    finalize = {"write": {real_unit.path("/etc/ioto/ioto.json5"): "production/ioto.json5"},
                "remove": [real_unit.path(PROVISION), str(database)]}
    # The unit's agent (curl) runs in the foreground and has ended with its registration: nothing to stop.
    _, settings = configured(tmp_path, real_unit.port, finalize, device_json_path=real_unit.path("/etc/ioto/device.json5"),
                             tmp_dir=real_unit.path("/tmp"), stop="true",
                             trigger=f"/bin/sh {real_unit.path('/usr/sbin/ioto-start')}")
    result = flash(store, settings, settings.slot("A"), device.uci)
    assert result.passed, result.summary()
    assert (real_unit.root / "etc/ioto/ioto.json5").read_bytes() == PRODUCTION
    assert not (real_unit.root / "var/lib/ioto/provision.json5").exists() and not database.exists()
    assert Path(settings.device_json_path).read_bytes() == store.product(PRODUCT).device_file(device.uci)
    assert list((real_unit.root / "tmp").iterdir()) == []
    assert kinds(store, device.uci)[-2:] == ["registration-confirmed", "finalized"]


def test_the_simulator_tests_and_removes_paths_as_a_real_shell_does(tmp_path: Path) -> None:
    lines = ["mkdir -p d/e&&echo x>d/e/f&&test -e d/e/f;echo $?", "test -d d;echo $?", "test -f d;echo $?",
             "test -f d/e/f;echo $?", "rm -rf d;echo $?", "test -e d;echo $?", "rm -rf d;echo $?", "test -e d/e/f;echo $?"]
    real = [subprocess.run(["/bin/sh", "-c", line], cwd=tmp_path, capture_output=True, text=True, timeout=10).stdout
            for line in lines]
    out: list[bytes] = []
    shell = Shell(MemoryFS(), out.append)
    simulated = []
    for line in lines:
        out.clear()
        shell.execute(line)
        simulated.append(b"".join(out).decode())
    assert simulated == real == ["0\n", "0\n", "1\n", "0\n", "0\n", "1\n", "0\n", "1\n"]
