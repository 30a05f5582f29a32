"""Serial links: a port opened through pyserial's ``serial_for_url`` and a receive buffer to wait on.

Device paths (/dev/ttyUSB0, COM3), ``socket://``, ``rfc2217://`` and ``loop://`` all open the same way. Every
wait has a deadline and every failure names the step it happened in; the bytes that cross the wire are
counted, so that a transfer can be compared with its wire time.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
from typing import Sequence

import serial

from .errors import Cancelled, PortLost, StepFailed, StepTimeout
from .settings import SlotSettings

log = logging.getLogger("station.rig")

POLL = 0.05  # longest a read blocks, so that deadlines and cancelling are noticed
KEEP = 65536  # bytes of unmatched console output kept (boot logs can be long)
SETTLE = 0.1  # seconds of silence after which an unfinished line is taken for a prompt


def open_port(slot: SlotSettings, step: str = "connect") -> serial.SerialBase:
    """Open the slot's port with its line settings, or fail with an error that says what to check."""
    try:
        port = serial.serial_for_url(
            slot.port, do_not_open=True, baudrate=slot.baud, bytesize=slot.bytesize, parity=slot.parity,
            stopbits=slot.stopbits, xonxoff=slot.xonxoff, rtscts=slot.rtscts, timeout=POLL,
            write_timeout=slot.command_timeout, exclusive=True,  # one slot, one program on a port
        )
        port.open()
    except ValueError as exc:
        raise StepFailed(step, f"cannot use serial port {slot.port!r} of slot {slot.name}: {exc}") from exc
    except (serial.SerialException, OSError) as exc:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
            hint = "does not exist: check the cable and the slot's port in station.json5"
        elif code in (errno.EACCES, errno.EPERM) or "ermission denied" in text:
            hint = "cannot be opened (permission denied): add the station's user to the dialout group"
        elif code in (errno.EBUSY, errno.EAGAIN) or "busy" in text.lower():
            hint = "is in use by another program or slot"
        elif "refused" in text.lower() or code == errno.ECONNREFUSED:
            hint = "refused the connection: is the serial server running?"
        else:
            hint = f"cannot be opened ({text})"
        raise StepFailed(step, f"serial port {slot.port} of slot {slot.name} {hint}") from exc
    log.info("port opened", extra={"slot": slot.name, "port": slot.port, "baud": slot.baud})
    return port


class Link:
    """A serial port with a receive buffer: write, wait for a pattern, count bytes, stop when cancelled."""

    def __init__(self, port: serial.SerialBase, name: str, cancel: threading.Event | None = None) -> None:
        self.port = port
        self.name = name
        self.cancel = cancel or threading.Event()
        self.buffer = b""
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass  # the port is gone already; nothing to release

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lost(self, step: str, exc: Exception) -> PortLost:
        return PortLost(step, f"the serial port {self.port.port} went away ({exc}): check the cable and the adapter")

    def write(self, data: bytes, step: str, secret: bool = False) -> None:
        """Send ``data``; a secret is never logged."""
        if self.cancel.is_set():
            raise Cancelled(step, "cancelled")
        log.debug("sent", extra={"slot": self.name, "step": step, "data": "[hidden]" if secret else data.decode("latin-1")})
        try:
            self.port.write(data)
        except serial.SerialTimeoutException as exc:
            raise StepTimeout(step, "the unit does not take input (the port's output is stuck)") from exc
        except (serial.SerialException, OSError) as exc:
            raise self._lost(step, exc) from exc
        self.bytes_sent += len(data)

    def _read(self, step: str) -> bytes:
        try:
            data = self.port.read(self.port.in_waiting or 1)
        except (serial.SerialException, OSError) as exc:
            raise self._lost(step, exc) from exc
        if data:
            self.bytes_received += len(data)
            self.buffer = (self.buffer + data)[-KEEP:]
        return data

    def expect(self, pattern: re.Pattern[bytes], step: str, timeout: float, what: str) -> re.Match[bytes]:
        """Wait until ``pattern`` matches the buffered output; consume the output up to the match's end."""
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.buffer)
            if match:
                self.buffer = self.buffer[match.end():]
                return match
            if self.cancel.is_set():
                raise Cancelled(step, "cancelled")
            if time.monotonic() >= deadline:
                raise StepTimeout(step, f"the unit did not answer within {timeout:g} s (waiting for {what})")
            self._read(step)

    def expect_tail(self, patterns: Sequence[re.Pattern[bytes]], step: str, deadline: float,
                    idle: float) -> int | None:
        """Wait until the console falls quiet on an unfinished line that matches one of ``patterns`` (a prompt).

        Only a line followed by silence counts, so that a boot message that merely starts like a prompt does
        not. Returns the pattern's index and clears the buffer, or None when the console stayed silent for
        ``idle`` seconds with no prompt; raises at the deadline.
        """
        last_data = time.monotonic()
        while True:
            quiet = time.monotonic() - last_data
            if quiet >= SETTLE:
                tail = self.buffer.rsplit(b"\n", 1)[-1]
                for index, pattern in enumerate(patterns):
                    if pattern.search(tail):
                        self.buffer = b""
                        return index
                if quiet >= idle:
                    return None
            if self.cancel.is_set():
                raise Cancelled(step, "cancelled")
            if time.monotonic() >= deadline:
                raise StepTimeout(step, f"no prompt seen in time (last output: {self.tail_text()!r}): "
                                        f"is the unit powered, and is this its port?")
            if self._read(step):
                last_data = time.monotonic()

    def tail_text(self, size: int = 80) -> str:
        """The end of the unread output, for error messages."""
        return self.buffer[-size:].decode("utf-8", "replace").strip()
