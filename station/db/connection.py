"""A connection to the station's database on its engine: the embedded SQLite file (db/sqlite.py) by default,
or a shared PostgreSQL registry (db/postgres.py) when the station is configured with its URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Self

from ..core import fields
from ..core.errors import NotAStationDatabase
from .engine import Connection, Engine
from .location import Location, is_url
from .sqlite import APPLICATION_ID, SqliteEngine

__all__ = ["APPLICATION_ID", "Database", "NotAStationDatabase", "is_url", "open_engine"]

def open_engine(location: Location, *, timeout: float, migrate: bool = False) -> Engine:
    """The engine of the location, connected and at this station's schema. SQLite migrates itself; a shared
    registry only with ``migrate`` (``station db migrate``), since every station on it must be upgraded first."""
    if is_url(location):
        from .postgres import PostgresEngine  # psycopg is loaded only by stations that use a registry

        return PostgresEngine(str(location), timeout, migrate=migrate)
    return SqliteEngine(Path(location), timeout)


class Database:
    """One connection to the station database; transactions and queries that translate the engine's errors."""

    def __init__(self, location: Location, *, timeout: float = 5.0, station: str | None = None,
                 migrate: bool = False) -> None:
        self.timeout = timeout  # how long this connection waits for another's write lock (a batch holds it for less)
        self.station = station or fields.host_station()  # recorded in every event this connection writes
        self.engine = open_engine(location, timeout=timeout, migrate=migrate)

    @classmethod
    def open(cls, location: Location, *, timeout: float = 5.0, station: str | None = None,
             migrate: bool = False) -> Self:
        return cls(location, timeout=timeout, station=station, migrate=migrate)

    @property
    def location(self) -> str:
        """The database as messages name it (a file, or a URL without its password)."""
        return self.engine.location

    @property
    def migrated_from(self) -> int | None:
        """The schema version this connection migrated from, if it did."""
        return self.engine.migrated_from

    @property
    def conn(self) -> Connection:
        return self.engine.conn

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction, committed durably before it returns; the engine's errors as StationErrors."""
        return self.engine.transaction()

    def _query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        return self.engine.query(sql, params)
