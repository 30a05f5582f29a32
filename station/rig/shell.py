"""A driver for POSIX shells on a unit's console, after labgrid's ShellDriver.

It wakes the console, logs in when asked (the password is never logged), turns echo off where ``stty``
exists, and runs each command between two copies of a fresh marker, the second followed by the exit status.
The command line carries the marker split by quotes (``ab12''cd34``), so the echo of the line never looks
like the marker: whatever the console prints around a command (boot messages, kernel logs, the echo),
its output and status are read from between the markers.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass

from .console import Console
from .errors import StepFailed, StepTimeout
from .settings import SlotSettings

log = logging.getLogger("station.rig")

INTERRUPT = b"\x03"  # ^C: drops a half-received line or an open quote, as on any terminal


@dataclass(frozen=True)
class Reply:
    """What a command printed (lines without carriage returns) and its exit status."""

    output: str
    status: int

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.split("\n") if line.strip()]


class Shell:
    """Commands on a unit's login shell over its console (a serial link, or any other ``Console``)."""

    def __init__(self, console: Console, slot: SlotSettings) -> None:
        self.console = console
        self.slot = slot
        self._prompts = [re.compile(p.encode()) for p in (slot.password_prompt, slot.login_prompt, slot.prompt)]

    def login(self, step: str = "login") -> None:
        """Reach a shell prompt: wake the console, answer the login and password prompts, turn echo off."""
        slot = self.slot
        deadline = time.monotonic() + slot.login_timeout
        sent_password = False
        self.console.write(b"\n", step)
        while True:
            seen = self.console.expect_tail(self._prompts, step, deadline, slot.wake_interval)
            if seen is None:
                # Still no prompt: ^C drops whatever a shell was left in (an open quote of a cut-off cycle).
                self.console.write(INTERRUPT + b"\n", step)
            elif seen == 0:
                if slot.password is None:
                    raise StepFailed(step, f"the unit asks for a password but slot {slot.name} has none in station.json5")
                self.console.write(slot.password.encode() + b"\n", step, secret=True)
                sent_password = True
            elif seen == 1:
                if sent_password:
                    raise StepFailed(step, f"the unit refused the login of user {slot.user!r}: check the user and "
                                           f"password of slot {slot.name} in station.json5")
                self.console.write(slot.user.encode() + b"\n", step)
            else:
                break
        self.run("stty -echo", step)  # where stty is missing, echo stays on: the markers account for it
        log.info("logged in", extra={"slot": slot.name, "user": slot.user})

    def _send(self, command: str, step: str, secret: bool = False) -> str:
        marker = secrets.token_hex(4)
        split = f"{marker[:4]}''{marker[4:]}"
        self.console.write(f"echo {split};{command};echo {split} $?\n".encode(), step, secret=secret)
        return marker

    def _start(self, marker: str, step: str, timeout: float) -> None:
        self.console.expect(re.compile(marker.encode() + rb"\r?\n"), step, timeout, "the start of the command's output")

    def _end(self, marker: str, step: str, timeout: float) -> Reply:
        match = self.console.expect(
            re.compile(rb"(.*?)" + marker.encode() + rb" (\d+)\r?\n", re.S), step, timeout, "the command's exit status"
        )
        output = match.group(1).decode("utf-8", "replace").replace("\r", "")
        return Reply(output, int(match.group(2)))

    def run(self, command: str, step: str, timeout: float | None = None, *, secret: bool = False) -> Reply:
        """Run ``command`` and return its output and exit status; a ``secret`` command (it carries a secret) is
        never logged."""
        timeout = timeout or self.slot.command_timeout
        deadline = time.monotonic() + timeout
        marker = self._send(command, step, secret)
        self._start(marker, step, timeout)
        return self._end(marker, step, max(deadline - time.monotonic(), 0.01))

    def check(self, command: str, step: str, timeout: float | None = None, *, name: str | None = None) -> Reply:
        """Run ``command``; a non-zero exit status fails the step with what the command printed, naming the
        command by ``name`` (default: its first word)."""
        reply = self.run(command, step, timeout)
        if reply.status != 0:
            said = reply.lines[-1] if reply.lines else "no message"
            raise StepFailed(step, f"`{name or command.split()[0]}` failed with status {reply.status}: {said}")
        return reply

    def recover(self, step: str) -> None:
        """After a garbled or unanswered command: interrupt it and prove the shell answers again."""
        self.console.write(INTERRUPT, step)
        try:
            self.run("true", step)
        except StepTimeout as exc:
            raise StepTimeout(step, f"the unit stopped answering ({exc.reason})") from exc

    def start(self, command: str, step: str, wait: float) -> int | None:
        """Start a command that may not come back (a reboot): its status, or None when the shell went away."""
        marker = self._send(command, step)
        self._start(marker, step, self.slot.command_timeout)
        try:
            return self._end(marker, step, wait).status
        except StepTimeout:
            return None
