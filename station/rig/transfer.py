"""Writing a file onto a unit through its shell, and proving that it arrived byte for byte.

The file goes as base64, one short line per chunk, each chunk into a file of its own in a fresh folder and
checked there with ``cksum`` (as esptool checks each block): a chunk that fails is simply written again,
which is safe because it overwrites only itself. The chunks are joined into a temporary file next to the
destination, whose SHA-256 is read back and compared with what was sent; only then is it renamed into place
(atomic on one file system), synced, and read back once more. A readback that disagrees is read again.

A file with a ``mode`` (a credential: 0600) has its chunks' folder closed to others first, and its temporary
file is made empty and given the mode before a byte of it is written; the readbacks then check the mode too
(``stat -c %a``). A ``secret`` file (a device secret, a station-made key) is never logged: its chunk commands
go out as secret writes, and no report, log line or failure names its content, its SHA-256 or what the unit
printed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import posixpath
import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .checksum import cksum
from .errors import Cancelled, PortLost, StepFailed
from .shell import Reply, Shell

log = logging.getLogger("station.rig")

# step, message, chunks done, chunks in all
Report = Callable[[str, str, "int | None", "int | None"], None]

_CKSUM = re.compile(r"^\s*(\d+)\s+(\d+)\s*$", re.M)
_SHA256 = re.compile(r"^([0-9a-f]{64})\b", re.M)
_MODE = re.compile(r"^([0-7]{3,4})$", re.M)
# What a unit may say about a failed write of a secret: only these words of its message are repeated, never
# the rest (a garbled chunk line can come back in an error, "sh: 1: <base64>: not found").
_SAFE_ERRORS = ("No space left on device", "Read-only file system", "Permission denied", "No such file or directory",
                "Disk quota exceeded", "Input/output error")


@dataclass(frozen=True)
class Written:
    """A file that is in place on the unit and whose SHA-256 readback matched."""

    path: str
    size: int
    sha256: str
    chunks: int
    chunk_retries: int
    readback_retries: int
    mode: int | None = None


def _said(reply: Reply, secret: bool) -> str:
    """The unit's last line of a failed command; of a secret's command only the known error it names."""
    last = reply.lines[-1] if reply.lines else ""
    if secret:
        last = next((words for words in _SAFE_ERRORS if words in reply.output), "")
    return last or "no message"


def _quiet(step: str, message: str, done: int | None = None, total: int | None = None) -> None:
    """The report of a caller that does not watch progress."""


class Transfer:
    """One file written to one unit; ``retries`` is how often a failed chunk or readback is tried again."""

    def __init__(self, shell: Shell, *, chunk: int, retries: int, tmp_dir: str, report: Report | None = None) -> None:
        self.shell = shell
        self.line = max(4, chunk - chunk % 4)  # base64 characters per line; whole groups of 4 decode alone
        self.retries = retries
        self.tmp_dir = tmp_dir
        self.report = report or _quiet
        self.chunk_retries = 0
        self.readback_retries = 0

    def _tries(self, step: str, what: str, attempt: Callable[[], str | None]) -> None:
        """Run ``attempt`` until it returns None (success), at most ``1 + retries`` times; else fail the step."""
        problem: str | None = ""
        for number in range(self.retries + 1):
            try:
                problem = attempt()
            except (PortLost, Cancelled):
                raise
            except StepFailed as exc:
                problem = exc.reason
                self.shell.recover(step)
            if problem is None:
                return
            if number < self.retries:
                if step == "write":
                    self.chunk_retries += 1
                else:
                    self.readback_retries += 1
                log.info("retry", extra={"slot": self.shell.slot.name, "step": step, "what": what, "problem": problem})
                self.report(step, f"{what}: {problem}; trying again", None, None)
        raise StepFailed(step, f"{what} failed {self.retries + 1} times; last: {problem}")

    def _chunk(self, name: str, encoded: str, raw: bytes, secret: bool) -> str | None:
        reply = self.shell.run(f"echo {encoded}|base64 -d>{name}&&cksum<{name}", "write", secret=secret)
        if reply.status != 0:
            return f"the unit answered status {reply.status} ({_said(reply, secret)})"
        found = _CKSUM.search(reply.output)
        if found is None:
            return "no checksum in the unit's answer"
        want = (cksum(raw), len(raw))
        got = (int(found.group(1)), int(found.group(2)))
        return None if got == want else f"checksum {got[0]}/{got[1]} bytes, expected {want[0]}/{want[1]}"

    def _readback(self, step: str, path: str, want: str, mode: int | None, secret: bool) -> str | None:
        quoted = shlex.quote(path)
        reply = self.shell.run(f"sha256sum {quoted}" + (f"&&stat -c %a {quoted}" if mode is not None else ""), step)
        found = _SHA256.search(reply.output)
        if reply.status != 0 or found is None:
            return f"no SHA-256 from the unit (status {reply.status}: {_said(reply, secret)})"
        if found.group(1) != want:
            return "the SHA-256 on the unit differs from what was sent" if secret else \
                f"SHA-256 {found.group(1)} on the unit, {want} sent"
        if mode is not None:
            modes = _MODE.findall(reply.output)
            if not modes or int(modes[-1], 8) != mode:
                return f"{path} has mode {modes[-1] if modes else 'unknown'} on the unit, {mode:o} wanted"
        return None

    def write(self, path: str, data: bytes, *, mode: int | None = None, secret: bool = False) -> Written:
        """Write ``data`` to ``path`` on the unit; returns only after a matching readback of the file in place
        (and of its ``mode``, when given). A ``secret`` is never logged or reported."""
        shell = self.shell
        want = hashlib.sha256(data).hexdigest()
        encoded = base64.b64encode(data).decode("ascii")
        lines = [encoded[i : i + self.line] for i in range(0, len(encoded), self.line)] or [""]
        parts = posixpath.join(self.tmp_dir, f"station.{secrets.token_hex(4)}")
        temporary = f"{path}.station-new"
        width = max(4, len(str(len(lines))))
        quoted, folder = shlex.quote(temporary), shlex.quote(parts)
        self.report("prepare", f"preparing {parts}", None, None)
        shell.check(f"rm -rf {folder}&&mkdir -p {folder}" + ("" if mode is None else f"&&chmod 700 {folder}"), "prepare")
        for number, line in enumerate(lines, 1):
            name = shlex.quote(f"{parts}/{number:0{width}d}")
            raw = base64.b64decode(line)
            self._tries("write", f"chunk {number}/{len(lines)}", partial(self._chunk, name, line, raw, secret))
            self.report("write", f"chunk {number}/{len(lines)} written", number, len(lines))
        # A file with a mode exists, empty and with its mode, before any of its content does.
        join = f"cat {folder}/*>{quoted}" if mode is None else f">{quoted}&&chmod {mode:o} {quoted}&&cat {folder}/*>>{quoted}"
        shell.check(f"{join}&&rm -rf {folder}", "verify", name="cat")
        self._tries("verify", f"readback of {temporary}", partial(self._readback, "verify", temporary, want, mode, secret))
        self.report("verify", f"{len(data)} bytes verified" + ("" if secret else f" (SHA-256 {want[:16]}...)"), None, None)
        shell.check(f"mv -f {quoted} {shlex.quote(path)}&&sync", "install")
        self._tries("install", f"readback of {path}", partial(self._readback, "install", path, want, mode, secret))
        self.report("install", f"{path} in place and read back", None, None)
        return Written(path, len(data), want, len(lines), self.chunk_retries, self.readback_retries, mode)

    def prove(self, path: str, sha256: str, step: str) -> None:
        """Read back a file that is on the unit already (written earlier) until its SHA-256 is ``sha256``, as
        ``write`` reads back its own; else fail ``step``."""
        self._tries(step, f"readback of {path}", partial(self._readback, step, path, sha256, None, False))
