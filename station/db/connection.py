"""A connection to the station database, and SQLite's errors as messages a user can act on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import sqlite_utils

from ..core import fields
from ..core.errors import StationError, Unavailable
from .schema import MIGRATIONS, SCHEMA_VERSION

APPLICATION_ID = 0x53544E31  # "STN1": marks the file as a station database


class NotAStationDatabase(StationError):
    """The file is some other SQLite database, or no database at all."""


def _translate(exc: sqlite3.Error, path: Path) -> StationError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return Unavailable(
            f"the station database {path} is locked by another process (another station command or "
            f"`station serve`); wait for it to finish or stop it, then try again"
        )
    if "disk is full" in text or "database or disk is full" in text:
        return Unavailable(f"the disk holding {path} is full: nothing was stored; free some space and try again")
    if "not a database" in text or "malformed" in text:
        return NotAStationDatabase(f"{path} is not a station database ({text}); point --data-dir at a station's data directory")
    if "readonly" in text:
        return Unavailable(f"the station database {path} is read-only; fix its permissions and try again")
    if "unable to open" in text:
        return Unavailable(f"cannot open the station database {path}; check the data directory and its permissions")
    return StationError(f"database error on {path}: {text}")


@dataclass(frozen=True)
class Inspection:
    """What a database file is, seen without changing it (``station db check``)."""

    station: bool  # a station's database (or an empty file a station will make one of)
    version: int  # its schema version (PRAGMA user_version)
    journal: str  # its journal mode: a station's is "wal"
    writable: str | None  # None when the write lock was taken (and let go) within the wait, else why not
    integrity: str | None  # SQLite's quick_check ("ok"), when asked for


def inspect(path: Path, *, timeout: float, integrity: bool = False) -> Inspection:
    """Look at the database at ``path`` without migrating it: what it is, its schema and journal, whether its
    write lock can be had within ``timeout`` s, and (``integrity``) SQLite's quick check of every page."""
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc
    try:
        app_id, = conn.execute("PRAGMA application_id").fetchone()
        tables, = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        version, = conn.execute("PRAGMA user_version").fetchone()
        journal, = conn.execute("PRAGMA journal_mode").fetchone()
        try:  # a write, undone: a read-only file (or -wal, -shm) takes the lock, but refuses to be written
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"PRAGMA user_version={int(version)}")
            finally:
                conn.execute("ROLLBACK")
            writable = None
        except sqlite3.Error as exc:
            writable = str(_translate(exc, path))
        checked = "; ".join(row[0] for row in conn.execute("PRAGMA quick_check(20)")) if integrity else None
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc
    finally:
        conn.close()
    return Inspection(app_id == APPLICATION_ID or (app_id == 0 and not tables), int(version), str(journal),
                      writable, checked)


class Database:
    """One connection to the station database: opened, checked and migrated; transactions and queries that
    translate SQLite's errors."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0, station: str | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout  # how long this connection waits for another's write lock (a batch holds it for less)
        self.station = station or fields.host_station()  # recorded in every event this connection writes
        self.migrated_from: int | None = None  # the schema version this connection migrated from, if it did
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        try:
            self._prepare()
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc, self.path) from exc
        except StationError:
            conn.close()
            raise

    @classmethod
    def open(cls, path: str | Path, *, timeout: float = 5.0, station: str | None = None) -> Self:
        return cls(path, timeout=timeout, station=station)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prepare(self) -> None:
        conn = self.conn
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise NotAStationDatabase(
                f"{self.path} is a SQLite database of another program; point --data-dir at a station's data directory"
            )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NotAStationDatabase(
                f"{self.path} has schema version {version}, newer than this station's {SCHEMA_VERSION}; upgrade station"
            )
        if version < SCHEMA_VERSION:
            with self.transaction():
                version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
                if version > SCHEMA_VERSION:  # a newer station did, meanwhile: never stamp its schema down
                    raise NotAStationDatabase(f"{self.path} has schema version {version}, newer than this station's "
                                              f"{SCHEMA_VERSION}; upgrade station")
                if version < SCHEMA_VERSION:
                    self.migrated_from = version
                for migrate in MIGRATIONS[version:]:
                    migrate(self.db)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, translating SQLite errors into messages a user can act on."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _translate(exc, self.path) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        try:
            yield from self.db.query(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

