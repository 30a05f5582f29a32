"""The hub between worker processes and the one writer (hub.py), and the log lines workers send through it
(logs.forward and logs.replay): in this process, on a real SQLite file, over real authenticated connections."""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any, NoReturn

import pytest

from station import logs
from station.errors import NotFound, Unavailable
from station.store import SerialTaken, Store
from station.web import hub as hub_module
from station.web import wire as wire_module
from station.web.hub import Hub, HubClient
from station.web.wire import INTERNAL
from station.web.writer import Writer
from tests.conftest import PRODUCT

from .conftest import prepare

WAIT = 10.0  # seconds any step of these tests may take, at most


class Lost(Exception):
    """Raised by the tests' ``on_lost``: a worker would exit there."""


def lost() -> NoReturn:
    raise Lost("the hub is gone")


def divide_by_zero(store: Store) -> int:
    """A job with a bug in it; module-level, so that it crosses to the hub by name as a worker's jobs do."""
    return 1 // 0


def open_lock(store: Store) -> Any:
    """A job whose result does not pickle (a bug of the same kind: only data may cross)."""
    return threading.Lock()


def device_state(store: Store, code: str) -> str:
    return store.device(code).state


def in_thread(function: Callable[[], Any], timeout: float = WAIT) -> Any:
    """``function()`` on a fresh thread (a fresh hub connection, as a worker's request thread has), bounded:
    its result, or the exception it raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"no answer within {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def devices_with(db: Path, column: str, value: str) -> int:
    with Store.open(db) as store:
        return store.conn.execute(f"SELECT count(*) FROM devices WHERE {column} = ?", (value,)).fetchone()[0]


@pytest.fixture
def writer(data_dir: Path) -> Iterator[Writer]:
    prepare(data_dir)
    running = Writer(data_dir / "station.db")
    yield running
    running.close()


@pytest.fixture
def hub(writer: Writer) -> Iterator[Hub]:
    running = Hub(writer)
    yield running
    running.close()


@pytest.fixture
def client(hub: Hub) -> HubClient:
    return HubClient(hub.address, hub.authkey, on_lost=lost)


@pytest.fixture
def station_logging() -> Iterator[None]:
    """logs.setup replaces the station logger's handlers: put them back afterwards."""
    saved = {}
    for name in ("station", "tests.worker"):
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.level, logger.propagate)
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_an_issue_through_the_hub_is_committed_and_a_repeat_gets_the_same_uci(client: HubClient, data_dir: Path) -> None:
    code, created = client.issue(product_id=PRODUCT, hwkey="mac:hub-1", actor="device", kind="issued")
    assert created
    with Store.open(data_dir / "station.db") as store:
        device = store.device(code)
    assert device.hwkey == "mac:hub-1" and device.state == "issued"
    assert client.issue(product_id=PRODUCT, hwkey="mac:hub-1", actor="device", kind="issued") == (code, False)
    assert in_thread(lambda: client.issue(product_id=PRODUCT, hwkey="mac:hub-1")) == (code, False)  # another connection
    assert devices_with(data_dir / "station.db", "hwkey", "mac:hub-1") == 1


def test_a_station_error_crosses_with_its_kind_and_message(client: HubClient, writer: Writer) -> None:
    with pytest.raises(NotFound) as here:
        writer.issue(product_id="01NOPE")
    with pytest.raises(NotFound) as there:
        client.issue(product_id="01NOPE")
    assert type(there.value) is type(here.value) and str(there.value) == str(here.value) and "01NOPE" in str(there.value)

    code, _ = client.issue(product_id=PRODUCT, serial="SN-HUB-1")
    with pytest.raises(SerialTaken) as taken:
        client.issue(product_id=PRODUCT, serial="SN-HUB-1")
    assert taken.value.uci == code and taken.value.status == 409 and "SN-HUB-1" in str(taken.value)


