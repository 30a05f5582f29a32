"""Serial links: a port opened through pyserial (``serial_for_url``, and for ``rfc2217://`` its RFC 2217 client
adapted below) and a receive buffer to wait on.

Device paths (/dev/ttyUSB0, COM3), ``socket://``, ``rfc2217://`` and ``loop://`` all open the same way, with
the same line settings and write timeout. Every wait has a deadline and every failure names the step it
happened in; the bytes that cross the wire are counted, so that a transfer can be compared with its wire time.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import serial
from serial import rfc2217

from .errors import Cancelled, PortLost, StepFailed, StepTimeout
from .settings import SlotSettings

log = logging.getLogger("station.rig")

POLL = 0.05  # longest a read blocks, so that deadlines and cancelling are noticed
KEEP = 65536  # bytes of unmatched console output kept (boot logs can be long)
SETTLE = 0.1  # seconds of silence after which an unfinished line is taken for a prompt


class _Rfc2217(rfc2217.Serial):
    """pyserial's RFC 2217 client, made to behave as the rig's other ports do.

    - A write timeout: pyserial refuses one (NotImplementedError at open) and sends with ``sendall`` on its
      socket, bounded only by the socket's timeout; that timeout becomes the write timeout, and running out
      of it is the SerialTimeoutException other ports raise.
    - Modem lines: the rig never reads them, and a server whose device cannot set DTR or RTS (a
      pseudo-terminal, a virtual machine's console) never confirms them, which fails pyserial's open after 3 s.
      It does not wait for those confirmations (pyserial's own ``ign_set_control``).
    - A server that goes away while pyserial's reader thread answers it: that thread ends quietly (no traceback
      on the operator's terminal) and the next read says the port went away.
    """

    def from_url(self, url: str) -> tuple[str, int]:
        address = super().from_url(url)
        self._ignore_set_control_answer = True
        return address

    def _reconfigure_port(self) -> None:
        timeout: float | None = self.write_timeout
        self._write_timeout = None
        try:
            super()._reconfigure_port()
        finally:
            self._write_timeout = timeout
        self._socket.settimeout(timeout)

    def write(self, data: bytes) -> int:
        try:
            return super().write(data)
        except serial.SerialException as exc:
            if isinstance(exc.__context__, TimeoutError):
                raise serial.SerialTimeoutException("Write timeout") from exc
            raise

    def _telnet_read_loop(self) -> None:
        try:
            super()._telnet_read_loop()
        except OSError:
            self._read_buffer.put(None)  # wakes a waiting read, which then finds the thread gone


def _serial(url: str, **settings: Any) -> serial.SerialBase:
    """A closed port for ``url``, of pyserial's class for it (ours for ``rfc2217://``)."""
    if url.lower().startswith("rfc2217://"):
        port = _Rfc2217(None, **settings)
        port.port = url
        return port
    return serial.serial_for_url(url, do_not_open=True, **settings)


def open_port(slot: SlotSettings, step: str = "connect") -> serial.SerialBase:
    """Open the slot's port with its line settings, or fail with an error that says what to check.
    Every write is bounded by the slot's ``command_timeout``, whatever the kind of port."""
    try:
        port = _serial(slot.port, baudrate=slot.baud, bytesize=slot.bytesize, parity=slot.parity, stopbits=slot.stopbits,
                       xonxoff=slot.xonxoff, rtscts=slot.rtscts, timeout=POLL, write_timeout=slot.command_timeout,
                       exclusive=True)  # one slot, one program on a port
        port.open()
    except ValueError as exc:
        raise StepFailed(step, f"cannot use serial port {slot.port!r} of slot {slot.name}: {exc}") from exc
    except (serial.SerialException, OSError) as exc:
        raise StepFailed(step, f"serial port {slot.port} of slot {slot.name} {_open_hint(exc)}") from exc
    log.info("port opened", extra={"slot": slot.name, "port": slot.port, "baud": slot.baud})
    return port


def _open_hint(exc: Exception) -> str:
    """What an operator should check when a port does not open, from pyserial's or the system's error."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    lowered = text.lower()
    if code == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
        return "does not exist: check the cable and the slot's port in station.json5"
    if code in (errno.EACCES, errno.EPERM) or "ermission denied" in text:
        return "cannot be opened (permission denied): add the station's user to the dialout group"
    if code in (errno.EBUSY, errno.EAGAIN) or "busy" in lowered:
        return "is in use by another program or slot"
    if "refused" in lowered or code == errno.ECONNREFUSED:
        return "refused the connection: is the serial server running, and is this its port?"
    if "rfc2217" in lowered and "support" in lowered:
        return "does not speak RFC 2217: for a raw TCP port use socket://"
    if code in (errno.EPIPE, errno.ECONNRESET) or "broken pipe" in lowered or "reset by peer" in lowered:
        return ("was closed by the serial server: check that its serial device exists and that no other client "
                "holds the port")
    return f"cannot be opened ({text})"


def serial_console(slot: SlotSettings, cancel: threading.Event) -> Link:
    """The slot's serial port as the rig's console (``console.Connect``, the default of the flash cycle)."""
    return Link(open_port(slot), slot.name, cancel)


class Link:
    """A serial port with a receive buffer: write, wait for a pattern, count bytes, stop when cancelled.

    It implements ``console.Console``."""

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

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lost(self, step: str, exc: Exception) -> PortLost:
        return PortLost(step, f"the serial port {self.port.port} went away ({exc}): check the cable, the adapter or the "
                              f"serial server")

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
