"""Two stations on one shared registry: two `station serve` processes, each with a data directory of its own, that
name the same PostgreSQL database, loaded at once. Every UCI either answers is stored once, no UCI goes to two
units, a unit that asks both stations gets one UCI, and every event names the station that wrote it."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

from tests.postgres_servers import drop_database, fresh_database
from tests.web.conftest import IOTO_BODY, Server, prepare

CLIENTS = 16  # client threads per station
PER_CLIENT = 100  # requests each client sends
UNITS = 8  # serials every client of both stations asks for, again and again
NAMES = ("line-1", "line-2")
JOIN = 120.0  # seconds, at most, for a client to finish its requests


def test_two_stations_share_one_registry(tmp_path: Path) -> None:
    url = fresh_database()
    try:
        first, second = tmp_path / "line-1", tmp_path / "line-2"
        first.mkdir()
        second.mkdir()
        prepare(first, url)  # migrates the registry and adds the products
        (first / "station.json5").write_text(json.dumps({"database": url, "name": NAMES[0]}))
        (second / "station.json5").write_text(json.dumps({"database": url, "name": NAMES[1]}))
        servers = [Server(first)]
        try:
            servers.append(Server(second))
            answers, failures = load(servers)
        finally:
            codes = [server.stop() for server in servers]
        assert codes == [0, 0], f"`station serve` exit statuses: {codes}"
        check(url, answers, failures)
    finally:
        drop_database(url)


Answer = tuple[str, str | None, int, str]  # station name, serial (None: anonymous), status, UCI or error


def load(servers: list[Server]) -> tuple[list[Answer], list[str]]:
    """CLIENTS threads per station, all started together, each sending PER_CLIENT requests: mostly anonymous,
    every fourth one for a unit (its serial) that clients of both stations ask for."""
    answers: list[Answer] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS * len(servers))

    def client(server: Server, name: str, n: int) -> None:
        try:
            start.wait(JOIN)
            for i in range(PER_CLIENT):
                serial = f"TWO-{(n + i) % UNITS}" if i % 4 == 0 else None
                reply = server.serialize({**IOTO_BODY, "serial": serial} if serial else IOTO_BODY)
                answer = reply.json["id"] if reply.status == 200 else reply.json.get("error", "")
                with lock:
                    answers.append((name, serial, reply.status, answer))
        except Exception as exc:  # the test fails on it below, with what happened
            with lock:
                failures.append(f"{name} client {n}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(server, name, n))
               for server, name in zip(servers, NAMES, strict=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN)
    assert not any(thread.is_alive() for thread in threads), "a client did not finish its requests"
    return answers, failures


def check(url: str, answers: list[Answer], failures: list[str]) -> None:
    assert not failures, failures
    assert len(answers) == CLIENTS * PER_CLIENT * len(NAMES)
    statuses = Counter(status for _, _, status, _ in answers)
    assert set(statuses) == {200}, f"statuses {dict(statuses)}; refusals: {[a for a in answers if a[2] != 200][:5]}"

    anonymous = [code for _, serial, _, code in answers if serial is None]
    assert len(set(anonymous)) == len(anonymous), "a UCI was given to two anonymous units"
    by_unit: dict[str, set[str]] = defaultdict(set)
    for _, serial, _, code in answers:
        if serial:
            by_unit[serial].add(code)
    assert {serial: len(codes) for serial, codes in by_unit.items()} == {f"TWO-{k}": 1 for k in range(UNITS)}, \
        f"a unit got more than one UCI: {dict(by_unit)}"
    unit_of = {next(iter(codes)): serial for serial, codes in by_unit.items()}
    assert not set(unit_of) & set(anonymous), "a unit's UCI was given to an anonymous unit too"

    # Which stations answered each UCI: two only for a unit that asked both.
    stations: dict[str, set[str]] = defaultdict(set)
    for name, _, _, code in answers:
        stations[code].add(name)
    shared = {code for code, names in stations.items() if len(names) > 1}
    assert shared <= set(unit_of), f"UCIs answered by both stations that were no repeat of one unit: {shared - set(unit_of)}"
    assert len({name for name, serial, _, _ in answers if serial}) == len(NAMES)  # the repeats went to both

    with psycopg.connect(url) as pg:
        devices = pg.execute("SELECT uci, hwkey, count(*) OVER (PARTITION BY uci) FROM devices").fetchall()
        events = pg.execute("SELECT uci, kind, station FROM events WHERE kind IN ('issued', 'issued-repeat') "
                            "ORDER BY id").fetchall()
        refused = pg.execute("SELECT count(*) FROM events WHERE kind = 'refused'").fetchone()
    assert refused == (0,)
    stored = {code: hwkey for code, hwkey, _ in devices}
    assert all(n == 1 for _, _, n in devices), "a UCI is stored twice"
    assert set(stored) == set(anonymous) | set(unit_of), "the registry holds other devices than those answered"
    assert all(stored[code] is None for code in anonymous)
    assert {code: stored[code] for code in unit_of} == {code: f"serial:{serial}" for code, serial in unit_of.items()}

    # Every issuance and repeat is one event, written by the station that answered it.
    issued = Counter(code for code, kind, _ in events if kind == "issued")
    assert issued == Counter(set(stored)), "a stored UCI has no issued event, or more than one"
    written = Counter((code, station) for code, _, station in events)
    answered = Counter((code, name) for name, _, _, code in answers)
    assert written == answered, "the events do not name the stations that answered them"
    first_issue = {code: station for code, kind, station in events if kind == "issued"}
    assert all(first_issue[code] in stations[code] for code in stored)
    runs = sum(1 for before, after in zip(events, events[1:], strict=False) if before[2] != after[2])
    assert runs > 1, "the stations' writes did not interleave: they were never loaded at the same time"
