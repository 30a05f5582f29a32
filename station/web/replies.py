"""The one shape of every error reply, ``{"error": "..."}`` with its status, for the parts that answer in plain
WSGI before Flask (the body cap, the reserve of threads, the device endpoints) and for Flask's handlers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def json_body(reply: Any) -> bytes:
    """A reply object as compact JSON, as the Ioto agent and every tool read it."""
    return json.dumps(reply, separators=(",", ":")).encode()


def error_headers(status: int) -> list[tuple[str, str]]:
    """Headers every error reply carries beside its body: a 401 names the way in."""
    return [("WWW-Authenticate", "Bearer")] if status == 401 else []


def answer(start_response: StartResponse, status: int, reply: Any,
           headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    """Send ``reply`` as a JSON reply with its Content-Length (the Ioto agent reads only replies that have one)."""
    return send(start_response, status, json_body(reply), "application/json", headers)


def send(start_response: StartResponse, status: int, body: bytes, content_type: str,
         headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    """Send ``body`` as it is, with its Content-Length."""
    start_response(f"{status} {HTTPStatus(status).phrase}",
                   [("Content-Type", content_type), *headers, ("Content-Length", str(len(body)))])
    return [body]


def error(start_response: StartResponse, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    """Answer ``{"error": message}`` with ``status``."""
    return answer(start_response, status, {"error": message}, [*error_headers(status), *headers])
