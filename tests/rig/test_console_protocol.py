"""The shell driver, the checked transfer and the flash cycle on a console that is not a serial port: the
in-memory test double of ``memory.py`` (the simulator's shell, no pseudo-terminal). Fast, and the same
assertions a serial unit must meet (test_console.py, test_cycle.py)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.rig.console import Console
from station.rig.errors import PortLost, StepFailed
from station.rig.flash import flash
from station.rig.settings import from_mapping
from station.rig.shell import Shell
from station.rig.transfer import Transfer
from station.store import IssueRequest, Store
from tests.rig.conftest import PASSWORD, PRODUCT, QUICK, kinds
from tests.rig.memory import DEVICE_JSON, MemoryUnit, registering

DATA = b'{"product":"01H4R15D3478JD26YDYK408XE6","id":"7QJ4X9TN2KVBM0RA"}\n'
SETTINGS = from_mapping({"password": PASSWORD, **QUICK}, {"M": {"port": "memory://M"}})
SLOT = SETTINGS.slot("M")


@pytest.fixture
def db(data_dir: Path) -> Iterator[Store]:
    """A real station database of its own (the rig's `store` fixture belongs to the served station)."""
    with Store.open(data_dir / "station.db") as opened:
        opened.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        yield opened


def logged_in(unit: MemoryUnit) -> Shell:
    console: Console = unit  # the double is a Console as far as the type checker and the driver can tell
    shell = Shell(console, SLOT)
    shell.login()
    return shell


def test_login_answers_user_and_password_and_sends_the_password_as_a_secret() -> None:
    unit = MemoryUnit(password=PASSWORD)
    logged_in(unit)
    assert unit.state == "shell" and unit.echo is False  # stty -echo ran in the shell
    secrets = [data for data, secret in unit.sent if secret]
    assert secrets == [PASSWORD.encode() + b"\n"]
    assert all(PASSWORD.encode() not in data for data, secret in unit.sent if not secret)


def test_a_refused_login_names_the_user_and_where_to_fix_it() -> None:
    unit = MemoryUnit(password="another")
    with pytest.raises(StepFailed, match=r"^login: the unit refused the login of user 'root': check the user and "
                                         r"password of slot M in station.json5$"):
        logged_in(unit)


def test_a_command_gives_its_output_and_its_status() -> None:
    shell = logged_in(MemoryUnit(password=PASSWORD))
    reply = shell.run("echo first; echo second; false", "test")
    assert (reply.lines, reply.status) == (["first", "second"], 1)
    assert shell.run("echo fine", "test").status == 0
    with pytest.raises(StepFailed, match=r"^test: `cat` failed with status 1: cat: /nope: "):
        shell.check("cat /nope", "test")


def test_a_checked_transfer_writes_the_file_and_reads_it_back() -> None:
    unit = MemoryUnit(password=PASSWORD)
    written = Transfer(logged_in(unit), chunk=16, retries=1, tmp_dir="/tmp").write(DEVICE_JSON, DATA)
    assert unit.fs.files[DEVICE_JSON] == DATA
    assert written.sha256 == hashlib.sha256(DATA).hexdigest() and written.size == len(DATA)
    assert written.chunks == -(-len(base64.b64encode(DATA)) // 16) and written.chunk_retries == 0
    assert not [name for name in unit.fs.files if name.startswith("/tmp/") or name.endswith(".station-new")]


def test_a_corrupted_chunk_is_written_again_and_a_persistent_one_fails_the_step() -> None:
    unit = MemoryUnit(password=PASSWORD, corrupt_chunks=1)
    written = Transfer(logged_in(unit), chunk=16, retries=1, tmp_dir="/tmp").write(DEVICE_JSON, DATA)
    assert written.chunk_retries == 1 and unit.fs.files[DEVICE_JSON] == DATA
    failing = MemoryUnit(password=PASSWORD, corrupt_chunks=2)
    with pytest.raises(StepFailed, match=r"^write: chunk 1/\d+ failed 2 times; last: checksum "):
        Transfer(logged_in(failing), chunk=16, retries=1, tmp_dir="/tmp").write(DEVICE_JSON, DATA)
    assert DEVICE_JSON not in failing.fs.files


def test_a_console_lost_in_the_middle_of_a_transfer_is_port_lost_at_write() -> None:
    unit = MemoryUnit(password=PASSWORD, lose_at_chunk=2)
    with pytest.raises(PortLost, match=r"^write: the memory console went away"):
        Transfer(logged_in(unit), chunk=16, retries=3, tmp_dir="/tmp").write(DEVICE_JSON, DATA)
    assert unit.chunks == 2 and DEVICE_JSON not in unit.fs.files


def test_the_flash_cycle_takes_its_console_from_connect(db: Store, data_dir: Path) -> None:
    device = db.issue(IssueRequest(PRODUCT, actor="test"))[0]
    unit = MemoryUnit(password=PASSWORD, on_boot=registering(data_dir / "station.db"))
    result = flash(db, SETTINGS, SLOT, device.uci, connect=unit.connect)
    assert result.passed, result.summary()
    assert unit.connections == 1 and unit.fs.files[DEVICE_JSON] == db.product(PRODUCT).device_file(device.uci)
    assert (result.bytes_sent, result.bytes_received) == (unit.bytes_sent, unit.bytes_received)
    assert kinds(db, device.uci) == ["issued", "flash-started", "flashed", "boot-triggered", "registered",
                                     "registration-confirmed"]
    assert db.device(device.uci).state == "registered"


def test_a_lost_console_fails_the_cycle_at_write_and_the_device_stays_issued(db: Store) -> None:
    device = db.issue(IssueRequest(PRODUCT, actor="test"))[0]
    unit = MemoryUnit(password=PASSWORD, lose_at_chunk=2)
    result = flash(db, SETTINGS, SLOT, device.uci, connect=unit.connect)
    assert not result.passed and result.step == "write"
    assert re.match(r"the memory console went away", result.reason), result.reason
    assert kinds(db, device.uci) == ["issued", "flash-started", "flash-failed"]
    assert db.device(device.uci).state == "issued"
    assert all(PASSWORD not in str(event.details) for event in db.events(device.uci))
