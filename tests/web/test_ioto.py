"""The Ioto device endpoints through a real `station serve`, with requests shaped byte for byte as an agent's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from station.core import uci
from station.store import Store
from tests.conftest import PRODUCT, dump, write_lock
from tests.web.conftest import DISABLED, IOTO_BODY, OTHER, STATION, Server, count, prepare

ALPHABET = set(uci.ALPHABET)


def events(db: Path, code: str) -> list[tuple[str, str]]:
    with Store.open(db) as store:
        return [(e.kind, e.actor) for e in store.events(code)]


def state(db: Path, code: str) -> str:
    with Store.open(db) as store:
        return store.device(code).state


def test_an_ioto_unit_gets_a_uci_then_registers_it(server: Server) -> None:
    reply = server.serialize()
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    code = reply.json["id"]
    assert len(code) == 16 and set(code) <= ALPHABET and uci.parse(code) == code
    assert state(server.db, code) == "issued"

    device = {**IOTO_BODY, "id": code, "created": "2026-01-01T00:00:00.000Z"}
    reply = server.register(device)
    assert reply.status == 200
    # Exactly these two: with `api` or `token` the agent would skip the real Builder for good (DESIGN.md 3).
    assert reply.json == {"registered": True, "id": code}
    assert state(server.db, code) == "registered"
    assert events(server.db, code) == [("issued", "device"), ("registered", "device")]

    again = server.register(device)  # a repeat is accepted and recorded, and moves nothing
    assert again.status == 200 and again.json["id"] == code
    assert state(server.db, code) == "registered"
    assert events(server.db, code)[-1] == ("registered", "device")
    assert len(events(server.db, code)) == 3


def test_a_unit_that_says_who_it_is_gets_its_uci_back(server: Server) -> None:
    first = server.serialize({**IOTO_BODY, "serial": "SN-0001"}).json["id"]
    assert server.serialize({**IOTO_BODY, "serial": "SN-0001"}).json["id"] == first
    assert [kind for kind, _ in events(server.db, first)] == ["issued", "issued-repeat"]
    assert count(server.db, "SELECT count(*) FROM devices WHERE hwkey = 'serial:SN-0001'") == 1

    by_mac = server.serialize({**IOTO_BODY, "mac": "AA:BB:CC:00:11:22"}).json["id"]
    assert server.serialize({**IOTO_BODY, "mac": "AA:BB:CC:00:11:22"}).json["id"] == by_mac != first
    other_product = server.serialize({**IOTO_BODY, "product": OTHER, "serial": "SN-0001"}).json["id"]
    assert other_product not in (first, by_mac) and len(other_product) == 10  # OTHER has 50-bit IDs

    keyed = server.serialize(extra="Idempotency-Key: unit-42-boot-1\r\n").json["id"]
    assert server.serialize(extra="Idempotency-Key: unit-42-boot-1\r\n").json["id"] == keyed
    anonymous = {server.serialize().json["id"] for _ in range(3)}
    assert len(anonymous) == 3 and keyed not in anonymous


BAD_BODIES = [
    (b"", 400, "empty"),
    (b"not json", 400, "not JSON"),
    (b"\xff\xfe\x00garbage", 400, "not JSON"),
    (b"[" * 10000, 400, "not JSON"),
    (b'["product"]', 400, "JSON object"),
    (b'"01H4R15D3478JD26YDYK408XE6"', 400, "JSON object"),
    (b"{}", 400, "product is required"),
    (b'{"product":5}', 400, "product must be a string"),
    (b'{"product":""}', 400, "product must not be empty"),
    (json.dumps({**IOTO_BODY, "name": 3}).encode(), 400, "name must be a string"),
    (json.dumps({**IOTO_BODY, "serial": 1234}).encode(), 400, "serial must be a string"),
    (json.dumps({**IOTO_BODY, "mac": ""}).encode(), 400, "mac must not be empty"),
    (json.dumps({**IOTO_BODY, "hwid": "x" * 201}).encode(), 400, "hwid is longer"),
    (json.dumps({**IOTO_BODY, "product": "01NOSUCHPRODUCT"}).encode(), 404, "01NOSUCHPRODUCT"),
    (json.dumps({**IOTO_BODY, "product": DISABLED}).encode(), 409, DISABLED),
    (json.dumps({**IOTO_BODY, "padding": "x" * 17000}).encode(), 413, "16 KiB"),
]


ISSUED_ROWS = "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM batches), (SELECT count(*) FROM idempotency)"


@pytest.mark.parametrize("body,status,message", BAD_BODIES, ids=[m for _, _, m in BAD_BODIES])
def test_bad_serialize_requests_get_a_4xx_and_store_nothing(server: Server, body: bytes, status: int, message: str) -> None:
    before = dump(server.db)
    with Store.open(server.db) as store:
        rows_before = store.conn.execute(ISSUED_ROWS).fetchone()
    reply = server.ioto("/ioto/serialize", body)
    assert reply.status == status
    assert message in reply.json["error"]
    after = dump(server.db)
    with Store.open(server.db) as store:
        assert store.conn.execute(ISSUED_ROWS).fetchone() == rows_before  # no device, batch or idempotency row
        last = store.conn.execute("SELECT kind, uci, actor, details FROM events ORDER BY id DESC LIMIT 1").fetchone()
    if status in (404, 409):  # a refused product: recorded as an event, and nothing else changes
        assert [line for line in before if line not in after] == []
        added = [line for line in after if line not in before]
        assert len(added) == 1 and added[0].startswith('INSERT INTO "events"')
        kind, code, actor, details = last[0], last[1], last[2], json.loads(last[3])
        assert (kind, code, actor) == ("refused", None, "device")
        assert details["attempted"] == "issued" and details["product"] == json.loads(body)["product"]
        assert message in details["reason"] and details["remote"] == "127.0.0.1"
    else:
        assert after == before


def test_a_voided_unit_gets_a_new_uci_never_its_void_one(server: Server) -> None:
    unit = {**IOTO_BODY, "serial": "SN-VOIDED"}
    first = server.serialize(unit).json["id"]
    keyed = server.serialize(extra="Idempotency-Key: unit-77-boot-1\r\n").json["id"]
    with Store.open(server.db) as store:
        store.void(first, "label torn", actor="tests")
        store.void(keyed, "board swapped", actor="tests")
    second = server.serialize(unit).json["id"]
    assert second != first and server.serialize(unit).json["id"] == second
    keyed_again = server.serialize(extra="Idempotency-Key: unit-77-boot-1\r\n").json["id"]
    assert keyed_again != keyed and server.serialize(extra="Idempotency-Key: unit-77-boot-1\r\n").json["id"] == keyed_again
    assert state(server.db, first) == "void" and state(server.db, keyed) == "void"
    assert [kind for kind, _ in events(server.db, first)] == ["issued", "void", "key-released"]
    assert [kind for kind, _ in events(server.db, second)] == ["issued", "issued-repeat"]
    assert count(server.db, "SELECT count(*) FROM devices WHERE hwkey = 'serial:SN-VOIDED'") == 1


def test_a_too_long_idempotency_key_is_refused(server: Server) -> None:
    before = dump(server.db)
    reply = server.serialize(extra=f"Idempotency-Key: {'k' * 201}\r\n")
    assert reply.status == 400 and "Idempotency-Key" in reply.json["error"]
    assert dump(server.db) == before


def test_refused_registrations_record_an_event_and_change_nothing(server: Server) -> None:
    code = server.serialize().json["id"]
    device = {**IOTO_BODY, "id": code}
    cases = [
        (server.register({**device, "id": "0000000000000000"}), 404, "0000000000000000"),
        (server.register(device, product=OTHER), 403, "Authorization header names another product"),
        (server.register({**device, "product": OTHER}), 403, f"belongs to product {PRODUCT}"),
        (server.ioto("/api/device/register", json.dumps(device).encode()), 401, "Authorization: bearer"),
    ]
    for reply, status, message in cases:
        assert reply.status == status and message in reply.json["error"]
    assert state(server.db, code) == "issued"
    assert events(server.db, code) == [("issued", "device")] + [("refused", "device")] * 3
    assert count(server.db, "SELECT count(*) FROM events WHERE kind = 'refused' AND uci = '0000000000000000'") == 1

    with Store.open(server.db) as store:
        store.void(code, "label torn", actor="tests")
    reply = server.register(device)
    assert reply.status == 409 and "void" in reply.json["error"]
    assert state(server.db, code) == "void" and events(server.db, code)[-1] == ("refused", "device")


@pytest.mark.parametrize("body,message", [
    (b"nope", "not JSON"), (b"{}", "product is required"), (json.dumps({"product": PRODUCT}).encode(), "id is required"),
    (json.dumps({"product": PRODUCT, "id": 7}).encode(), "id must be a string"),
])
def test_malformed_registrations_get_400(server: Server, body: bytes, message: str) -> None:
    before = dump(server.db)
    reply = server.ioto("/api/device/register", body, f"Authorization: bearer {PRODUCT}\r\n")
    assert reply.status == 400 and message in reply.json["error"]
    assert dump(server.db) == before


def test_device_endpoints_can_be_limited_to_client_networks(tmp_path: Path) -> None:
    prepare(tmp_path)
    (tmp_path / "station.json5").write_text('{client_networks: ["10.99.0.0/16"]}')
    outside = Server(tmp_path)
    try:
        reply = outside.serialize()
        assert reply.status == 403 and "10.99.0.0/16" in reply.json["error"] and "127.0.0.1" in reply.json["error"]
        assert outside.register({**IOTO_BODY, "id": "0000000000000000"}).status == 403
        assert count(outside.db, "SELECT count(*) FROM devices") == 0
        # The first refusal of an address is an event at once; later ones of its minute, one summary (test_hostile_access).
        assert count(outside.db, "SELECT count(*) FROM events WHERE kind = 'refused' AND details LIKE '%127.0.0.1%'") >= 1
    finally:
        assert outside.stop() == 0

    (tmp_path / "station.json5").write_text('{client_networks: ["10.99.0.0/16", "127.0.0.0/8"]}')
    inside = Server(tmp_path)
    try:
        assert inside.serialize().status == 200
    finally:
        assert inside.stop() == 0


@pytest.mark.parametrize("config,message", [
    ('{client_networks: ["10.0.0.0/33"]}', "client_networks"),
    ('{client_networks: "10.0.0.0/8"}', "client_networks"),
    ('{hardware_keys: "serial"}', "hardware_keys"),
])
def test_a_bad_configuration_stops_serve_with_one_line(tmp_path: Path, config: str, message: str) -> None:
    prepare(tmp_path)
    (tmp_path / "station.json5").write_text(config)
    done = subprocess.run([*STATION, "--data-dir", str(tmp_path), "serve", "--port", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert message in done.stderr.strip().splitlines()[-1]


def test_a_locked_database_gives_503_and_loses_nothing(server: Server) -> None:
    before = count(server.db, "SELECT count(*) FROM devices")
    with write_lock(server.db):  # another program holds the write lock past the busy timeout
        reply = server.serialize({**IOTO_BODY, "serial": "SN-LOCKED"})
        assert reply.status == 503 and "locked" in reply.json["error"]
    assert count(server.db, "SELECT count(*) FROM devices") == before
    code = server.serialize({**IOTO_BODY, "serial": "SN-LOCKED"}).json["id"]  # the agent's retry succeeds
    assert count(server.db, "SELECT count(*) FROM devices") == before + 1
    assert events(server.db, code) == [("issued", "device")]
