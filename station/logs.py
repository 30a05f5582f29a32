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
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                 "logger": record.name, "msg": record.getMessage()}
        for key, value in vars(record).items():
            if key not in self._plain and key not in entry:
                entry[key] = "[hidden]" if _secret(key) else value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        record._station_json = _ENCODER.encode(entry)
        return record._station_json


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
            line = self.format(record)
            with self._batch:
                self._lines.append(line)
                due = record.levelno >= logging.WARNING or len(self._lines) >= BATCH_LINES
            if due:
                self.flush()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self._batch:
            lines, self._lines = self._lines, []
        if lines:
            self.send("\n".join(lines))

    def _flush_often(self) -> None:
        while True:
            time.sleep(BATCH_SECONDS)
            self.flush()


def forward(level: int, send: Callable[[str], None], loggers: tuple[str, ...] = ("station", "waitress")) -> None:
    """In a worker process: log through ``send``, so that one process owns stderr and the rotating file."""
    _lean()
    handler = _Forwarding(send)
    for name in loggers:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = [handler]
        logger.propagate = False


def replay(lines: str) -> None:
    """In the main process: write a worker's lines, as they were formatted there, to this process's handlers."""
    logging.getLogger("station").handle(logging.makeLogRecord(
        {"name": "station", "levelno": logging.INFO, "levelname": "INFO", "msg": lines, "_station_json": lines}))


def setup(level: int = logging.WARNING, file: Path | None = None) -> None:
    """Send the station's logs to stderr, and to a rotating file when one is named."""
    _lean()
    root = logging.getLogger("station")
    root.setLevel(level)
    root.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file is not None:
        handlers.append(logging.handlers.RotatingFileHandler(file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
