"""A shared PostgreSQL registry for the benchmarks' ``--database URL``: a database of its own for each run.

The URL names a server and a role that may CREATE DATABASE (the tests' postgresql://station_test:station_test@
127.0.0.1:5432/station_test, say). Each run creates a database of a random name on that server, so that it never
meets the rows of another run or of a test, and drops it at the end whatever happened (WITH (FORCE): a station
process left connected does not keep it; nor does autovacuum, which a plain DROP stops). A data directory is
pointed at it as an operator points a station at its registry, with ``database`` in station.json5, and the schema
is made once, as `station db migrate` makes it (``Store.open(url, migrate=True)``): stations never create a
registry's schema by themselves.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from station.store import Store


@contextmanager
def fresh(server: str) -> Iterator[str]:
    """The URL of a new, empty database on the server of ``server`` (same role, password and options), dropped
    when the block ends."""
    name = f"station_bench_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            except psycopg.errors.InsufficientPrivilege:  # autovacuum (a superuser's) is at it: plain DROP ends it
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def migrated(url: str) -> str:
    """The registry at ``url`` with this station's schema, as `station db migrate` leaves it."""
    Store.open(url, migrate=True).close()
    return url


def point(data_dir: Path, url: str) -> Path:
    """``data_dir``, made if need be, with a station.json5 that names the registry at ``url``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.json5").write_text(json.dumps({"database": url}) + "\n")
    return data_dir
