"""Stored text on a terminal: names, serials and event details come from scanners, devices and the API, and a
control character among them (an ESC sequence, a carriage return, a bidi override) would rewrite what the
operator sees. Every command that prints stored text for people prints it through ``escape``; data that
goes to a file or a pipe (exports) stays exact, and is escaped only when it goes to a terminal.
"""

from __future__ import annotations

import re
from typing import IO

# C0 controls, DEL, C1 controls, the bidi marks, embeddings, overrides and isolates, and the line and
# paragraph separators.
_CONTROLS = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_CONTROL_IN_LINES = re.compile(f"\r(?!\n)|(?![\r\n])[{_CONTROLS}]")  # the same, but line ends (\n, \r\n) kept


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, lines: bool = False) -> str:
    """``text`` with its control characters shown as ``\\x1b``, ``\\u202e``...; with ``lines``, the ends of
    lines (``\\n``, ``\\r\\n``: between the rows of an export) are left as they are."""
    return (_CONTROL_IN_LINES if lines else _CONTROL).sub(_shown, text)


class Escaping:
    """A text stream for data going to a terminal: written with control characters escaped, lines kept."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(escape(text, lines=True))

    def flush(self) -> None:
        self.out.flush()


def for_terminal(out: IO[str]) -> IO[str]:
    """``out`` itself for a file or a pipe; escaping when it is a terminal."""
    return Escaping(out) if out.isatty() else out  # type: ignore[return-value]
