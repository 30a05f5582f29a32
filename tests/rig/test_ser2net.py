"""The rig's ports as labs share them: a real ser2net (Debian's, installed by .ci/setup-ser2net) sharing a
pseudo-terminal as RFC 2217 (``rfc2217://``) and as raw TCP (``socket://``), beside the device path itself.

ser2net runs in the foreground on 127.0.0.1 ports with a YAML configuration written into the test's folder,
and is stopped (by its id) at the end of each test. Without ser2net these tests fail, never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from station.rig.errors import PortLost, StepFailed, StepTimeout
from station.rig.flash import Progress, flash
from station.rig.port import Link, open_port
from station.rig.settings import from_mapping
from tests.rig.conftest import FAST, PASSWORD, PRODUCT, QUICK, rig_settings


def _ser2net_binary() -> str:
    found = shutil.which("ser2net") or next((p for p in ("/usr/sbin/ser2net", "/usr/bin/ser2net") if os.access(p, os.X_OK)),
                                            None)
    if found is None:
        pytest.fail("ser2net is not installed: run .ci/setup-ser2net (apt-get install ser2net) and test again")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Ser2net:
    """One ser2net process sharing ``device`` on two 127.0.0.1 ports: RFC 2217 and raw TCP."""

    def __init__(self, device: str, folder: Path) -> None:
        self.rfc2217_port, self.raw_port = _free_port(), _free_port()
        config = folder / "ser2net.yaml"
        config.write_text(
            "connection: &rfc2217\n"
            f"  accepter: telnet(rfc2217),tcp,127.0.0.1,{self.rfc2217_port}\n"
            f"  connector: serialdev,{device},115200n81,local\n"
            "  options:\n    mdns: false\n"
            "connection: &raw\n"
            f"  accepter: tcp,127.0.0.1,{self.raw_port}\n"
            f"  connector: serialdev,{device},115200n81,local\n"
            "  options:\n    mdns: false\n"
        )
        self.log = open(folder / "ser2net.log", "w+b")
        # -n: foreground; -u: no UUCP lock files; -P: its pid file in the test's folder, not /run.
        self.process = subprocess.Popen([_ser2net_binary(), "-n", "-u", "-c", str(config), "-P", str(folder / "ser2net.pid")],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_listening()

    @property
    def urls(self) -> dict[str, str]:
        return {"rfc2217": f"rfc2217://127.0.0.1:{self.rfc2217_port}", "socket": f"socket://127.0.0.1:{self.raw_port}"}

    def _wait_listening(self, timeout: float = 15.0) -> None:
        """Until both ports are listening (read from the system's table of sockets: connecting would open the
        device as a client would)."""
        wanted = {self.rfc2217_port, self.raw_port}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if wanted <= _listening_ports():
                return
            time.sleep(0.05)
        self.stop()
        self.log.seek(0)
        raise AssertionError(f"ser2net did not listen on {sorted(wanted)}: {self.log.read().decode('utf-8', 'replace')}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL also ends a stopped (SIGSTOP) ser2net
        self.process.wait(10)
        self.log.close()


def _listening_ports() -> set[int]:
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # TCP_LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Callable[[str], Ser2net]]:
    """Start ser2net on a device path; every one started is stopped after the test."""
    started: list[Ser2net] = []

    def start(device: str) -> Ser2net:
        folder = tmp_path / f"ser2net-{len(started)}"
        folder.mkdir()
        started.append(Ser2net(device, folder))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def _station_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from station.cli import main; main()", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "STATION_RIG_PASSWORD": PASSWORD})


def _rig_run(station: dict[str, Any], port: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`station rig run --slot A` as a process, with slot A on ``port`` in station.json5 for this run only (the
    test's quick limits)."""
    config = station["data_dir"] / "station.json5"
    config.write_text(json.dumps({"rig": {"password": PASSWORD, "baud": FAST, "register_timeout": 20, **QUICK},
                                  "slots": {"A": {"port": port}}}))
    try:
        return _station_cli(station["data_dir"], "rig", "run", "--slot", "A", "--product", PRODUCT, *args)
    finally:
        config.unlink()


