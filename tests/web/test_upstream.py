"""Registration relayed to the upstream Builder (``registration_upstream``; DESIGN.md section 3): a live
`station serve` in front of a Builder-shaped server on 127.0.0.1 that registers, claims, answers garbage, fails
and hangs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.store import Store
from tests.builder import Builder, builder_fixture  # noqa: F401 (the fixture `builder`)
from tests.conftest import PRODUCT, dump
from tests.web.conftest import IOTO_BODY, OTHER, Server, prepare

TIMEOUT = 2  # seconds the station waits for the Builder here: a hanging one fails the request this soon


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, builder: Builder) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("station-data")
    prepare(data_dir)
    with Store.open(data_dir / "station.db") as store:
        store.set_product_owner(PRODUCT, "ACCOUNT01", "CLOUD01", actor="test")
    (data_dir / "station.json5").write_text(json.dumps({"products": {PRODUCT: {
        "registration_upstream": builder.url, "registration_timeout": TIMEOUT}}}))
    running = Server(data_dir)
    yield running
    assert running.stop() == 0


@pytest.fixture(autouse=True)
def registering(builder: Builder) -> Iterator[None]:
    builder.mode = "register"
    yield
    builder.mode = "register"


def issued(server: Server, product: str = PRODUCT) -> dict[str, str]:
    """The device object of a unit that serialized itself, as its agent registers it."""
    code = server.serialize({**IOTO_BODY, "product": product}).json["id"]
    return {**IOTO_BODY, "product": product, "id": code, "created": "1970-01-01T00:00:00.000Z"}


def events(server: Server, code: str) -> list[tuple[str, dict]]:
    with Store.open(server.db) as store:
        return [(e.kind, e.details) for e in store.events(code) if e.uci == code]


def state(server: Server, code: str) -> str:
    with Store.open(server.db) as store:
        return store.device(code).state


def test_the_builders_reply_reaches_the_unit_unchanged_and_is_recorded(server: Server, builder: Builder) -> None:
    device = issued(server)
    body = json.dumps(device, separators=(",", ":")).encode()
    before = len(builder.requests)
    reply = server.ioto("/api/device/register", body, f"Authorization: bearer {PRODUCT}\r\n")
    assert reply.status == 200 and reply.raw == builder.replies[-1]  # byte for byte, not re-encoded
    sent = builder.requests[before]
    assert sent.path == "/api/device/register" and sent.body == body  # the same body...
    assert sent.headers["authorization"] == f"bearer {PRODUCT}"  # ...and the same Authorization
    assert state(server, device["id"]) == "registered"
    kind, details = events(server, device["id"])[-1]
    assert kind == "registered" and details["upstream"] == builder.url and details["claimed"] is False


def test_a_pre_claimed_unit_the_builder_claims_is_recorded_claimed_and_its_token_kept_nowhere(
        server: Server, builder: Builder) -> None:
    builder.mode = "claim"
    device = {**issued(server), "account": "ACCOUNT01", "cloud": "CLOUD01"}
    reply = server.register(device)
    assert reply.status == 200 and reply.json["token"] == "TOK-secret-from-the-builder-7734"  # the unit needs it
    assert state(server, device["id"]) == "claimed"
    registered = dict(events(server, device["id"]))["registered"]
    assert registered["claimed"] is True and registered["account"] == "ACCOUNT01" and registered["cloud"] == "CLOUD01"
    assert [(k, d.get("account")) for k, d in events(server, device["id"])][-1] == ("claimed", "ACCOUNT01")
    assert not any("TOK-secret" in row for row in dump(server.db))
    assert "TOK-secret" not in (server.data_dir / "serve.stderr").read_text(errors="replace")


@pytest.mark.parametrize("mode, status, says", [
    ("garbage", 502, "answered with what is not a registration"),
    ("wrong-id", 502, "not a registration of"),
    ("fail", 502, "answered status 503"),
    ("hang", 504, f"did not answer within {TIMEOUT} s"),
])
def test_a_builder_that_fails_gives_the_unit_an_error_naming_it(server: Server, builder: Builder, mode: str,
                                                                 status: int, says: str) -> None:
    builder.mode = mode
    device = issued(server)
    reply = server.register(device)
    assert reply.status == status, reply.raw
    assert says in reply.json["error"] and builder.url in reply.json["error"]
    assert state(server, device["id"]) == "issued"  # nothing recorded as registered
    kind, details = events(server, device["id"])[-1]
    assert kind == "refused" and details["attempted"] == "registered" and builder.url in details["reason"]
    builder.mode = "register"  # the unit tries again later: the Builder is back
    assert server.register(device).status == 200 and state(server, device["id"]) == "registered"


def test_a_builder_that_cannot_be_reached_is_named(tmp_path: Path) -> None:
    prepare(tmp_path)
    gone = Builder()
    url = gone.url
    gone.close()  # nothing listens on its port any more
    (tmp_path / "station.json5").write_text(json.dumps({"registration_upstream": url}))
    running = Server(tmp_path)
    try:
        reply = running.register(issued(running))
        assert reply.status == 502 and "cannot be reached" in reply.json["error"] and url in reply.json["error"]
    finally:
        assert running.stop() == 0


def test_what_the_station_refuses_never_reaches_the_builder(server: Server, builder: Builder) -> None:
    before = len(builder.requests)
    device = issued(server)
    assert server.register(device, product=OTHER).status == 403  # the Authorization names another product
    assert server.register({**device, "id": "0000000000000000"}).status == 404  # never issued
    assert len(builder.requests) == before


def test_a_product_without_an_upstream_is_answered_by_the_station(server: Server, builder: Builder) -> None:
    before = len(builder.requests)
    device = issued(server, OTHER)
    reply = server.register(device)
    assert reply.status == 200 and reply.json == {"registered": True, "id": device["id"]}
    assert len(builder.requests) == before
