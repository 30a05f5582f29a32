"""Reading what a client sent: a JSON object body with typed fields, and typed query parameters, each
refused with a 4xx that names the field and says what to send. Plain functions of bytes and mappings, so
that the Flask API and the bare-WSGI device endpoints share them."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..core import fields
from ..core.errors import Invalid, StationError
from . import replies
from .replies import StartResponse, WSGIApp
from .requestlog import log_request

MAX_KEY = fields.IDEMPOTENCY_MAX  # characters of any key a client sends: longer ones are not identifiers but junk
# Bytes of the largest body any endpoint takes: a device object is a few hundred, the JSON API's bodies and the
# pages' forms (sign-in, products) less. ``Capped`` refuses more, in front of every path.
MAX_BODY = 16 * 1024
TOO_LARGE = f"the body is larger than {MAX_BODY // 1024} KiB; a device object is a few hundred bytes"
_KINDS = {str: "a string", bool: "true or false", int: "a whole number"}


class TooLarge(StationError):
    """A body over MAX_BODY."""

    status = 413


def parse_object(data: bytes) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says (devices send application/json); text the
    store could not hold (NUL, a lone surrogate), anywhere in it, is refused here, naming its field."""
    if not data.strip():
        raise Invalid("the body is empty: send a JSON object with Content-Type: application/json")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"the body is not JSON ({str(exc)[:80]}); send a JSON object with Content-Type: application/json") from None
    if not isinstance(value, dict):
        raise Invalid(f"the body must be a JSON object {{...}}, not {type(value).__name__}")
    fields.check_tree(value)
    return value


def field(body: Mapping[str, Any], key: str, kind: type, *, required: bool = False, max_len: int = 1000) -> Any:
    """``body[key]`` checked against ``kind``; None when absent (or null) and not required."""
    value = body.get(key)
    if value is None:
        if required:
            raise Invalid(f"{key} is required ({_KINDS[kind]})")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(f"{key} must be {_KINDS[kind]}, not {json.dumps(value)[:60]}")
    if isinstance(value, str):
        value = value.strip()
        if required and not value:
            raise Invalid(f"{key} must not be empty")
        if len(value) > max_len:
            raise Invalid(f"{key} is longer than {max_len} characters")
    return value


def only_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse fields the endpoint does not know, so that a typo is not silently ignored."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Invalid(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(allowed)}")


def parse_int(text: str | None, name: str, low: int, high: int, *, default: int | None = None) -> int:
    """A whole number a person or program typed, within ``low..high`` (``default`` when absent): ASCII digits
    only (``int`` would take "²" or "1_000"), refused with a message that names it and its bounds."""
    if text is None or (default is not None and not text.strip()):
        if default is None:
            raise Invalid(f"{name} is required: a whole number from {low} to {high}")
        return default
    digits = text.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}, not {text[:40]!r}")
    return int(digits)


# The one body that may be larger: an admin's list of serials for a new batch (about 250,000 of them).
UPLOADS = {("POST", "/batches"): 4 * 1024 * 1024}
TOO_LARGE_UPLOAD = "the upload is larger than {} MiB; give a list this long to `station generate --serials`"


def _limit(environ: Mapping[str, Any]) -> tuple[int, str]:
    """The largest body this request may have, and the refusal's message."""
    upload = UPLOADS.get((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")))
    return (upload, TOO_LARGE_UPLOAD.format(upload // 2**20)) if upload else (MAX_BODY, TOO_LARGE)


def content_length(environ: Mapping[str, Any]) -> int:
    """The body's declared size in bytes (0 when absent or chunked), refused above its limit (MAX_BODY, or the
    upload's) before any of it is read."""
    limit, message = _limit(environ)
    text = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if text.isascii() and text.isdigit() and (len(text) > len(str(limit)) or int(text) > limit):
        raise TooLarge(message)
    return parse_int(text, "the Content-Length header", 0, limit)


def query_int(args: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within ``low..high``."""
    return parse_int(args.get(key), key, low, high, default=default)


def idempotency_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header: a client's name for one request, so that its retry is not a second one."""
    if header is None:
        return None
    if not header.strip():  # Granian hands on a value with bytes beyond ASCII as an empty one
        raise Invalid("the Idempotency-Key header is empty, or held bytes that are not ASCII: "
                      "send printable ASCII such as a UUID, or no header")
    return fields.idempotency_key(header)


class Capped:
    """In front of the whole app: no body over MAX_BODY (or its UPLOADS limit) reaches it, on any path. A declared one is refused by its
    Content-Length before a byte of it is read, a chunked one once MAX_BODY of it came; the connection is then
    closed, so that the rest is never read. (Granian, unlike waitress, has no limit of its own.)"""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                limit, message = _limit(environ)
                data = environ["wsgi.input"].read(limit + 1)
                if len(data) > limit:
                    raise TooLarge(message)
                environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(data), str(len(data))
            else:
                content_length(environ)
        except StationError as exc:
            started = time.perf_counter()
            reply = replies.error(start_response, exc.status, str(exc), [("Connection", "close")])
            log_request(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), exc.status, started,
                        environ.get("REMOTE_ADDR"), None)
            return reply
        return self.app(environ, start_response)
