"""The JSON API under /api/v1/ and its tokens, through a real `station serve`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from station.core import fields, uci
from station.store import Store
from tests.conftest import PRODUCT, dump
from tests.web.conftest import OTHER, Server, count, station


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_needs_a_known_token(server: Server, token: str) -> None:
    for headers in ({}, {"Authorization": "Bearer stn_not-a-real-token"}, {"Authorization": f"Basic {token}"}):
        reply = server.call("GET", "/api/v1/products", headers=headers)
        assert reply.status == 401 and "station token create" in reply.json["error"]
        assert reply.headers["www-authenticate"] == "Bearer"
    assert server.call("GET", "/api/v1/products", headers={"Authorization": f"bearer {token}"}).status == 200


def test_a_token_is_shown_once_and_stored_as_a_hash_until_revoked(server: Server) -> None:
    secret = station(server.data_dir, "token", "create", "--name", "short-lived").stdout.strip()
    assert secret.startswith("stn_") and len(secret) > 40
    with Store.open(server.db) as store:
        stored = store.conn.execute("SELECT hash FROM tokens WHERE name = 'short-lived'").fetchone()[0]
        assert stored == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in json.dumps(dump(server.db))
    assert server.call("GET", "/api/v1/stats", headers=auth(secret)).status == 200
    listing = station(server.data_dir, "token", "list").stdout
    assert "short-lived" in listing and secret not in listing
    assert "never" not in next(line for line in listing.splitlines() if "short-lived" in line)  # last use noted
    station(server.data_dir, "token", "revoke", "short-lived")
    assert server.call("GET", "/api/v1/stats", headers=auth(secret)).status == 401


def test_products(server: Server, token: str) -> None:
    listed = server.call("GET", "/api/v1/products", headers=auth(token)).json["products"]
    assert PRODUCT in [p["id"] for p in listed]
    assert server.call("GET", f"/api/v1/products/{PRODUCT}", headers=auth(token)).json["name"] == "Blank"
    missing = server.call("GET", "/api/v1/products/01NOPE", headers=auth(token))
    assert missing.status == 404 and "01NOPE" in missing.json["error"]

    new = {"id": "01NEWPRODUCT", "name": "New", "model": "New-01", "bits": 50, "claim_url": "https://x.example/c/{id}"}
    created = server.call("POST", "/api/v1/products", new, auth(token))
    assert created.status == 201 and created.json["bits"] == 50 and created.json["check_symbol"] is True
    assert server.call("POST", "/api/v1/products", new, auth(token)).status == 409
    assert count(server.db, "SELECT count(*) FROM events WHERE kind = 'product-added' AND actor = 'api:tests'") == 1


@pytest.mark.parametrize("body,message", [
    ({"id": "01X", "name": "X"}, "model is required"),
    ({"id": "01X", "name": "X", "model": "X-1", "colour": "red"}, "unknown field(s) colour"),
    ({"id": "01X", "name": "X", "model": "X-1", "bits": 7}, "multiple of 5"),
    ({"id": "01X", "name": "X", "model": "X-1", "bits": "80"}, "bits must be a whole number"),
    ({"id": "01X", "name": "X", "model": "X-1", "check_symbol": 1}, "check_symbol must be true or false"),
    ({"id": "bad id!", "name": "X", "model": "X-1"}, "product ID"),
    ({"id": "01X", "name": "X", "model": "X-1", "claim_url": "https://x.example/"}, "{id}"),
    ([1, 2], "JSON object"),
])
def test_bad_products_are_refused_and_store_nothing(server: Server, token: str, body: object, message: str) -> None:
    before = dump(server.db)
    reply = server.call("POST", "/api/v1/products", body, auth(token))
    assert reply.status == 400 and message in reply.json["error"]
    assert dump(server.db) == before


def test_batches(server: Server, token: str) -> None:
    with Store.open(server.db) as store:
        store.generate_batch(OTHER, 3, name="line-2-monday")
    names = [b["name"] for b in server.call("GET", f"/api/v1/batches?product={OTHER}", headers=auth(token)).json["batches"]]
    assert names == ["line-2-monday"]
    assert server.call("GET", f"/api/v1/batches?product={PRODUCT}", headers=auth(token)).json["batches"] == []
    assert server.call("GET", "/api/v1/batches/line-2-monday", headers=auth(token)).json["count"] == 3
    assert server.call("GET", "/api/v1/batches/nope", headers=auth(token)).status == 404
    page = server.call("GET", "/api/v1/devices?batch=line-2-monday", headers=auth(token)).json
    assert len(page["devices"]) == 3 and {d["batch"] for d in page["devices"]} == {"line-2-monday"}


def test_issue_look_up_and_void(server: Server, token: str) -> None:
    issued = server.call("POST", "/api/v1/devices", {"product": PRODUCT, "serial": "MFG-77"}, auth(token))
    assert issued.status == 201 and issued.json["serial"] == "MFG-77" and issued.json["state"] == "issued"
    code = issued.json["uci"]
    assert [(e["kind"], e["actor"]) for e in issued.json["events"]] == [("issued", "api:tests")]
    again = server.call("POST", "/api/v1/devices", {"product": PRODUCT, "serial": "MFG-77"}, auth(token))
    assert again.status == 409 and "reprint" in again.json["error"]

    keyed = {**auth(token), "Idempotency-Key": "order-5-unit-1"}
    first = server.call("POST", "/api/v1/devices", {"product": PRODUCT}, keyed)
    repeat = server.call("POST", "/api/v1/devices", {"product": PRODUCT}, keyed)
    assert (first.status, repeat.status) == (201, 200) and first.json["uci"] == repeat.json["uci"]

    typed = uci.display(code).lower().replace("-", " ")
    found = server.call("GET", f"/api/v1/lookup?code={typed.replace(' ', '%20')}", headers=auth(token))
    assert found.status == 200 and found.json["uci"] == code
    wrong_check = code + ("0" if uci.check_symbol(code) != "0" else "1")
    mistyped = server.call("GET", f"/api/v1/lookup?code={wrong_check}", headers=auth(token))
    assert mistyped.status == 400 and "mistyped" in mistyped.json["error"]
    assert server.call("GET", "/api/v1/lookup", headers=auth(token)).status == 400
    assert server.call("GET", f"/api/v1/devices/{code}", headers=auth(token)).json["display"] == uci.display(code)
    assert server.call("GET", "/api/v1/devices/0000000000000000", headers=auth(token)).status == 404

    assert server.call("POST", f"/api/v1/devices/{code}/void", {}, auth(token)).status == 400
    voided = server.call("POST", f"/api/v1/devices/{code}/void", {"reason": "label torn"}, auth(token))
    assert voided.status == 200 and voided.json["state"] == "void"
    assert voided.json["events"][-1]["details"]["reason"] == "label torn"
    assert server.call("POST", f"/api/v1/devices/{code}/void", {"reason": "again"}, auth(token)).status == 409
    assert server.call("POST", "/api/v1/devices/0000000000000000/void", {"reason": "x"}, auth(token)).status == 404


@pytest.mark.parametrize("body,status", [
    ({"product": "01NOPE"}, 404), ({"product": PRODUCT, "serial": 5}, 400), ({"product": PRODUCT, "extra": 1}, 400), ({}, 400),
])
def test_bad_issue_requests_store_nothing(server: Server, token: str, body: dict[str, object], status: int) -> None:
    before = dump(server.db)
    assert server.call("POST", "/api/v1/devices", body, auth(token)).status == status
    added = [line for line in dump(server.db) if line not in before]
    if status == 400:  # a malformed request is refused before it reaches the store
        assert added == []
    else:  # a refused issue is one event (DESIGN.md 4), and nothing else
        assert len(added) == 1 and '"events"' in added[0] and "refused" in added[0] and "01NOPE" in added[0]


def test_device_list_filters_and_pages(server: Server, token: str) -> None:
    for n in range(5):
        server.call("POST", "/api/v1/devices", {"product": OTHER, "serial": f"PAGE-{n}"}, auth(token))
    everything = server.call("GET", f"/api/v1/devices?product={OTHER}&limit=1000", headers=auth(token)).json["devices"]
    pages, offset = [], 0
    while offset is not None and len(pages) < 100:
        page = server.call("GET", f"/api/v1/devices?product={OTHER}&limit=2&offset={offset}", headers=auth(token)).json
        pages += page["devices"]
        offset = page["next"]
    assert pages == everything and len(everything) >= 5
    one = server.call("GET", "/api/v1/devices?serial=PAGE-3&state=issued", headers=auth(token)).json["devices"]
    assert [d["serial"] for d in one] == ["PAGE-3"]
    for query, status in (("limit=0", 400), ("limit=x", 400), ("offset=-1", 400), ("state=lost", 400), ("product=01NOPE", 404)):
        assert server.call("GET", f"/api/v1/devices?{query}", headers=auth(token)).status == status, query


def test_stats(server: Server, token: str) -> None:
    server.serialize()
    stats = server.call("GET", "/api/v1/stats", headers=auth(token)).json["stats"]
    assert any(row["product"] == PRODUCT and row["state"] == "issued" and row["devices"] >= 1 for row in stats)


def test_every_error_is_json(server: Server) -> None:
    assert server.call("GET", "/nowhere").json["error"].startswith("no such endpoint")
    wrong_method = server.call("GET", "/ioto/serialize")
    assert wrong_method.status == 405 and "GET" in wrong_method.json["error"]


def test_one_log_line_a_request_and_no_secrets(server: Server, token: str) -> None:
    server.call("GET", "/api/v1/stats?probe=log", headers=auth(token))
    text = (server.data_dir / "web.log").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    mine = [line for line in lines if line.get("path") == "/api/v1/stats" and line.get("caller") == "api:tests"]
    assert mine and mine[-1]["status"] == 200 and mine[-1]["logger"] == "station.web"
    assert token not in text and "authorization" not in text.lower() and "bearer" not in text.lower()
    assert token not in Path(server.log).read_text()


def test_devices_and_stats_filter_by_the_station_that_issued_them(server: Server, token: str) -> None:
    issued = server.call("POST", "/api/v1/devices", {"product": PRODUCT, "serial": "SN-BY-STATION"}, auth(token))
    assert issued.status == 201, issued.raw
    code = issued.json["uci"]
    here = fields.host_station()  # the server's station has no name of its own: the host's
    mine = server.call("GET", f"/api/v1/devices?station={here}&serial=SN-BY-STATION", headers=auth(token)).json
    assert [(d["uci"], d["station"]) for d in mine["devices"]] == [(code, here)]
    elsewhere = server.call("GET", "/api/v1/devices?station=line-elsewhere&serial=SN-BY-STATION", headers=auth(token))
    assert elsewhere.status == 200 and elsewhere.json["devices"] == []
    assert server.call("GET", "/api/v1/stats?station=line-elsewhere", headers=auth(token)).json["stats"] == []
    assert sum(row["devices"] for row in server.call("GET", f"/api/v1/stats?station={here}", headers=auth(token))
               .json["stats"]) >= 1
    bad = server.call("GET", "/api/v1/stats?station=no%20such;station", headers=auth(token))
    assert bad.status == 400 and "a station filter" in bad.json["error"]
