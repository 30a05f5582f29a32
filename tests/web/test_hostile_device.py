"""Hostile input against a real `station serve`: the device endpoints and
the API's issuance take surrogates, NUL, control characters, oversize bodies and bad URLs without storing any of
it, without failing the good requests beside them, and without answering a claim ID to a client that has no
right to it any more."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from station.core.errors import StationError
from station.store import Store
from station.web.bodies import MAX_BODY, content_length
from tests.conftest import PRODUCT, dump
from tests.web.conftest import IOTO_BODY, STATION, Server, count, prepare, read_reply

WAIT = 30.0  # seconds any one exchange may take, at most
HUGE = 50_000_000  # bytes a hostile client says it will send


def exchange(server: Server, data: bytes, source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a new connection and read one reply (to its Content-Length, or until the server closes)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT, source_address=(source, 0)) as sock:
        sock.sendall(data)
        reply = read_reply(sock)
    return reply.status, reply.headers, reply.raw


def post(path: str, body: bytes, port: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def stored(server: Server) -> tuple[int, int]:
    return count(server.db, "SELECT count(*) FROM devices"), count(server.db, "SELECT count(*) FROM idempotency")


# Bodies as a hostile client writes them: JSON escapes that decode to text SQLite cannot hold, or that no label
# can print, in every field the station reads and in fields it does not.
SURROGATE, NUL = "\\ud800", "\\u0000"
HOSTILE_DEVICE = [
    ('{"product":"%s"}' % SURROGATE, "product"),
    ('{"product":"%s","serial":"SN-%s"}' % (PRODUCT, SURROGATE), "serial"),
    ('{"product":"%s","mac":"AA%s"}' % (PRODUCT, NUL), "mac"),
    ('{"product":"%s","hwid":"%s"}' % (PRODUCT, SURROGATE), "hwid"),
    ('{"product":"%s","name":"Blank%s"}' % (PRODUCT, NUL), "name"),
    ('{"product":"%s","extra":{"deep":["ok","%s"]}}' % (PRODUCT, SURROGATE), "extra.deep[1]"),
    ('{"product":"%s","x%s":1}' % (PRODUCT, SURROGATE), "a field name"),
    ('{"product":"%s","serial":"SN\\u001b[31m"}' % PRODUCT, "serial holds U+001B"),
    ('{"product":"%s","serial":"SN-\\u202e1"}' % PRODUCT, "serial holds U+202E"),
    ('{"product":"%s","mac":"\\ud83d\\ude00"}' % PRODUCT, "mac holds U+1F600"),
    ('{"product":"%s","serial":"%s"}' % (PRODUCT, "S" * 65), "serial is longer than 64"),
    ('{"product":"%s","serial":"%s"}' % (PRODUCT, "S" * 200), "serial is longer than 64"),
]


@pytest.mark.parametrize("body,field", HOSTILE_DEVICE, ids=[f for _, f in HOSTILE_DEVICE])
def test_hostile_device_objects_get_400_naming_the_field_and_store_nothing(server: Server, body: str, field: str) -> None:
    before = stored(server)
    status, _, reply = exchange(server, post("/ioto/serialize", body.encode(), server.port))
    assert status == 400 and field in json.loads(reply)["error"]
    assert stored(server) == before


@pytest.mark.parametrize("body,field", [
    ('{"product":"%s","id":"%s"}' % (PRODUCT, SURROGATE), "id"),
    ('{"product":"%s","id":"0000000000000000","extra":"%s"}' % (PRODUCT, NUL), "extra"),
], ids=["surrogate id", "NUL field"])
def test_hostile_registrations_get_400_and_change_nothing(server: Server, body: str, field: str) -> None:
    before = dump(server.db)
    auth = f"Authorization: bearer {PRODUCT}\r\n"
    status, _, reply = exchange(server, post("/api/device/register", body.encode(), server.port, auth))
    assert status == 400 and field in json.loads(reply)["error"]
    assert dump(server.db) == before


def test_a_hostile_idempotency_key_gets_400(server: Server) -> None:
    before = stored(server)
    for key, problem in ((b"k\tk", "U+0009"), (b"k\xffk", "not ASCII"), (b" ", "empty"), (b"k" * 65 * 4, "longer than 200")):
        data = post("/ioto/serialize", json.dumps(IOTO_BODY).encode(), server.port).replace(
            b"\r\n\r\n", b"\r\nIdempotency-Key: " + key + b"\r\n\r\n", 1)
        status, _, reply = exchange(server, data)
        assert status == 400 and "Idempotency-Key" in json.loads(reply)["error"] and problem in json.loads(reply)["error"]
    assert stored(server) == before


HOSTILE_API = [
    ('{"product":"%s"}' % SURROGATE, "product"),
    ('{"product":"%s","serial":"SN-%s"}' % (PRODUCT, SURROGATE), "serial"),
    ('{"product":"%s","serial":"SN-%s"}' % (PRODUCT, NUL), "serial"),
    ('{"product":"%s","serial":"SN\\u001b]0;x\\u0007"}' % PRODUCT, "serial holds U+001B"),
    ('{"product":"%s","serial":"SN-\\u202e1"}' % PRODUCT, "serial holds U+202E"),
    ('{"product":"%s","serial":"\\ud83d\\ude00"}' % PRODUCT, "serial holds U+1F600"),
    ('{"product":"%s","serial":"%s"}' % (PRODUCT, "S" * 200), "serial is longer than 64"),
]


@pytest.mark.parametrize("body,field", HOSTILE_API, ids=[f for _, f in HOSTILE_API])
def test_hostile_api_issues_get_400_naming_the_field_and_store_nothing(server: Server, token: str, body: str,
                                                                       field: str) -> None:
    before = stored(server)
    reply = server.call("POST", "/api/v1/devices", body.encode(), {"Authorization": f"Bearer {token}"})
    assert reply.status == 400 and field in reply.json["error"]
    assert stored(server) == before


def test_hostile_clients_beside_good_ones_fail_no_good_request(server: Server) -> None:
    """Four hostile clients among twelve, all at once: every good unit gets 200 and its UCI is stored."""
    hostile_bodies = [body.encode() for body, _ in HOSTILE_DEVICE]
    answers: dict[str, list[Any]] = {"good": [], "hostile": []}
    lock = threading.Lock()

    def good(client: int) -> None:
        for n in range(25):
            serial = f"GOOD-{client}-{n}"
            body = json.dumps({**IOTO_BODY, "serial": serial}, separators=(",", ":")).encode()
            status, _, reply = exchange(server, post("/ioto/serialize", body, server.port))
            with lock:
                answers["good"].append((serial, status, json.loads(reply)))

    def hostile(client: int) -> None:
        for n in range(25):
            body = hostile_bodies[(client + n) % len(hostile_bodies)]
            status, _, _ = exchange(server, post("/ioto/serialize", body, server.port))
            with lock:
                answers["hostile"].append(status)

    threads = [threading.Thread(target=good, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=hostile, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert len(answers["good"]) == 200 and {status for _, status, _ in answers["good"]} == {200}
    assert len(answers["hostile"]) == 100 and set(answers["hostile"]) == {400}
    with Store.open(server.db) as store:
        for serial, _, reply in answers["good"]:
            assert store.device(reply["id"]).hwkey == f"serial:{serial}"


@pytest.mark.parametrize("path", ["/ioto/serialize", "/api/device/register", "/api/v1/devices", "/signin", "/nowhere"])
def test_a_huge_content_length_is_refused_before_its_body_is_sent(server: Server, path: str) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {HUGE}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(head)  # and not one byte of the body: the answer must come without it
        assert read_reply(sock).status == 413
        assert sock.recv(1) == b""  # and the server has closed the connection: it will read nothing of the body


@pytest.mark.parametrize("path", ["/ioto/serialize", "/api/v1/devices", "/signin"])
def test_a_chunked_body_is_not_read_beyond_the_cap(server: Server, path: str) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"2000\r\n" + b" " * 0x2000 + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(head)
        try:
            for _ in range(HUGE // len(chunk)):  # bounded: the server stops it long before
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server answered and closed while the client was still sending
            pass
        status = read_reply(sock).status
    assert status == 413 and sent < HUGE // 10


@pytest.mark.parametrize("target", ["/devices\x7f", "/ioto/serialize\x7f", "/api/v1/lookup?code=\x7f",
                                    "/api/v1/devices/\x00", "/signin\x1b[2J", "/static/\x01station.css"])
def test_control_characters_in_the_url_are_a_400_before_the_app(server: Server, target: str) -> None:
    """No URL may hold a raw control character (RFC 9112): the HTTP server refuses the request line itself, so no
    part of the station ever sees one. Percent-encoded, they are URL text, which the routes judge."""
    before = server.log.read_bytes()
    status, _, _ = exchange(server, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("latin-1"))
    assert status == 400
    after = server.log.read_bytes()[len(before):].decode(errors="replace")
    assert '"level": "ERROR"' not in after and '"path"' not in after  # the app was never called


def test_a_registered_unit_does_not_get_its_uci_again_by_its_hardware_key(server: Server) -> None:
    unit = {**IOTO_BODY, "mac": "AA:BB:CC:DD:EE:01"}
    code = server.serialize(unit).json["id"]
    assert server.serialize(unit).json["id"] == code  # still in the factory: a restarted unit gets it back
    assert server.register({**IOTO_BODY, "id": code}).status == 200
    before = stored(server)
    again = server.serialize(unit)
    assert again.status == 409 and code not in again.raw.decode() and "station void" in again.json["error"]
    assert stored(server) == before
    with Store.open(server.db) as store:
        last = store.events(code)[-1]
    assert last.kind == "refused" and last.details["hwkey"] == "mac:AA:BB:CC:DD:EE:01" and last.details["remote"] == "127.0.0.1"


def test_an_idempotency_key_names_a_request_of_one_client_address(server: Server, token: str) -> None:
    keyed = "Idempotency-Key: boot-scope-1\r\n"
    body = json.dumps(IOTO_BODY, separators=(",", ":")).encode()
    here = json.loads(exchange(server, post("/ioto/serialize", body, server.port, keyed))[2])["id"]
    assert json.loads(exchange(server, post("/ioto/serialize", body, server.port, keyed))[2])["id"] == here
    status, _, reply = exchange(server, post("/ioto/serialize", body, server.port, keyed), source="127.0.0.2")
    assert status == 200 and json.loads(reply)["id"] != here  # another client's key names another request

    api = json.dumps({"product": PRODUCT}).encode()
    auth = f"Authorization: Bearer {token}\r\nIdempotency-Key: api-scope-1\r\n"
    status, _, reply = exchange(server, post("/api/v1/devices", api, server.port, auth))
    first = json.loads(reply)["uci"]
    assert status == 201 and json.loads(exchange(server, post("/api/v1/devices", api, server.port, auth))[2])["uci"] == first
    status, _, reply = exchange(server, post("/api/v1/devices", api, server.port, auth), source="127.0.0.2")
    assert status == 201 and json.loads(reply)["uci"] != first
    assert count(server.db, "SELECT count(*) FROM idempotency WHERE remote = '127.0.0.2'") == 2


@pytest.mark.parametrize("config", ["{repeat_window: -1}", '{repeat_window: "1d"}', "{idempotency_window: true}",
                                    "{idempotency_window: 1e12}"])
def test_a_bad_window_stops_serve_with_one_line(tmp_path: Path, config: str) -> None:
    prepare(tmp_path)
    (tmp_path / "station.json5").write_text(config)
    done = subprocess.run([*STATION, "--data-dir", str(tmp_path), "serve", "--port", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "_window in " in last and "station.json5 must be a number of seconds" in last


def test_a_repeat_window_of_station_json5_applies(tmp_path: Path) -> None:
    prepare(tmp_path)
    (tmp_path / "station.json5").write_text("{repeat_window: 10000000}")  # about 116 days
    running = Server(tmp_path)
    try:
        unit, older = {**IOTO_BODY, "serial": "SN-LONG-REPEAT"}, {**IOTO_BODY, "serial": "SN-TOO-OLD"}
        code, old = running.serialize(unit).json["id"], running.serialize(older).json["id"]
        with Store.open(running.db) as store, store.transaction() as conn:
            for uci, days in ((code, 30), (old, 200)):
                then = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds")[:23] + "Z"
                conn.execute("UPDATE devices SET created = ? WHERE uci = ?", (then, uci))
        assert running.serialize(unit).json["id"] == code  # past the default day, within the configured window
        assert running.serialize(older).status == 409  # past the configured window too
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize(("sent", "status"), [("²", 400), ("1_0", 400), ("-1", 400), ("+5", 400), ("99999999999999999999", 413), ("9" * 5000, 413),
                                              (str(MAX_BODY + 1), 413)])
def test_a_content_length_that_is_no_size_is_refused_before_reading(sent: str, status: int) -> None:
    """Waitress checks the header before the app sees it; the device endpoints and the relay check it again,
    through the one parser of numbers, in case another server sits in front."""
    with pytest.raises(StationError) as refused:
        content_length({"CONTENT_LENGTH": sent})
    assert refused.value.status == status
    assert ("Content-Length" if status == 400 else "larger than") in str(refused.value)
    assert content_length({"CONTENT_LENGTH": " 12 "}) == 12 and content_length({}) == 0
