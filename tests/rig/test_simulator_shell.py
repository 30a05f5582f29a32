"""The simulated unit's shell and file system: the command forms the rig sends behave as on a real sh."""

from __future__ import annotations

import base64
import hashlib

import pytest

from station.rig.checksum import cksum
from station.simulator.fs import MemoryFS
from station.simulator.sh import Incomplete, Shell


@pytest.fixture
def sh() -> tuple[Shell, list[bytes]]:
    out: list[bytes] = []
    return Shell(MemoryFS(), out.append), out


def run(shell: tuple[Shell, list[bytes]], line: str) -> str:
    shell[1].clear()
    shell[0].execute(line)
    return b"".join(shell[1]).decode()


def test_markers_status_and_lists(sh) -> None:
    assert run(sh, "echo ab''cd;false;echo ab''cd $?") == "abcd\nabcd 1\n"
    assert run(sh, "nothing-here; echo $?") == "sh: nothing-here: not found\n127\n"
    assert run(sh, "false && echo no || echo yes $?") == "yes 1\n"
    assert run(sh, 'echo "a $? b" \'$?\' c\\ d "" e') == "a 0 b $? c d  e\n"


def test_the_transfer_commands(sh) -> None:
    data = b'{"id": "7QJ4X9TN2KVBM0RA"}\n'
    encoded = base64.b64encode(data).decode()
    assert run(sh, "rm -rf /tmp/p&&mkdir -p /tmp/p") == ""
    assert run(sh, f"echo {encoded[:20]}|base64 -d>/tmp/p/0001&&cksum</tmp/p/0001") == \
        f"{cksum(base64.b64decode(encoded[:20]))} 15\n"
    run(sh, f"echo {encoded[20:]}|base64 -d>/tmp/p/0002")
    assert run(sh, "cat /tmp/p/*>/etc/ioto/device.json5.new&&rm -rf /tmp/p") == ""
    assert run(sh, "mv -f /etc/ioto/device.json5.new /etc/ioto/device.json5&&sync&&sha256sum /etc/ioto/device.json5") == \
        f"{hashlib.sha256(data).hexdigest()}  /etc/ioto/device.json5\n"
    assert sh[0].fs.files == {"/etc/ioto/device.json5": data}


def test_errors_look_like_coreutils(sh) -> None:
    assert run(sh, "echo %%%|base64 -d; echo $?") == "base64: invalid input\n1\n"
    assert run(sh, "cat /etc/nothing; echo $?") == "cat: /etc/nothing: No such file or directory\n1\n"
    assert run(sh, "echo x>/nowhere/file; echo $?") == "sh: can't create /nowhere/file: No such file or directory\n1\n"
    assert run(sh, "sha256sum </etc/nothing; echo $?").endswith("No such file or directory\n1\n")
    assert run(sh, "echo a | ; echo never") == "sh: syntax error: unexpected ';'\n"  # nothing of the line runs
    assert sh[0].status == 2


def test_an_open_quote_asks_for_another_line(sh) -> None:
    with pytest.raises(Incomplete):
        sh[0].execute("echo 'half")
    assert run(sh, "echo 'half\nline'") == "half\nline\n"
