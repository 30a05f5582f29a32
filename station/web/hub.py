"""How worker processes reach the station's one writer, and its log.

The main process owns the only writing connection (writer.py) and the log files. Worker processes
(worker.py) answer the device endpoints on the shared port; each of their threads opens one connection here
(``multiprocessing.connection``: a Unix socket, or a named pipe on Windows, that only holders of this run's
key may open) and sends its writes and its log lines over it. A thread has at most one write under way, so a
connection needs no request ids: the writer answers on it once the write is committed, from its own thread.

The rules of the writer hold unchanged across processes: group commits across every worker, a UCI on disk
before any reply carries it, and a request that gives up after ``ANSWER_TIMEOUT`` cancels its write.
"""

from __future__ import annotations

import logging
import pickle
import secrets
import select
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener, answer_challenge, deliver_challenge
from typing import Any, NoReturn, TypeVar

from .. import logs
from ..errors import StationError, Unavailable
from .writer import ANSWER_TIMEOUT, GAVE_UP, Job, Writer

T = TypeVar("T")
INTERNAL = "internal error of the station; its log has the details"

log = logging.getLogger("station.web")


class Hub:
    """The main process's end: one thread a connection, each handing its writes to the writer."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.authkey = secrets.token_bytes(32)
        # No authkey here: Listener.accept would run the handshake on the one accepting thread, where a caller
        # that breaks it off or never answers would stop every later connection. ``_serve`` runs it instead.
        self._listener = Listener()
        self.address = self._listener.address
        self._closed = False
        threading.Thread(target=self._accept, name="station-hub", daemon=True).start()

    def close(self) -> None:
        """Take no more connections (the workers are stopped first; their connections end with them)."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except OSError:
                if not self._closed:  # out of file descriptors, say: the next accept may well succeed
                    log.warning("hub could not accept a worker's connection", exc_info=True)
                    time.sleep(0.1)
                continue
            threading.Thread(target=self._serve, args=(conn,), name="station-hub-conn", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        pending: Future[Any] | None = None
        try:
            deliver_challenge(conn, self.authkey)
            answer_challenge(conn, self.authkey)
        except (AuthenticationError, EOFError, OSError):  # a caller without this run's key gets nothing
            conn.close()
            return
        try:
            while True:
                kind, payload = _get(conn)
                if kind == "log":
                    logs.replay(payload)
                elif kind == "cancel":
                    if pending is not None:
                        pending.cancel()  # refused once under way: then its answer comes when it is committed
                else:
                    try:
                        pending = self.writer.submit(payload)
                    except StationError as exc:
                        _send(conn, (False, exc))
                        continue
                    pending.add_done_callback(partial(_answer, conn))
        except (EOFError, OSError):  # the worker stopped or died: whatever it had under way finishes unanswered
            conn.close()


def _answer(conn: Connection, future: Future[Any]) -> None:
    """Send a write's outcome to the worker that asked (on the writer's thread, or the hub's on a cancel)."""
    if future.cancelled():
        _send(conn, (False, Unavailable(GAVE_UP)))
        return
    error = future.exception()
    _send(conn, (True, future.result()) if error is None else (False, _portable(error)))


def _portable(error: BaseException) -> BaseException:
    """The error as the worker can receive it: a StationError keeps its kind and message; a bug was logged
    here by the writer and goes as a plain internal error."""
    if isinstance(error, StationError):
        try:
            return pickle.loads(pickle.dumps(error))
        except Exception:  # an error class that does not pickle still reaches the caller as its message and status
            return _Refused(str(error), error.status)
    return RuntimeError(INTERNAL)


class _Refused(StationError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return _Refused, (str(self), self.status)


def _put(conn: Connection, message: Any) -> None:
    """``conn.send`` with plain pickle: ``Connection.send`` builds a pickler able to pass sockets and pipes,
    which no message here carries, at three times the cost."""
    conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


def _get(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


def _send(conn: Connection, message: Any) -> None:
    try:
        _put(conn, message)
    except (OSError, ValueError):  # the worker is gone; it was told nothing, so nothing is lost
        pass


def _answered(conn: Connection) -> Callable[[float], bool]:
    """``conn.poll``, made once per connection where the system allows: ``Connection.poll`` builds a new
    selector on every call, which cost a worker a quarter of its time outside waitress."""
    if not hasattr(select, "poll"):  # Windows: a named pipe, whose poll is cheap
        return conn.poll
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return lambda timeout: bool(poller.poll(timeout * 1000))


class HubClient:
    """A worker process's writer: the same ``issue`` and ``call`` as ``Writer``, run by the main process's one.

    ``on_lost`` runs when the main process is gone: a worker must then stop at once, since no answer it could
    give would be true (its write may or may not have been committed).
    """

    def __init__(self, address: Any, authkey: bytes, on_lost: Callable[[], NoReturn]) -> None:
        self.address = address
        self.authkey = authkey
        self.on_lost = on_lost
        self._local = threading.local()

    def issue(self, **request: Any) -> tuple[str, bool]:
        """``Writer.issue``, committed by the main process's writer."""
        return self._ask(request)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``Writer.call``; ``function`` must be importable by name (it crosses to the main process)."""
        return self._ask(Job(function, args, kwargs))

    def log(self, lines: str) -> None:
        """Hand formatted log lines to the main process (``logs.forward``)."""
        try:
            _put(self._connection(), ("log", lines))
        except (OSError, EOFError):
            self.on_lost()

    def _connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._local.conn = Client(self.address, authkey=self.authkey)
            except (OSError, EOFError):
                self.on_lost()
            self._local.answered = _answered(conn)
        return conn

    def _ask(self, work: dict[str, Any] | Job) -> Any:
        conn = self._connection()
        try:
            _put(conn, ("write", work))
            if not self._local.answered(ANSWER_TIMEOUT):
                _put(conn, ("cancel", None))  # the answer still comes: the write's outcome, or GAVE_UP
            ok, value = _get(conn)
        except (OSError, EOFError):
            self.on_lost()
        if ok:
            return value
        raise value
