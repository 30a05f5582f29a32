"""Structured logs: one JSON object per line, to stderr and, for the service, a rotating file."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from . import files

SECRET_WORDS = ("password", "token", "secret", "authorization", "credential")
BATCH_SECONDS = 0.1  # how long a worker process's log line may wait to be written
BATCH_LINES = 500
_ENCODER = json.JSONEncoder(default=str)  # json.dumps(default=...) would build one for every line


class JsonFormatter(logging.Formatter):
    """Formats a record and its ``extra`` fields as JSON, dropping any field whose name says it is secret."""

    _plain = set(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        cached = record.__dict__.get("_station_json")
        if cached is not None:  # each handler formats, and a rotating file twice: once a record is enough
            return cached
        fields = {key: value for key, value in vars(record).items() if key not in self._plain}
        error = self.formatException(record.exc_info) if record.exc_info else None
        record._station_json = line(record.created, record.levelname.lower(), record.name, record.getMessage(),
                                    fields, error)
        return record._station_json


def line(created: float, level: str, logger: str, msg: str, fields: dict[str, Any], error: str | None = None) -> str:
    """One log line as the station writes it, whichever way it came (a record, or a worker's request)."""
    entry = {"time": _local_time(int(created)), "level": level, "logger": logger, "msg": msg}
    for key, value in fields.items():
        if key not in entry:
            entry[key] = "[hidden]" if _secret(key) else value
    if error:
        entry["error"] = error
    return _ENCODER.encode(entry)


@lru_cache(maxsize=4)
def _local_time(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second))


@lru_cache(maxsize=1024)
def _secret(key: str) -> bool:
    """Whether a field's name says it holds a secret (asked of every field of every line: cached)."""
    return any(word in key.lower() for word in SECRET_WORDS)


def _lean() -> None:
    """Skip what every log record gathers and these lines never show (the logging HOWTO's "Optimization"):
    the caller's file and line, the thread, the process. A request's line costs a worker a sixth less."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


class _Forwarding(logging.Handler):
    """A worker process's handler: lines formatted here go to the main process, which writes them.

    Lines go in batches, a few times a second: one message and one write of each file for many requests,
    where a message per line cost the main process more than the request itself. A warning or an error
    goes at once, with the lines before it.
    """

    def __init__(self, send: Callable[[str], None]) -> None:
        super().__init__()
        self.send = send
        self.setFormatter(JsonFormatter())
        self._lines: list[str] = []
        self._batch = threading.Lock()
        threading.Thread(target=self._flush_often, name="station-log", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.add(self.format(record), urgent=record.levelno >= logging.WARNING)
        except Exception:
            self.handleError(record)

    def add(self, text: str, urgent: bool = False) -> None:
        """Batch a formatted line; an urgent one goes at once, with the lines before it."""
        with self._batch:
            self._lines.append(text)
            due = urgent or len(self._lines) >= BATCH_LINES
        if due:
            self.flush()

    def flush(self) -> None:
        with self._batch:
            lines, self._lines = self._lines, []
        if lines:
            self.send("\n".join(lines))

    def _flush_often(self) -> None:
        while True:
            time.sleep(BATCH_SECONDS)
            self.flush()


_direct: _Forwarding | None = None  # a worker process's batch, for ``direct``


def forward(level: int, send: Callable[[str], None], loggers: tuple[str, ...] = ("station", "waitress")) -> None:
    """In a worker process: log through ``send``, so that one process owns stderr and the rotating file."""
    global _direct
    _lean()
    handler = _Forwarding(send)
    if "station" in loggers:
        _direct = handler
    for name in loggers:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = [handler]
        logger.propagate = False


def direct(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> bool:
    """In a worker process, put an INFO line of ``logger`` (a station logger) straight into the batch for the
    main process, past the logging module's record, locks and handlers: that path cost a worker a seventh of
    the requests it answers a second (bench/serialize.py). False in any other process: log as usual there."""
    if _direct is None:
        return False
    if logger.isEnabledFor(logging.INFO):
        _direct.add(line(time.time(), "info", logger.name, msg, fields))
    return True


def replay(lines: str) -> None:
    """In the main process: write a worker's lines, as they were formatted there, to this process's handlers."""
    logging.getLogger("station").handle(logging.makeLogRecord(
        {"name": "station", "levelno": logging.INFO, "levelname": "INFO", "msg": lines, "_station_json": lines}))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are owner-only (0600) whatever the umask: lines name users and tokens."""

    def _open(self) -> IO[str]:
        return files.open_private(self.baseFilename, encoding=self.encoding, errors=self.errors)


def setup(level: int = logging.WARNING, file: Path | None = None) -> None:
    """Send the station's logs to stderr, and to a rotating file when one is named."""
    _lean()
    root = logging.getLogger("station")
    root.setLevel(level)
    root.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file is not None:
        handlers.append(PrivateRotatingFileHandler(file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
