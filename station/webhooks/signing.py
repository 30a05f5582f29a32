"""Signatures of webhook deliveries, Stripe's scheme: ``Station-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">``. The timestamp is inside the signed text, so a receiver that refuses old timestamps refuses
replays; a receiver needs only hmac and hashlib (the README shows the few lines)."""

from __future__ import annotations

import hashlib
import hmac
import time

from ..core.errors import Forbidden

HEADER = "Station-Signature"
TOLERANCE = 300  # seconds a receiver accepts between the timestamp and its own clock (Stripe's default)


class BadSignature(Forbidden):
    """A delivery whose signature does not verify: not from a station that holds the secret, or changed."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Station-Signature`` header's value for ``body``, at ``timestamp`` (now by default)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, body: bytes, header: str, tolerance: float = TOLERANCE, at: float | None = None) -> int:
    """Check a delivery as a receiver does; its timestamp. Any ``v1`` may match (a receiver rotating secrets
    checks each); a timestamp further than ``tolerance`` seconds from ``at`` (now) is refused as a replay."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise BadSignature(f"the {HEADER} header has no t=<unix time>; it must read t=<unix time>,v1=<hex>") from None
    if abs((time.time() if at is None else at) - timestamp) > tolerance:
        raise BadSignature(f"the {HEADER} timestamp is more than {tolerance:g} s from now: a replay, or a clock "
                           f"that is off (set the station's and the receiver's clocks by NTP)")
    expected = signature(secret, timestamp, body)
    given = [value.encode("utf-8", "surrogateescape") for value in parts.get("v1", [])]  # any text compares
    if not any(hmac.compare_digest(expected.encode(), value) for value in given):
        raise BadSignature("the signature does not match the body: another secret, or a body changed on the way")
    return timestamp
