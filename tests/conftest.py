"""Fixtures shared by every part's tests: a real station database in a temporary data directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlite_utils

from station.config import DATABASE_ENV
from station.db import connection, schema
from station.db.postgres import WRITE_LOCK
from station.store import Store, is_url
from tests.postgres_servers import drop_database, fresh_database

PRODUCT = "01H4R15D3478JD26YDYK408XE6"


def dump(db: str | Path) -> list[str]:
    """Every row and schema line of a database (a SQLite file, or a registry's URL: its rows as SQLite's dump would
    write them, table by table): compared before and after to show nothing changed."""
    if not is_url(db):
        conn = sqlite3.connect(db)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()
    with psycopg.connect(str(db)) as pg:
        tables = [row[0] for row in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                               "ORDER BY tablename")]
        return [f'INSERT INTO "{table}" VALUES{row!r}' for table in tables
                for row in pg.execute(f'SELECT * FROM "{table}" ORDER BY 1') if table != "commits"]  # bookkeeping


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "station-data"
    path.mkdir()
    return path


def at_version(path: Path, version: int) -> sqlite3.Connection:
    """A station's database as a station of schema ``version`` made it: the migrations up to it, and nothing after."""
    conn = sqlite3.connect(path, isolation_level=None)
    for migrate in schema.MIGRATIONS[:version]:
        migrate(sqlite_utils.Database(conn))
    conn.execute(f"PRAGMA application_id={connection.APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={version}")
    return conn


@contextmanager
def write_lock(db: str | Path) -> Iterator[None]:
    """Another program holding the database's write lock: SQLite's, or the registry's advisory lock."""
    if is_url(db):
        with psycopg.connect(str(db)) as pg:  # a transaction, rolled back when the block ends
            pg.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
            yield
            pg.rollback()
        return
    blocker = sqlite3.connect(db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


ENGINES = ("sqlite", "postgresql")
sqlite_only = pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # a test of the SQLite file itself


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | Path]:
    """The station's database on each engine: the embedded SQLite file of the data directory, or a fresh database
    of the shared PostgreSQL test server, migrated, which every station command of the test then uses (its URL in
    STATION_DATABASE_URL, as a line's PC would have it)."""
    if request.param == "sqlite":
        yield data_dir / "station.db"
        return
    url = fresh_database()
    monkeypatch.setenv(DATABASE_ENV, url)
    Store.open(url, migrate=True).close()
    yield url
    drop_database(url)


@pytest.fixture
def store(database: str | Path) -> Iterator[Store]:
    """A station database with the Blank product of the Ioto samples, on each engine."""
    with Store.open(database) as db:
        db.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        yield db
