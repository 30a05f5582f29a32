"""What worker processes and the writer say to each other over a hub connection (hub.py, writer.py).

A worker sends ``("write", request_or_job)``, then perhaps ``("cancel", None)`` once it gave up waiting, or
``("log", lines)``; the writer answers each write with ``(True, result)`` or ``(False, error)``. Messages are
plain pickles on an authenticated connection (``Connection.send`` would build a pickler able to pass sockets
and pipes, which no message here carries, at three times the cost).
"""

from __future__ import annotations

import logging
import pickle
from multiprocessing.connection import Connection
from typing import Any

from ..errors import StationError

WRITE, CANCEL, LOG = "write", "cancel", "log"
INTERNAL = "internal error of the station; its log has the details"
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