@pytest.mark.parametrize("kind", ["rfc2217", "socket", "path"])
def test_rig_run_passes_on_every_kind_of_port(kind, station, store, make_unit, share) -> None:
    """`station rig run --slot A`, a real process, through ser2net's RFC 2217 and raw TCP ports and the device path."""
    unit = make_unit()
    port = unit.path if kind == "path" else share(unit.path).urls[kind]
    result = _rig_run(station, port, "--serial", f"SN-ser2net-{kind}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [device] = store.devices(product=PRODUCT, serial=f"SN-ser2net-{kind}")
    assert result.stdout.splitlines()[-1].startswith(f"PASS {device.display} flashed, verified and registered in ")
    assert device.state == "registered"
    assert json.loads(unit.fs.files["/etc/ioto/device.json5"])["id"] == device.uci


@pytest.mark.parametrize("kind", ["rfc2217", "socket"])
def test_a_serial_server_that_refuses_is_one_line_and_issues_nothing(kind, station, store) -> None:
    port = f"{kind}://127.0.0.1:{_free_port()}"  # nothing listens there
    before = sum(1 for _ in store.devices(product=PRODUCT))
    result = _rig_run(station, port)
    assert result.returncode == 1
    assert result.stdout == (f"FAIL at connect: serial port {port} of slot A refused the connection: is the serial "
                             f"server running, and is this its port?\n")
    assert "Traceback" not in result.stderr
    assert sum(1 for _ in store.devices(product=PRODUCT)) == before


def test_a_raw_tcp_port_named_as_rfc2217_says_so(share, tmp_path) -> None:
    master, slave = os.openpty()
    try:
        raw = share(os.ttyname(slave)).urls["socket"].replace("socket://", "rfc2217://")
        with pytest.raises(StepFailed, match="does not speak RFC 2217: for a raw TCP port use socket://"):
            open_port(from_mapping({}, {}).slot(port=raw))
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("kind", ["rfc2217", "socket"])
def test_a_serial_server_without_its_device_is_one_line_and_no_traceback(kind, station, store, share, tmp_path) -> None:
    """ser2net accepts, finds no device (an adapter unplugged) and hangs up: one line saying what to check."""
    port = share(str(tmp_path / "ttyUSB-unplugged")).urls[kind]
    before = sum(1 for _ in store.devices(product=PRODUCT))
    result = _rig_run(station, port)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr  # pyserial's reader thread ends quietly too
    if kind == "rfc2217":  # the telnet negotiation finds the closed connection at once
        assert result.stdout == (f"FAIL at connect: serial port {port} of slot A was closed by the serial server: check "
                                 f"that its serial device exists and that no other client holds the port\n")
        assert sum(1 for _ in store.devices(product=PRODUCT)) == before
    else:  # a raw TCP port opens; the first read finds it closed
        assert re.fullmatch(rf"(.*\n)*FAIL at login: the serial port {re.escape(port)} went away \(.+\): check the cable, "
                            r"the adapter or the serial server\n", result.stdout), result.stdout


@pytest.mark.parametrize("kind", ["rfc2217", "socket"])
def test_a_serial_server_that_goes_away_mid_cycle_fails_the_step(kind, store, device, make_unit, share) -> None:
    """ser2net killed while the file is being written: FAIL at that step, recorded, with what to check."""
    unit = make_unit()
    server = share(unit.path)
    settings = rig_settings({"A": server.urls[kind]})

    def kill_at_first_chunk(progress: Progress) -> None:
        if progress.step == "write" and server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)

    result = flash(store, settings, settings.slot("A"), device.uci, progress=kill_at_first_chunk)
    assert not result.passed
    assert result.step == "write"
    assert re.search(rf"the serial port {re.escape(server.urls[kind])} went away \(.+\): check the cable, the adapter "
                     r"or the serial server", result.reason), result.reason
    assert store.device(device.uci).state == "issued"
    failed = [e for e in store.events(device.uci) if e.kind == "flash-failed"]
    assert failed and failed[-1].details["step"] == "write"


@pytest.mark.parametrize("kind", ["rfc2217", "socket"])
def test_a_write_into_a_stuck_serial_server_ends_at_the_command_timeout(kind, share) -> None:
    """ser2net stopped (SIGSTOP): it reads nothing more, the socket's buffers fill, and the write gives up at the
    slot's command_timeout (RFC 2217 takes no write timeout in pyserial: its socket's timeout bounds it)."""
    master, slave = os.openpty()
    server = share(os.ttyname(slave))
    try:
        slot = from_mapping({"command_timeout": 1}, {}).slot(port=server.urls[kind])
        with Link(open_port(slot), "S") as link:
            server.process.send_signal(signal.SIGSTOP)
            with pytest.raises(StepTimeout, match=r"^write: the unit does not take input \(the port's output is stuck\)"):
                for _ in range(64):  # at most 256 MiB: far more than the kernel buffers between here and ser2net
                    link.write(b"x" * (4 << 20), "write")
    finally:
        server.stop()
        os.close(master)
        os.close(slave)


def test_a_port_lost_is_a_port_lost(share) -> None:
    """Reading from an RFC 2217 port whose server is gone: PortLost, never pyserial's own exception."""
    master, slave = os.openpty()
    server = share(os.ttyname(slave))
    try:
        with Link(open_port(from_mapping({}, {}).slot(port=server.urls["rfc2217"])), "S") as link:
            server.stop()
            with pytest.raises(PortLost, match=r"^login: the serial port rfc2217://"):
                link.expect(re.compile(rb"never"), "login", 10, "a prompt")
    finally:
        os.close(master)
        os.close(slave)
