"""The service's one writer: a thread that owns the only writing connection and commits in groups.

SQLite takes one writer at a time, and ``synchronous=FULL`` makes each commit wait for the disk. Request
threads hand their writes to this thread and wait; it takes every write that queued up meanwhile, issues
all the UCIs of the group in one transaction (one fsync for the lot), and only then answers each request.
So concurrent requests never race for the lock, a UCI is on disk before any reply carries it, and a
request is answered only once its own write is committed. Worker processes reach the same writer through the
hub (hub.py), so a station with several processes still has this one writer.

The thread reads the workers' connections itself, with one wait for all of them and for this process's own
requests: a thread per connection handing writes on cost the main process as much again as the writes.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from .. import logs
from ..errors import StationError, Unavailable
from ..store import Store
from . import wire

T = TypeVar("T")
MAX_GROUP = 256  # requests per transaction: bounds the time one group holds the write lock
ANSWER_TIMEOUT = 30.0  # seconds a request waits for its commit; the Ioto agent itself gives up at 30 s
GAVE_UP = (f"the station database did not accept the write within {ANSWER_TIMEOUT:.0f} s "
           f"(another program may hold it); nothing was written: try again")

log = logging.getLogger("station.web")


class Job(NamedTuple):
    """A write to run on the writer: ``function(store, *args, **kwargs)``. A worker process sends it through the
    hub, so there ``function`` must be importable by name (a module's function or a ``Store`` method)."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Writer:
    """Runs every write of the service on one thread; issuance requests are committed in groups."""

    def __init__(self, db_path: Path, timeout: float = 5.0) -> None:
        """``timeout``: seconds to wait for another process's write lock (database_timeout)."""
        self._store = Store.open(db_path, timeout=timeout)  # opened here, so that a bad database fails at start-up
        self._queue: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._attached: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._wake, self._waker = socket.socketpair()  # a byte on it: look at the queues
        self._waker.setblocking(False)
        self._inputs = wire.Readable()
        self._inputs.add(self._wake)
        self._asleep = False  # the thread waits with nothing to do: a request of this process must nudge it
        self._thread = threading.Thread(target=self._run, name="station-writer", daemon=True)
        self._thread.start()

    def issue(self, **request: Any) -> tuple[str, bool]:
        """Issue (or find again) the UCI for one request; ``Store.issue_group`` keyword arguments."""
        return self._wait(self._submit(request))

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(store, *args, **kwargs)`` on the writer thread in its own transaction(s); its result."""
        return self._wait(self._submit(Job(function, args, kwargs)))

    def attach(self, conn: Connection) -> None:
        """Take writes and log lines from a worker's authenticated connection (wire.py) until it ends."""
        self._attached.put(conn)
        self._nudge()

    def _submit(self, work: dict[str, Any] | Job) -> Future[Any]:
        if not self._thread.is_alive():
            raise Unavailable("the station's database writer has stopped; restart `station serve`")
        future: Future[Any] = Future()
        self._queue.put((work, future))
        if self._asleep:  # set before the thread looks at the queue a last time: no request is left unseen
            self._nudge()
        return future

    def _nudge(self) -> None:
        try:
            self._waker.send(b"\0")
        except BlockingIOError:  # full of unread nudges: the thread wakes anyway
            pass
        except OSError:  # closed: the writer has stopped, and _submit says so
            pass

    @staticmethod
    def _wait(future: Future[T]) -> T:
        try:
            return future.result(ANSWER_TIMEOUT)
        except FutureTimeout:
            if not future.cancel():  # already under way: its answer is the truth, and comes within the busy timeout
                return future.result()
            raise Unavailable(GAVE_UP) from None

    def close(self) -> None:
        """Finish the queued writes, then stop the thread and close the connection."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._nudge()
            self._thread.join()
        while not self._attached.empty():  # attached after the thread's last look
            self._inputs.add(self._attached.get())
        for conn in self._inputs.objects():
            conn.close()
        self._waker.close()
        self._store.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = self._gather()
            stopping = None in items
            # A request that gave up waiting cancelled its future: its write never happens (it was told so).
            work = [item for item in items if item is not None and item[1].set_running_or_notify_cancel()]
            group = [(request, future) for request, future in work if isinstance(request, dict)]
            if group:  # every issuance that queued up meanwhile: one transaction, one fsync
                self._settle([future for _, future in group], self._store.issue_group, [request for request, _ in group])
            for job, future in work:
                if not isinstance(job, dict):
                    self._settle([future], self._one, job)

    def _gather(self) -> list[tuple[Any, Any] | None]:
        """Wait for work, then take all that is ready (this process's and the workers'), up to MAX_GROUP."""
        items: list[tuple[Any, Any] | None] = []
        pending: dict[Connection, _Reply] = {}
        timeout: float | None = None  # block until something comes, then only look
        while len(items) < MAX_GROUP:
            if timeout is None:
                self._asleep = True
                if not self._queue.empty():
                    timeout = 0
            ready = self._inputs.ready(timeout)
            self._asleep = False
            taken = len(items)
            for source in ready:
                if len(items) >= MAX_GROUP:  # the rest stay readable for the next group
                    break
                if source is self._wake:
                    self._wake.recv(4096)
                else:
                    self._read(source, items, pending)
            while len(items) < MAX_GROUP:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            while not self._attached.empty():
                self._inputs.add(self._attached.get())
            if items and not ready and len(items) == taken:
                break
            if items:
                timeout = 0
        return items

    def _read(self, conn: Connection, items: list[tuple[Any, Any] | None], pending: dict[Connection, _Reply]) -> None:
        """One message of a worker; a connection that ends (its worker stopped or died) is dropped, and so is
        one that says what this station cannot read: the writer's thread serves everyone, so nothing escapes."""
        try:
            kind, payload = wire.get(conn)
            if kind == wire.WRITE:
                pending[conn] = reply = _Reply(conn)
                items.append((payload, reply))
            elif kind == wire.CANCEL:
                if conn in pending:  # gave up before its turn came: it is told so, and its write never happens
                    pending.pop(conn).cancel()
            elif kind == wire.LOG and isinstance(payload, str):
                logs.replay(payload)
            else:
                raise ValueError(f"not a message of the hub: {kind!r}")
        except Exception as exc:
            if not isinstance(exc, (EOFError, OSError)):  # a message this station cannot read: a bug
                log.exception("dropped a worker's connection on a message it could not read")
            self._inputs.remove(conn)
            conn.close()

    def _one(self, job: Job) -> list[Any]:
        return [job.function(self._store, *job.args, **job.kwargs)]

    @staticmethod
    def _settle(futures: list[Any], work: Callable[[Any], list[Any]], argument: Any) -> None:
        """Answer each future with its result in ``work(argument)``, or all with the error that stopped it."""
        try:
            results = work(argument)
        except StationError as exc:
            results = [exc] * len(futures)
        except Exception as exc:  # a bug must fail its requests, never the thread that serves all of them
            log.exception("database write failed")
            results = [exc] * len(futures)
        for future, result in zip(futures, results):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


class _Reply:
    """A worker's write waiting in a group: the part of ``Future`` the writer uses, answered on its connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        wire.answer(self.conn, False, Unavailable(GAVE_UP))

    def set_running_or_notify_cancel(self) -> bool:
        return not self.cancelled

    def set_result(self, result: Any) -> None:
        wire.answer(self.conn, True, result)

    def set_exception(self, error: BaseException) -> None:
        wire.answer(self.conn, False, error)
