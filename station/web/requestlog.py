"""One structured log line a request (method, path, status, time, address, caller), for the Flask app and the
device endpoints alike; never headers, bodies or query strings, which may carry secrets."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("station.web")


def log_request(method: str, path: str, status: int, started: float | None, remote: str | None, caller: str | None) -> None:
    """Log a finished request; ``started`` is its ``time.perf_counter()`` at arrival."""
    fields = {
        "method": method, "path": path, "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 2) if started is not None else None,
        "remote": remote, "caller": caller,
    }
    log.info("request", extra=fields)
