"""A worker process: one more CPU for the device endpoints.

Python runs one thread at a time in a process, and waitress alone takes most of a core at a few hundred
requests a second; a production line's burst of units needs the PC's other cores too. ``station serve``
(workers.py) starts a few of these on the port it listens on: each answers ``/ioto/serialize`` and
``/api/device/register`` with the same code as the main process (device.py), sends its writes and log lines to
the main process (hub.py), and relays every other request there (forward.py).
"""

from __future__ import annotations

import _thread
import os
import signal
import socket
import threading
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any, NoReturn

from waitress.server import create_server

from .. import logs
from ..config import load
from .bodies import SERVER_BODY_LIMIT
from .device import DeviceEndpoints
from .forward import Forward
from .hub import HubClient
from .reserve import Reserve
from .runtime import Runtime

LOST = 3  # exit status of a worker whose main process is gone


def run(sockets: list[socket.socket], hub: tuple[Any, bytes], control: Connection, data_dir: str,
        private: tuple[str, int, str], threads: int, level: int) -> None:
    """The worker's life (the target of its process): serve until the main process says stop or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the main process, which stops the workers in order
    signal.signal(signal.SIGTERM, _stop)
    client = HubClient(*hub, on_lost=_lost)
    logs.forward(level, client.log)
    runtime = Runtime(load(data_dir, create=False), writer=client)
    app = Reserve(DeviceEndpoints(runtime, Forward(*private)), threads)  # devices keep threads of their own
    server = create_server(app, sockets=sockets, threads=threads, connection_limit=1000, ident="station",
                           max_request_body_size=SERVER_BODY_LIMIT)
    threading.Thread(target=_follow, args=(control,), name="station-control", daemon=True).start()
    control.send("ready")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        runtime.access.close()  # the refusals it counted but has not written yet


def _follow(control: Connection) -> None:
    """Stop when the main process says so; exit at once when it is gone (its pipe ends)."""
    try:
        control.recv()
    except (EOFError, OSError):
        _lost()
    _thread.interrupt_main(signal.SIGTERM)  # runs _stop in the main thread, on Windows as well


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # waitress leaves its loop on this


def _lost() -> NoReturn:
    """No answer a worker could give without its main process would be true: leave, and let clients retry."""
    os._exit(LOST)
