"""A server of the Embedthis Builder's shape (DESIGN.md section 3) on 127.0.0.1, started by the tests: it answers
``POST /api/device/register`` as the Builder does, or fails the way a tested fault says, and keeps every request
it got (headers and body bytes) for the test to compare with what the unit sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

HANG_FOR = 30.0  # seconds a hanging Builder holds a request at most: the test's stop event ends it sooner


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Builder:
    """``mode``: ``register`` (a registered unit), ``claim`` (a claimed one: ``api`` and ``token``), ``garbage``
    (200 with HTML), ``wrong-id``, ``fail`` (503), ``hang`` (no answer)."""

    mode: str = "register"
    requests: list[Request] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        builder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                builder.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                builder.answer(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """What ``registration_upstream`` names: the Builder's API, below which the agent's path goes."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if self.mode == "hang":
            self.stopping.wait(HANG_FOR)
            return
        device = json.loads(body)
        status, reply = 200, {"registered": True, "id": device["id"], "product": device["product"]}
        if self.mode == "claim":
            reply.update(api="https://device.example.test/api", token="TOK-secret-from-the-builder-7734")
        if self.mode == "wrong-id":
            reply["id"] = "0000000000"
        data = json.dumps(reply, indent=1).encode()  # not the station's compact form: a relay passes it as it is
        if self.mode == "garbage":
            data = b"<html><body>502 Bad Gateway</body></html>"
        if self.mode == "fail":
            status, data = 503, b'{"error":"Service unavailable"}'
        self.replies.append(data)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", name="builder")
def builder_fixture() -> Iterator[Builder]:
    """A Builder for a module's tests (import it into the module), closed after them."""
    running = Builder()
    yield running
    running.close()
