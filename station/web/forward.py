"""Worker processes answer the device endpoints themselves and pass every other request to the main process.

The pages, the JSON API and the line keep state that must live in one process: the line's tiles and its rig's
serial ports, the browsers following the line, the sign-in limits. So the main process serves the Flask app on
a private port of 127.0.0.1, and a worker relays each such request there, streaming the reply (the line's
event stream included). The relayed request carries this run's key and the client's address: the main process
refuses requests without the key, and puts the address back where access rules and logs read it.
"""

from __future__ import annotations

import hmac
import http.client
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from ..errors import StationError
from .bodies import MAX_BODY, TOO_LARGE, content_length

KEY_HEADER = "X-Station-Forward-Key"
PEER_HEADER = "X-Station-Peer"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
              "transfer-encoding", "upgrade"}
TIMEOUT = 330.0  # seconds without a byte from the main process; the line's event stream sends one every 15 s
CHUNK = 65536

log = logging.getLogger("station.web")
StartResponse = Callable[..., Any]


def _reply(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Forward:
    """A worker's WSGI app for every path but the device endpoints: relays the request to the main process."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port, self.key = host, port, key

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = content_length(environ)
        except StationError as exc:
            return _reply(start_response, f"{exc.status} {HTTPStatus(exc.status).phrase}", str(exc))
        body = environ["wsgi.input"].read(min(length, MAX_BODY + 1) if length else MAX_BODY + 1)
        if len(body) > MAX_BODY:  # the app refuses these too: no need to carry them across
            return _reply(start_response, "413 Request Entity Too Large", TOO_LARGE)
        headers = {name[5:].replace("_", "-").title(): value for name, value in environ.items()
                   if name.startswith("HTTP_") and name[5:].replace("_", "-").lower() not in HOP_BY_HOP}
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").title()] = environ[name]
        headers["Content-Length"] = str(len(body))
        headers[KEY_HEADER] = self.key
        headers[PEER_HEADER] = environ.get("REMOTE_ADDR") or ""
        target = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            conn.request(environ["REQUEST_METHOD"], target, body=body, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            log.error("main process did not answer", extra={"path": environ.get("PATH_INFO"), "reason": str(exc)})
            return _reply(start_response, "503 Service Unavailable",
                          "the station's main process did not answer; try again, and restart `station serve` if it persists")
        start_response(f"{response.status} {response.reason}",
                       [(name, value) for name, value in response.getheaders() if name.lower() not in HOP_BY_HOP])
        return _relay(conn, response)


def _relay(conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The reply's body as it comes (an event stream never ends by itself); closed when the client goes."""
    try:
        while chunk := response.read1(CHUNK):
            yield chunk
    except (OSError, http.client.HTTPException):
        return  # the main process stopped mid-reply: the client sees the reply cut short
    finally:
        conn.close()


class Forwarded:
    """The main process's app on its private port: only requests relayed by a worker (they carry this run's
    key), with the client's address put back in ``REMOTE_ADDR``."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], key: str) -> None:
        self.app, self.key = app, key

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        given = environ.pop("HTTP_" + KEY_HEADER.upper().replace("-", "_"), "")
        peer = environ.pop("HTTP_" + PEER_HEADER.upper().replace("-", "_"), "")
        if not hmac.compare_digest(given.encode(), self.key.encode()):
            return _reply(start_response, "403 Forbidden", "this port takes requests from the station's own workers only; "
                                                           "use the port that `station serve` names")
        environ["REMOTE_ADDR"] = peer
        return self.app(environ, start_response)
