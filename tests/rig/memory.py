"""A test double of the rig's ``Console``: the simulator's shell (``station.simulator.sh``) behind a getty-like
login, in memory, with no pseudo-terminal.

Each line written is answered before ``write`` returns, so a wait either matches at once or never will: the
tests that use it take no time of their own and depend on none. Faults are injected where a cable or a
unit would cause them: a lost console at the Nth chunk of a transfer, or chunks that arrive corrupted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import json5

from station.rig.errors import Cancelled, PortLost, StepTimeout
from station.rig.settings import SlotSettings
from station.simulator.fs import MemoryFS
from station.simulator.sh import Incomplete, Result, Shell
from station.store import Store

HOST = "ioto-mem"
DEVICE_JSON = "/etc/ioto/device.json5"


class MemoryUnit:
    """One unit's console; ``connect`` is the flash cycle's ``Connect`` for it (the unit keeps its state and
    its files from one connection to the next, as a real one does)."""

    def __init__(self, *, user: str = "root", password: str | None = None,
                 on_boot: Callable[[MemoryFS], None] | None = None, lose_at_chunk: int | None = None,
                 corrupt_chunks: int = 0) -> None:
        self.fs = MemoryFS()
        self.user, self.password = user, password
        self.on_boot = on_boot
        self.lose_at_chunk, self.corrupt_chunks, self.chunks = lose_at_chunk, corrupt_chunks, 0
        self.shell = Shell(self.fs, self._print, {"stty": self._stty, "systemctl": self._systemctl})
        self.state, self.echo, self.gone = "login", True, False
        self.cancel = threading.Event()
        self.connections = 0
        self.bytes_sent = self.bytes_received = 0
        self.sent: list[tuple[bytes, bool]] = []  # every write, with its secret flag
        self._output = b""
        self._line = b""
        self._pending = ""
        self._login_user = ""
        self._print(f"{HOST} login: ")

    # --- the Console protocol -----------------------------------------------------------------------------

    def connect(self, slot: SlotSettings, cancel: threading.Event) -> MemoryUnit:
        self.cancel = cancel
        self.connections += 1
        return self

    def write(self, data: bytes, step: str, secret: bool = False) -> None:
        self._check(step)
        self.sent.append((data, secret))
        self.bytes_sent += len(data)
        for byte in data:
            self._receive(byte, step)

    def expect(self, pattern: re.Pattern[bytes], step: str, timeout: float, what: str) -> re.Match[bytes]:
        self._check(step)
        match = pattern.search(self._output)
        if match is None:  # everything the unit will say is said already
            raise StepTimeout(step, f"the unit did not answer within {timeout:g} s (waiting for {what})")
        self._output = self._output[match.end():]
        return match

    def expect_tail(self, patterns: Sequence[re.Pattern[bytes]], step: str, deadline: float,
                    idle: float) -> int | None:
        self._check(step)
        tail = self._output.rsplit(b"\n", 1)[-1]
        for index, pattern in enumerate(patterns):
            if pattern.search(tail):
                self._output = b""
                return index
        if time.monotonic() >= deadline:
            raise StepTimeout(step, f"no prompt seen in time (last output: {self.tail_text()!r})")
        return None

    def tail_text(self, size: int = 80) -> str:
        return self._output[-size:].decode("utf-8", "replace").strip()

    def close(self) -> None:
        """Nothing to release: the unit stays as it is, logged in or not."""

    def __enter__(self) -> MemoryUnit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the unit -----------------------------------------------------------------------------------------

    def _check(self, step: str) -> None:
        if self.cancel.is_set():
            raise Cancelled(step, "cancelled")
        if self.gone:
            raise PortLost(step, "the memory console went away: check the cable")

    def _print(self, data: bytes | str) -> None:
        out = (data.encode() if isinstance(data, str) else data).replace(b"\n", b"\r\n")
        self._output += out
        self.bytes_received += len(out)

    def _prompt(self) -> None:
        self._print(f"{self.user}@{HOST}:~# ".encode())

    def _receive(self, byte: int, step: str) -> None:
        shown = self.echo and self.state != "password"
        if byte == 3:  # ^C
            self._line, self._pending = b"", ""
            self._print(b"^C\n")
            if self.state == "shell":
                self._prompt()
        elif byte in (10, 13):
            line, self._line = self._line.decode("utf-8", "replace"), b""
            self._print(line.encode() + b"\n" if shown else b"")
            if self.state == "shell":
                self._command(line, step)
            else:
                self._login(line)
        else:
            self._line += bytes([byte])

    def _login(self, text: str) -> None:
        if self.state == "login":
            if not text.strip():
                self._print(f"{HOST} login: ".encode())
                return
            self._login_user = text
            if self.password is not None:
                self.state = "password"
                self._print(b"Password: ")
                return
            ok = text == self.user
        else:
            ok = self._login_user == self.user and text == self.password
        if not ok:
            self.state = "login"
            self._print(f"\nLogin incorrect\n{HOST} login: ".encode())
            return
        self.state = "shell"
        self._print(b"\nWelcome to the memory unit.\n\n")
        self._prompt()

    def _command(self, line: str, step: str) -> None:
        if "base64 -d" in line:
            self.chunks += 1
            if self.chunks == self.lose_at_chunk:
                self.gone = True
                raise PortLost(step, "the memory console went away in the middle of a line: check the cable")
            if self.corrupt_chunks:
                self.corrupt_chunks -= 1
                line = line.replace(";echo ", ";echo AAAA", 1)  # four more base64 characters: three wrong bytes
        source = self._pending + line
        try:
            self.shell.execute(source)
        except Incomplete:
            self._pending = source + "\n"
            self._print(b"> ")
            return
        self._pending = ""
        self._prompt()

    def _stty(self, args: list[str], stdin: bytes) -> Result:
        self.echo = "-echo" not in args
        return b"", b"", 0

    def _systemctl(self, args: list[str], stdin: bytes) -> Result:
        if args != ["restart", "ioto"]:
            return b"", f"systemctl: {' '.join(args)}: not supported on this unit\n".encode(), 1
        if self.on_boot is not None:
            self.on_boot(self.fs)
        return b"", b"", 0


def registering(db_path: Path) -> Callable[[MemoryFS], None]:
    """A first boot that registers the unit as the station's service does on the agent's POST: the ``registered``
    event of the ID that device.json5 holds, on a connection of its own (it runs on the cycle's thread)."""

    def boot(fs: MemoryFS) -> None:
        uci = json5.loads(fs.read(DEVICE_JSON).decode("utf-8"))["id"]
        with Store.open(db_path) as store:
            store.advance(uci, "registered", "registered", "device", {"remote": "memory"})

    return boot
