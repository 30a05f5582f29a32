"""Relaying a unit's registration to the real Builder (``registration_upstream``; DESIGN.md section 3).

The unit's POST goes on with the same body and the same ``Authorization``, and the Builder's reply comes back
unchanged: only the real Builder may answer with ``api`` and ``token``, which claim the unit and send its
provisioning there. The whole exchange is bounded by one deadline, so a Builder that trickles or hangs costs
the unit's request no more than the configured timeout.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ..core.errors import StationError

MAX_REPLY = 64 * 1024  # bytes of a Builder's reply: a registration answer is a few hundred
PATH = "/device/register"  # below the Builder URL, as the agent appends it to api.builder


class UpstreamFailed(StationError):
    """The upstream Builder did not give a registration the unit can use; the message names it."""

    status = 502


class UpstreamTimeout(UpstreamFailed):
    status = 504


@dataclass(frozen=True)
class Relayed:
    """The Builder's reply, as the unit gets it, and what the station records of it."""

    body: bytes
    content_type: str
    reply: dict[str, Any]

    @property
    def claimed(self) -> bool:
        """The Builder sent the unit to its provisioning: the unit is claimed in the cloud."""
        return bool(self.reply.get("api")) and bool(self.reply.get("token"))


def shown(upstream: str) -> str:
    """The Builder's URL as messages and events name it: without any user or password it may carry."""
    parts = urllib.parse.urlsplit(upstream)
    host = parts.hostname or ""
    return urllib.parse.urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))


def relay(upstream: str, body: bytes, authorization: str, device_id: str, timeout: float) -> Relayed:
    """POST the registration to ``upstream``/device/register and return its reply, which must be a registration
    of ``device_id`` (a JSON object of at least two keys whose ``id`` is the unit's, as the agent requires)."""
    name = shown(upstream) + PATH
    deadline = time.monotonic() + timeout
    try:
        status, data, content_type = _post(upstream + PATH, body, authorization, deadline)
    except TimeoutError:
        raise UpstreamTimeout(f"the upstream Builder {name} did not answer within {timeout:g} s; the unit will try "
                              f"again: check the station's network and registration_upstream in station.json5") from None
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        raise UpstreamFailed(f"the upstream Builder {name} cannot be reached ({exc}); check registration_upstream in "
                             f"station.json5 and the station's network") from None
    if status != 200:
        raise UpstreamFailed(f"the upstream Builder {name} answered status {status}: {_excerpt(data)}; check the "
                             f"product ID (the unit's Authorization) with the Builder")
    try:
        reply = json.loads(data)
    except (ValueError, RecursionError):
        reply = None
    if not isinstance(reply, dict) or len(reply) < 2 or reply.get("id") != device_id:
        raise UpstreamFailed(f"the upstream Builder {name} answered with what is not a registration of {device_id} "
                             f"({_excerpt(data)}); is registration_upstream the Builder's API URL?")
    return Relayed(data, content_type, reply)


def _post(url: str, body: bytes, authorization: str, deadline: float) -> tuple[int, bytes, str]:
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=_left(deadline))
    try:
        connection.request("POST", parts.path, body=body, headers={
            "Authorization": authorization, "Content-Type": "application/json"})
        sock = connection.sock  # the response keeps reading it after the connection lets go of it
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while chunk := _read(sock, response, deadline):
            size += len(chunk)
            if size > MAX_REPLY:
                raise http.client.HTTPException(f"its reply is larger than {MAX_REPLY // 1024} KiB")
            chunks.append(chunk)
        return response.status, b"".join(chunks), response.getheader("Content-Type") or "application/json"
    finally:
        connection.close()


def _read(sock: socket.socket | None, response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The next part of the reply, within what is left of the deadline (each read is bounded on its own)."""
    if sock is not None:
        sock.settimeout(_left(deadline))
    return response.read1(4096)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _excerpt(data: bytes) -> str:
    """What the Builder sent, short and printable, for a message."""
    text = data[:120].decode("utf-8", "replace")
    printable = "".join(c if c.isprintable() else "?" for c in text)
    return repr(printable + ("..." if len(data) > 120 else "")) if data else "an empty body"
