"""QR symbols for label payloads: alphanumeric mode only, the mask chosen as qrcode chooses it, but fast.

``qrcode`` picks the mask by building the symbol eight times and scoring each with a pure-Python
penalty scan (about 5 ms for a version 3 code). Here the symbol is built once with mask 0; its data
modules are unmasked and re-masked as whole-symbol integers, one bit per module (all rows in one
integer, all columns in another, 11 blank bits between lines so that no pattern runs from one line into
the next), and the four ISO 18004 penalties are counted with a few shifts and ANDs per mask. The score
is the one ``qrcode.util.lost_point`` gives the symbol it evaluates (format and version modules light),
so the chosen mask, and the symbol, are the ones ``qrcode.make`` would produce; the tests check that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import qrcode
from qrcode import constants, util

from ..core.errors import Invalid
from ..core.uci import QR_ALPHANUMERIC

ECC_LEVELS = {"L": constants.ERROR_CORRECT_L, "M": constants.ERROR_CORRECT_M,
              "Q": constants.ERROR_CORRECT_Q, "H": constants.ERROR_CORRECT_H}
_GAP = 11  # blank modules between lines: longer than any pattern the penalties look for
_GAP_BYTES = bytes(_GAP)
_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


@dataclass(frozen=True)
class Symbol:
    """A QR symbol without its quiet zone: ``rows[r][c]`` is True for a dark module."""

    version: int
    rows: tuple[tuple[bool, ...], ...]

    @property
    def size(self) -> int:
        return len(self.rows)


def check_payload(payload: str) -> str:
    """Refuse a payload that would leave alphanumeric mode (DESIGN.md section 1)."""
    bad = sorted(set(payload) - QR_ALPHANUMERIC)
    if bad:
        raise Invalid(
            f"QR payload {payload!r} has {''.join(bad)!r}, which is not in QR alphanumeric mode; "
            f"fix the product's claim URL"
        )
    return payload


def modules_for(version: int) -> int:
    """Modules on a side of a symbol of this version."""
    return 4 * version + 17


@lru_cache(maxsize=1024)
def version_for(length: int, ecc: str) -> int:
    """The smallest version holding ``length`` alphanumeric characters at this error correction level."""
    code = qrcode.QRCode(error_correction=ECC_LEVELS[ecc])
    code.add_data(util.QRData("0" * length, mode=util.MODE_ALPHA_NUM))
    return code.best_fit()


def symbol(payload: str, ecc: str) -> Symbol:
    """The symbol ``qrcode`` would make for this payload, in alphanumeric mode, with its best mask."""
    check_payload(payload)
    version = version_for(len(payload), ecc)
    code = qrcode.QRCode(version=version, error_correction=ECC_LEVELS[ecc], border=0, mask_pattern=0)
    code.add_data(util.QRData(payload, mode=util.MODE_ALPHA_NUM))
    code.make(fit=False)
    best = _best_mask(code.modules, code.version)
    if best:
        code.mask_pattern = best
        code.make(fit=False)  # reuses the encoded data; only placement and masking run again
    return Symbol(code.version, tuple(tuple(row) for row in code.modules))


def _pack(lines: list[list[bool]] | list[tuple[bool, ...]]) -> int:
    """All lines as one integer, a bit per module, ``_GAP`` zero bits after each line. The bits are
    written as a string of digits and parsed by int() at C speed; the order they land in does not matter,
    as every penalty looks both ways along a line."""
    return int(b"".join(bytes(line) + _GAP_BYTES for line in lines).translate(_DIGITS), 2)


@dataclass(frozen=True)
class _Grid:
    """Per-version constants, packed by rows and by columns: which modules carry data, each mask's flips,
    and the function modules that stay (format and version modules are scored light, as qrcode does)."""

    n: int
    full: tuple[int, int]
    data: tuple[int, int]
    keep: tuple[int, int]
    masks: tuple[tuple[int, int], ...]


@lru_cache(maxsize=40)
def _grid(version: int) -> _Grid:
    n = modules_for(version)
    function = [[False] * n for _ in range(n)]
    reserved = [[False] * n for _ in range(n)]

    def mark(grid: list[list[bool]], rows: range, cols: range) -> None:
        for r in rows:
            for c in cols:
                grid[r][c] = True

    for rows, cols in ((range(9), range(9)), (range(9), range(n - 8, n)), (range(n - 8, n), range(9))):
        mark(function, rows, cols)  # finder, separator and format modules
    centres = util.pattern_position(version)
    for r in centres:
        for c in centres:
            if not function[r][c]:  # only the finders hide an alignment pattern; timing comes after
                mark(function, range(r - 2, r + 3), range(c - 2, c + 3))
    mark(function, range(6, 7), range(n))
    mark(function, range(n), range(6, 7))  # timing
    mark(reserved, range(8, 9), range(9))
    mark(reserved, range(8, 9), range(n - 8, n))
    mark(reserved, range(9), range(8, 9))
    mark(reserved, range(n - 8, n), range(8, 9))  # format modules and the dark module
    reserved[6][8] = reserved[8][6] = False  # timing, not format
    if version >= 7:
        mark(reserved, range(6), range(n - 11, n - 8))
        mark(reserved, range(n - 11, n - 8), range(6))  # version modules
        mark(function, range(6), range(n - 11, n - 8))
        mark(function, range(n - 11, n - 8), range(6))

    def both(cell: Callable[[int, int], bool]) -> tuple[int, int]:
        rows = [[cell(r, c) for c in range(n)] for r in range(n)]
        return _pack(rows), _pack(list(zip(*rows, strict=True)))

    def flips(mask: Callable[[int, int], bool]) -> tuple[int, int]:
        return both(lambda r, c: not function[r][c] and mask(r, c))

    return _Grid(
        n=n,
        full=both(lambda r, c: True),
        data=both(lambda r, c: not function[r][c]),
        keep=both(lambda r, c: function[r][c] and not reserved[r][c]),
        masks=tuple(flips(util.mask_func(k)) for k in range(8)),
    )


def _best_mask(modules: list[list[bool]], version: int) -> int:
    """The mask qrcode's best_mask_pattern() picks, from the symbol made with mask 0."""
    grid = _grid(version)
    n, stride = grid.n, grid.n + _GAP
    packed = (_pack(modules), _pack(list(zip(*modules, strict=True))))
    # Data modules with mask 0 removed, and the function modules as qrcode scores them.
    plain = tuple((packed[i] & grid.data[i]) ^ grid.masks[0][i] for i in (0, 1))
    base = tuple(packed[i] & grid.keep[i] for i in (0, 1))
    best, best_score = 0, -1
    for k, mask in enumerate(grid.masks):
        score = 0
        for i in (0, 1):
            dark = base[i] | plain[i] ^ mask[i]
            score += _line_penalties(dark, grid.full[i] & ~dark)
        rows_dark = base[0] | plain[0] ^ mask[0]
        rows_light = grid.full[0] & ~rows_dark
        score += _blocks(rows_dark, stride) + _blocks(rows_light, stride)
        share = rows_dark.bit_count() / (n * n)
        score += int(abs(share * 100 - 50) / 5) * 10  # the same float steps as qrcode's level 4
        if best_score < 0 or score < best_score:
            best, best_score = k, score
    return best


def _line_penalties(dark: int, light: int) -> int:
    """Runs of five or more (3 + excess) and finder-like 1:1:3:1:1 patterns with 4 light (40 each)."""
    d = [dark >> j for j in range(11)]
    li = [light >> j for j in range(11)]
    score = 0
    for v in (d, li):
        five = v[0] & v[1] & v[2] & v[3] & v[4]
        score += five.bit_count() + 2 * (five & ~(five >> 1)).bit_count()
    finder = d[0] & li[1] & d[2] & d[3] & d[4] & li[5] & d[6] & li[7] & li[8] & li[9] & li[10]
    reverse = li[0] & li[1] & li[2] & li[3] & d[4] & li[5] & d[6] & d[7] & d[8] & li[9] & d[10]
    return score + 40 * (finder.bit_count() + reverse.bit_count())


def _blocks(colour: int, stride: int) -> int:
    """Three points for each 2x2 block of one colour."""
    pairs = colour & (colour >> stride)
    return 3 * (pairs & (pairs >> 1)).bit_count()
