"""Concurrency and durability: many clients at once never get a duplicate or a 5xx, and a server killed with
SIGKILL mid-load has stored every UCI any client received (each exactly once)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.store import Store
from tests.conftest import ENGINES
from tests.postgres_servers import drop_database, fresh_database
from tests.web.conftest import IOTO_BODY, Reply, Server, prepare

CLIENTS = 6
PER_CLIENT = 2000  # bound on each client's requests; the kill usually comes long before
KILL_AFTER = 300  # UCIs received before the kill
WAIT = 120.0  # seconds the test waits for that many, at most


def stored(db: str | Path) -> dict[str, str | None]:
    with Store.open(db) as store:
        return dict(store.conn.execute("SELECT uci, hwkey FROM devices").fetchall())


def test_concurrent_clients_get_unique_ucis_and_one_per_unit(server: Server) -> None:
    replies: list[tuple[str | None, Reply]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(40):
            serial = f"SAME-{i // 2 % 4}" if i % 2 else None  # four units asked for by every client; the rest anonymous
            reply = server.serialize({**IOTO_BODY, "serial": serial} if serial else IOTO_BODY)
            with lock:
                replies.append((serial, reply))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(replies) == 8 * 40 and {reply.status for _, reply in replies} == {200}
    by_unit: dict[str, set[str]] = defaultdict(set)
    anonymous = []
    for serial, reply in replies:
        if serial:
            by_unit[serial].add(reply.json["id"])
        else:
            anonymous.append(reply.json["id"])
    assert all(len(codes) == 1 for codes in by_unit.values()) and len(by_unit) == 4
    assert len(set(anonymous)) == len(anonymous) == 8 * 20
    devices = stored(server.db)
    assert all(code in devices for code in anonymous)
    assert {devices[next(iter(codes))] for codes in by_unit.values()} == {f"serial:SAME-{i}" for i in range(4)}


@pytest.fixture(params=ENGINES)
def registry(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the station's SQLite file, else a fresh database of the shared PostgreSQL server (dropped after)."""
    url = fresh_database() if request.param == "postgresql" else None
    yield url
    if url:
        drop_database(url)


def test_sigkill_mid_load_loses_no_uci_and_repeats_none(tmp_path: Path, registry: str | None) -> None:
    """On the station's SQLite file, or on a registry's database."""
    url = registry
    prepare(tmp_path, url)
    server = Server(tmp_path)
    received: list[tuple[str, str | None]] = []
    statuses: set[int] = set()
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(PER_CLIENT):
            serial = f"KILL-{n}-{i}" if i % 2 else None
            try:
                reply = server.serialize({**IOTO_BODY, "serial": serial} if serial else IOTO_BODY)
            except (OSError, AssertionError):  # refused, reset or cut off: the server is gone
                if server.proc.poll() is not None:
                    return
                continue
            with lock:
                statuses.add(reply.status)
                if reply.status == 200:
                    received.append((reply.json["id"], serial))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAIT
    while len(received) < KILL_AFTER and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    server.crash()  # SIGKILL of every process: no clean-up, no flush, mid-request for some clients
    for thread in threads:
        thread.join(60)

    assert statuses == {200}
    assert len(received) >= KILL_AFTER
    codes = [code for code, _ in received]
    assert len(set(codes)) == len(codes), "a UCI was handed out twice"

    restarted = Server(tmp_path)
    try:
        devices = stored(restarted.db)
        missing = [code for code in codes if code not in devices]
        assert not missing, f"{len(missing)} UCIs were answered but are not in the database"
        for code, serial in received:
            if serial:
                assert devices[code] == f"serial:{serial}"
        code, serial = next((c, s) for c, s in received if s)
        assert restarted.serialize({**IOTO_BODY, "serial": serial}).json["id"] == code  # the unit's retry after the crash
        assert restarted.serialize().json["id"] not in devices
        if url is None:  # the file itself; a registry's server keeps its own pages (and the restart wrote to it)
            with Store.open(restarted.db) as store:
                assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        assert restarted.stop() == 0
