"""What worker processes and the writer say to each other over a hub connection (hub.py, writer.py).

A worker sends ``("write", request_or_job)``, then perhaps ``("cancel", None)`` once it gave up waiting, or
``("log", lines)``; the writer answers each write with ``(True, result)`` or ``(False, error)``. Messages are
plain pickles on an authenticated connection (``Connection.send`` would build a pickler able to pass sockets
and pipes, which no message here carries, at three times the cost). Both ends wait for what they can read
through ``Readable``.
"""

from __future__ import annotations

import logging
import pickle
import select
import socket
import threading
from multiprocessing.connection import Connection, wait
from typing import Any

from ..errors import StationError

WRITE, CANCEL, LOG = "write", "cancel", "log"
INTERNAL = "internal error of the station; its log has the details"
WAIT_BATCH = 63  # objects one multiprocessing.connection.wait may take on Windows before Python 3.12
_INTERNAL_ANSWER = pickle.dumps((False, RuntimeError(INTERNAL)), pickle.HIGHEST_PROTOCOL)

log = logging.getLogger("station.web")


def put(conn: Connection, message: Any) -> None:
    conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


def get(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


def answer(conn: Connection, ok: bool, value: Any) -> None:
    """Send a write's outcome; a worker that is gone was told nothing, so nothing is lost. An outcome that does
    not pickle is a bug: the worker gets an internal error, and the writer goes on serving everyone else."""
    try:
        message = pickle.dumps((True, value) if ok else (False, portable(value)), pickle.HIGHEST_PROTOCOL)
    except Exception:
        log.exception("could not send a write's outcome to its worker", extra={"result": type(value).__name__})
        message = _INTERNAL_ANSWER
    try:
        conn.send_bytes(message)
    except (OSError, ValueError):
        pass


def portable(error: BaseException) -> BaseException:
    """The error as the worker can receive it: a StationError keeps its kind and message; a bug was logged
    by the writer and goes as a plain internal error."""
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


class Readable:
    """Connections (and sockets) and which of them can be read: one poll object kept across waits where the
    system has one (``multiprocessing.connection.wait`` and ``Connection.poll`` build a new selector on every
    call, which cost a worker a quarter of its time outside waitress), else ``wait``."""

    def __init__(self) -> None:
        self._objects: dict[int, Any] = {}
        self._poll = select.poll() if hasattr(select, "poll") else None

    def objects(self) -> list[Any]:
        return [obj for obj in self._objects.values() if isinstance(obj, Connection)]

    def add(self, obj: Any) -> None:
        self._objects[obj.fileno()] = obj
        if self._poll is not None:
            self._poll.register(obj.fileno(), select.POLLIN)

    def remove(self, obj: Any) -> None:
        for fileno, value in list(self._objects.items()):
            if value is obj:
                del self._objects[fileno]
                if self._poll is not None:
                    self._poll.unregister(fileno)

    def ready(self, timeout: float | None) -> list[Any]:
        """Those that can be read (or have ended), waiting up to ``timeout`` seconds; None: until one can."""
        if self._poll is None:
            return _wait_all(list(self._objects.values()), timeout)
        return [self._objects[fileno] for fileno, _ in self._poll.poll(None if timeout is None else timeout * 1000)]


def _wait_all(objects: list[Any], timeout: float | None) -> list[Any]:
    """``multiprocessing.connection.wait`` for any number of objects. On Windows before Python 3.12 it takes at
    most 63, and 8 workers hold 16 connections each: past that, it looks at each batch without waiting, and to
    block, a thread waits on each batch together with a signal that the first to find something raises."""
    if len(objects) <= WAIT_BATCH:
        return wait(objects, timeout)
    batches = [objects[start:start + WAIT_BATCH - 1] for start in range(0, len(objects), WAIT_BATCH - 1)]
    found = [obj for batch in batches for obj in wait(batch, 0)]
    if found or timeout == 0:
        return found
    signal, raise_signal = socket.socketpair()
    with signal, raise_signal:
        def watch(batch: list[Any]) -> None:
            ready = [obj for obj in wait([*batch, signal], timeout) if obj is not signal]
            found.extend(ready)
            if ready:
                raise_signal.send(b"\0")
        watchers = [threading.Thread(target=watch, args=(batch,), daemon=True) for batch in batches]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()
    return found
