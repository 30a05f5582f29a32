"""An endpoint's Deliverer on a real store and real receivers on 127.0.0.1: a stop is over within its bounds
while a receiver holds its answer, while a connection is never accepted, and while another process holds the
database's write lock; a stop is no failed attempt, and the cursor is where the deliveries were."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from station import config as config_mod
from station.core.webhooks import Endpoint
from station.store import Store
from station.webhooks.delivery import STOP_WAIT, Deliverer
from tests.conftest import PRODUCT
from tests.webhooks.conftest import SECRET
from tests.webhooks.test_sender import Answers

WITHIN = 30.0  # seconds any wait below may take: a bound, never a measurement


def start(data_dir: Path, url: str, units: int) -> Deliverer:
    """A deliverer of every ``issued`` event of ``units`` new units to ``url``, from the first event on."""
    with Store.open(data_dir / "station.db") as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
        for _ in range(units):
            store.issue(PRODUCT)
        store.webhook_start("erp", True)
    endpoint = Endpoint("erp", url, ("issued",), SECRET, 30.0, "start", 4)
    return Deliverer(endpoint, config_mod.load(data_dir), "line-1")


def stops_in_time(deliverer: Deliverer, bound: float) -> None:
    started = time.monotonic()
    deliverer.close()
    assert time.monotonic() - started < bound
    assert not any(t.name == "station-webhook-erp" for t in threading.enumerate())


def state(data_dir: Path) -> tuple[bool, int, str | None]:
    """Whether the stored cursor is before the first ``issued`` event; the failed attempts; the last error."""
    with Store.open(data_dir / "station.db") as store:
        first = store.conn.execute("SELECT min(id) FROM events WHERE kind = 'issued'").fetchone()[0]
        row = store.conn.execute("SELECT cursor, attempts, last_error FROM webhooks WHERE name = 'erp'").fetchone()
        return row[0] < first, row[1], row[2]


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {WITHIN:g} s: {what}"
        time.sleep(0.02)


@pytest.fixture
def hanging() -> Iterator[Answers]:
    running = Answers("hang")
    yield running
    running.close()


def test_a_stop_while_the_receiver_holds_its_answer(tmp_path: Path, hanging: Answers) -> None:
    deliverer = start(tmp_path, hanging.url, 3)
    wait_for(lambda: len(hanging.verified) >= 1, "a request held by the receiver")
    stops_in_time(deliverer, 1.5)
    assert state(tmp_path) == (True, 0, None)  # nothing delivered, and a stop is no failed attempt


def test_a_stop_while_a_connection_is_never_accepted(tmp_path: Path) -> None:
    with socket.socket() as full:  # an accept queue that is full: the SYNs are dropped, the connect waits
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.2)
        deliverer = start(tmp_path, f"http://127.0.0.1:{port}/in", 2)
        time.sleep(0.5)
        stops_in_time(deliverer, 1.5)
        for filler in fillers:
            filler.close()
    assert state(tmp_path) == (True, 0, None)


def test_a_stop_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    answers = Answers("hang")
    holder = sqlite3.connect(tmp_path / "station.db", isolation_level=None)
    try:  # every store of the cursor (and of the lease) must wait, and give up within DB_WAIT; the deliveries go on
        deliverer = start(tmp_path, answers.url, 5)
        wait_for(lambda: len(answers.verified) >= 1, "a delivery under way: the deliverer holds the endpoint")
        holder.execute("BEGIN IMMEDIATE")
        answers.mode = "ok"
        answers.release.set()
        wait_for(lambda: len(answers.verified) == 5, "the five events received")
        time.sleep(1.5)  # a periodic store is refused meanwhile
        stops_in_time(deliverer, STOP_WAIT)
        holder.execute("ROLLBACK")
        assert state(tmp_path) == (True, 0, None)  # not stored: the next start sends them again
    finally:
        holder.close()
        answers.close()
