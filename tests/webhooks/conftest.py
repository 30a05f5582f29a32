"""A webhook receiver on 127.0.0.1 for the tests: it answers 2xx, or as told fails (500), hangs past the
station's timeout, pauses (holding a request until released) or refuses (its port closed), and records every
request with whether its signature verified."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from station.webhooks import signing
from station.webhooks.signing import BadSignature

SECRET = "receiver-secret-of-the-tests-42"
HANG = 5.0  # seconds a hanging answer waits: past every timeout the tests configure (1 s), bounded


@dataclass
class Delivery:
    id: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    answered: int  # the status the receiver answered


class Receiver:
    """An HTTP/1.1 (keep-alive) receiver; ``plan`` holds how the next requests are answered, in turn."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.plan: list[str] = []  # "fail", "hang", "pause"; then 2xx
        self.seen: list[Delivery] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.paused = threading.Event()  # set once a "pause" request is held
        self.connections: list[socket.socket] = []  # kept-alive ones, cut by ``close``
        self.server: http.server.ThreadingHTTPServer | None = None
        self.port = 0
        self.open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/in?from=station"

    def open(self) -> None:
        """Listen (again) on the receiver's port."""
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections.append(self.connection)

            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    step = receiver.plan.pop(0) if receiver.plan else "ok"
                status = 500 if step == "fail" else 204
                if step == "hang":
                    receiver.released.wait(HANG)
                elif step == "pause":
                    receiver.paused.set()
                    receiver.released.wait(60)
                try:
                    signing.verify(receiver.secret, raw, self.headers[signing.HEADER])
                    verified = self.path == "/hooks/in?from=station"
                except BadSignature:
                    verified = False
                with receiver.lock:
                    receiver.seen.append(Delivery(self.headers["Station-Webhook-Id"], dict(self.headers),
                                                  json.loads(raw), verified, 0 if step == "hang" else status))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the station gave up (hang) or is gone (killed)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self.server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        """Stop listening: connections to the port are refused until ``open``."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections.clear()
        with socket.socket() as probe:  # the port really is closed now
            assert probe.connect_ex(("127.0.0.1", self.port)) != 0

    def delivered(self, endpoint: str | None = None) -> list[Delivery]:
        """Requests answered with 2xx, in the order they came (of one endpoint's, when named)."""
        with self.lock:
            return [d for d in self.seen if 200 <= d.answered < 300 and (endpoint is None or d.id.startswith(f"{endpoint}:"))]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.released.set()
    running.close()
