"""Deliveries from a real `station serve` to the tests' receiver: every event of the endpoint's kinds once
after de-duplication by id, each unit's in event order (every event in order at concurrency 1), signed; through
failures, hangs, a stalled lane, a closed port and a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from station import accounts
from station.store import Store
from tests.pages.test_session import Browserless
from tests.web.conftest import IOTO_BODY, STATION, Server, prepare, station
from tests.webhooks.conftest import SECRET, Delivery, Receiver

KINDS = ["issued", "registered", "void", "claimed", "released"]
WITHIN = 60.0  # seconds any wait below may take: a bound, never a measurement
ADMIN, PASSWORD = "wanda", "webhook-password-1"


LINE = "line-7"  # the station's name, which each delivery names as the writer of its event


def configure(data_dir: Path, receiver: Receiver, **more: object) -> None:
    hooks = [{"name": "erp", "url": receiver.url, "kinds": KINDS, "secret": SECRET, "timeout": 1, **more}]
    (data_dir / "station.json5").write_text(json.dumps({"name": LINE, "webhooks": hooks}))


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while not condition():
        assert time.monotonic() < deadline, f"not within {WITHIN:g} s: {what}"
        time.sleep(0.05)


def expected(db: Path, after: int = 0) -> list[tuple[int, str, str | None]]:
    """The events the endpoint asked for, from the database: (id, kind, uci) in order."""
    with Store.open(db) as store:
        marks = ", ".join("?" * len(KINDS))
        return [tuple(row) for row in store.conn.execute(
            f"SELECT id, kind, uci FROM events WHERE id > ? AND kind IN ({marks}) ORDER BY id", (after, *KINDS))]


def unique(deliveries: list[Delivery]) -> list[tuple[int, str, str | None]]:
    """The deliveries as a receiver keeps them: the first of each id, in the order they came."""
    kept: dict[str, tuple[int, str, str | None]] = {}
    for d in deliveries:
        event = d.body["event"]
        kept.setdefault(d.id, (event["id"], event["kind"], event["uci"]))
    return list(kept.values())


def issue(server: Server, n: int, prefix: str) -> list[str]:
    return [server.serialize({**IOTO_BODY, "serial": f"{prefix}-{i}"}).json["id"] for i in range(n)]


def by_unit(events: list[tuple[int, str, str | None]]) -> dict[str | None, list[int]]:
    units: dict[str | None, list[int]] = {}
    for event_id, _, code in events:
        units.setdefault(code, []).append(event_id)
    return units


def check(receiver: Receiver, db: Path, *, every_in_order: bool = False) -> None:
    """Every delivery verified and carries its id in header and body; all asked-for events, once, each unit's in
    order (``every_in_order``: all of them)."""
    delivered = receiver.delivered()
    assert delivered and all(d.verified for d in delivered)
    assert all(d.headers["Station-Webhook-Id"] == d.body["id"] == f"erp:{d.body['event']['id']}" for d in delivered)
    assert {d.body["station"] for d in delivered} == {LINE}
    with Store.open(db) as store:  # every event the station wrote names it, the ones of the CLI's `void` too
        marks = ", ".join("?" * len(KINDS))
        assert {row[0] for row in store.conn.execute(
            f"SELECT DISTINCT station FROM events WHERE kind IN ({marks})", KINDS)} == {LINE}
    got, want = unique(delivered), expected(db)
    assert sorted(got) == want
    assert by_unit(got) == by_unit(want)
    if every_in_order:
        assert got == want


def no_secret_anywhere(data_dir: Path) -> None:
    for name in ("web.log", "serve.stderr", "station.db", "station.db-wal"):
        path = data_dir / name
        assert not path.exists() or SECRET.encode() not in path.read_bytes(), name


def test_deliveries_survive_failures_hangs_and_a_closed_port(tmp_path: Path, receiver: Receiver) -> None:
    prepare(tmp_path)
    with Store.open(tmp_path / "station.db") as store:
        accounts.add_user(store, ADMIN, "admin", PASSWORD)
    configure(tmp_path, receiver, concurrency=1)
    receiver.plan = ["fail", "hang", "fail"]
    server = Server(tmp_path)
    try:
        codes = issue(server, 4, "SN-A")
        assert server.register({**IOTO_BODY, "serial": "SN-A-0", "id": codes[0]}).status == 200
        station(tmp_path, "void", codes[1], "--reason", "dropped on the floor")
        wait_for(lambda: len(unique(receiver.delivered())) == 6, "the first six events delivered")
        check(receiver, server.db, every_in_order=True)
        assert sorted(d.answered for d in receiver.seen[:3]) == [0, 500, 500]  # (a hang is recorded when it ends)
        assert len({d.id for d in receiver.seen[:4]}) == 1

        receiver.close()  # refused: the events wait in the outbox
        issue(server, 3, "SN-B")
        with Store.open(server.db) as store:
            wait_for(lambda: store.webhook_states(store_endpoints(tmp_path))[0].attempts >= 2, "two refused attempts")
        listed = station(tmp_path, "webhooks", "list").stdout
        assert "erp" in listed and receiver.url in listed and "Connection refused" in listed and " 3 " in listed
        assert f"{LINE} #" in listed  # the station that delivers them
        client = Browserless(f"http://127.0.0.1:{server.port}")
        assert client.sign_in(ADMIN, PASSWORD)[0] == 302
        status, _, page = client.request("GET", "/settings")
        assert status == 200 and b"Connection refused" in page and receiver.url.replace("&", "&amp;").encode() in page
        assert f"<td>{LINE} #".encode() in page
        assert SECRET.encode() not in page

        receiver.open()
        wait_for(lambda: len(unique(receiver.delivered())) == 9, "the backlog delivered once the port opens")
        check(receiver, server.db, every_in_order=True)
        with Store.open(server.db) as store:
            wait_for(lambda: store.webhook_states(store_endpoints(tmp_path))[0].attempts == 0, "attempts cleared")
        assert " 0 " in station(tmp_path, "webhooks", "list").stdout
    finally:
        assert server.stop() == 0
    no_secret_anywhere(tmp_path)


def store_endpoints(data_dir: Path) -> tuple:  # type: ignore[type-arg]
    from station import config as config_mod
    return config_mod.load(data_dir).get("webhooks")


def test_a_station_killed_mid_delivery_resumes_without_losing_or_reordering(tmp_path: Path, receiver: Receiver) -> None:
    prepare(tmp_path)
    configure(tmp_path, receiver, timeout=30)
    receiver.plan = ["ok"] * 10 + ["pause"]
    server = Server(tmp_path)
    issue(server, 20, "SN-K")
    wait_for(receiver.paused.is_set, "the eleventh delivery under way")
    os.kill(server.pids[0], signal.SIGKILL)  # `station serve`, then at once its server process, mid-delivery
    os.kill(server.pids[1], signal.SIGKILL)
    server.kill()
    receiver.released.set()
    before = len(unique(receiver.delivered()))
    assert 10 <= before < 20
    again = Server(tmp_path)
    try:
        issue(again, 2, "SN-L")
        wait_for(lambda: len(unique(receiver.delivered())) == 22, "every event delivered after the restart")
        check(receiver, again.db)
    finally:
        assert again.stop() == 0
    no_secret_anywhere(tmp_path)


def test_a_stalled_unit_holds_only_its_lane_and_no_unit_is_overtaken(tmp_path: Path, receiver: Receiver) -> None:
    prepare(tmp_path)
    configure(tmp_path, receiver, timeout=30)  # the default concurrency, 4 lanes; the held answer is waited for
    receiver.plan = ["pause", "fail", "fail"]
    server = Server(tmp_path)
    try:
        (held,) = issue(server, 1, "SN-H")
        wait_for(receiver.paused.is_set, "the first unit's delivery held by the receiver")
        others = issue(server, 12, "SN-O")
        for n, code in enumerate([held, *others[:6]]):
            assert server.register({**IOTO_BODY, "serial": "SN-H-0" if n == 0 else f"SN-O-{n - 1}", "id": code}).status == 200
        station(tmp_path, "void", others[7], "--reason", "cracked case")
        # 12 other units over 4 lanes: all in the held unit's lane has a chance of 4^-12
        wait_for(lambda: any(d.body["event"]["uci"] != held for d in receiver.delivered()), "other lanes delivering")
        assert not any(d.body["event"]["uci"] == held for d in receiver.delivered())  # its registration waits
        receiver.released.set()
        wait_for(lambda: len(unique(receiver.delivered())) == len(expected(server.db)), "everything delivered")
        check(receiver, server.db)
        assert [kind for _, kind, code in unique(receiver.delivered()) if code == held] == ["issued", "registered"]
    finally:
        assert server.stop() == 0
    no_secret_anywhere(tmp_path)


def test_a_restart_behind_a_stalled_lane_sends_only_what_was_not_delivered(tmp_path: Path, receiver: Receiver) -> None:
    prepare(tmp_path)
    configure(tmp_path, receiver, timeout=30)
    receiver.plan = ["pause"]
    server = Server(tmp_path)
    try:
        (held,) = issue(server, 1, "SN-H")
        wait_for(receiver.paused.is_set, "the first unit's delivery held by the receiver")
        issue(server, 12, "SN-O")
        wait_for(lambda: len(unique(receiver.delivered())) >= 6, "the other lanes delivering")
    finally:
        assert server.stop() == 0  # the held delivery is given up; the cursor stays before it
    receiver.released.set()
    wait_for(lambda: any(d.body["event"]["uci"] == held for d in receiver.seen), "the held delivery recorded")
    before = len(receiver.delivered())
    delivered_before = {d.id for d in receiver.delivered()}
    again = Server(tmp_path)
    try:
        wait_for(lambda: len(unique(receiver.delivered())) == 13, "everything delivered after the restart")
        check(receiver, again.db)
        held_id = next(d.id for d in receiver.delivered() if d.body["event"]["uci"] == held)
        sent_again = [d.id for d in receiver.delivered()[before:]]
        everything = {f"erp:{event_id}" for event_id, _, _ in expected(again.db)}
        # only the given-up delivery and what was never delivered: nothing the lanes had delivered ahead of it
        assert sorted(sent_again) == sorted({held_id} | (everything - delivered_before))
    finally:
        assert again.stop() == 0


def test_a_new_endpoint_starts_now_unless_from_start(tmp_path: Path, receiver: Receiver) -> None:
    prepare(tmp_path)
    first = Server(tmp_path)
    try:
        old = issue(first, 2, "SN-OLD")
    finally:
        assert first.stop() == 0
    hooks = [{"name": name, "url": receiver.url, "kinds": ["issued"], "secret": SECRET, **more}
             for name, more in (("late", {}), ("all", {"from": "start"}))]
    (tmp_path / "station.json5").write_text(json.dumps({"webhooks": hooks}))
    second = Server(tmp_path)
    try:
        new = issue(second, 1, "SN-NEW")
        wait_for(lambda: len(receiver.delivered("all")) == 3 and len(receiver.delivered("late")) == 1, "both endpoints")
        assert sorted(d.body["event"]["uci"] for d in receiver.delivered("all")) == sorted(old + new)
        assert [d.body["event"]["uci"] for d in receiver.delivered("late")] == new
        assert receiver.delivered("all")[0].body["event"]["kind"] == "issued"
    finally:
        assert second.stop() == 0
    listed = subprocess.run([*STATION, "--data-dir", str(tmp_path), "webhooks", "list"], capture_output=True,
                            text=True, timeout=60, check=True).stdout
    assert "late" in listed and "all" in listed and "never" not in listed
