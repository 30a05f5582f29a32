"""Several fixtures at once: each slot runs its cycle in a thread of its own, with its own port, its own
database connection, its own progress queue and its own result, so that a unit that hangs holds up nothing
but its own slot.

This is the API the operator page drives::

    rig = Rig.of(config, settings)
    job = rig.start("A", uci)                 # Conflict if slot A is busy
    for progress in job.progress():           # steps as they happen, until the cycle ends
        ...
    result = job.wait()                       # FlashResult: PASS, or FAIL with step and reason
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..config import Config
from ..core.errors import Conflict
from ..store import Store
from .console import Connect
from .credentials import Issuing
from .flash import Cycle, FlashResult, Progress
from .port import serial_console
from .settings import RigSettings, SlotSettings

log = logging.getLogger("station.rig")


class Job:
    """One cycle running on one slot: watch its progress, wait for its result, or cancel it."""

    def __init__(self, slot: SlotSettings, uci: str, on_progress: Callable[[Progress], None] | None) -> None:
        self.slot = slot
        self.uci = uci
        self._queue: queue.Queue[Progress | None] = queue.Queue()
        self._on_progress = on_progress
        self._cancel = threading.Event()
        self._done = threading.Event()
        self.result: FlashResult | None = None
        self.thread: threading.Thread | None = None

    def _progress(self, event: Progress) -> None:
        self._queue.put(event)
        if self._on_progress:
            self._on_progress(event)

    def _run(self, settings: RigSettings, database: str | Path, timeout: float, station: str | None, connect: Connect,
             issuing: Issuing | None) -> None:
        try:
            with Store.open(database, timeout=timeout, station=station) as store:
                self.result = Cycle(store, settings, self.slot, self.uci, progress=self._progress,
                                    cancel=self._cancel, connect=connect, issuing=issuing).run()
        except Exception as exc:  # a fault of the station, not of the unit: the slot still ends with a FAIL
            log.exception("cycle crashed", extra={"slot": self.slot.name, "uci": self.uci})
            self.result = FlashResult(self.slot.name, self.uci, False, "station", f"the station failed: {exc}", 0.0)
        finally:
            self._done.set()
            self._queue.put(None)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop the cycle at its next read or look at the store; it ends with a FAIL that says so."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> FlashResult | None:
        """The result, or None if the cycle is still running after ``timeout`` seconds."""
        self._done.wait(timeout)
        return self.result

    def progress(self, timeout: float | None = None) -> Iterator[Progress]:
        """The cycle's steps as they happen, until it ends (or nothing came for ``timeout`` seconds)."""
        while True:
            try:
                event = self._queue.get(timeout=timeout)
            except queue.Empty:
                return
            if event is None:
                return
            yield event


class Rig:
    """The station's fixtures: start a cycle on a free slot, look at what each slot is doing."""

    def __init__(self, settings: RigSettings, database: str | Path, timeout: float = 5.0, *,
                 connect: Connect = serial_console, issuing: Issuing | None = None, station: str | None = None) -> None:
        """``database``: the SQLite file or the registry's URL; ``timeout``: seconds a cycle's connection waits for another's write (database_timeout); ``station``: the
        name its events carry (``name``; by default the host's); ``connect``
        opens a slot's console (its serial port unless told otherwise); ``issuing``: the CA and the secrets'
        iterations (``Issuing.of(config)``; by default the CA of the database's data directory)."""
        self.settings = settings
        self.database = database
        self.timeout = timeout
        self.station = station
        self.connect = connect
        self.issuing = issuing
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, config: Config, settings: RigSettings, *, connect: Connect = serial_console) -> Rig:
        """The rig of a station as its configuration says: its database, lock timeout, CA and secrets' hash."""
        return cls(settings, config.database, config.database_timeout, connect=connect, issuing=Issuing.of(config),
                   station=config.station)

    def start(self, slot: str | SlotSettings, uci: str, on_progress: Callable[[Progress], None] | None = None) -> Job:
        """Start a cycle for the device ``uci`` on ``slot`` (a configured name or settings of its own)."""
        settings = slot if isinstance(slot, SlotSettings) else self.settings.slot(slot)
        with self._lock:
            running = self._jobs.get(settings.name)
            if running is not None and not running.done:
                raise Conflict(f"slot {settings.name} is busy with {running.uci}; wait for it or cancel it")
            job = Job(settings, uci, on_progress)
            job.thread = threading.Thread(target=job._run, args=(self.settings, self.database, self.timeout, self.station,
                                                                 self.connect, self.issuing),
                                          name=f"rig-{settings.name}", daemon=True)
            self._jobs[settings.name] = job
            job.thread.start()
        return job

    def job(self, slot: str) -> Job | None:
        """The slot's current or last cycle."""
        with self._lock:
            return self._jobs.get(slot)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what runs and wait (bounded) for the slots to let go of their ports."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        for job in jobs:
            job.wait(timeout)
