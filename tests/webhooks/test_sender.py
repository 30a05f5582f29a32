"""One lane's POSTs (the Sender) against real receivers on 127.0.0.1: HTTPS trusted as Python trusts it, a
certificate it must refuse, a refused port, a status other than 2xx, a hang past the timeout, and a reply
longer than the station reads."""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from station.core.webhooks import Endpoint
from station.webhooks import signing
from station.webhooks.delivery import REPLY_MAX, Sender
from tests.credentials.pki import key_pem, leaf, other_ca
from tests.webhooks.conftest import SECRET

BODY = b'{"id":"erp:1","event":{"id":1}}'


class Answers:
    """A receiver on 127.0.0.1 (HTTP, or HTTPS with ``tls``) that answers each POST as ``mode`` says."""

    def __init__(self, mode: str = "ok", tls: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        self.verified: list[bool] = []
        self.release = threading.Event()
        answers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    signing.verify(SECRET, raw, self.headers[signing.HEADER])
                    answers.verified.append(raw == BODY and self.headers["Station-Webhook-Id"] == "erp:1")
                except signing.BadSignature:
                    answers.verified.append(False)
                if answers.mode == "hang":
                    answers.release.wait(10)
                reply = b"x" * (REPLY_MAX * 4) if answers.mode in ("long", "long-fail") else b""
                try:
                    self.send_response(500 if answers.mode in ("fail", "long-fail") else 200)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:  # the station stopped reading
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}/in"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answers() -> Iterator[Answers]:
    running = Answers()
    yield running
    running.close()


def endpoint(url: str, timeout: float = 10.0) -> Endpoint:
    return Endpoint("erp", url, ("issued",), SECRET, timeout)


def tls_context(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1 from a CA of the tests; the CA's file."""
    ca_path, _, ca, ca_key = other_ca(folder, cn="Receiver's CA")
    key, cert = leaf(ca, ca_key, "receiver", server=True, ip="127.0.0.1")
    (folder / "server.crt").write_bytes(cert)
    (folder / "server.key").write_bytes(key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.crt", folder / "server.key")
    return context, ca_path


def test_https_is_trusted_as_python_trusts_it_and_a_stranger_is_refused(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    context, ca_path = tls_context(tmp_path)
    receiver = Answers(tls=context)
    try:
        sender = Sender(endpoint(receiver.url))
        error = sender.post("erp:1", BODY)  # the system's CAs do not know the tests' CA
        assert error is not None and error.startswith("TLS failed:") and receiver.verified == []
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_path))  # how an operator trusts a private CA, for Python too
        sender = Sender(endpoint(receiver.url))
        assert sender.post("erp:1", BODY) is None
        assert sender.post("erp:1", BODY) is None  # the same connection, kept alive
        assert receiver.verified == [True, True]
        sender.disconnect()
    finally:
        receiver.close()


def test_a_refused_port_a_failure_and_a_hang_each_say_what_happened(answers: Answers) -> None:
    refused = Answers()
    refused.close()
    assert Sender(endpoint(refused.url)).post("erp:1", BODY) == "cannot reach the receiver: Connection refused"
    answers.mode = "fail"
    assert Sender(endpoint(answers.url)).post("erp:1", BODY) == "HTTP 500"
    answers.mode = "hang"
    started = time.monotonic()
    assert Sender(endpoint(answers.url, timeout=0.5)).post("erp:1", BODY) == \
        "no answer within 0.5 s (the endpoint's timeout)"
    assert time.monotonic() - started < 5
    assert answers.verified == [True, True]


def test_a_reply_longer_than_read_still_delivers_and_drops_its_connection(answers: Answers) -> None:
    answers.mode = "long"
    sender = Sender(endpoint(answers.url))
    assert sender.post("erp:1", BODY) is None
    answers.mode = "long-fail"
    assert sender.post("erp:1", BODY) == "HTTP 500"  # its status, however long the reply
    answers.mode = "ok"
    assert sender.post("erp:1", BODY) is None  # on a new connection
    assert answers.verified == [True, True, True]