def test_jobs_run_on_the_writer_and_a_bug_in_one_is_an_internal_error(client: HubClient, writer: Writer,
                                                                       data_dir: Path) -> None:
    code, _ = client.issue(product_id=PRODUCT, hwkey="mac:hub-job")
    event = client.call(Store.record, code, "note", "tests", {"from": "hub"})
    assert isinstance(event, int) and event > 0
    with Store.open(data_dir / "station.db") as store:
        assert [(e.kind, e.actor, e.details) for e in store.events(code)][-1] == ("note", "tests", {"from": "hub"})

    with pytest.raises(RuntimeError) as bug:
        client.call(divide_by_zero)
    assert type(bug.value) is RuntimeError and str(bug.value) == INTERNAL  # the details stay in the main process's log

    assert client.call(device_state, code) == "issued"  # the same connection goes on
    assert client.issue(product_id=PRODUCT, hwkey="mac:hub-after-bug")[1]

    with pytest.raises(RuntimeError) as unsendable:  # a result that cannot cross back: the writer goes on
        client.call(open_lock)
    assert str(unsendable.value) == INTERNAL
    assert client.issue(product_id=PRODUCT, hwkey="mac:hub-after-unsendable")[1]
    assert writer.issue(product_id=PRODUCT, hwkey="mac:here-after-unsendable")[1]


def hold_writer(writer: Writer) -> tuple[threading.Thread, threading.Event]:
    """The writer's thread busy with another write (a long transaction, say) until the event is set."""
    started, release = threading.Event(), threading.Event()

    def slow(store: Store) -> None:
        started.set()
        release.wait(WAIT)

    busy = threading.Thread(target=writer.call, args=(slow,), daemon=True)
    busy.start()
    assert started.wait(WAIT)
    return busy, release


def test_a_request_that_gave_up_waiting_writes_nothing(client: HubClient, writer: Writer, data_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "ANSWER_TIMEOUT", 0.2)  # the agent's 30 s, shortened for the test
    monkeypatch.setattr(hub_module, "OVERDUE", WAIT)
    busy, release = hold_writer(writer)
    threading.Timer(2.0, release.set).start()  # long after the request cancelled, long before it stops waiting
    with pytest.raises(Unavailable, match="nothing was written"):
        client.issue(product_id=PRODUCT, hwkey="mac:gave-up")
    busy.join(WAIT)
    assert not busy.is_alive()
    # The connection carries no request ids: the next answer on it must be the next request's own.
    code, created = client.issue(product_id=PRODUCT, hwkey="mac:after-gave-up")
    assert created
    with Store.open(data_dir / "station.db") as store:
        assert store.device(code).hwkey == "mac:after-gave-up"
    writer.close()  # every queued write is done: the cancelled one never ran
    assert devices_with(data_dir / "station.db", "hwkey", "mac:gave-up") == 0


def test_a_request_stops_waiting_on_a_stuck_writer_and_a_late_answer_reaches_no_one(
        client: HubClient, writer: Writer, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "ANSWER_TIMEOUT", 0.2)
    monkeypatch.setattr(hub_module, "OVERDUE", 0.2)
    busy, release = hold_writer(writer)
    try:
        with pytest.raises(Unavailable, match="try again"):
            client.issue(product_id=PRODUCT, hwkey="mac:stuck")
    finally:
        release.set()
    busy.join(WAIT)
    code, created = client.issue(product_id=PRODUCT, hwkey="mac:after-stuck")  # on a new connection
    assert created
    with Store.open(data_dir / "station.db") as store:
        assert store.device(code).hwkey == "mac:after-stuck"
    writer.close()
    assert devices_with(data_dir / "station.db", "hwkey", "mac:stuck") == 0  # its cancel came before its turn


def test_a_caller_without_the_key_gets_nothing_and_the_hub_goes_on(hub: Hub, client: HubClient, data_dir: Path) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            in_thread(lambda: Client(hub.address, authkey=b"not this run's key"))
    code, created = in_thread(lambda: client.issue(product_id=PRODUCT, hwkey="mac:after-stranger"))
    assert created and devices_with(data_dir / "station.db", "uci", code) == 1


