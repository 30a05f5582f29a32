"""Fixtures of the rig's tests: simulated units on real pseudo-terminals, a real store, and the real
``station serve`` on a free 127.0.0.1 port for the registrations."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from station.core.credentials import settings as credential_settings
from station.rig.settings import RigSettings, SlotSettings, from_mapping
from station.simulator import Unit
from station.store import Device, IssueRequest, Store

PRODUCT = "01H4R15D3478JD26YDYK408XE6"
PASSWORD = "s3cret-console"
FAST = 2_000_000  # baud where pacing is not the point: the tests stay quick
# Short limits so that a failing unit ends its test quickly; they bound waits, they are never measured.
QUICK = {"login_timeout": 20, "command_timeout": 5, "wake_interval": 0.3}


@pytest.fixture(scope="session")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A data directory with one product, and `station serve` running on it (a subprocess, stopped by its id)."""
    data_dir = tmp_path_factory.mktemp("station-data")
    with Store.open(data_dir / "station.db") as store:
        store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
    log = open(data_dir / "serve.stderr", "w+b")
    process = subprocess.Popen(
        [sys.executable, "-c", "from station.cli import main; main()", "--data-dir", str(data_dir), "serve", "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        url = _served_url(process, log)
        yield {"url": url, "data_dir": data_dir, "db": data_dir / "station.db"}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def _served_url(process: subprocess.Popen[bytes], log: Any, timeout: float = 30.0) -> str:
    """The URL from the service's `serving` log line, waiting (bounded) for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        for line in log.read().decode("utf-8", "replace").splitlines():
            if '"serving"' in line:
                return json.loads(line)["url"]
        if process.poll() is not None:
            break
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"station serve did not start: {log.read().decode('utf-8', 'replace')[-2000:]}")


@pytest.fixture
def store(station: dict[str, Any]) -> Iterator[Store]:
    with Store.open(station["db"]) as opened:
        yield opened


@pytest.fixture
def device(store: Store) -> Device:
    """A freshly issued device of the product."""
    return store.issue(IssueRequest(PRODUCT, actor="test"))[0]


@pytest.fixture
def make_unit(station: dict[str, Any]) -> Iterator[Callable[..., Unit]]:
    """Start simulated units (in threads of this process); all are stopped after the test."""
    units: list[Unit] = []

    def make(**options: Any) -> Unit:
        options = {"station": station["url"], "baud": FAST, "password": PASSWORD, **options}
        unit = Unit(**options)
        unit.start()
        units.append(unit)
        return unit

    yield make
    for unit in units:
        unit.stop()


def rig_settings(ports: dict[str, str], **rig: Any) -> RigSettings:
    """Settings for slots on these ports, with the test password and quick limits."""
    shared = {"password": PASSWORD, "baud": FAST, "register_timeout": 20, **QUICK, **rig}
    return from_mapping(shared, {name: {"port": port} for name, port in ports.items()})


def slot_for(unit: Unit, **overrides: Any) -> tuple[RigSettings, SlotSettings]:
    settings = rig_settings({"A": unit.path}, **overrides)
    return settings, settings.slot("A")


def kinds(store: Store, uci: str) -> list[str]:
    """The kinds of a device's events, oldest first."""
    return [event.kind for event in store.events(uci) if event.uci == uci]


@pytest.fixture
def no_password_in(station: dict[str, Any]) -> Callable[[Path], None]:
    """Check that the console password reached no file (the database, the service's log)."""

    def check(path: Path) -> None:
        for file in [path] if path.is_file() else path.rglob("*"):
            if file.is_file():
                assert PASSWORD.encode() not in file.read_bytes(), f"the console password is in {file}"

    return check



def product_with(store: Store, **credentials: Any) -> str:
    """A new product whose units get these credentials (the session's product stays without any)."""
    product_id = "01H4R15D3478JD26YDY" + secrets.token_hex(4).upper()
    store.add_product(product_id, "Blank", "Blank-01", description="Blank slate app")
    store.set_product_credentials(product_id, credential_settings(credentials), actor="test")
    return product_id


def openssl_verifies(chain: Path, certificate: Path) -> None:
    """The real ``openssl verify`` accepts the certificate file against the CA chain file."""
    checked = subprocess.run(["openssl", "verify", "-CAfile", chain, certificate], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0 and checked.stdout.strip().endswith(": OK"), checked.stdout + checked.stderr


def last_registration(unit: Any) -> dict[str, Any]:
    """The unit's last registration reply. The station records the registration before its answer reaches the unit,
    so the cycle may end (seeing the record) before the unit has kept the reply: it is waited for, bounded."""
    deadline = time.monotonic() + 10
    while not unit.registrations and time.monotonic() < deadline:
        time.sleep(0.01)
    return unit.registrations[-1]
