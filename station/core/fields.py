"""The station's field rules: what text it stores, checked once here for every way in (the store's issuance
and products, which the pages, the JSON API, the line, the device endpoints and the CLI all reach; the
web's body reader calls the same rules early to answer 400 naming the field).

Serials and hardware keys end up in Code128 barcodes, CSV manifests and labels: printable ASCII, short.
Names, models and descriptions are shown to people: printable text in any script, but no control characters
and none of the bidirectional formatting characters that make a text read otherwise than it is stored.
Text SQLite cannot store (a lone surrogate, which UTF-8 cannot encode) and NUL, which cuts C strings short,
are refused wherever they appear.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from .errors import Invalid

KEY_MAX = 64  # characters of a serial or a hardware key's value: manufacturer serials and MACs are far shorter
IDEMPOTENCY_MAX = 200  # characters of an Idempotency-Key: a client's name for one request (a UUID is 36)
PRODUCT_ID_MAX = 64  # an Ioto product token is 26
NAME_MAX = 200  # characters of a product's name or model
DESCRIPTION_MAX = 1000  # characters of a product's description
SHOWN_MAX = 80  # characters of a refused value repeated in a message or an event

STATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")  # a station's name: in every event it writes
_ASCII = re.compile(r"[\x20-\x7e]*")  # printable ASCII, space included
PRODUCT_ID_PATTERN = "[A-Za-z0-9_-]"  # the characters of an Ioto product token (and what the station allows)
_PRODUCT_ID = re.compile(PRODUCT_ID_PATTERN + "+")


def host_station() -> str:
    """The station's name where none is configured: the host name (its first label), made a STATION_NAME."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname().split(".")[0]).strip("-._")[:63]
    return host if STATION_NAME.fullmatch(host) else "station"


def station_name(where: str, value: Any) -> str:
    """A configured station name (``name``), or a message saying what one may be."""
    if not isinstance(value, str) or not STATION_NAME.fullmatch(value):
        raise Invalid(f"{where} must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit "
                      f"(the station's name in every event it writes), not {shown(str(value))!r}")
    return value


def storable(value: str) -> bool:
    """Whether SQLite stores the text as it is: no NUL, and valid UTF-8 (no lone surrogate)."""
    if "\0" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(value: Any) -> str:
    """A value as a message or an event may repeat it: storable and printable (other characters as escapes),
    and short, so that a refusal never carries what it refused."""
    text = value if isinstance(value, str) else repr(value)
    out = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:SHOWN_MAX])
    return out + ("..." if len(text) > SHOWN_MAX else "")


def storable_tree(value: Any) -> Any:
    """A JSON value whose every string and field name is storable on every engine (``shown`` where it was not):
    what an event keeps of details that would not store, NUL and lone surrogates being refused by PostgreSQL's
    json as by its text."""
    if isinstance(value, str):
        return value if storable(value) else shown(value)
    if isinstance(value, dict):
        return {(key if not isinstance(key, str) or storable(key) else shown(key)): storable_tree(child)
                for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [storable_tree(child) for child in value]
    return value


def check_tree(value: Any, where: str = "the body") -> None:
    """Refuse a JSON value holding a string or a field name that SQLite cannot store, naming where it is."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                raise Invalid(f"{path or where} holds text that cannot be stored (NUL or a lone surrogate \\ud800-\\udfff); "
                              f"send printable UTF-8 text")
        elif isinstance(item, dict):
            for key, child in item.items():
                if not storable(key):
                    raise Invalid(f"a field name in {path or where} cannot be stored ({shown(key)}): "
                                  f"send printable UTF-8 field names")
                stack.append((child, f"{path}.{key}" if path else key))
        elif isinstance(item, list):
            stack.extend((child, f"{path or where}[{i}]") for i, child in enumerate(item))


def serial(value: str, name: str = "serial") -> str:
    """A serial or a hardware key's value (``name`` names the field): printable ASCII, 1 to KEY_MAX
    characters, as Code128 barcodes and spreadsheets take it. Surrounding spaces are dropped."""
    return _ascii(value, name, KEY_MAX, "a manufacturer serial or a MAC")


def hardware_key(value: str) -> str:
    """A stored hardware key: ``name:value`` as the device endpoint makes it (the device object's field and its
    value, each following ``serial``'s rule, which then names the field), or a value alone."""
    if not isinstance(value, str):
        raise Invalid(f"a hardware key must be a string, not {shown(value)}")
    name, colon, key = value.partition(":")
    if not colon:
        return serial(value, "hwkey")
    return f"{_ascii(name, 'a hardware key field', KEY_MAX, 'a device object field such as mac')}:{serial(key, name)}"


def idempotency_key(value: str, name: str = "Idempotency-Key") -> str:
    """A client's name for one request: printable ASCII, 1 to IDEMPOTENCY_MAX characters."""
    return _ascii(value, name, IDEMPOTENCY_MAX, "a UUID")


def product_id(value: str, what: str = "product ID") -> str:
    """An Ioto product token (or an Ioto account or cloud ID, ``what``, of the same form): letters, digits,
    ``-`` and ``_``, at most PRODUCT_ID_MAX characters."""
    text = value.strip() if isinstance(value, str) else ""
    if not _PRODUCT_ID.fullmatch(text) or not text.isascii() or len(text) > PRODUCT_ID_MAX:
        raise Invalid(f"{what} {shown(value)!r} must be an Ioto ID, as the Ioto product token is: letters and "
                      f"digits, for example 01H4R15D3478JD26YDYK408XE6")
    return text


def text(value: str, name: str, max_len: int = NAME_MAX, *, required: bool = True) -> str:
    """Text people read (a product's name, model, description): printable in any script, without control
    or bidirectional formatting characters, at most ``max_len`` characters. Surrounding spaces are dropped."""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text, not {shown(value)}")
    stripped = value.strip()
    if required and not stripped:
        raise Invalid(f"{name} must not be empty")
    if len(stripped) > max_len:
        raise Invalid(f"{name} is longer than {max_len} characters ({len(stripped)})")
    # Python's printable: not Unicode's "Other" (controls, formatting such as the bidirectional overrides,
    # surrogates, private use, unassigned) nor "Separator" but the ASCII space.
    bad = next((c for c in stripped if not c.isprintable()), None)
    if bad is not None:
        raise Invalid(f"{name} holds the control or formatting character U+{ord(bad):04X}; send printable text")
    return stripped


def reason(value: str | None, what: str) -> str:
    """Why something is done (``what``: "voiding a device", ...): required, and text people read, at most
    DESCRIPTION_MAX characters, since it stays in the append-only events for ever."""
    if value is None or not isinstance(value, str) or not value.strip():
        raise Invalid(f"{what} needs a reason (--reason)")
    return text(value, "the reason", DESCRIPTION_MAX)


def _ascii(value: str, name: str, max_len: int, example: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string, not {shown(value)}")
    stripped = value.strip()
    if not stripped:
        raise Invalid(f"{name} must not be empty")
    if len(stripped) > max_len:
        raise Invalid(f"{name} is longer than {max_len} characters ({len(stripped)}); send {example}")
    if not _ASCII.fullmatch(stripped):
        bad = next(c for c in stripped if not _ASCII.fullmatch(c))
        raise Invalid(f"{name} holds U+{ord(bad):04X}, which a barcode cannot carry: "
                      f"send printable ASCII (letters, digits, punctuation), such as {example}")
    return stripped