# A worker killed (OOM, SIGKILL) while one of its threads is connecting leaves the hub's handshake broken off:
# the hub must go on accepting every later connection.
@pytest.mark.parametrize("caller", ["leaves without answering", "sends a long message"])
def test_a_caller_that_breaks_off_the_handshake_does_not_stop_the_hub(hub: Hub, client: HubClient, data_dir: Path,
                                                                     caller: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(hub.address)
        if caller == "sends a long message":
            sock.sendall((1000).to_bytes(4, "big") + b"x" * 1000)
        sock.settimeout(WAIT)
        assert sock.recv(4)  # the hub has sent its challenge (unread here): it is handling this caller
    code, created = in_thread(lambda: client.issue(product_id=PRODUCT, hwkey=f"mac:after-{caller}"))
    assert created and devices_with(data_dir / "station.db", "uci", code) == 1


def test_on_lost_runs_when_the_hub_is_gone(hub: Hub, writer: Writer, client: HubClient) -> None:
    assert client.issue(product_id=PRODUCT, hwkey="mac:before-lost")[1]
    hub.close()
    writer.close()
    with pytest.raises(Lost):
        in_thread(lambda: client.issue(product_id=PRODUCT, hwkey="mac:lost"))  # a new thread: a new connection
    with pytest.raises(Lost):
        in_thread(lambda: client.log('{"msg": "a line"}'))


def test_replay_writes_a_workers_lines_as_they_were_formatted(tmp_path: Path, station_logging: None) -> None:
    file = tmp_path / "web.log"
    logs.setup(logging.INFO, file)
    logs.replay("line1\nline2")
    for handler in logging.getLogger("station").handlers:
        handler.flush()
    assert file.read_text(encoding="utf-8") == "line1\nline2\n"


def test_forwarded_lines_reach_the_main_process_log_through_the_hub(client: HubClient, tmp_path: Path,
                                                                    station_logging: None) -> None:
    file = tmp_path / "web.log"
    logs.setup(logging.INFO, file)  # the main process's side: its handlers write what workers send
    # The worker's side, on a logger of its own here (in a worker it is "station" and "waitress").
    logs.forward(logging.INFO, client.log, loggers=("tests.worker",))
    worker_log = logging.getLogger("tests.worker")
    worker_log.info("first", extra={"n": 1, "password": "hunter2"})
    worker_log.info("second", extra={"n": 2})
    worker_log.debug("below the level")

    lines: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and len(lines) < 2:
        time.sleep(0.05)
        for handler in logging.getLogger("station").handlers:
            handler.flush()
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["msg"], line["logger"], line["n"]) for line in lines] == [("first", "tests.worker", 1),
                                                                           ("second", "tests.worker", 2)]
    assert lines[0]["password"] == "[hidden]"


