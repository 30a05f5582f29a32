"""Structured logs: one JSON object per line, to stderr and, for the service, a rotating file."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path

SECRET_WORDS = ("password", "token", "secret", "authorization", "credential")


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
                entry[key] = "[hidden]" if any(word in key.lower() for word in SECRET_WORDS) else value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        record._station_json = json.dumps(entry, default=str)
        return record._station_json


def setup(level: int = logging.WARNING, file: Path | None = None) -> None:
    """Send the station's logs to stderr, and to a rotating file when one is named."""
    root = logging.getLogger("station")
    root.setLevel(level)
    root.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file is not None:
        handlers.append(logging.handlers.RotatingFileHandler(file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
