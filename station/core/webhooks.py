"""Webhook endpoints as station.json5 lists them (key ``webhooks``): checked here, where config.py can reach
them without importing the delivery (station/webhooks/), so that a bad entry stops `station serve` at start.

An entry's secret never appears in a message of this module, nor in an ``Endpoint``'s repr: the check names
the entry and the field, never the value of a secret.
"""

from __future__ import annotations

import difflib
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .errors import Invalid
from .lifecycle import Kind

MIN_SECRET = 16  # characters: a shorter secret is guessable from a few signed bodies
DEFAULT_TIMEOUT = 10.0  # seconds a delivery may take: connecting, sending and the whole answer
MAX_TIMEOUT = 60.0
DEFAULT_CONCURRENCY = 4  # deliveries under way at once: enough to keep up with a loaded line on two cores
MAX_CONCURRENCY = 16
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")  # the name starts each delivery id, "<name>:<event id>"
FIELDS = ("name", "url", "kinds", "secret", "timeout", "from", "concurrency")
FROM = ("now", "start")  # where a new endpoint's cursor starts: the last event of today, or the first ever


@dataclass(frozen=True)
class Endpoint:
    """One receiver: where events of ``kinds`` go, signed with ``secret``; ``start`` is where a new endpoint's
    cursor begins ("now": only events after its first start; "start": the whole history); ``concurrency``
    deliveries are under way at once, each unit's events in order (1: every event in order)."""

    name: str
    url: str
    kinds: tuple[str, ...]
    secret: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    start: str = "now"
    concurrency: int = DEFAULT_CONCURRENCY


def endpoints(where: str, value: Any) -> tuple[Endpoint, ...]:
    """The ``webhooks`` list of station.json5 as endpoints; a bad entry is refused naming the entry and field."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Invalid(f"{where} must be a list of endpoints such as "
                      f'[{{name: "cloud", url: "https://...", kinds: ["registered"], secret: "..."}}]')
    found = tuple(_endpoint(f"{where}, entry {n + 1}", entry) for n, entry in enumerate(value))
    names = [endpoint.name for endpoint in found]
    for name in names:
        if names.count(name) > 1:
            raise Invalid(f"{where}: the name {name!r} is used by {names.count(name)} endpoints; names must be unique "
                          f"(each endpoint keeps its own place in the events under its name)")
    return found


def _endpoint(where: str, entry: Any) -> Endpoint:
    if not isinstance(entry, dict):
        raise Invalid(f"{where} must be an object with name, url, kinds and secret")
    for key in entry:
        if key not in FIELDS:
            near = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"fields are {', '.join(FIELDS)}"
            raise Invalid(f"{where}: {str(key)[:40]!r} is not a webhook field; {hint}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise Invalid(f"{where}: name must be 1 to 63 letters, digits, '.', '_' or '-' (it starts each delivery id), "
                      f"not {str(name)[:70]!r}")
    where = f"{where} ({name})"
    secret = entry.get("secret")
    if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET:
        raise Invalid(f"{where}: secret must be text of at least {MIN_SECRET} characters, shared with the receiver "
                      f"(make one with: python3 -c 'import secrets; print(secrets.token_hex(32))')")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0.5 <= timeout <= MAX_TIMEOUT:
        raise Invalid(f"{where}: timeout must be a number of seconds from 0.5 to {MAX_TIMEOUT:g} "
                      f"(default {DEFAULT_TIMEOUT:g}), not {timeout!r}")
    start = entry.get("from", "now")
    if start not in FROM:
        raise Invalid(f"{where}: from must be \"now\" (events after the endpoint's first start, the default) or "
                      f"\"start\" (every event the station holds), not {str(start)[:40]!r}")
    concurrency = entry.get("concurrency", DEFAULT_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise Invalid(f"{where}: concurrency must be a whole number of deliveries at once from 1 to {MAX_CONCURRENCY} "
                      f"(default {DEFAULT_CONCURRENCY}; 1 keeps every event in order, more keep each unit's), "
                      f"not {str(concurrency)[:40]!r}")
    return Endpoint(name, _url(where, entry.get("url")), _kinds(where, entry.get("kinds")), secret, float(timeout),
                    start, concurrency)


def _url(where: str, url: Any) -> str:
    if not isinstance(url, str):
        raise Invalid(f"{where}: url must be the receiver's http:// or https:// address, not {str(url)[:70]!r}")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"{where}: url must be an http:// or https:// address with a host, such as "
                      f"\"https://erp.example.com/station\", not {url[:100]!r}")
    if parts.username is not None or parts.password is not None:
        raise Invalid(f"{where}: url must not carry a user name or password (it is shown on the settings page); "
                      f"receivers check the signature made with the secret instead")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise Invalid(f"{where}: url must not hold spaces or control characters")
    return url


def _kinds(where: str, kinds: Any) -> tuple[str, ...]:
    known = [str(kind) for kind in Kind]
    if not isinstance(kinds, list) or not kinds or not all(isinstance(kind, str) for kind in kinds):
        raise Invalid(f"{where}: kinds must be a list of event kinds such as [\"registered\", \"claimed\"]; "
                      f"kinds are {', '.join(known)}")
    for kind in kinds:
        if kind not in known:
            near = difflib.get_close_matches(kind, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise Invalid(f"{where}: {kind[:40]!r} is not an event kind; {hint}kinds are {', '.join(known)}")
    return tuple(dict.fromkeys(kinds))
