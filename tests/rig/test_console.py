"""The console driver and the file transfer against simulated units on real pseudo-terminals."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from station.rig.errors import PortLost, StepFailed, StepTimeout
from station.rig.port import Link, open_port
from station.rig.shell import Shell
from station.rig.transfer import Transfer, Written
from tests.rig.conftest import PASSWORD, slot_for

DATA = (b'{\n    "product": "01H4R15D3478JD26YDYK408XE6",\n    "name": "Blank",\n    "description": "Blank slate app",\n'
        b'    "model": "Blank-01",\n    "id": "7QJ4X9TN2KVBM0RA"\n}\n')
PATH = "/etc/ioto/device.json5"


def write(unit, data: bytes = DATA, **rig) -> tuple[Written, Link]:
    settings, slot = slot_for(unit, **rig)
    with Link(open_port(slot), slot.name) as link:
        shell = Shell(link, slot)
        shell.login()
        written = Transfer(shell, chunk=settings.chunk, retries=settings.retries, tmp_dir=settings.tmp_dir).write(PATH, data)
    return written, link


def only_the_file(unit, data: bytes = DATA) -> bool:
    """The destination holds exactly ``data`` and no temporary file or chunk is left behind."""
    return unit.fs.files == {PATH: data}


def test_login_then_commands_with_output_and_status(make_unit) -> None:
    unit = make_unit()
    settings, slot = slot_for(unit)
    with Link(open_port(slot), "A") as link:
        shell = Shell(link, slot)
        shell.login()
        assert unit.state == "shell" and unit._echo is False  # logged in with the password, echo off
        reply = shell.run("echo one; echo two; false", "test")
        assert (reply.lines, reply.status) == (["one", "two"], 1)
        assert shell.run("echo -n no-newline", "test").output == "no-newline"
        with pytest.raises(StepFailed, match=r"^test: `cat` failed with status 1: cat: /x: No such file or directory$"):
            shell.check("cat /x", "test")


def test_a_clean_transfer_writes_exactly_the_file(make_unit) -> None:
    unit = make_unit()
    written, _ = write(unit, chunk=40)
    assert (written.size, written.chunks, written.chunk_retries, written.readback_retries) == (len(DATA), 6, 0, 0)
    assert only_the_file(unit)


def test_a_binary_file_of_several_kilobytes(make_unit) -> None:
    unit = make_unit()
    data = os.urandom(5000)
    written, _ = write(unit, data, chunk=1000)
    assert written.chunks == 7 and only_the_file(unit, data)


def test_a_wrong_password_is_refused_clearly(make_unit) -> None:
    unit = make_unit()
    with pytest.raises(StepFailed, match=r"^login: the unit refused the login of user 'root'"):
        write(unit, password="wrong")
    assert PATH not in unit.fs.files


def test_a_password_prompt_without_a_configured_password(make_unit) -> None:
    unit = make_unit()
    settings, slot = slot_for(unit)
    with Link(open_port(slot), "A") as link, pytest.raises(StepFailed, match="asks for a password but slot A has none"):
        Shell(link, replace(slot, password=None)).login()


def test_a_unit_without_password_or_stty_keeps_echo_and_still_works(make_unit) -> None:
    unit = make_unit(password=None, faults=["no-stty"])
    written, link = write(unit, password=None)
    assert only_the_file(unit) and unit._echo is True
    assert link.bytes_received > link.bytes_sent  # every line came back as echo, around the markers


def test_boot_noise_and_kernel_messages_around_the_output(make_unit) -> None:
    unit = make_unit(faults=["garbled-boot", "kernel-log=200"])
    written, _ = write(unit)
    assert only_the_file(unit)
    assert unit.faults.seconds("kernel-log") < 200  # kernel lines did land between the lines of output


@pytest.mark.parametrize("fault", ["flip", "drop"])
def test_a_damaged_chunk_is_written_again(make_unit, fault: str) -> None:
    unit = make_unit(faults=[fault])
    written, _ = write(unit)
    assert written.chunk_retries == 1 and only_the_file(unit)


def test_a_damaged_readback_is_read_again(make_unit) -> None:
    unit = make_unit(faults=["flip-readback"])
    written, _ = write(unit)
    assert (written.chunk_retries, written.readback_retries) == (0, 1) and only_the_file(unit)


def test_a_chunk_that_keeps_failing_fails_the_write_and_installs_nothing(make_unit) -> None:
    unit = make_unit(faults=["flip=3"])
    with pytest.raises(StepFailed, match=r"^write: chunk 2/3 failed 3 times; last: "):
        write(unit, retries=2)
    assert PATH not in unit.fs.files


def test_a_readback_that_keeps_disagreeing_installs_nothing(make_unit) -> None:
    unit = make_unit(faults=["flip-readback=4"])
    with pytest.raises(StepFailed, match=r"^verify: readback of /etc/ioto/device.json5.station-new failed 4 times; "
                                         r"last: SHA-256 [0-9a-f]{64} on the unit, [0-9a-f]{64} sent$"):
        write(unit)
    assert PATH not in unit.fs.files


def test_a_port_that_vanishes_mid_transfer(make_unit) -> None:
    unit = make_unit(faults=["disconnect"])
    with pytest.raises(PortLost, match=rf"^write: the serial port {unit.path} went away"):
        write(unit)
    assert PATH not in unit.fs.files


def test_a_unit_that_stops_answering_mid_transfer(make_unit) -> None:
    unit = make_unit(faults=["hang"])
    with pytest.raises(StepTimeout, match=r"^write: the unit stopped answering \(the unit did not answer within 2 s"):
        write(unit, command_timeout=2)
    assert PATH not in unit.fs.files


def test_a_silent_port_times_out_at_login(make_unit) -> None:
    master, slave = os.openpty()  # a port with nothing behind it
    try:
        settings, slot = slot_for(type("NoUnit", (), {"path": os.ttyname(slave)})(), login_timeout=1)
        with Link(open_port(slot), "A") as link, pytest.raises(StepTimeout, match=r"^login: no prompt seen"):
            Shell(link, slot).login()
    finally:
        os.close(master)
        os.close(slave)


def test_the_password_is_never_logged(make_unit, caplog) -> None:
    caplog.set_level("DEBUG", logger="station.rig")
    write(make_unit())
    assert caplog.records and PASSWORD not in caplog.text
    assert all(PASSWORD not in str(vars(record)) for record in caplog.records)


def test_a_shell_left_inside_an_open_quote_is_recovered(make_unit) -> None:
    unit = make_unit(password=None)
    settings, slot = slot_for(unit, password=None)
    with Link(open_port(slot), "A") as link:
        Shell(link, slot).login()
        link.write(b"echo 'a cycle cut off here\n", "test")  # the shell now waits for the closing quote
    write(unit, password=None)
    assert only_the_file(unit)
