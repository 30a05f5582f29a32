"""The service's one writer: a thread that owns the only writing connection and commits in groups.

SQLite takes one writer at a time, and ``synchronous=FULL`` makes each commit wait for the disk. Request
threads hand their writes to this thread and wait; it takes every write that queued up meanwhile, issues
all the UCIs of the group in one transaction (one fsync for the lot), and only then answers each request.
So concurrent requests never race for the lock, a UCI is on disk before any reply carries it, and a
request is answered only once its own write is committed.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..core.errors import StationError, Unavailable
from ..store import IssueRequest, Store

T = TypeVar("T")
P = ParamSpec("P")
MAX_GROUP = 256  # requests per transaction: bounds the time one group holds the write lock
ANSWER_TIMEOUT = 30.0  # seconds a request waits for its commit; the Ioto agent itself gives up at 30 s
GAVE_UP = (f"the station database did not accept the write within {ANSWER_TIMEOUT:.0f} s "
           f"(another program may hold it); nothing was written: try again")

log = logging.getLogger("station.web")
Work = IssueRequest | Callable[[Store], Any]  # an issuance request (committed in groups), or any other write


class Writer:
    """Runs every write of the service on one thread; issuance requests are committed in groups."""

    def __init__(self, database: str | os.PathLike[str], timeout: float = 5.0, station: str | None = None) -> None:
        """``database``: the SQLite file or the registry's URL; ``timeout``: seconds to wait for another process's
        write lock (database_timeout); ``station``: the name its events carry."""
        self._store = Store.open(database if isinstance(database, str) else os.fspath(database), timeout=timeout,
                                 station=station)  # a bad database fails at start-up
        self._queue: queue.SimpleQueue[tuple[Work, Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="station-writer", daemon=True)
        self._thread.start()

    def issue(self, request: IssueRequest) -> tuple[str, bool]:
        """Issue (or find again) the UCI for one request: ``(uci, created)``."""
        return self._wait(self._submit(request))

    def call(self, function: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a named write of the store, ``function(store, *args, **kwargs)`` (``Store.record``, say), on the
        writer thread in its own transaction(s); its result. Its arguments are checked against its signature."""
        return self._wait(self._submit(lambda store: function(store, *args, **kwargs)))

    def _submit(self, work: Work) -> Future[Any]:
        if not self._thread.is_alive():
            raise Unavailable("the station's database writer has stopped; restart `station serve`")
        future: Future[Any] = Future()
        self._queue.put((work, future))
        return future

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
            self._thread.join()
        self._store.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = self._gather()
            stopping = None in items
            # A request that gave up waiting cancelled its future: its write never happens (it was told so).
            work = [item for item in items if item is not None and item[1].set_running_or_notify_cancel()]
            group = [(request, future) for request, future in work if isinstance(request, IssueRequest)]
            if group:  # every issuance that queued up meanwhile: one transaction, one fsync
                self._settle([future for _, future in group], self._store.issue_group, [request for request, _ in group])
            for job, future in work:
                if not isinstance(job, IssueRequest):
                    self._settle([future], lambda job: [job(self._store)], job)

    def _gather(self) -> list[tuple[Work, Future[Any]] | None]:
        """Wait for work, then take all that queued up meanwhile, up to MAX_GROUP."""
        items = [self._queue.get()]
        while len(items) < MAX_GROUP:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

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
        for future, result in zip(futures, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
