"""Running the app: Granian's WSGI server (HTTP in native code, on Linux, macOS and Windows alike) in one
server process, logs to stderr and a rotating file in the data directory, and a clean stop on Ctrl-C or
SIGTERM that lets queued writes finish.

`station serve` binds the port itself (so that port 0 and a taken port behave as they should), then Granian
starts the one server process, which builds the Flask app and answers everything: devices, API, pages and
the line, whose state lives there. One process was measured faster than today's alternatives (README,
"Serving"): its writer group-commits every request of the station. The server process tells this one when it
is ready or why it could not start, and stops by itself when this one is gone.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from flask import Flask
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.net import SocketHolder
from granian.server import MPServer

from .. import logs
from ..config import Config
from ..core.errors import StationError, Unavailable
from ..web.app import create_app
from ..webhooks.delivery import Webhooks
from .reserve import Reserve

LOG_FILE = "web.log"
# Request threads of the server process. Each waits on the writer while its group commits, so a group can hold
# as many requests as there are threads: 16 lets 16 clients share one commit (bench/serialize.py).
THREADS = 16
BACKLOG = 1024  # connections the system holds while every thread is busy
HEADER_TIMEOUT_MS = 10_000  # a client that has not sent its headers by then is dropped (slow clients hold nothing)
ORPHAN_CHECK = 0.5  # s between the server process's looks at whether `station serve` is still there

log = logging.getLogger("station.web")


def serve(config: Config, host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; port 0 takes a free port (the log line ``serving`` names it, and ``on_ready``
    is called with the URL once the server process answers)."""
    logs.setup(logging.INFO, config.data_dir / LOG_FILE)
    sock = listen(host, port)
    url = _url(sock)
    news, told = multiprocessing.Pipe(duplex=False)
    server = _Server(sock, interface=Interfaces.WSGI, workers=1, blocking_threads=THREADS, backlog=BACKLOG,
                     http1_settings=HTTP1Settings(header_read_timeout=HEADER_TIMEOUT_MS),
                     respawn_failed_workers=True, log_enabled=False)
    listener = threading.Thread(target=server.hear, args=(news, on_ready, url), name="station-ready", daemon=True)
    multiprocessing.set_start_method("spawn", force=True)  # as on Windows and macOS: nothing half-copied by fork
    webhooks = Webhooks(config)  # in this process, beside the server process: they share no interpreter lock
    try:
        listener.start()
        try:
            server.serve(spawn_target=_run, target_loader=functools.partial(_load, config, url, os.getpid(), told),
                         wrap_loader=False)
        except SystemExit as exc:  # Granian's way of saying that the server process kept failing
            if not exc.code:
                raise
            listener.join(5)
            raise server.error or Unavailable(
                f"the station's server process stopped unexpectedly; {config.data_dir / LOG_FILE} says why") from None
        if server.error:  # it could not start: Granian was stopped at once, not left to start it again
            raise server.error
    except KeyboardInterrupt:  # a stop that came before Granian took over the signals: a stop too
        pass
    finally:
        webhooks.close()
        sock.close()
        told.close()
        logs.setup(logging.INFO, config.data_dir / LOG_FILE)  # the server process may have rotated the file
        log.info("stopped")


class _Server(MPServer):
    """Granian's server on a socket the station bound (Granian would bind its own, and name port 0 nowhere)."""

    def __init__(self, sock: socket.socket, **options: Any) -> None:
        self._station_socket = sock
        self.error: StationError | None = None  # why the server process could not start
        super().__init__("station", **options)

    def hear(self, news: Connection, on_ready: Callable[[str], None] | None, url: str) -> None:
        """In `station serve`: wait for the server process's word, ready (then ``on_ready``), or the error that
        stopped it (then stop, rather than start it again only to fail the same way)."""
        try:
            word = news.recv()
        except (EOFError, OSError):
            return
        if isinstance(word, StationError):
            self.error = word
            self.signal_handler_interrupt()
        elif on_ready:
            on_ready(url)

    def _init_shared_socket(self) -> None:
        self._ssp = self._shd = None
        self._station_socket.set_inheritable(True)
        self._sso = self._station_socket

    def _drop_shared_socket(self) -> None:  # the station closes its socket itself
        self._sso = None


_app: Flask | None = None  # the server process's app, closed when Granian's worker returns


def _load(config: Config, url: str, parent: int, told: Connection) -> Reserve:
    """In the server process: the app, built here (it holds threads and connections that must not cross
    processes); says so to `station serve`, or sends it the error that stopped it."""
    global _app
    logs.setup(logging.INFO, config.data_dir / LOG_FILE)
    try:
        _app = create_app(config)
    except StationError as exc:
        told.send(exc)
        sys.exit(1)  # `station serve` says why, in one line
    except Exception:
        log.exception("the station could not start")
        told.send(Unavailable(f"the station could not start (internal error); {config.data_dir / LOG_FILE} has the details"))
        sys.exit(1)
    threading.Thread(target=_stop_when_orphaned, args=(parent,), name="station-orphan", daemon=True).start()
    log.info("serving", extra={"url": url, "data_dir": str(config.data_dir), "pids": [parent, os.getpid()]})
    told.send("ready")
    told.close()
    return Reserve(_app, THREADS)  # devices keep threads of their own


def _run(worker_id: int, process_name: str | None, loader: Callable[[], Any], sock: Any, *rest: Any) -> None:
    """In the server process: Granian's WSGI worker on the station's socket, then the app's close (queued
    writes finish)."""
    station_socket = sock[1]
    fd = station_socket.fileno()
    holder = SocketHolder(fd) if sys.platform == "win32" else SocketHolder(fd, False, BACKLOG)  # type: ignore[call-arg]
    try:
        MPServer._spawn_wsgi_worker(worker_id, process_name, loader, ((None, holder), station_socket), *rest)
    finally:
        if _app is not None:
            _app.extensions["station"].close()
            log.info("server process stopped")


def _stop_when_orphaned(parent: int) -> None:
    """Stop this server process cleanly once `station serve` is gone (killed, say): no server outlives it."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK)
    log.warning("`station serve` is gone; the server process stops")
    # Granian's own clean stop, as when `station serve` stops it (on Windows, SIGTERM ends the process at once:
    # writes not yet committed are lost with their requests, never answered).
    os.kill(os.getpid(), signal.SIGTERM)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket for ``host`` (its first IPv4 address where it has one, as clients try first)."""
    problem = f"cannot listen on {host}:{port}"
    try:
        found = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Unavailable(f"{problem} ({exc.strerror}); choose another --host") from exc
    family, kind, proto, _, address = sorted(found, key=lambda entry: entry[0] != socket.AF_INET)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # on Windows this would let another program take the port too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise Unavailable(f"{problem} ({exc.strerror}); choose another --port or --host") from exc
    return sock


def _url(sock: socket.socket) -> str:
    address, port = sock.getsockname()[:2]
    return f"http://[{address}]:{port}" if sock.family == socket.AF_INET6 else f"http://{address}:{port}"
