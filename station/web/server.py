"""Running the app: waitress (pure Python, so the station runs on Windows too), logs to stderr and a rotating
file in the data directory, and a clean stop on Ctrl-C or SIGTERM that lets queued writes finish.

With workers (the default: one per CPU), worker processes take the connections of the station's port and
answer the device endpoints; this process keeps the one writer, the log and the Flask app, which it serves
to the workers on a private port (workers.py, hub.py, forward.py). With ``--workers 0`` this process serves
the port alone, as the one process that Python's one-thread-at-a-time limit allows it to be.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

from waitress.server import create_server

from .. import logs
from ..config import Config
from ..errors import Invalid, Unavailable
from .app import create_app
from .bodies import SERVER_BODY_LIMIT
from .forward import Forwarded
from .hub import Hub
from .reserve import Reserve
from .workers import Workers

LOG_FILE = "web.log"
# Request threads of each process. Each waits on the writer while its group commits, so a group can hold as
# many requests as there are threads: 16 lets 16 clients share one commit. 8 and 32 measured no better
# (bench/serialize.py).
THREADS = 16
MAX_WORKERS = 8  # one writer commits for all of them; beyond this, more processes only add memory
BACKLOG = 1024  # connections the system holds for the workers while they are busy

log = logging.getLogger("station.web")


def worker_count(config: Config, override: int | None = None) -> int:
    """Workers to start: ``--workers``, else ``workers`` of station.json5, else one per CPU (at most 8);
    0 serves from this process alone."""
    value = override if override is not None else config.get("workers")
    if value is None:
        return min(os.cpu_count() or 1, MAX_WORKERS)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        raise Invalid(f"workers must be a whole number from 0 to 64 (0: one process serves alone), not {value!r}")
    return value


def serve(config: Config, host: str, port: int, on_ready: Callable[[str], None] | None = None,
          workers: int | None = None) -> None:
    """Serve until interrupted; port 0 takes a free port (the log line ``serving`` names it, and
    ``on_ready`` is called with the first URL once the server listens)."""
    count = worker_count(config, workers)
    logs.setup(logging.INFO, config.data_dir / LOG_FILE)
    waitress_log = logging.getLogger("waitress")  # its warnings (a full task queue, socket errors) as JSON too
    waitress_log.handlers[:] = logging.getLogger("station").handlers
    waitress_log.propagate = False
    app = create_app(config)
    sockets: list[socket.socket] = []
    hub: Hub | None = None
    pool: Workers | None = None
    try:
        sockets = listen(host, port)
        options: dict[str, Any] = {"threads": THREADS, "connection_limit": 1000, "ident": "station",
                                   "max_request_body_size": SERVER_BODY_LIMIT}
        if count == 0:
            server = create_server(Reserve(app, THREADS), sockets=sockets, **options)  # devices keep threads of their own
        else:
            key = secrets.token_urlsafe(32)
            server = create_server(Forwarded(app, key), host="127.0.0.1", port=0, **options)
            hub = Hub(app.extensions["station"].writer)
            pool = Workers(count, sockets, hub, config.data_dir, ("127.0.0.1", server.effective_port, key),
                           THREADS, logging.INFO)
            pool.start()
        signal.signal(signal.SIGTERM, _interrupt)
        urls = [_url(sock) for sock in sockets]
        for url in urls:
            log.info("serving", extra={"url": url, "data_dir": str(config.data_dir), "workers": count,
                                       "pids": [os.getpid(), *(pool.pids() if pool else [])]})
        if on_ready:
            on_ready(urls[0])
        server.run()  # waitress ends its loop on KeyboardInterrupt (Ctrl-C, or SIGTERM through _interrupt)
    except KeyboardInterrupt:  # the stop came before its loop took over (right after the serving line): a stop too
        pass
    finally:
        if pool is not None:
            pool.stop()  # before the writer: every write a worker sent gets its answer
        if hub is not None:
            hub.close()
        for sock in sockets:
            sock.close()
        app.extensions["station"].close()
        log.info("stopped")


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of ``host`` (one port for all, even when ``port`` is 0)."""
    problem = f"cannot listen on {host}:{port}"
    try:
        found = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Unavailable(f"{problem} ({exc.strerror}); choose another --host") from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys((f, k, p, "", a) for f, k, p, _, a in found):
            if sockets:  # port 0: the first address took a free port; the others take the same
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name != "nt":  # on Windows this would let another program take the port too
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise Unavailable(f"{problem} ({exc.strerror}); choose another --port or --host") from exc
    return sockets


def _url(sock: socket.socket) -> str:
    address, port = sock.getsockname()[:2]
    return f"http://[{address}]:{port}" if sock.family == socket.AF_INET6 else f"http://{address}:{port}"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # waitress stops its loop on this, as on Ctrl-C
