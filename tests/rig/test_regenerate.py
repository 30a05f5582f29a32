"""`station credentials regenerate CODE --slot S` as a process against a simulated unit on a pseudo-terminal: a new
secret on the unit, its hash replacing the old one, the old secret no longer verifying."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from station.core.credentials import settings as credential_settings
from station.credentials.secret import verify
from station.rig.credentials import Issuing
from station.rig.flash import flash
from station.store import Store
from tests.rig.conftest import FAST, PASSWORD, PRODUCT, QUICK, kinds, slot_for

SECRET = "/etc/ioto/mqtt.secret"


def station_command(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from station.cli import main; main()", "--data-dir", str(data_dir),
                           *args], capture_output=True, text=True, timeout=120)


def test_regenerate_writes_a_new_secret_and_replaces_the_hash(make_unit, tmp_path) -> None:
    unit = make_unit(station=None)  # its agent reaches no station
    data_dir = tmp_path / "station"
    data_dir.mkdir()
    (data_dir / "station.json5").write_text(json.dumps({
        "secret_iterations": 9, "slots": {"A": {"port": unit.path, "baud": FAST, "password": PASSWORD, **QUICK}}}))
    with Store.open(data_dir / "station.db") as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
        store.set_product_credentials(PRODUCT, credential_settings({"kinds": ["secret"]}), actor="test")
        device = store.issue(PRODUCT)[0]
        settings, slot = slot_for(unit, register_timeout=0.5)
        flash(store, settings, slot, device.uci, issuing=Issuing(data_dir))
        first = unit.fs.files[SECRET].decode()
        assert verify(dict(store.secret_lines())[device.uci], first)

    done = station_command(data_dir, "credentials", "regenerate", device.display, "--slot", "A")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"PASS {device.display}: new secret written and verified "
                                                   f"(secret-regenerated)")
    assert "[A] credentials: the secret: chunk 1/1 written" in done.stdout.splitlines()
    second = unit.fs.files[SECRET].decode()
    assert second != first and unit.fs.mode(SECRET) == 0o600
    assert first not in done.stdout + done.stderr and second not in done.stdout + done.stderr
    with Store.open(data_dir / "station.db") as store:
        hashed = dict(store.secret_lines())[device.uci]
        assert hashed.startswith("$7$9$") and verify(hashed, second) and not verify(hashed, first)
        assert kinds(store, device.uci).count("secret-regenerated") == 1
        assert store.device(device.uci).state == "flashed"  # a new secret moves no state


def test_regenerate_refuses_a_product_without_secrets(make_unit, tmp_path) -> None:
    unit = make_unit(station=None)  # its agent reaches no station
    data_dir = tmp_path / "station"
    data_dir.mkdir()
    (data_dir / "station.json5").write_text(json.dumps({"slots": {"A": {"port": unit.path, "password": PASSWORD}}}))
    with Store.open(data_dir / "station.db") as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
        device = store.issue(PRODUCT)[0]
    done = station_command(data_dir, "credentials", "regenerate", device.uci, "--slot", "A")
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].endswith(f"product {PRODUCT} gives its units no secret; add it with "
                                                         f"`station product credentials {PRODUCT} --kinds secret` "
                                                         f"(`--kinds secret,x509` where they get certificates too)")


def test_regenerate_on_a_unit_that_goes_away(make_unit, tmp_path) -> None:
    unit = make_unit(station=None, faults=["disconnect"])
    data_dir = tmp_path / "station"
    data_dir.mkdir()
    (data_dir / "station.json5").write_text(json.dumps({
        "rig": {"chunk": 20}, "slots": {"A": {"port": unit.path, "baud": FAST, "password": PASSWORD, **QUICK}}}))
    with Store.open(data_dir / "station.db") as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
        store.set_product_credentials(PRODUCT, credential_settings({"kinds": ["secret"]}), actor="test")
        device = store.issue(PRODUCT)[0]
    done = station_command(data_dir, "credentials", "regenerate", device.uci, "--slot", "A")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].startswith(f"FAIL at credentials: writing the secret to {SECRET}: write: ")
    with Store.open(data_dir / "station.db") as store:
        assert dict(store.secret_lines()) == {}
        failed = [e.details for e in store.events(device.uci) if e.kind == "flash-failed"]
        assert failed and failed[0]["step"] == "credentials" and failed[0]["action"] == "regenerate"
