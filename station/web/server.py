"""Running the app: waitress (pure Python, so the station runs on Windows too), logs to stderr and a rotating
file in the data directory, and a clean stop on Ctrl-C or SIGTERM that lets queued writes finish."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Callable

from waitress.server import create_server

from .. import logs
from ..config import Config
from ..errors import Unavailable
from .app import create_app

LOG_FILE = "web.log"
# Request threads. Each waits on the writer while its group commits, so a group can hold as many requests as
# there are threads: 16 lets 16 clients share one commit. 8 and 32 measured no better (bench/serialize.py).
THREADS = 16

log = logging.getLogger("station.web")


def serve(config: Config, host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; port 0 takes a free port (the log line ``serving`` names it, and
    ``on_ready`` is called with the first URL once the server listens)."""
    logs.setup(logging.INFO, config.data_dir / LOG_FILE)
    waitress_log = logging.getLogger("waitress")  # its warnings (a full task queue, socket errors) as JSON too
    waitress_log.handlers[:] = logging.getLogger("station").handlers
    waitress_log.propagate = False
    app = create_app(config)
    try:
        try:
            server = create_server(app, host=host, port=port, threads=THREADS, connection_limit=1000, ident="station")
        except OSError as exc:
            raise Unavailable(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host") from exc
        signal.signal(signal.SIGTERM, _interrupt)
        listening = getattr(server, "effective_listen", [(server.effective_host, server.effective_port)])
        for listen_host, listen_port in listening:
            shown = f"[{listen_host}]" if ":" in listen_host else listen_host
            log.info("serving", extra={"url": f"http://{shown}:{listen_port}", "data_dir": str(config.data_dir)})
        if on_ready:
            host0, port0 = listening[0]
            on_ready(f"http://{f'[{host0}]' if ':' in host0 else host0}:{port0}")
        server.run()
    finally:
        app.extensions["station"].close()
        log.info("stopped")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # waitress stops its loop on this, as on Ctrl-C
