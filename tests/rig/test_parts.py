"""The rig's small parts on their own: the cksum it checks chunks with, its settings, opening ports."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from station import config
from station.config import Config
from station.core.errors import Invalid, NotFound
from station.rig import settings as rig_settings
from station.rig.checksum import cksum
from station.rig.credentials import Issuing
from station.rig.errors import PortLost, StepFailed, StepTimeout
from station.rig.port import Link, open_port
from station.rig.settings import from_mapping
from station.rig.slots import Rig


@pytest.mark.parametrize("data", [b"", b"a", b"hello", bytes(range(256)) * 3, os.urandom(1000)])
def test_cksum_agrees_with_the_system_cksum(data: bytes) -> None:
    out = subprocess.run(["cksum"], input=data, capture_output=True, check=True).stdout.split()
    assert (cksum(data), len(data)) == (int(out[0]), int(out[1]))


def test_settings_from_station_json5() -> None:
    config = Config(data_dir=None, values={  # type: ignore[arg-type]
        "rig": {"device_json_path": "/etc/ioto/device.json5", "trigger": "reboot", "register_timeout": 30,
                "chunk": 78, "retries": 2, "user": "admin", "baud": 57600},
        "slots": {"A": {"port": "/dev/ttyUSB0", "baud": 115200, "password": "pw"}, "B": {"port": "COM3"}},
    })
    settings = rig_settings.load(config)
    assert (settings.trigger, settings.chunk, settings.retries, settings.register_timeout) == ("reboot", 78, 2, 30)
    a, b = settings.slot("A"), settings.slot("B")
    assert (a.port, a.baud, a.user, a.password, a.actor) == ("/dev/ttyUSB0", 115200, "admin", "pw", "rig:A")
    assert (b.port, b.baud, b.password) == ("COM3", 57600, None)
    assert "pw" not in repr(a) and "pw" not in repr(settings)
    assert settings.slot(port="COM3").name == "B"
    assert settings.slot("A", port="socket://127.0.0.1:4000").port == "socket://127.0.0.1:4000"
    other = settings.slot(port="/dev/ttyACM1", baud=9600)
    assert (other.name, other.port, other.baud, other.user) == ("cli", "/dev/ttyACM1", 9600, "admin")


@pytest.mark.parametrize("rig, slots, words", [
    ({"chunck": 76}, {}, "rig.chunck is not a rig setting"),
    ({"chunk": 2}, {}, "chunk must be a whole number from 4"),
    ({"retries": -1}, {}, "retries"),
    ({"device_json_path": "etc/ioto/device.json5"}, {}, "absolute path"),
    ({}, {"A": {"baud": 9600}}, "slot A needs a port"),
    ({}, {"A": {"port": "/dev/x", "parity": "Q"}}, "parity"),
    ({}, {"A": {"port": "/dev/x", "prompt": "[#"}}, "not a regular expression"),
    ({}, {"A": {"port": "/dev/x", "pasword": "x"}}, "pasword is not a slot setting"),
    ({"port": "/dev/x"}, {}, "rig.port is not a rig setting"),
    (["chunk"], {}, "rig and slots must be objects"),
    ({}, {"A": {"port": "/dev/x"}, "B": {"port": "/dev/x"}}, "slots A and B both name port /dev/x"),
])
def test_bad_settings_say_what_to_fix(rig: dict, slots: dict, words: str) -> None:
    with pytest.raises(Invalid, match=words):
        from_mapping(rig, slots)


def test_unknown_slot_names_the_known_ones() -> None:
    with pytest.raises(NotFound, match=r"no rig slot 'C'.*A"):
        from_mapping({}, {"A": {"port": "/dev/x"}}).slot("C")


def test_a_port_that_does_not_exist_is_a_clear_error() -> None:
    slot = from_mapping({}, {}).slot(port="/dev/ttyUSB-station-missing")
    with pytest.raises(StepFailed) as caught:
        open_port(slot)
    assert caught.value.step == "connect"
    assert "serial port /dev/ttyUSB-station-missing of slot cli does not exist" in str(caught.value)


def test_a_socket_nobody_listens_on_is_a_clear_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    slot = from_mapping({}, {}).slot(port=f"socket://127.0.0.1:{port}")
    with pytest.raises(StepFailed, match="refused the connection"):
        open_port(slot)


def test_a_port_another_slot_holds_is_a_clear_error() -> None:
    master, slave = os.openpty()
    try:
        slot = from_mapping({}, {}).slot(port=os.ttyname(slave))
        with Link(open_port(slot), "A"), pytest.raises(StepFailed, match=r"^connect: .* is in use by another program or slot$"):
            open_port(slot)
    finally:
        os.close(master)
        os.close(slave)


def test_loop_url_and_expect() -> None:
    slot = from_mapping({}, {}).slot(port="loop://", baud=9600)
    with Link(open_port(slot), "L") as link:
        link.write(b"boot noise\r\nREADY 42\r\n", "test")
        match = link.expect(re.compile(rb"READY (\d+)"), "test", 2, "ready")
        assert match.group(1) == b"42"
        assert (link.bytes_sent, link.bytes_received) == (22, 22)
        with pytest.raises(StepTimeout, match=r"^wait: the unit did not answer within 0.2 s \(waiting for nothing\)"):
            link.expect(re.compile(rb"never"), "wait", 0.2, "nothing")


def test_socket_url_talks_to_a_tcp_serial_server() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(100).upper())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        slot = from_mapping({}, {}).slot(port=f"socket://127.0.0.1:{server.getsockname()[1]}")
        with Link(open_port(slot), "S") as link:
            link.write(b"hello\n", "test")
            assert link.expect(re.compile(rb"HELLO\n"), "test", 5, "the echo")
        thread.join(5)


def test_a_port_that_vanishes_mid_read_names_the_step() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    slot = from_mapping({}, {}).slot(port=path)
    with Link(open_port(slot), "V") as link:
        os.close(master)
        with pytest.raises(PortLost, match=rf"^write: the serial port {path} went away"):
            link.expect(re.compile(rb"x"), "write", 5, "anything")


def test_the_sample_configuration_loads(tmp_path) -> None:
    sample = Path(__file__).parents[2] / "fixtures" / "rig-station.json5"
    (tmp_path / "station.json5").write_text(sample.read_text())
    settings = rig_settings.load(config.load(tmp_path))
    assert sorted(settings.slots) == ["A", "B", "C", "D"]
    assert settings.slot("D").baud == 57600 and settings.slot("A").password == "change-me"


def test_the_rig_of_a_station_takes_its_configuration(tmp_path: Path) -> None:
    """The line and `station rig` build their rig from station.json5: its database, lock wait, CA and the
    iterations of a secret's hash (secret_iterations) all reach the cycles."""
    (tmp_path / "station.json5").write_text("{secret_iterations: 9, database_timeout: 2}")
    rig = Rig.of(config.load(tmp_path), from_mapping({}, {}))
    assert (rig.database, rig.timeout, rig.issuing) == (tmp_path / "station.db", 2.0, Issuing(tmp_path, 9))
