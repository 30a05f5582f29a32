"""A station whose registry goes away: stopped cleanly while the station idles, or crashed (``pg_ctl stop -m
immediate``) under load. Each test runs a private PostgreSQL cluster, never the shared test server. The station
answers 503 while the registry is gone, never hangs, recovers by itself once it is back (no restart), and every
UCI any client received is stored, none twice."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

from tests.postgres_servers import Cluster
from tests.web.conftest import IOTO_BODY, Reply, Server, prepare, station

RECOVERY = 30.0  # s, at most, for the station to answer 200 again once the registry is back


def devices(url: str) -> dict[str, str | None]:
    with psycopg.connect(url, connect_timeout=10) as pg:
        return dict(pg.execute("SELECT uci, hwkey FROM devices").fetchall())


def names_registry(reply: Reply, cluster: Cluster) -> None:
    """A 503 whose message names the registry and says that the station reconnects by itself."""
    assert reply.status == 503, (reply.status, reply.raw)
    message = reply.json["error"]
    assert f"127.0.0.1:{cluster.port}" in message and "reconnects by itself" in message, message


def test_registry_down_answers_503_and_recovers_without_restart(tmp_path: Path) -> None:
    with Cluster() as cluster:
        url = cluster.create_database()
        prepare(tmp_path, url)
        token = station(tmp_path, "token", "create", "--name", "outage", "--scope", "read").stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        server = Server(tmp_path)
        try:
            answered = [server.serialize().json["id"]]
            assert server.call("GET", "/api/v1/products", headers=auth).status == 200

            cluster.stop()
            # The socket's timeout (30 s) bounds each request: a station that hangs fails the test. Two requests
            # only: the longer the registry is gone, the longer the station's pool waits between its reconnections.
            names_registry(server.serialize({**IOTO_BODY, "serial": "DOWN-1"}), cluster)
            names_registry(server.call("GET", "/api/v1/products", headers=auth), cluster)  # reads do not hang

            cluster.start()
            statuses: list[int] = []
            deadline = time.monotonic() + RECOVERY
            while time.monotonic() < deadline:
                reply = server.serialize()
                statuses.append(reply.status)
                if reply.status == 200:
                    answered.append(reply.json["id"])
                    break
                names_registry(reply, cluster)
                time.sleep(0.2)
            assert statuses[-1:] == [200], f"no 200 within {RECOVERY:g} s of the registry's start: {statuses}"
            unit = server.serialize({**IOTO_BODY, "serial": "DOWN-1"})  # the unit refused during the outage
            assert unit.status == 200
            answered.append(unit.json["id"])
            reads: list[int] = []
            while time.monotonic() < deadline:  # the request threads' read connections reconnect too
                reply = server.call("GET", "/api/v1/products", headers=auth)
                reads.append(reply.status)
                if reply.status == 200:
                    break
                names_registry(reply, cluster)
                time.sleep(0.2)
            assert reads[-1:] == [200], f"reads did not recover within {RECOVERY:g} s of the registry's start: {reads}"
            assert len(set(answered)) == len(answered)
        finally:
            status = server.stop()
        assert status == 0
        stored = devices(url)
        assert set(stored) == set(answered), "the registry holds other devices than the 200-answered ones"
        assert stored[answered[-1]] == "serial:DOWN-1"


CLIENTS = 16
PER_CLIENT = 3000  # bound on each client's requests; the test stops them long before
CRASH_AFTER = 400  # UCIs received before the crash
AFTER_RESTART = 200  # UCIs received by requests sent after the restart, before the clients stop
DOWN_FOR = 1.0  # s between the crash and the start
LOAD_WAIT = 60.0  # s, at most, to reach CRASH_AFTER
UNITS = 5  # serials every client asks for again and again


def test_registry_crash_mid_load_loses_no_uci_and_repeats_none(tmp_path: Path) -> None:
    with Cluster() as cluster:
        url = cluster.create_database()
        prepare(tmp_path, url)
        server = Server(tmp_path)
        phase = [0]  # 0 before the crash, 1 while the registry is down or starting, 2 once it started again
        received: list[tuple[int, str, str | None]] = []  # the phase the request was sent in, its UCI, its serial
        refusals: Counter[tuple[int, int]] = Counter()  # (phase, status) of each answer that was not 200
        errors: Counter[str] = Counter()  # connections refused, reset or cut off
        messages: Counter[str] = Counter()  # the refusals' messages, without the registry's URL
        failures: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()

        def client(n: int) -> None:
            try:
                for i in range(PER_CLIENT):
                    if stop.is_set():
                        return
                    serial = f"CRASH-{(n + i) % UNITS}" if i % 8 == 0 else None
                    sent = phase[0]
                    try:
                        reply = server.serialize({**IOTO_BODY, "serial": serial} if serial else IOTO_BODY)
                    except (OSError, AssertionError) as exc:
                        with lock:
                            errors[type(exc).__name__] += 1
                        time.sleep(0.05)
                        continue
                    with lock:
                        if reply.status == 200:
                            received.append((sent, reply.json["id"], serial))
                        else:
                            refusals[sent, reply.status] += 1
                            if reply.status != 503 or "error" not in reply.json:
                                failures.append(f"{reply.status}: {reply.raw[:300]!r}")
                            else:
                                messages[reply.json["error"].replace(url, "URL")[:90]] += 1
                    if reply.status != 200:
                        time.sleep(0.05)  # as an agent waits before it tries again
            except Exception as exc:
                with lock:
                    failures.append(f"client {n}: {type(exc).__name__}: {exc}")

        def count(at_least: int, sent_in: int, wait: float) -> int:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(t.is_alive() for t in threads):
                with lock:
                    got = sum(1 for p, _, _ in received if p >= sent_in)
                if got >= at_least:
                    return got
                time.sleep(0.01)
            with lock:
                return sum(1 for p, _, _ in received if p >= sent_in)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        try:
            for thread in threads:
                thread.start()
            before = count(CRASH_AFTER, 0, LOAD_WAIT)
            phase[0] = 1
            cluster.stop_immediate()  # every server process quits at once: commits in flight lose their answer
            time.sleep(DOWN_FOR)
            cluster.start()  # recovers from the WAL
            phase[0] = 2
            after = count(AFTER_RESTART, 2, RECOVERY)
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
            status = server.stop()
        assert not any(thread.is_alive() for thread in threads)
        assert not failures, failures[:5]
        assert before >= CRASH_AFTER
        assert after >= AFTER_RESTART, (f"the station did not recover without a restart: {after} UCIs for requests "
                                        f"sent after the registry's start; refusals {dict(refusals)}, errors "
                                        f"{dict(errors)}")
        assert status == 0, "`station serve` did not exit 0 on SIGTERM"

        codes = [code for _, code, serial in received if serial is None]
        assert len(set(codes)) == len(codes), "a UCI was handed out twice"
        by_unit: dict[str, set[str]] = defaultdict(set)
        for _, code, serial in received:
            if serial:
                by_unit[serial].add(code)
        assert all(len(unit) == 1 for unit in by_unit.values()), f"a unit got two UCIs: {dict(by_unit)}"
        assert not {code for unit in by_unit.values() for code in unit} & set(codes)
        stored = devices(url)
        missing = [code for _, code, _ in received if code not in stored]
        assert not missing, f"{len(missing)} UCIs were answered 200 but are not in the registry"
        assert all(stored[next(iter(unit))] == f"serial:{serial}" for serial, unit in by_unit.items())
        with psycopg.connect(url, connect_timeout=10) as pg:
            issued = pg.execute("SELECT uci FROM events WHERE kind = 'issued' GROUP BY uci HAVING count(*) > 1")
            assert issued.fetchall() == [], "a UCI has two issued events"
            held = pg.execute("SELECT hwkey, count(*) FROM devices WHERE hwkey IS NOT NULL GROUP BY hwkey").fetchall()
        assert all(n == 1 for _, n in held)
        print(f"received {len(received)} ({before} before the crash, {after} sent after the start); "
              f"refusals {dict(refusals)}; errors {dict(errors)}; messages {dict(messages)}")
