"""Who may call what.

Devices (``/ioto/serialize``, ``/api/device/register``) send no credentials, so they are let in by where
they call from: any address, or only the configured ``client_networks``; refusals are summarised (one event
per address and minute), so that outsiders cannot grow the database. Everything under ``/api/v1/`` needs a
caller: ``Access.caller`` asks each way in (``ways_in``) in turn; an API bearer token is the first, the
operator pages' session the second. What a caller may do is decided here alone, for pages and API alike:
``RULES`` maps each action to the roles of people and the scope of tokens that may do it.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Request

from ..accounts import ROLES, User
from ..core.errors import Forbidden, StationError
from ..core.lifecycle import Kind
from ..serve.writer import Writer
from ..store import TOKEN_SCOPES, Store, now

TOUCH_EVERY = 60.0  # seconds between two notes of a token's last use: a write per API call would be waste
REFUSALS_EVERY = 60.0  # seconds: one refusal event per address in this time, then one summary with the count
REFUSED_ADDRESSES = 1024  # addresses whose refusals are counted apart; beyond, they share one count (bounded memory)
OTHERS = "other addresses"

log = logging.getLogger("station.web")


@dataclass(frozen=True)
class Rule:
    """Who may do an action: people by role, API tokens by scope."""

    roles: frozenset[str]
    scope: str


# The one table of who may do what (pages, line and API ask it through ``allowed`` and ``require``).
RULES: dict[str, Rule] = {
    "watch": Rule(frozenset({"operator", "admin", "display"}), "read"),  # the line's tiles and the production view
    "read": Rule(frozenset({"operator", "admin"}), "read"),          # look at devices, batches, products, stats
    "issue": Rule(frozenset({"operator", "admin"}), "issue"),        # issue claim IDs, run units on the line
    "void": Rule(frozenset({"operator", "admin"}), "issue"),         # void a unit's claim ID
    "claim": Rule(frozenset({"admin"}), "claim"),                    # bind a unit to an end user's account
    "release": Rule(frozenset({"admin"}), "admin"),                  # return a claimed unit (resale, support)
    "manage": Rule(frozenset({"admin"}), "admin"),                   # add products
    "settings": Rule(frozenset({"admin"}), "admin"),                 # see the station's settings and accounts
}
assert all(rule.scope in TOKEN_SCOPES and rule.roles <= set(ROLES) for rule in RULES.values())


@dataclass(frozen=True)
class Caller:
    """Who calls: ``actor`` names them in events; a person has a ``role``, a token has ``scopes``."""

    actor: str
    role: str | None = None
    scopes: frozenset[str] = frozenset()

    @classmethod
    def person(cls, user: User) -> Caller:
        """A signed-in user as a caller: their role decides."""
        return cls(user.actor, role=user.role)


def allowed(caller: Caller, action: str) -> bool:
    """Whether the caller may do ``action`` (a key of RULES)."""
    rule = RULES[action]
    return caller.role in rule.roles if caller.role is not None else rule.scope in caller.scopes


def require(caller: Caller, action: str) -> None:
    """Refuse (403) what the caller may not do, saying who may."""
    if allowed(caller, action):
        return
    rule = RULES[action]
    if caller.role is not None:
        who = " or ".join(sorted(rule.roles))
        raise Forbidden(f"{caller.actor.partition(':')[2]} is {'an' if caller.role[0] in 'aeiou' else 'a'} {caller.role}; "
                        f"only {who} accounts may do this: ask an admin")
    raise Forbidden(f"this token lacks the scope {rule.scope!r} (it has: {', '.join(sorted(caller.scopes)) or 'none'}); "
                    f"create one with `station token create --name NAME --scope {rule.scope}`")


WayIn = Callable[[Request], "Caller | None"]


class Unauthorized(StationError):
    """No credentials, or none that the station knows."""

    status = 401


def bearer(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header (any case of the scheme)."""
    scheme, _, credential = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


