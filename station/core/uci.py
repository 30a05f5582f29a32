"""The unique claim ID (UCI) codec: the one place that owns the format (DESIGN.md section 1).

A UCI is a random number from the OS CSPRNG written in Crockford base32, most significant symbol first,
zero padded to ``bits // 5`` symbols. People see it in groups of four with Crockford's check symbol
last; they type it back with any case, spaces, hyphens and the O/0, I/L/1 confusions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .errors import Invalid

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
DEFAULT_BITS = 80
MIN_BITS = 50
MAX_BITS = 320
SYMBOL_BITS = 5  # bits per symbol of the alphabet: a size is a whole number of symbols
GROUP = 4
AGENT_SYMBOLS = (10, 20)  # the lengths of the IDs Ioto agents make themselves (DESIGN.md section 2)

# Each CSPRNG byte keeps its low 5 bits: 256 is a multiple of 32, so every symbol is uniform and
# independent, which is exactly the distribution of a uniform number of ``bits`` bits; bytes.translate
# encodes millions of symbols at C speed (base64.b32encode is pure Python before 3.13).
_BYTE_TO_SYMBOL = bytes(ALPHABET.encode()[b & 31] for b in range(256))
# int(x, 32) reads digits 0-9a-v; Crockford's symbols map onto them in order.
_TO_INT_DIGITS = str.maketrans(ALPHABET, "0123456789abcdefghijklmnopqrstuv")
_TYPED = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None, "\t": None})


class UCIError(Invalid, ValueError):
    """A code that cannot be a UCI; the message says what to fix."""


class MistypedError(UCIError):
    """The check symbol does not match: a symbol was mistyped or two were swapped."""


def validate_bits(bits: int) -> int:
    """Refuse sizes the format does not allow, so that no product can be set up with one."""
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise UCIError(f"size in bits must be a whole number, not {bits!r}")
    if bits < MIN_BITS or bits > MAX_BITS or bits % SYMBOL_BITS:
        raise UCIError(
            f"size in bits must be a multiple of {SYMBOL_BITS} from {MIN_BITS} to {MAX_BITS} "
            f"(80 is the default, 50 gives classic 10-symbol Ioto IDs), not {bits}"
        )
    return bits


def symbols(bits: int = DEFAULT_BITS) -> int:
    """Number of symbols in the canonical form of a UCI of this size."""
    return validate_bits(bits) // 5


def generate(bits: int = DEFAULT_BITS) -> str:
    """One fresh UCI from the OS CSPRNG."""
    return generate_many(1, bits)[0]


def generate_many(count: int, bits: int = DEFAULT_BITS, first: str = "") -> list[str]:
    """``count`` fresh UCIs from one CSPRNG call, encoded at C speed (batch pre-generation); each begins with the
    symbol ``first`` where given (a batch draws one range at a time), the rest being drawn."""
    n = symbols(bits) - len(first)
    text = secrets.token_bytes(n * count).translate(_BYTE_TO_SYMBOL).decode("ascii")
    return [first + text[i : i + n] for i in range(0, n * count, n)]


def value(uci: str) -> int:
    """The number a canonical UCI writes."""
    return int(uci.translate(_TO_INT_DIGITS), 32)


def encode(number: int, bits: int = DEFAULT_BITS) -> str:
    """Canonical form of ``number``, zero padded to the size's full width."""
    n = symbols(bits)
    if number < 0 or number >> bits:
        raise UCIError(f"{number} does not fit in {bits} bits")
    out = []
    for _ in range(n):
        out.append(ALPHABET[number & 31])
        number >>= 5
    return "".join(reversed(out))


def check_symbol(uci: str) -> str:
    """Crockford's check symbol: the value mod 37 over the extended alphabet."""
    return CHECK_ALPHABET[value(uci) % 37]


def display(uci: str, check: bool = True) -> str:
    """What goes on the label: groups of four joined by '-', check symbol last."""
    groups = [uci[i : i + GROUP] for i in range(0, len(uci), GROUP)]
    if check:
        groups.append(check_symbol(uci))
    return "-".join(groups)


def _normalise(text: str) -> str:
    if not isinstance(text, str):
        raise UCIError("a claim code must be text")
    cleaned = text.strip().upper().translate(_TYPED)
    if not cleaned:
        raise UCIError("the claim code is empty: type or scan the code printed on the label")
    return cleaned


def _check_chars(body: str, original: str) -> None:
    for position, char in enumerate(body, 1):
        if char not in ALPHABET:
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            raise UCIError(
                f"claim code {original.strip()!r} has {shown} at symbol {position}, which is not in a claim code "
                f"(letters and digits only, without U)"
            )


