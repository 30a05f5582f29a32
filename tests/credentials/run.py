"""The ``station`` command run as a user runs it, for the credentials' tests: a real process, the CA passphrase
in its environment only when given, no terminal to prompt on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

STATION = shutil.which("station") or pytest.fail("the station command is not installed: pip install -e '.[test]'")
PASS = "a passphrase for the tests"


def station(data_dir: Path, *args: str, passphrase: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATION_")}
    if passphrase is not None:
        env["STATION_CA_PASSPHRASE"] = passphrase
    result = subprocess.run([STATION, "--data-dir", str(data_dir), *args], capture_output=True, text=True,
                            timeout=60, env=env, stdin=subprocess.DEVNULL)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def fails(data_dir: Path, *args: str, message: str, passphrase: str | None = None) -> None:
    result = station(data_dir, *args, passphrase=passphrase, ok=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and message in lines[0], result.stderr
