"""Structured logs: one JSON object per line, to stderr and, for the service, a rotating file."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from . import files

SECRET_WORDS = ("password", "token", "secret", "authorization", "credential")
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
        formatted = line(record.created, record.levelname.lower(), record.name, record.getMessage(), fields, error)
        record.__dict__["_station_json"] = formatted
        return formatted


def line(created: float, level: str, logger: str, msg: str, fields: dict[str, Any], error: str | None = None) -> str:
    """One log line as the station writes it."""
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
    the caller's file and line, the thread, the process: a sixth of a request's logging cost."""
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are owner-only (0600) whatever the umask: lines name users and tokens."""

    def _open(self) -> IO[str]:  # type: ignore[override]  # a text stream, as the base class's
        return files.open_private(self.baseFilename, encoding=self.encoding, errors=self.errors)


def setup(level: int = logging.WARNING, file: Path | None = None) -> None:
    """Send the station's logs to stderr, and to a rotating file when one is named; psycopg's (its pool's failed
    connections to a registry) go the same way, as structured lines, from warnings up."""
    _lean()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file is not None:
        handlers.append(PrivateRotatingFileHandler(file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
    for name, least in (("station", level), ("psycopg", max(level, logging.WARNING))):
        logger = logging.getLogger(name)
        logger.setLevel(least)
        logger.handlers.clear()
        for handler in handlers:
            logger.addHandler(handler)