def test_a_message_the_writer_cannot_read_drops_that_connection_only(hub: Hub, client: HubClient, data_dir: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    def garbage() -> bytes:
        with Client(hub.address, authkey=hub.authkey) as conn:  # holds this run's key, then sends no pickle
            conn.send_bytes(b"not a pickle")
            with pytest.raises(EOFError):  # the writer closes it: no answer ever comes
                conn.recv_bytes()
        return b"dropped"

    with caplog.at_level(logging.ERROR, logger="station.web"):
        assert in_thread(garbage) == b"dropped"
    assert any("could not read" in record.getMessage() for record in caplog.records)
    code, created = in_thread(lambda: client.issue(product_id=PRODUCT, hwkey="mac:after-garbage"))
    assert created and devices_with(data_dir / "station.db", "uci", code) == 1


@pytest.mark.parametrize("batch", [wire_module.WAIT_BATCH, 3])
def test_where_the_system_has_no_poll_the_writer_and_clients_wait_as_on_windows(data_dir: Path, batch: int,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(select, "poll")  # Windows has none: multiprocessing's wait() and Connection.poll serve
    # Windows before Python 3.12 waits on at most 63 objects at once; with 3, these few connections take batches.
    monkeypatch.setattr(wire_module, "WAIT_BATCH", batch)
    prepare(data_dir)
    writer = Writer(data_dir / "station.db")
    hub = Hub(writer)
    try:
        clients = [HubClient(hub.address, hub.authkey, on_lost=lost) for _ in range(7)]  # a connection each
        codes = [client.issue(product_id=PRODUCT, hwkey=f"mac:no-poll-{n}") for n, client in enumerate(clients)]
        codes += [client.issue(product_id=PRODUCT, hwkey=f"mac:no-poll-again-{n}")  # the writer waited idle meanwhile
                  for n, client in reversed(list(enumerate(clients)))]
        assert all(created for _, created in codes) and len({code for code, _ in codes}) == 14
        assert writer.issue(product_id=PRODUCT, hwkey="mac:no-poll-here")[1]  # and this process's own requests
    finally:
        hub.close()
        writer.close()
    for code, _ in codes:
        assert devices_with(data_dir / "station.db", "uci", code) == 1


def test_a_workers_direct_line_is_the_line_its_logging_would_write(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(logs, "_direct", logs._Forwarding(sent.append))  # as logs.forward sets it in a worker
    logger = logging.getLogger("tests.direct")
    logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears the logger's isEnabledFor cache
    fields = {"method": "POST", "path": "/ioto/serialize", "status": 200, "ms": 1.5, "api_token": "stn_x"}

    assert logs.direct(logger, "request", fields)
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, "request", (), None, extra=fields)
    logs._direct.flush()
    direct, usual = json.loads(sent[-1]), json.loads(logs.JsonFormatter().format(record))
    assert direct.pop("time")[:16] == usual.pop("time")[:16]  # both local time to the second (the same minute here)
    assert direct == usual and direct["api_token"] == "[hidden]" and list(direct)[:4] == ["level", "logger", "msg", "method"]

    logger.setLevel(logging.WARNING)
    assert logs.direct(logger, "request", fields)  # handled: below the level, nothing is written
    logs._direct.flush()
    assert len(sent) == 1

    monkeypatch.setattr(logs, "_direct", None)  # the main process, or a station of one process
    assert not logs.direct(logger, "request", fields)


def test_callers_that_never_finish_the_handshake_are_dropped_and_a_worker_still_connects(
        hub: Hub, client: HubClient, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local programs that connect and say nothing, or half a message, hold a handshake for HANDSHAKE_TIMEOUT at most,
    at most MAX_HANDSHAKES at once: the main process's threads stay bounded and every caller is dropped."""
    monkeypatch.setattr(hub_module, "HANDSHAKE_TIMEOUT", 0.5)
    callers = []
    most = 0
    for n in range(3 * hub_module.MAX_HANDSHAKES):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        callers.append(sock)
        in_thread(lambda: sock.connect(hub.address))  # waits in the listening queue while every handshake is taken
        sock.settimeout(WAIT)
        if n % 2:
            sock.sendall((1000).to_bytes(4, "big")[:2])  # half a message's length: its read would wait for ever
        most = max(most, sum(t.name == "station-hub-conn" for t in threading.enumerate()))
    assert most <= hub_module.MAX_HANDSHAKES + 2  # and perhaps a thread or two that has given back its slot and is ending
    code, created = in_thread(lambda: client.issue(product_id=PRODUCT, hwkey="mac:after-silent-callers"), timeout=WAIT * 3)
    assert created and devices_with(data_dir / "station.db", "uci", code) == 1
    for sock in callers:
        with sock:
            received = b""
            while chunk := sock.recv(4096):  # the hub's challenge, then the end: it has dropped this caller
                received += chunk
            assert received and len(received) < 100
    for thread in [t for t in threading.enumerate() if t.name == "station-hub-conn"]:
        thread.join(WAIT)  # each ends once its caller is dropped
        assert not thread.is_alive()
