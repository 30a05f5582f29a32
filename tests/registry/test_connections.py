"""A station's connections to its registry stay few, however many server threads come and go: a request takes a
read connection and gives it back (a shared server counts every connection of every station)."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg

from station import config as config_mod
from station.web.app import create_app
from station.web.runtime import IDLE_READERS, Runtime
from tests.postgres_servers import drop_database, fresh_database
from tests.web.conftest import prepare


def connections(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                                "pid <> pg_backend_pid()").fetchone()[0])  # type: ignore[index]


def test_requests_on_threads_that_come_and_go_leave_no_connection_behind(tmp_path: Path) -> None:
    url = fresh_database()
    try:
        prepare(tmp_path, url)
        app = create_app(config_mod.load(tmp_path))
        runtime: Runtime = app.extensions["station"]
        try:
            before = connections(url)

            def request() -> None:  # a server thread's one request, then the thread retires
                with app.app_context():
                    assert runtime.reader().products()

            for _ in range(40):
                thread = threading.Thread(target=request)
                thread.start()
                thread.join(30)
            assert connections(url) <= before + 1 <= IDLE_READERS + 4
        finally:
            runtime.close()
    finally:
        drop_database(url)
