"""Faults the simulated unit can inject on request: ``NAME`` or ``NAME=N`` (N occurrences, or seconds).

Faults of the transfer strike the unit's second and later chunk lines (a line carrying ``base64 -d``), so
that a transfer is under way when they hit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..core.errors import Invalid

# name: (default count or seconds, what it does)
FAULTS: dict[str, tuple[float, str]] = {
    "flip": (1, "a bit of a chunk line the unit receives is flipped (N lines)"),
    "drop": (1, "a byte of a chunk line the unit receives is lost (N lines)"),
    "flip-readback": (1, "a character of the unit's SHA-256 readback is changed on the way back (N times)"),
    "disconnect": (1, "the port vanishes in the middle of the transfer"),
    "hang": (1, "the unit stops answering in the middle of the transfer"),
    "kernel-log": (50, "kernel log lines appear between lines of command output (N lines)"),
    "garbled-boot": (1, "the boot prints line noise and garbage bytes around its messages"),
    "slow-boot": (5, "the agent starts N seconds late"),
    "no-register": (1, "the agent starts but never reaches the station (N starts)"),
    "no-stty": (1, "the shell has no stty, so its echo stays on"),
    "no-openssl": (1, "the unit has no openssl (openssl: not found, status 127)"),
    "csr-mismatch": (1, "openssl req makes the CSR for another key than the one on the unit (N times)"),
    "csr-bad-signature": (1, "openssl req makes a CSR whose signature does not verify (N times)"),
    "disk-full": (4096, "the unit's file system holds N bytes in all; a write beyond fails: No space left on device"),
    "immutable": (1, "the agent's database (/var/lib/ioto/db) cannot be removed, as after chattr +i: "
                     "rm says Operation not permitted"),
    "cert-corrupt": (1, "a certificate written to the unit is stored with a changed byte, so it never reads back (N files)"),
}


def describe() -> str:
    """The fault names and what they do, for --help."""
    return "; ".join(f"{name}: {text}" for name, (_, text) in FAULTS.items())


class Faults:
    """The faults still to inject; ``take`` uses one occurrence up, from any thread."""

    def __init__(self, specs: Iterable[str] = ()) -> None:
        self._left: dict[str, float] = {}
        self._lock = threading.Lock()
        for spec in specs:
            self.add(spec)

    def add(self, spec: str) -> None:
        """Arm a fault (``NAME`` or ``NAME=N``), also while the unit runs."""
        name, _, count = spec.strip().partition("=")
        if name not in FAULTS:
            raise Invalid(f"unknown fault {name!r}: faults are {', '.join(FAULTS)}")
        try:
            left = float(count) if count else FAULTS[name][0]
        except ValueError:
            raise Invalid(f"fault {spec!r}: the part after '=' must be a number") from None
        with self._lock:
            self._left[name] = left

    def active(self, name: str) -> bool:
        """Whether the fault is on, without using it up."""
        with self._lock:
            return self._left.get(name, 0) > 0

    def take(self, name: str) -> bool:
        """True (and one occurrence fewer) when the fault should strike now."""
        with self._lock:
            if self._left.get(name, 0) <= 0:
                return False
            self._left[name] -= 1
            return True

    def seconds(self, name: str) -> float:
        """The value of a fault that is a duration (0 when it is off)."""
        with self._lock:
            return self._left.get(name, 0.0)
