"""IDs that Ioto agents make themselves (``services.serialize: "auto"``, ``ioto --gen``; DESIGN.md section 2):
recorded at their registration on a live `station serve` where the product allows ``agent_ids``, refused
everywhere else."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from station.core import uci
from station.store import Store
from tests.conftest import PRODUCT, dump
from tests.web.conftest import IOTO_BODY, OTHER, Server, prepare


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("station-data")
    prepare(data_dir)
    (data_dir / "station.json5").write_text(json.dumps({"products": {PRODUCT: {"agent_ids": True}}}))
    running = Server(data_dir)
    yield running
    assert running.stop() == 0


def made(symbols: int = 10) -> dict[str, str]:
    """A device object whose agent drew its own ID, as the agent registers it."""
    return {**IOTO_BODY, "id": uci.generate(symbols * 5), "created": "1970-01-01T00:00:00.000Z"}


def test_an_agent_made_id_is_recorded_at_its_registration(server: Server) -> None:
    device = made()
    reply = server.register(device)
    assert reply.status == 200 and reply.json == {"registered": True, "id": device["id"]}
    with Store.open(server.db) as store:
        stored = store.device(device["id"])
        assert stored.product == PRODUCT and stored.state == "registered" and stored.batch is None
        events = [(e.kind, e.details.get("origin")) for e in store.events(device["id"]) if e.uci == device["id"]]
        assert events == [("adopted", "agent"), ("registered", "agent")]
        assert store.find(stored.display).uci == device["id"]  # its label's form is read back
    again = server.register(device)  # the agent registers twice at boot
    assert again.status == 200 and again.json["id"] == device["id"]
    with Store.open(server.db) as store:
        assert [e.kind for e in store.events(device["id"]) if e.uci == device["id"]][-1] == "registered"
    assert sum(device["id"] in row for row in dump(server.db) if row.startswith('INSERT INTO "devices"')) == 1


def test_every_length_an_agent_makes_is_taken(server: Server) -> None:
    for symbols in (10, 16, 20):
        assert server.register(made(symbols)).status == 200


@pytest.mark.parametrize("code, says", [
    (uci.generate(105), "an ID made by an Ioto agent has 10 to 20"),  # 21 symbols
    ("012345678", "an ID made by an Ioto agent has 10 to 20"),  # 9
    ("0123456789U", "'U' at symbol 11"),
    ("0123456789ab", "upper-case"),  # stored as sent or the agent would not recognise the reply's id
])
def test_what_no_agent_makes_is_refused_and_nothing_stored(server: Server, code: str, says: str) -> None:
    before = dump(server.db)
    reply = server.register({**made(), "id": code})
    assert reply.status == 400 and says in reply.json["error"], reply.json
    after = dump(server.db)
    new = [row for row in after if row not in before]
    assert new and all(row.startswith('INSERT INTO "events"') and "'refused'" in row for row in new)


def test_a_product_that_does_not_take_agent_ids_refuses_them(server: Server) -> None:
    device = {**made(), "product": OTHER}
    reply = server.register(device)
    assert reply.status == 404 and "agent_ids" in reply.json["error"]
    with Store.open(server.db) as store:
        assert [e.kind for e in store.events(device["id"])] == ["refused"]


def test_an_id_held_by_another_product_is_not_taken_over(server: Server) -> None:
    other = server.serialize({**IOTO_BODY, "product": OTHER}).json["id"]  # OTHER's IDs are 10 symbols
    reply = server.register({**made(), "id": other})
    assert reply.status == 403 and f"belongs to product {OTHER}" in reply.json["error"]
