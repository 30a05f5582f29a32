"""The worker processes of ``station serve`` (worker.py): started, watched, replaced when one dies, and
stopped before the writer, so that every write they sent is answered.

Processes are spawned (not forked) on every system: a fork of a process with threads can inherit a held lock,
and Windows has no fork. The listening sockets and the pipes pass to them by ``multiprocessing``'s own means.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from ..errors import Unavailable
from . import worker
from .hub import Hub

START_TIMEOUT = 60.0  # seconds for a worker to import the station and listen: a slow PC under load takes a few
STOP_TIMEOUT = 10.0  # seconds a worker gets to finish its requests before it is killed
RESTART_DELAY = 1.0  # seconds before a died worker is replaced, so that a worker that cannot start does not spin

log = logging.getLogger("station.web")


class Workers:
    """``count`` worker processes serving ``sockets``; ``start`` them, then ``stop`` them."""

    def __init__(self, count: int, sockets: list[socket.socket], hub: Hub, data_dir: Path,
                 private: tuple[str, int, str], threads: int, level: int) -> None:
        self.count = count
        self._context = multiprocessing.get_context("spawn")
        self._args = (sockets, (hub.address, hub.authkey), str(data_dir), private, threads, level)
        self._running: dict[Any, tuple[BaseProcess, Connection]] = {}
        self._stopping = threading.Event()
        self._wake, self._waker = self._context.Pipe(duplex=False)
        self._watcher = threading.Thread(target=self._watch, name="station-workers", daemon=True)

    def start(self) -> None:
        """Start them all and wait until each serves: a worker that cannot start fails the start of the station."""
        spawned = [self._spawn() for _ in range(self.count)]
        try:
            for process, control in spawned:
                self._ready(process, control)
        except BaseException:
            for process, _ in spawned:
                process.kill()
            raise
        self._watcher.start()

    def pids(self) -> list[int]:
        """The process ids of the running workers."""
        return [process.pid for process, _ in list(self._running.values()) if process.pid is not None]

    def stop(self) -> None:
        """Ask each worker to stop, wait for it (bounded), kill any that does not."""
        self._stopping.set()
        self._waker.send(None)
        if self._watcher.is_alive():
            self._watcher.join()
        for _, control in self._running.values():
            try:
                control.send("stop")
            except OSError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for process, control in self._running.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker did not stop in time; killed", extra={"pid": process.pid})
                process.kill()
                process.join()
            control.close()
        self._running.clear()

    def _spawn(self) -> tuple[BaseProcess, Connection]:
        sockets, hub, data_dir, private, threads, level = self._args
        control, theirs = self._context.Pipe()
        process = self._context.Process(target=worker.run, args=(sockets, hub, theirs, data_dir, private, threads, level),
                                        name="station-worker", daemon=True)
        process.start()
        theirs.close()  # only the worker holds its end: the pipe ends when the worker does
        return process, control

    def _ready(self, process: BaseProcess, control: Connection) -> None:
        try:
            if control.poll(START_TIMEOUT) and control.recv() == "ready":
                self._running[process.sentinel] = (process, control)
                return
        except (EOFError, OSError):
            pass
        process.kill()
        process.join()
        control.close()
        raise Unavailable(f"a worker process did not start (exit status {process.exitcode}; the log above says why); "
                          f"`station serve --workers 0` serves from one process")

    def _watch(self) -> None:
        """Replace a worker that died (a crash, an out-of-memory kill) until the station stops."""
        while not self._stopping.is_set():
            for ready in wait([*self._running, self._wake]):
                if ready is self._wake or self._stopping.is_set():
                    continue
                process, control = self._running.pop(ready)
                process.join()
                control.close()
                log.error("worker process died; starting another", extra={"pid": process.pid, "exitcode": process.exitcode})
                time.sleep(RESTART_DELAY)
                if self._stopping.is_set():
                    return
                try:
                    self._ready(*self._spawn())
                except Unavailable as exc:
                    log.error("worker process not replaced", extra={"reason": str(exc)})
