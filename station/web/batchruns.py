"""Batch work started from the batches page (generate, resume, void) runs on a thread of its own with its own
database connection, as `station generate` runs beside a live line: the writer and the line keep their turns at
the lock, and the page follows the run's progress. One run at a time: SQLite has one writer anyway.

When the server stops, a counted run stops between two of its transactions (its progress callback refuses to go
on), which leaves an incomplete batch that the page offers to resume or void, as after an interrupted CLI run.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from flask import current_app

from ..config import Config
from ..core.errors import Conflict, NotFound, StationError, Unavailable
from ..store import Batch, Store
from .runtime import runtime

log = logging.getLogger("station.web.batches")

KEPT = 20  # finished runs remembered for their pages (the batches themselves are in the database)
STOP_WAIT = 30.0  # s the server's stop waits for a run to reach the end of its transaction

Job = Callable[[Store, Callable[[int], None]], Batch]


@dataclass
class Run:
    """One run as its page shows it: ``done`` of ``total`` claim IDs, then the batch, or why it failed."""

    id: str
    what: str  # generate | resume | void
    total: int
    batch: str | None = None  # known at the start for resume and void, at the end for a new batch
    done: int = 0
    state: str = "running"  # running | done | failed
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class BatchRuns:
    """The runs of one app; ``close`` when the server stops."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._runs: dict[str, Run] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self, what: str, total: int, batch: str | None, job: Job) -> Run:
        """Run ``job(store, progress)`` in the background; refused while another run is going."""
        with self._lock:
            busy = next((run for run in self._runs.values() if run.state == "running"), None)
            if busy is not None:
                raise Conflict(f"another batch run is going ({busy.what} {busy.batch or 'a new batch'}: {busy.done:,} of "
                               f"{busy.total:,}); start this one when it is done")
            if self._stopping.is_set():
                raise Unavailable("the station is stopping")
            run = Run(secrets.token_urlsafe(9), what, total, batch)
            self._runs[run.id] = run
            for old in [r.id for r in self._runs.values() if r.state != "running"][:-KEPT]:
                del self._runs[old]
            thread = threading.Thread(target=self._work, args=(run, job), name=f"batch-{what}", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return run

    def get(self, run_id: str) -> Run:
        with self._lock:
            if run_id not in self._runs:
                raise NotFound("no such batch run (the station was restarted since?); the batches page lists the batches")
            return self._runs[run_id]

    def running(self, batch: str) -> Run | None:
        """The run that is working on ``batch`` now, if any."""
        with self._lock:
            return next((r for r in self._runs.values() if r.state == "running" and r.batch == batch), None)

    def _work(self, run: Run, job: Job) -> None:
        def progress(added: int) -> None:
            if self._stopping.is_set():
                raise Unavailable("the station stopped while the batch was being made")
            with self._lock:
                run.done += added

        try:
            with Store.configured(self.config) as store:
                batch = job(store, progress)
            with self._lock:
                run.batch, run.done, run.state = batch.name, batch.count, "done"
            log.info("batch run done", extra={"what": run.what, "batch": batch.name, "count": batch.count})
        except StationError as exc:
            with self._lock:
                run.state, run.error = "failed", str(exc)
            log.info("batch run failed", extra={"what": run.what, "batch": run.batch, "error": str(exc)})
        except Exception:
            log.exception("batch run broke", extra={"what": run.what, "batch": run.batch})
            with self._lock:
                run.state, run.error = "failed", "internal error of the station; its log has the details"

    def close(self) -> None:
        """Stop counted runs at their next transaction and wait for them."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(STOP_WAIT)


_made = threading.Lock()


def runs() -> BatchRuns:
    """The app's batch runs, made on first use and stopped with the app."""
    with _made:
        found = current_app.extensions.get("batch_runs")
        if found is None:
            found = current_app.extensions["batch_runs"] = BatchRuns(runtime().config)
            runtime().on_close.insert(0, found.close)
        return found