@dataclass
class _Refusals:
    """An address's minute of refusals: when it began, and those after its first (not yet written)."""

    start: float  # time.monotonic()
    since: str  # the time of day of its first refusal
    reason: str
    count: int = 0

    def summary(self, remote: str) -> list[dict[str, Any]]:
        """The event details that stand for the minute's refusals after the first (none if there were none)."""
        return [{"remote": remote, "reason": self.reason, "count": self.count, "since": self.since}] if self.count else []


class Access:
    """The access rules of one app: client networks for devices, ways in for the JSON API."""

    def __init__(self, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None,
                 reader: Callable[[], Store], writer: Writer) -> None:
        self.networks = networks  # station.json5 client_networks, checked by config.py; None: any address
        self._reader = reader
        self._writer = writer
        self._touched: dict[str, float] = {}
        self._refused: dict[str, _Refusals] = {}
        self._lock = threading.Lock()
        self.ways_in: list[WayIn] = [self._token]

    def device_allowed(self, remote: str | None) -> bool:
        """Whether a device may call from this address."""
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def check_device(self, remote: str | None) -> None:
        """Refuse a device call from outside the client networks, with an event for the first refusal of an
        address in a minute and one summary (``count``) for the rest of that minute, written when the address
        is refused again after it, or on close."""
        if not self.device_allowed(remote):
            message = (
                f"this station serves devices on {', '.join(map(str, self.networks or ()))} only, not {remote}; "
                f"connect the unit to the production network or add its network to client_networks"
            )
            for details in self._count_refusal(str(remote), message):
                self._writer.call(Store.record, None, Kind.REFUSED, "device", details)
            raise Forbidden(message)

    def _count_refusal(self, remote: str, reason: str) -> list[dict[str, Any]]:
        """The refusal events to write now for one more refusal of ``remote`` (none while its minute runs)."""
        moment = time.monotonic()
        due: list[dict[str, Any]] = []
        with self._lock:
            if remote not in self._refused and len(self._refused) >= REFUSED_ADDRESSES:
                for address in [a for a, window in self._refused.items() if moment - window.start >= REFUSALS_EVERY]:
                    due.extend(self._refused.pop(address).summary(address))
                if len(self._refused) >= REFUSED_ADDRESSES:
                    remote = OTHERS
            window = self._refused.get(remote)
            if window is not None and moment - window.start < REFUSALS_EVERY:
                window.count += 1
                return due
            if window is not None:
                due.extend(window.summary(remote))
            self._refused[remote] = _Refusals(moment, now(), reason)
        due.append({"remote": remote, "reason": reason, "count": 1})
        return due

    def close(self) -> None:
        """Write the refusals counted but not yet written (the server stops)."""
        with self._lock:
            due = [details for address, window in self._refused.items() for details in window.summary(address)]
            self._refused.clear()
        try:
            for details in due:
                self._writer.call(Store.record, None, Kind.REFUSED, "device", details)
        except StationError as exc:  # the store is gone or full: say so, the stop goes on
            log.warning("refusals not written", extra={"reason": str(exc), "events": len(due)})

    def caller(self, request: Request) -> Caller:
        """Who is calling the JSON API; refuses a request no way in accepts."""
        for way_in in self.ways_in:
            who = way_in(request)
            if who:
                return who
        if request.headers.get("Authorization"):
            raise Unauthorized("the bearer token is not known to this station (revoked?); create one with `station token create --name NAME`")
        raise Unauthorized("this API needs `Authorization: Bearer <token>`; create a token with `station token create --name NAME`")

    def _token(self, request: Request) -> Caller | None:
        token = bearer(request.headers.get("Authorization"))
        grant = self._reader().token_grant(token) if token else None
        if grant is None:
            return None
        name, scopes = grant
        now = time.monotonic()
        with self._lock:
            due = now - self._touched.get(name, -TOUCH_EVERY) >= TOUCH_EVERY
            if due:
                self._touched[name] = now
        if due:
            self._writer.call(Store.touch_token, name)
        return Caller(f"api:{name}", scopes=scopes)
