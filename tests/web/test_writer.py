"""Group issuance in the store and the writer that drives it, on a real SQLite file."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from station.core.errors import Conflict, NotFound, Unavailable
from station.serve import writer as writer_module
from station.serve.writer import Writer
from station.store import IssueRequest, Store
from tests.conftest import PRODUCT
from tests.web.conftest import DISABLED, STATION, prepare


def test_a_group_refuses_a_bad_request_alone_and_commits_the_rest(store: Store) -> None:
    store.add_product(DISABLED, "Off", "Off-01")
    store.set_product_enabled(DISABLED, False)
    store.issue(IssueRequest(PRODUCT, serial="TAKEN"))
    results = store.issue_group([
        IssueRequest(PRODUCT, hwkey="serial:A"),
        IssueRequest("01NOPE"),
        IssueRequest(PRODUCT, hwkey="serial:A"),  # the same unit twice in one group: one UCI
        IssueRequest(DISABLED),
        IssueRequest(PRODUCT, serial="TAKEN"),
        IssueRequest(PRODUCT, idempotency_key="k1", actor="tests", details={"remote": "10.0.0.7"}),
    ])
    first, unknown, again, disabled, taken, keyed = results
    assert isinstance(unknown, NotFound) and isinstance(disabled, Conflict) and isinstance(taken, Conflict)
    assert first == (again[0], True) and again[1] is False
    assert keyed[1] is True
    assert [e.kind for e in store.events(first[0])] == ["issued", "issued-repeat"]
    assert [(e.actor, e.details) for e in store.events(keyed[0])] == [("tests", {"remote": "10.0.0.7"})]
    assert store.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 3  # TAKEN, serial:A, k1


def test_the_writer_answers_each_request_and_survives_a_failing_job(data_dir: Path) -> None:
    prepare(data_dir)
    writer = Writer(data_dir / "station.db")
    try:
        code, created = writer.issue(IssueRequest(PRODUCT, hwkey="mac:01"))
        assert created and writer.issue(IssueRequest(PRODUCT, hwkey="mac:01")) == (code, False)
        with pytest.raises(NotFound):
            writer.issue(IssueRequest("01NOPE"))
        with pytest.raises(ZeroDivisionError):
            writer.call(lambda store: 1 // 0)
        assert writer.call(lambda store: store.device(code).state) == "issued"
    finally:
        writer.close()


def test_serve_on_a_taken_port_fails_with_one_line(data_dir: Path) -> None:
    prepare(data_dir)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        done = subprocess.run([*STATION, "--data-dir", str(data_dir), "serve", "--port", str(taken.getsockname()[1])],
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "cannot listen" in done.stderr.strip().splitlines()[-1]


def test_a_request_that_gave_up_waiting_writes_nothing(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare(data_dir)
    monkeypatch.setattr(writer_module, "ANSWER_TIMEOUT", 0.3)  # the agent's 30 s, shortened for the test
    writer = Writer(data_dir / "station.db")
    started = threading.Event()

    def slow(store: Store) -> None:  # holds the writer while the next request waits in the queue
        started.set()
        time.sleep(1.0)

    try:
        busy = threading.Thread(target=writer.call, args=(slow,))
        busy.start()
        assert started.wait(5)
        with pytest.raises(Unavailable, match="nothing was written"):
            writer.issue(IssueRequest(PRODUCT, hwkey="mac:gave-up"))
        busy.join(5)
        assert writer.issue(IssueRequest(PRODUCT, hwkey="mac:other"))[1]  # the writer goes on
    finally:
        writer.close()
    with Store.open(data_dir / "station.db") as store:
        assert store.conn.execute("SELECT count(*) FROM devices WHERE hwkey = 'mac:gave-up'").fetchone()[0] == 0
