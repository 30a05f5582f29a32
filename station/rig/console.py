"""What the rig needs of a unit's console, as an interface: labgrid's drivers bind to a ``ConsoleProtocol`` and
OpenHTF puts hardware behind plugs, so that a serial port, a U-Boot prompt, an SSH session or a test double can
carry the same shell driver and flash cycle.

``port.Link`` (a serial port through pyserial) is the station's implementation and the default ``Connect``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, Self

from .settings import SlotSettings


class Console(Protocol):
    """A byte stream to one unit's console, with waits that end at a deadline and errors that name the step.

    Failures are ``StepFailed`` subclasses: ``StepTimeout`` when nothing matching came in time, ``PortLost``
    when the console went away, ``Cancelled`` when the operator stopped the cycle.
    """

    bytes_sent: int
    bytes_received: int

    def write(self, data: bytes, step: str, secret: bool = False) -> None:
        """Send ``data``; a ``secret`` (the console password) is never logged."""

    def expect(self, pattern: re.Pattern[bytes], step: str, timeout: float, what: str) -> re.Match[bytes]:
        """Wait until ``pattern`` matches the unread output; consume the output up to the match's end."""

    def expect_tail(self, patterns: Sequence[re.Pattern[bytes]], step: str, deadline: float,
                    idle: float) -> int | None:
        """Wait for an unfinished last line matching one of ``patterns`` (a prompt): its index, the output then
        dropped; None after ``idle`` seconds without one; ``StepTimeout`` at ``deadline`` (``time.monotonic``)."""

    def tail_text(self, size: int = 80) -> str:
        """The end of the unread output, for error messages."""

    def close(self) -> None:
        """Let go of the console; closing one that is gone already is not an error."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


Connect = Callable[[SlotSettings, threading.Event], Console]
"""Opens the console of a slot's unit, honouring the cycle's cancel event; ``StepFailed`` at step ``connect``
when it cannot (with what to check)."""
