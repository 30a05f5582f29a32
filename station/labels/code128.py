"""Code128 for manufacturer serials: reportlab's encoder (it picks subsets B and C for the shortest
symbol), turned into bars for PNG and PDF, and into ZPL field data that names the same subsets with
invocation codes, so that a Zebra printer draws the very same symbol at the very same width."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from reportlab.graphics.barcode.code128 import Code128 as _Encoder

from ..core.errors import Invalid

_START = {104: "B", 105: "C"}  # printable ASCII never needs subset A
_ZPL_START = {"B": ">:", "C": ">;"}
_SWITCH = {("B", 99): ("C", ">5"), ("C", 100): ("B", ">6")}
_ZPL_ESCAPES = {"^": "><", ">": ">0", "~": ">="}  # characters ZPL would read as commands (ZPL II ^BC table)


@dataclass(frozen=True)
class Symbol:
    """Bars as (start, width) in modules; ``modules`` is the symbol's width without quiet zones."""

    text: str
    bars: tuple[tuple[int, int], ...]
    modules: int
    zpl: str


@lru_cache(maxsize=4096)
def encode(text: str) -> Symbol:
    """The Code128 symbol of ``text`` (printable ASCII only, as serials are)."""
    bad = sorted({ch for ch in text if not " " <= ch <= "~"})
    if not text or bad:
        raise Invalid(
            f"{text!r} cannot be a Code128 barcode on the label: it takes printable ASCII only"
            + (f", not {''.join(bad)!r}" if bad else ", and it is empty")
        )
    encoder = _Encoder(text, quiet=0)
    encoder.validate()
    codes = encoder.encode()
    bars, position = [], 0
    for i, letter in enumerate(encoder.decompose()):
        width = ord(letter.upper()) - ord("A") + 1
        if i % 2 == 0:  # patterns alternate bar, space, starting with a bar
            bars.append((position, width))
        position += width
    return Symbol(text, tuple(bars), position, _zpl(codes))


def _zpl(codes: list[int]) -> str:
    """ZPL ^FD data for the code words (start, data, check, stop): the printer adds check and stop."""
    subset = _START[codes[0]]
    out = [_ZPL_START[subset]]
    for code in codes[1:-2]:
        if (subset, code) in _SWITCH:
            subset, invocation = _SWITCH[subset, code]
            out.append(invocation)
        elif subset == "C":
            out.append(f"{code:02d}")
        else:
            char = chr(code + 32)
            out.append(_ZPL_ESCAPES.get(char, char))
    return "".join(out)
