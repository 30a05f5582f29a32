"""The embedded engine: one SQLite file in the data directory, WAL, ``synchronous=FULL``, one writer at a time
(``BEGIN IMMEDIATE``), migrated by the station itself when it opens the file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from ..core.errors import NotAStationDatabase, StationError, Unavailable
from .engine import Connection
from .schema import MIGRATIONS, SCHEMA_VERSION

APPLICATION_ID = 0x53544E31  # "STN1": marks the file as a station database


def translate(exc: sqlite3.Error, path: Path) -> StationError:
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


# Run by prefetch in a child process: reads the file in order where it fits in half the memory.
_READ_IN_ORDER = """
import os, sys
with open(sys.argv[1], "rb", buffering=0) as file:
    if os.fstat(file.fileno()).st_size < os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2:
        buffer = bytearray(1 << 20)
        while file.readinto(buffer):
            pass
"""


def prefetch(path: Path) -> None:
    """Read the database file once, in order, so that the operating system caches it; returns when it is read.

    Why: a station started cold on a registry of millions reads one random page of the UCI index from disk for
    each UCI it issues; measured on 9 million devices (900 MB), /ioto/serialize answered 0.62 of a near-empty
    station's requests/s cold and 0.87 once the file was cached, and reading it in order took about a second.
    (POSIX_FADV_WILLNEED, tried first, read almost nothing on this machine.) A child process reads it: a process
    that holds SQLite connections must never open and close the database file itself, since closing any
    descriptor of a file drops all of that process's POSIX locks on it, SQLite's included.
    """
    try:
        subprocess.run([sys.executable, "-c", _READ_IN_ORDER, str(path)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError):  # the station only starts colder
        return


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
        raise translate(exc, path) from exc
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
            writable = str(translate(exc, path))
        checked = "; ".join(row[0] for row in conn.execute("PRAGMA quick_check(20)")) if integrity else None
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    finally:
        conn.close()
    return Inspection(app_id == APPLICATION_ID or (app_id == 0 and not tables), int(version), str(journal),
                      writable, checked)


class SqliteEngine:
    """One connection to the station's SQLite file: opened, checked and migrated."""

    error = sqlite3.Error
    request_errors = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError)
    give_way = 0.12  # longer than the longest poll of a writer waiting in SQLite's busy handler (0.1 s)

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.location = str(path)
        self.timeout = timeout  # how long this connection waits for another's write lock (a batch holds it for less)
        self.migrated_from: int | None = None
        self._seen: int | None = None  # PRAGMA data_version at the last look: it changes when another connection commits
        try:
            raw = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc
        self.raw = raw
        try:
            self._prepare(sqlite_utils.Database(raw))
        except sqlite3.Error as exc:
            raw.close()
            raise translate(exc, path) from exc
        except StationError:
            raw.close()
            raise

    @property
    def conn(self) -> Connection:
        return self.raw

    def close(self) -> None:
        self.raw.close()

    def _prepare(self, db: sqlite_utils.Database) -> None:
        conn = self.raw
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
                    migrate(db)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN IMMEDIATE ... COMMIT, translating SQLite errors into messages a user can act on."""
        conn = self.raw
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise translate(exc, self.path) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        cursor = self._run(sql, params)
        names = [column[0] for column in cursor.description or ()]
        try:
            for row in cursor:
                yield dict(zip(names, row, strict=True))
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def _run(self, sql: str, params: Any) -> sqlite3.Cursor:
        try:
            return self.raw.execute(sql, params)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def translate(self, exc: Exception) -> StationError:
        return translate(exc, self.path) if isinstance(exc, sqlite3.Error) else StationError(str(exc))

    def insert_devices(self, conn: Connection, parts: Iterable[Sequence[str]], product: str, batch: int) -> tuple[int, int]:
        """Each part as one JSON array bound once, the rows sorted by SQLite for sequential B-tree inserts."""
        offered = stored = 0
        for codes in parts:
            offered += len(codes)
            stored += conn.execute("INSERT INTO devices(uci, product, batch, state) SELECT value, ?, ?, 'issued' "
                                   "FROM json_each(?) ORDER BY value ON CONFLICT DO NOTHING",
                                   (product, batch, json.dumps(list(codes)))).rowcount
        return offered, stored

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Foreign keys off: per-row look-ups of the checked product and batch cost a quarter of the insert time."""
        self.raw.execute("PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            self.raw.execute("PRAGMA foreign_keys=ON")

    def contended(self, conn: Connection) -> bool:
        """Whether another connection committed since this one last looked (PRAGMA data_version)."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        seen, self._seen = self._seen, version
        return seen is not None and version != seen

    def warm(self) -> None:
        prefetch(self.path)
