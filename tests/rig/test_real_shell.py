"""The rig against a real POSIX shell: Debian's /bin/sh (dash) on a pseudo-terminal, with the system's own
base64, sha256sum, cksum, mv, sync (and openssl for the credentials), in a temporary folder that stands for the
unit's root. The shell's terminal is bridged to a second pseudo-terminal, whose name the rig opens through
pyserial like any serial port. The unit's agent is a shell script that registers with the real `station serve`
(curl), reading the device file the rig wrote. One flash writes the device file and both kinds of credential, the
key and CSR made by the real openssl.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import select
import shutil
import subprocess
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from station.credentials.authority import Authority
from station.credentials.secret import verify
from station.rig.credentials import Issuing
from station.rig.flash import flash
from tests.rig.conftest import PRODUCT, kinds, openssl_verifies, product_with, rig_settings

TOOLS = ("sh", "base64", "sha256sum", "cksum", "mv", "sync", "stty", "sed", "openssl", "curl")


@dataclass
class RealUnit:
    """A real shell on a pseudo-terminal: ``port`` is what the rig opens; ``root`` stands for the unit's /."""

    port: str
    root: Path
    process: subprocess.Popen[bytes]

    def path(self, name: str) -> str:
        """A path of the unit as the rig names it (inside the root folder)."""
        return str(self.root / name.lstrip("/"))


def _bridge(a: int, b: int, stop: threading.Event) -> None:
    """Copy bytes both ways between two pseudo-terminal masters until stopped or one side closes."""
    while not stop.is_set():
        ready, _, _ = select.select([a, b], [], [], 0.05)
        for source in ready:
            try:
                data = os.read(source, 4096)
            except OSError:
                return
            if not data:
                return
            target = b if source == a else a
            while data:
                data = data[os.write(target, data):]


def _controlling_terminal() -> None:
    """In the shell's child process: a session of its own, with its terminal as the controlling one (for ^C)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.fixture
def real_unit(tmp_path: Path, station: dict[str, Any]) -> Iterator[RealUnit]:
    """/bin/sh on a pty in a fresh root folder; stopped (by its process id) after the test."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"install {' '.join(missing)} (.ci/setup-shell-tools)"
    root = tmp_path / "unit"
    for folder in ("tmp", "etc/ioto", "var/lib/ioto", "usr/sbin"):
        (root / folder).mkdir(parents=True)
    agent = root / "usr/sbin/ioto-start"
    device = root / "etc/ioto/device.json5"
    agent.write_text(  # the unit's agent: registers with the station, the body being the device file
        "#!/bin/sh\n"
        f"product=$(sed -n 's/^ *\"product\": \"\\([^\"]*\\)\".*/\\1/p' {device})\n"
        f"exec curl -sf -m 10 -H \"Authorization: bearer $product\" -H 'Content-Type: application/json' "
        f"--data-binary @{device} -o {root}/var/lib/ioto/provision.json5 {station['url']}/api/device/register\n")
    agent.chmod(0o755)
    shell_master, shell_side = pty.openpty()
    rig_master, rig_side = pty.openpty()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "PS1": "unit# ", "TERM": "dumb"}
    process = subprocess.Popen(["/bin/sh", "-i"], stdin=shell_side, stdout=shell_side, stderr=shell_side, cwd=root,
                               env=env, preexec_fn=_controlling_terminal, close_fds=True)
    os.close(shell_side)
    stop = threading.Event()
    bridge = threading.Thread(target=_bridge, args=(shell_master, rig_master, stop), daemon=True)
    bridge.start()
    try:
        yield RealUnit(os.ttyname(rig_side), root, process)
    finally:
        stop.set()
        bridge.join(5)
        process.kill()
        process.wait(5)
        for fd in (shell_master, rig_master, rig_side):
            os.close(fd)


def real_settings(unit: RealUnit, **rig: Any):
    return rig_settings({"A": unit.port}, device_json_path=unit.path("/etc/ioto/device.json5"),
                        tmp_dir=unit.path("/tmp"), trigger=f"/bin/sh {unit.path('/usr/sbin/ioto-start')}", **rig)


def test_a_flash_on_a_real_shell(store, device, real_unit: RealUnit) -> None:
    settings = real_settings(real_unit)
    result = flash(store, settings, settings.slot("A"), device.uci)
    assert result.passed, result.summary()
    data = store.product(PRODUCT).device_file(device.uci)
    written = Path(settings.device_json_path)
    assert written.read_bytes() == data
    assert list((real_unit.root / "tmp").iterdir()) == []  # the chunks' folder is gone
    assert not Path(f"{written}.station-new").exists()
    assert json.loads((real_unit.root / "var/lib/ioto/provision.json5").read_text())["id"] == device.uci
    assert kinds(store, device.uci) == ["issued", "flash-started", "flashed", "boot-triggered", "registered",
                                        "registration-confirmed"]
    flashed = next(e.details for e in store.events(device.uci) if e.kind == "flashed")
    assert flashed["sha256"] == hashlib.sha256(data).hexdigest() and flashed["chunk_retries"] == 0


def test_a_flash_with_both_credentials_on_a_real_shell(store, real_unit: RealUnit, tmp_path: Path) -> None:
    Authority.init(tmp_path / "ca-home")
    paths = {f"{name}_path": real_unit.path(f"/etc/ioto/device.{name}") for name in ("secret", "key", "csr", "cert")}
    product = product_with(store, kinds=["secret", "x509"], chain_path=real_unit.path("/etc/ioto/ca.crt"), **paths)
    uci = store.issue(product)[0].uci
    settings = real_settings(real_unit)
    result = flash(store, settings, settings.slot("A"), uci, issuing=Issuing(tmp_path / "ca-home"))
    assert result.passed, result.summary()
    key, cert, chain, secret = (Path(paths["key_path"]), Path(paths["cert_path"]), real_unit.root / "etc/ioto/ca.crt",
                                Path(paths["secret_path"]))
    assert key.stat().st_mode & 0o777 == 0o600 and secret.stat().st_mode & 0o777 == 0o600
    assert b"BEGIN PRIVATE KEY" in key.read_bytes()  # made there by the real openssl, never sent
    openssl_verifies(chain, cert)
    public = [subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout for command in (
        ["openssl", "pkey", "-in", key, "-pubout"], ["openssl", "x509", "-in", cert, "-noout", "-pubkey"])]
    assert public[0] == public[1] and "BEGIN PUBLIC KEY" in public[0]
    assert verify(dict(store.secret_lines())[uci], secret.read_text())
    assert store.device(uci).state == "registered"
    assert kinds(store, uci)[:5] == ["issued", "flash-started", "secret-made", "certificate-issued", "flashed"]
    assert [p.name for p in (real_unit.root / "etc/ioto").iterdir() if p.name.endswith(".station-new")] == []
