"""Two stations on one registry that name the same webhook endpoint: one of them delivers, so each event goes out
once; when it is killed, the other takes over within the lease and delivers what it left, from the stored cursor;
a station that stops gives the endpoint up at once."""

from __future__ import annotations

import json
from pathlib import Path

from station.store import Store
from tests.postgres_servers import drop_database, fresh_database
from tests.web.conftest import Server, prepare, station
from tests.webhooks.conftest import SECRET, Receiver
from tests.webhooks.test_delivery import issue, unique, wait_for

NAMES = ("line-1", "line-2")


def issued(url: str) -> list[tuple[int, str, str | None]]:
    with Store.open(url) as store:
        return [tuple(row) for row in store.conn.execute(
            "SELECT id, kind, uci FROM events WHERE kind = 'issued' ORDER BY id")]


def holder(url: str) -> str | None:
    with Store.open(url) as store:
        row = store.conn.execute("SELECT holder FROM webhooks WHERE name = 'erp'").fetchone()
        return None if row is None else row[0]


def test_two_stations_deliver_each_event_once_and_take_over(tmp_path: Path) -> None:
    url, receiver = fresh_database(), Receiver()
    try:
        dirs = [tmp_path / name for name in NAMES]
        for data_dir in dirs:
            data_dir.mkdir()
        prepare(dirs[0], url)
        hook = {"name": "erp", "url": receiver.url, "kinds": ["issued"], "secret": SECRET, "timeout": 1,
                "from": "start"}
        for data_dir, name in zip(dirs, NAMES, strict=True):
            (data_dir / "station.json5").write_text(json.dumps({"database": url, "name": name, "webhooks": [hook]}))
        servers = [Server(data_dir) for data_dir in dirs]
        try:
            for server, name in zip(servers, NAMES, strict=True):
                issue(server, 5, f"{name}-A")
            wait_for(lambda: len(unique(receiver.delivered())) == 10, "both stations' ten events delivered")
            ids = [d.id for d in receiver.delivered()]
            assert len(ids) == len(set(ids)) == 10, "an event delivered twice: two stations delivered"
            assert {d.body["station"] for d in receiver.delivered()} == set(NAMES)  # each event names its writer
            delivering = holder(url)
            assert delivering is not None and delivering.split(" #")[0] in NAMES
            gone = NAMES.index(delivering.split(" #")[0])
            servers[gone].crash()  # its lease runs out: the other takes the endpoint over
            survivor, name = servers[1 - gone], NAMES[1 - gone]
            issue(survivor, 5, f"{name}-B")
            wait_for(lambda: len(unique(receiver.delivered())) == 15, "the survivor delivers, from the cursor on")
            assert sorted(unique(receiver.delivered())) == issued(url)
            assert (holder(url) or "").startswith(f"{name} #")
            listed = station(dirs[1 - gone], "webhooks", "list").stdout
            assert f"{name} #" in listed, listed
            assert survivor.stop() == 0
            assert holder(url) is None  # given up on the way out: a station starting now takes it at once
        finally:
            for server in servers:
                server.stop()
    finally:
        receiver.close()
        drop_database(url)