def _verify(body: str, check: str, original: str) -> str:
    _check_chars(body, original)
    if check not in CHECK_ALPHABET:
        raise UCIError(f"claim code {original.strip()!r} ends in {check!r}, which cannot be a check symbol")
    if check_symbol(body) != check:
        raise MistypedError(
            f"claim code {original.strip()!r} was mistyped: its check symbol does not match; "
            f"type it again from the label"
        )
    return body


def parse(text: str, bits: int = DEFAULT_BITS, check: bool | None = None) -> str:
    """Canonical UCI from what a person typed or scanned, for a known size.

    ``check`` None accepts the code with or without its check symbol; True requires it; False refuses it.
    """
    n = symbols(bits)
    cleaned = _normalise(text)
    if len(cleaned) == n + 1 and check is not False:
        return _verify(cleaned[:-1], cleaned[-1], text)
    if len(cleaned) == n and check is not True:
        _check_chars(cleaned, text)
        return cleaned
    wanted = {None: f"{n} or {n + 1}", True: str(n + 1), False: str(n)}[check]
    raise UCIError(
        f"claim code {text.strip()!r} has {len(cleaned)} symbols, a claim code of this product has {wanted} "
        f"(dashes and spaces do not count): check it against the label"
    )


@dataclass(frozen=True)
class Typed:
    """What a typed code can mean when the product, and so the size, is not known.

    ``readings`` are the canonical UCIs it may name (body alone, and body less a matching check
    symbol); ``problem`` says why another reading failed, for the message when none is stored.
    """

    text: str
    cleaned: str
    readings: tuple[str, ...]
    problem: UCIError | None


def read_typed(text: str) -> Typed:
    """Every reading of a typed code of unknown size; raises when there is none."""
    cleaned = _normalise(text)
    found: list[str] = []
    problems: list[UCIError] = []
    low, high = MIN_BITS // 5, MAX_BITS // 5
    if low <= len(cleaned) <= high:
        try:
            _check_chars(cleaned, text)
            found.append(cleaned)
        except UCIError as exc:
            problems.append(exc)
    if low + 1 <= len(cleaned) <= high + 1:
        try:
            found.append(_verify(cleaned[:-1], cleaned[-1], text))
        except UCIError as exc:
            problems.append(exc)
    problems.sort(key=lambda exc: not isinstance(exc, MistypedError))
    if not found:
        raise problems[0] if problems else UCIError(
            f"claim code {text.strip()!r} has {len(cleaned)} symbols; claim codes have {low} to {high + 1} "
            f"(dashes and spaces do not count): check it against the label"
        )
    return Typed(text, cleaned, tuple(found), problems[0] if problems else None)


def agent_id(text: str) -> str:
    """The canonical form of an ID an Ioto agent made itself (``services.serialize: "auto"``, ``ioto --gen``):
    Crockford symbols, AGENT_SYMBOLS long, with no check symbol (the agent writes none)."""
    cleaned = _normalise(text)
    low, high = AGENT_SYMBOLS
    if not low <= len(cleaned) <= high:
        raise UCIError(f"claim code {text.strip()!r} has {len(cleaned)} symbols; an ID made by an Ioto agent has "
                       f"{low} to {high}")
    _check_chars(cleaned, text)
    return cleaned


def parse_made_elsewhere(text: str, bits: int) -> str:
    """A code made outside the station (by hand, by a system being replaced, by an agent): a code of the
    product's size (its check symbol verified where given), else an agent-made ID."""
    try:
        return parse(text, bits)
    except MistypedError:
        raise
    except UCIError:
        low, high = AGENT_SYMBOLS
        length = len(_normalise(text))
        if low <= length <= high:
            return agent_id(text)  # its refusal names the symbol that is not in the alphabet
        n = symbols(bits)
        raise UCIError(f"claim code {text.strip()!r} has {length} symbols; a claim code of this product has {n} or "
                       f"{n + 1}, an ID made by an Ioto agent {low} to {high} (dashes and spaces do not count)") from None


def qr_payload(uci: str, claim_url: str | None = None) -> str:
    """QR content in alphanumeric mode only: the canonical ID or the upper-cased claim URL."""
    if not claim_url:
        return uci
    return claim_url.upper().replace("{ID}", uci)


QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def validate_claim_url(url: str) -> str:
    """Refuse claim URLs that would push the QR code out of alphanumeric mode or carry no ID."""
    if "{id}" not in url:
        raise UCIError(f"claim URL {url!r} must contain {{id}} where the claim ID goes")
    bad = sorted(set(url.upper().replace("{ID}", "")) - QR_ALPHANUMERIC)
    if bad:
        raise UCIError(
            f"claim URL {url!r} has {''.join(bad)!r}, which a small QR code cannot hold "
            f"(letters, digits, space and $%*+-./: only)"
        )
    return url
