"""Who may call what.

Devices (``/ioto/serialize``, ``/api/device/register``) send no credentials, so they are let in by where
they call from: any address, or only the configured ``client_networks``. Everything under ``/api/v1/``
needs a caller: ``Access.caller`` asks each way in (``ways_in``) in turn; an API bearer token is the first,
and the operator pages will append a session-cookie way in without touching the others.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Request

from ..errors import Forbidden, Invalid, StationError
from ..store import Store
from .hub import HubClient
from .writer import Writer

TOUCH_EVERY = 60.0  # seconds between two notes of a token's last use: a write per API call would be waste

WayIn = Callable[[Request], "str | None"]


class Unauthorized(StationError):
    """No credentials, or none that the station knows."""

    status = 401


def parse_networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    """The ``client_networks`` setting: a list of CIDR blocks, or None (null or absent) for any address."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Invalid(f"client_networks in station.json5 must be a list of CIDR blocks such as \"10.20.0.0/16\", not {value!r}")
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in value)
    except ValueError as exc:
        raise Invalid(f"client_networks in station.json5: {exc}; write blocks such as \"10.20.0.0/16\"") from exc


def bearer(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header (any case of the scheme)."""
    scheme, _, credential = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


class Access:
    """The access rules of one app: client networks for devices, ways in for the JSON API."""

    def __init__(self, networks: Any, reader: Callable[[], Store], writer: Writer | HubClient) -> None:
        self.networks = parse_networks(networks)
        self._reader = reader
        self._writer = writer
        self._touched: dict[str, float] = {}
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
        """Refuse, with an event, a device call from outside the client networks."""
        if not self.device_allowed(remote):
            message = (
                f"this station serves devices on {', '.join(map(str, self.networks or ()))} only, not {remote}; "
                f"connect the unit to the production network or add its network to client_networks"
            )
            self._writer.call(Store.record, None, "refused", "device", {"remote": remote, "reason": message})
            raise Forbidden(message)

    def caller(self, request: Request) -> str:
        """Who is calling the JSON API (``api:<token name>``); refuses a request no way in accepts."""
        for way_in in self.ways_in:
            who = way_in(request)
            if who:
                return who
        if request.headers.get("Authorization"):
            raise Unauthorized("the bearer token is not known to this station (revoked?); create one with `station token create --name NAME`")
        raise Unauthorized("this API needs `Authorization: Bearer <token>`; create a token with `station token create --name NAME`")

    def _token(self, request: Request) -> str | None:
        token = bearer(request.headers.get("Authorization"))
        name = self._reader().token_name(token) if token else None
        if name is None:
            return None
        now = time.monotonic()
        with self._lock:
            due = now - self._touched.get(name, -TOUCH_EVERY) >= TOUCH_EVERY
            if due:
                self._touched[name] = now
        if due:
            self._writer.call(lambda store: store.touch_token(name))
        return f"api:{name}"
