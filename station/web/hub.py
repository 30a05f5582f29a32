"""How worker processes reach the station's one writer, and its log.

The main process owns the only writing connection (writer.py) and the log files. Worker processes
(worker.py) answer the device endpoints on the shared port; each of their threads opens one connection here
(``multiprocessing.connection``: a Unix socket, or a named pipe on Windows, that only holders of this run's
key may open) and sends its writes and its log lines over it (wire.py). Once a connection has shown the key,
the writer's thread reads it itself. A thread has at most one write under way, so a connection needs no
request ids: the writer answers on it once the write is committed.

The rules of the writer hold unchanged across processes: group commits across every worker, a UCI on disk
before any reply carries it, and a request that gives up after ``ANSWER_TIMEOUT`` cancels its write.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener, answer_challenge, deliver_challenge
from typing import Any, NoReturn, TypeVar

from ..errors import Unavailable
from . import wire
from .writer import ANSWER_TIMEOUT, Job, Writer

T = TypeVar("T")

log = logging.getLogger("station.web")

# Seconds a request waits more once it has cancelled: a write under way ends within the database's busy timeout.
OVERDUE = ANSWER_TIMEOUT
# A worker's thread answers the handshake at once; a caller that does not within this many seconds is dropped, and
# at most MAX_HANDSHAKES run at a time (later callers wait in the listening queue): local programs that connect
# and say nothing hold neither threads nor file descriptors of the main process for long.
HANDSHAKE_TIMEOUT = 3.0
MAX_HANDSHAKES = 32
STUCK = (f"the station's database writer has not answered for {ANSWER_TIMEOUT + OVERDUE:.0f} s (a slow disk, or another "
         f"program holding the database); try again: a unit that sends its hardware key or an Idempotency-Key gets "
         f"the same UCI")


class Hub:
    """The main process's end: takes workers' connections and, once they show this run's key, gives them to
    the writer."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.authkey = secrets.token_bytes(32)
        # No authkey here: Listener.accept would run the handshake on the one accepting thread, where a caller
        # that breaks it off or never answers would stop every later connection. ``_admit`` runs it instead.
        self._listener = Listener()
        self.address = self._listener.address
        self._closed = False
        self._handshakes = threading.BoundedSemaphore(MAX_HANDSHAKES)
        threading.Thread(target=self._accept, name="station-hub", daemon=True).start()

    def close(self) -> None:
        """Take no more connections (the workers are stopped first; their connections end with them)."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            self._handshakes.acquire()  # a slot frees within HANDSHAKE_TIMEOUT
            try:
                conn = self._listener.accept()
            except OSError:
                self._handshakes.release()
                if not self._closed:  # out of file descriptors, say: the next accept may well succeed
                    log.warning("hub could not accept a worker's connection", exc_info=True)
                    time.sleep(0.1)
                continue
            threading.Thread(target=self._admit, args=(conn,), name="station-hub-conn", daemon=True).start()

    def _admit(self, conn: Connection) -> None:
        """The handshake, bounded: a caller without this run's key, or that does not answer in time, gets nothing."""
        deadline = _Deadline(conn, time.monotonic() + HANDSHAKE_TIMEOUT)
        try:
            deliver_challenge(deadline, self.authkey)  # type: ignore[arg-type]  # it uses send_bytes and recv_bytes
            answer_challenge(deadline, self.authkey)  # type: ignore[arg-type]
            admitted = deadline.finish()
        except Exception:  # a caller that breaks the handshake in any way gets nothing
            deadline.finish()
            admitted = False
        try:
            if admitted:
                self.writer.attach(conn)
            else:
                conn.close()
        finally:
            self._handshakes.release()


class _Deadline:
    """The part of a connection that the handshake uses, every read waiting at most until the deadline. A caller
    that sent part of a message would still hold the read: a timer then shuts the connection, which ends the read."""

    def __init__(self, conn: Connection, deadline: float) -> None:
        self.conn, self.deadline = conn, deadline
        self._lock = threading.Lock()
        self._over = False  # the handshake ended, or the timer shut the connection
        self._timer = threading.Timer(HANDSHAKE_TIMEOUT, self._shut)
        self._timer.daemon = True
        self._timer.start()

    def send_bytes(self, data: bytes) -> None:
        self.conn.send_bytes(data)

    def recv_bytes(self, maxlength: int | None = None) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0 or not self.conn.poll(left):
            raise TimeoutError(f"no answer to the hub's handshake within {HANDSHAKE_TIMEOUT:g} s")
        return self.conn.recv_bytes(maxlength)

    def finish(self) -> bool:
        """End the handshake's time; True if it ended before the deadline (the connection is intact)."""
        self._timer.cancel()
        with self._lock:
            intact, self._over = not self._over, True
        return intact

    def _shut(self) -> None:
        with self._lock:
            if self._over:
                return
            self._over = True
        _shutdown(self.conn)


def _shutdown(conn: Connection) -> None:
    """End a read under way on ``conn`` from another thread: shutting its socket wakes it (closing alone may
    not); a Windows pipe's read ends when its handle is closed."""
    try:
        if os.name == "nt":
            conn.close()
        else:
            with socket.socket(fileno=os.dup(conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its handshake
        pass


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
            wire.put(self._connection(), (wire.LOG, lines))
        except (OSError, EOFError):
            self.on_lost()

    def _connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._local.conn = Client(self.address, authkey=self.authkey)
            except (OSError, EOFError):
                self.on_lost()
            self._local.readable = readable = wire.Readable()
            readable.add(conn)
        return conn

    def _ask(self, work: dict[str, Any] | Job) -> Any:
        conn = self._connection()
        try:
            wire.put(conn, (wire.WRITE, work))
            if not self._local.readable.ready(ANSWER_TIMEOUT):
                wire.put(conn, (wire.CANCEL, None))  # the answer still comes: the write's outcome, or GAVE_UP
                if not self._local.readable.ready(OVERDUE):
                    self._drop(conn)
                    raise Unavailable(STUCK)
            ok, value = wire.get(conn)
        except (OSError, EOFError):
            self.on_lost()
        if ok:
            return value
        raise value

    def _drop(self, conn: Connection) -> None:
        """Leave a connection whose answer is overdue: a late answer on it must never pass for the next
        request's. The writer reads the cancel before the write, if it has not yet taken the write."""
        conn.close()
        self._local.conn = None
