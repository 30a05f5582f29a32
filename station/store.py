"""The station's SQLite store: schema and migrations, products, batches, devices and their append-only events.

Every change of a device's state goes through ``_move``, which asks the life cycle for the new state and
writes the event in the same transaction. A UCI is committed (``synchronous=FULL``) before any caller can
hand it out. A ``Store`` owns one connection and is used from one thread at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from . import fields, lifecycle, uci
from .errors import Conflict, Invalid, NotFound, StationError, Unavailable

APPLICATION_ID = 0x53544E31  # "STN1": marks the file as a station database
CHUNK = 50_000  # UCIs per bulk INSERT: one JSON array bound once, sorted by SQLite for sequential B-tree inserts
HOLD_SHARE = 3  # a batch holds the write lock for at most this fraction (1/3) of the busy timeout other writers wait
GIVE_WAY = 0.12  # s a batch leaves the lock free between its transactions: longer than SQLite's longest busy poll (0.1 s)
LIVE_HOLD = 0.25  # s a batch holds the lock at most while another process writes too (a live line waits no longer)
TRIES = 100  # draws (or bulk chunks) in a row that store nothing new before a product's IDs count as used up
RELEASED = "its claim ID was voided; the unit gets a new one"  # why a key leaves a void device
REPEAT_WINDOW = 24 * 3600.0  # seconds after its issue that a unit still in the factory gets its UCI again by its hardware key
IDEMPOTENCY_WINDOW = 24 * 3600.0  # seconds an Idempotency-Key names its request; older ones are deleted as issuance comes by
IN_FACTORY = lifecycle.STATES[: lifecycle.STATES.index("registered")]  # states in which a repeat may get the UCI back
REFUSAL_FIELDS = (("product", "product_id"), ("serial", "serial"), ("hwkey", "hwkey"))  # (event detail, request key)
# Errors of SQLite that one request's values cause (a bug): they refuse that request, not its group.
_REQUEST_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.DataError)
TOKEN_SCOPES = ("read", "issue", "admin")  # what an API token may do; station/web/access.py maps actions to them
DEFAULT_SCOPES = ("read",)  # a token made without --scope: least privilege
log = logging.getLogger("station.store")
_DETAILS = json.JSONEncoder(sort_keys=True)  # an event's details as stored (json.dumps would build one each time)


class NotAStationDatabase(StationError):
    """The file is some other SQLite database, or no database at all."""


class Ambiguous(Conflict):
    """A typed code names more than one device."""


class SerialTaken(Conflict):
    """A serial that already has a claim ID: the refusal concerns that device (``uci``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.uci = code


class RepeatRefused(Conflict):
    """A repeat by hardware key of a unit that has left the factory: the refusal concerns that device (``uci``),
    whose claim ID its message never names."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.uci = code


def _used_up(product: Product) -> Unavailable:
    return Unavailable(f"product {product.id} has run out of fresh claim IDs at {product.bits} bits; use more bits")


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


def _draws(product: Product, count: int) -> Generator[list[str], int, None]:
    """``count`` fresh UCIs in key order, as sorted lists of at most CHUNK; send back how many of each list were
    stored, and the shortfall (UCIs already used, or drawn twice) is drawn again in the same range.

    Drawing how many UCIs start with each symbol (one CSPRNG symbol per UCI), then the rest of each UCI, gives
    the same UCIs as drawing them whole and sorting them (every symbol is uniform and independent, DESIGN.md 1),
    with one range in memory at a time.
    """
    firsts = "".join(uci.generate_many(-(-count // uci.symbols(product.bits)), product.bits))[:count]
    for symbol in uci.ALPHABET:
        wanted, fruitless = firsts.count(symbol), 0
        while wanted:
            codes = sorted([symbol + code[1:] for code in uci.generate_many(wanted, product.bits)])
            before = wanted
            for i in range(0, len(codes), CHUNK):
                wanted -= yield codes[i : i + CHUNK]
            fruitless = 0 if wanted < before else fruitless + 1
            if fruitless == TRIES:
                raise _used_up(product)


def now() -> str:
    """UTC time as stored: ISO 8601 with milliseconds, sortable as text."""
    return _stored(datetime.now(UTC))


def _stored(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ago(stamp: str, seconds: float) -> str:
    """The stored time ``seconds`` before ``stamp`` (a stored time): compared as text with stored times."""
    return _stored(datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds))


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    model: str
    description: str = ""
    bits: int = uci.DEFAULT_BITS
    check_symbol: bool = True
    claim_url: str | None = None
    layout: str | None = None
    enabled: bool = True
    created: str = ""

    def display(self, code: str) -> str:
        return uci.display(code, check=self.check_symbol)

    def device_object(self, code: str, **extra: Any) -> dict[str, Any]:
        """The device object of device.json5 for a unit of this product, with its UCI in ``id``."""
        return {"product": self.id, "name": self.name, "description": self.description, "model": self.model, **extra, "id": code}

    def device_file(self, code: str) -> bytes:
        """The device.json5 a unit gets, byte for byte: written by the rig, and by manifests for firmware builds."""
        return (json.dumps(self.device_object(code), indent=4) + "\n").encode()


@dataclass(frozen=True)
class Device:
    uci: str
    product: str
    state: str
    created: str
    updated: str
    batch: str | None = None
    serial: str | None = None
    hwkey: str | None = None
    display: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Batch:
    id: int
    name: str
    product: str
    count: int
    created: str
    actor: str
    complete: bool = True  # False while a batch's chunks are being committed, or when that was interrupted
    issued: int = 0  # UCIs stored so far: ``count`` once complete

    def incomplete(self) -> str:
        """Why an incomplete batch cannot be used yet, and what finishes it (refusals and `station stats` say it)."""
        return (f"batch {self.name!r} is incomplete ({self.issued:,} of {self.count:,} claim IDs stored: its generation was "
                f"interrupted, or is still running); `station batch resume {self.name}` finishes it, "
                f"`station batch void {self.name} --reason TEXT` gives it up")


@dataclass(frozen=True)
class Event:
    id: int
    time: str
    uci: str | None
    batch: int | None
    kind: str
    actor: str
    details: dict[str, Any]


def _v1(db: sqlite_utils.Database) -> None:
    db.table("products").create(
        {"id": str, "name": str, "model": str, "description": str, "bits": int, "check_symbol": int,
         "claim_url": str, "layout": str, "enabled": int, "created": str},
        pk="id", not_null={"name", "model", "bits", "check_symbol", "enabled", "created"},
        defaults={"description": "", "bits": uci.DEFAULT_BITS, "check_symbol": 1, "enabled": 1},
    )
    db.table("batches").create(
        {"id": int, "name": str, "product": str, "count": int, "created": str, "actor": str},
        pk="id", not_null={"name", "product", "count", "created", "actor"}, foreign_keys=[("product", "products", "id")],
    )
    db.table("batches").create_index(["name"], unique=True)
    # The UCI is the primary key of a rowid table (not WITHOUT ROWID): rows append in issue order under the
    # hidden rowid, so the batch index, (batch, rowid), grows at its end, and the UCI key is its own index.
    # Measured against a WITHOUT ROWID table keyed by UCI, which the batch index made twice as slow.
    db.table("devices").create(
        {"uci": str, "product": str, "batch": int, "state": str, "serial": str, "hwkey": str,
         "created": str, "updated": str},
        # A batch's devices leave created NULL: the batch holds that time, and a copy per row would only
        # add 24 MB per million; updated stays NULL until the state first changes.
        pk="uci", not_null={"uci", "product", "state"},  # NOT NULL: a rowid table's TEXT key would take NULL
        foreign_keys=[("product", "products", "id"), ("batch", "batches", "id")],
    )
    db.table("devices").create_index(["batch"])
    db.execute("CREATE UNIQUE INDEX idx_devices_serial ON devices(product, serial) WHERE serial IS NOT NULL")
    db.execute("CREATE UNIQUE INDEX idx_devices_hwkey ON devices(product, hwkey) WHERE hwkey IS NOT NULL")
    db.table("events").create(
        {"id": int, "time": str, "uci": str, "batch": int, "kind": str, "actor": str, "details": str},
        pk="id", not_null={"time", "kind", "actor", "details"},
    )
    db.table("events").create_index(["uci"])
    db.table("events").create_index(["kind", "time"])  # the line's daily counts: WHERE kind IN (...) AND time >= ?
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
            f"BEGIN SELECT RAISE(ABORT, 'events are append-only'); END"
        )
    db.table("idempotency").create(
        {"product": str, "key": str, "uci": str, "created": str}, pk=("product", "key"), not_null={"uci", "created"}
    )
    db.table("tokens").create(
        {"id": int, "name": str, "hash": str, "created": str, "last_used": str},
        pk="id", not_null={"name", "hash", "created"},
    )
    db.table("tokens").create_index(["name"], unique=True)
    db.table("tokens").create_index(["hash"], unique=True)
    db.table("users").create(
        {"name": str, "role": str, "password_hash": str, "created": str},
        pk="name", not_null={"role", "password_hash", "created"},
    )


def _v2(db: sqlite_utils.Database) -> None:
    """Hardening: token scopes, server-side sessions, users that can be disabled, idempotency keys scoped to
    the client's address, and batches that are committed in chunks (usable only once complete)."""
    # Tokens made before scopes existed could do everything: they keep that, new ones get what they ask for.
    db.execute("ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE tokens SET scopes = 'read issue admin'")
    db.execute("ALTER TABLE users ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1")
    # A session is a row: sign-out deletes it, a password change or a disabled user deletes all of theirs.
    # ``id`` is the SHA-256 of the cookie's token, so the database alone opens no session.
    db.table("sessions").create(
        {"id": str, "user": str, "created": str, "expires": str},
        pk="id", not_null={"user", "created", "expires"}, foreign_keys=[("user", "users", "name")],
    )
    db.table("sessions").create_index(["user"])
    # An Idempotency-Key names one client's request: the same key from another address is another request.
    db.execute(
        "CREATE TABLE idempotency_v2 (product TEXT NOT NULL, remote TEXT NOT NULL, key TEXT NOT NULL, "
        "uci TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (product, remote, key))"
    )
    db.execute("INSERT INTO idempotency_v2 SELECT product, '', key, uci, created FROM idempotency")
    db.execute("DROP TABLE idempotency")
    db.execute("ALTER TABLE idempotency_v2 RENAME TO idempotency")
    db.execute("CREATE INDEX idx_idempotency_created ON idempotency(created)")  # expired keys are swept by age
    db.execute("ALTER TABLE batches ADD COLUMN complete INTEGER NOT NULL DEFAULT 1")


def _v3(db: sqlite_utils.Database) -> None:
    """Batches count the UCIs they hold, under the write lock, so that resuming an interrupted batch (even by
    two commands at once) stops exactly at its count without counting millions of rows per chunk."""
    db.execute("ALTER TABLE batches ADD COLUMN issued INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE batches SET issued = count")


# Each migration moves the schema one version up; they run in order inside one transaction.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


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


class Store:
    """The station database. Open it with ``Store.open(path)``; close it when done."""

    def __init__(self, path: str | Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout  # how long this connection waits for another's write lock (a batch holds it for less)
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
    def open(cls, path: str | Path, *, timeout: float = 5.0) -> Store:
        return cls(path, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema -------------------------------------------------------------------------------------------

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

    # --- events -------------------------------------------------------------------------------------------

    @staticmethod
    def _event(conn: sqlite3.Connection, kind: str, actor: str, details: dict[str, Any] | None = None,
               code: str | None = None, batch: int | None = None, time: str | None = None) -> int:
        return conn.execute(
            "INSERT INTO events(time, uci, batch, kind, actor, details) VALUES (?, ?, ?, ?, ?, ?)",
            (time or now(), code, batch, kind, actor, _DETAILS.encode(details or {})),
        ).lastrowid or 0

    def record(self, code: str | None, kind: str, actor: str, details: dict[str, Any] | None = None) -> int:
        """Append an event that changes no state (a refusal, a failed attempt, a repeated request); its id.

        Event ids only grow: "after event N" is exact where times of day are not (milliseconds, clock steps).
        """
        if code is not None and not fields.storable(code):  # a device's refused request names what it sent
            code = fields.shown(code)
        with self.transaction() as conn:
            return self._event(conn, kind, actor, details, code=code)

    def events(self, code: str) -> list[Event]:
        """A device's history, with the event of the batch it was issued in."""
        sql = (
            "SELECT * FROM events WHERE uci = ? OR (uci IS NULL AND batch = "
            "(SELECT batch FROM devices WHERE uci = ?)) ORDER BY id"
        )
        return [
            Event(r["id"], r["time"], r["uci"], r["batch"], r["kind"], r["actor"], json.loads(r["details"]))
            for r in self._query(sql, (code, code))
        ]

    # --- products -----------------------------------------------------------------------------------------

    def add_product(self, product_id: str, name: str, model: str, *, description: str = "",
                    bits: int = uci.DEFAULT_BITS, check_symbol: bool = True, claim_url: str | None = None,
                    layout: str | None = None, actor: str = "cli") -> Product:
        """Register a product; its fields (fields.py), size and claim URL are checked here, once, for every caller."""
        product_id = fields.product_id(product_id)
        name, model = fields.text(name, "a product's name"), fields.text(model, "a product's model")
        description = fields.text(description or "", "a product's description", fields.DESCRIPTION_MAX, required=False)
        if layout is not None:
            layout = fields.text(layout, "a product's layout", fields.NAME_MAX)
        uci.validate_bits(bits)
        if claim_url:
            uci.validate_claim_url(fields.text(claim_url, "a product's claim URL", fields.NAME_MAX))
        created = now()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM products WHERE id = ?", (product_id,)).fetchone():
                raise Conflict(f"product {product_id} already exists; `station product list` shows it")
            conn.execute(
                "INSERT INTO products(id, name, model, description, bits, check_symbol, claim_url, layout, enabled, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (product_id, name, model, description, bits, int(check_symbol), claim_url or None, layout, created),
            )
            self._event(conn, "product-added", actor, {"product": product_id, "name": name, "bits": bits})
        return self.product(product_id)

    @staticmethod
    def _product(row: dict[str, Any]) -> Product:
        return Product(**{**row, "check_symbol": bool(row["check_symbol"]), "enabled": bool(row["enabled"])})

    def product(self, product_id: str) -> Product:
        """The product, or an error naming it and where to look."""
        for row in self._query("SELECT * FROM products WHERE id = ?", (product_id,)):
            return self._product(row)
        raise NotFound(f"unknown product {product_id!r}: add it with `station product add` or check `station product list`")

    def products(self) -> list[Product]:
        return [self._product(r) for r in self._query("SELECT * FROM products ORDER BY created, id")]

    def set_product_enabled(self, product_id: str, enabled: bool, actor: str = "cli") -> Product:
        self.product(product_id)
        with self.transaction() as conn:
            conn.execute("UPDATE products SET enabled = ? WHERE id = ?", (int(enabled), product_id))
            self._event(conn, "product-enabled" if enabled else "product-disabled", actor, {"product": product_id})
        return self.product(product_id)

    # --- batches ------------------------------------------------------------------------------------------

    def generate_batch(self, product_id: str, count: int, *, name: str | None = None, actor: str = "cli",
                       progress: Callable[[int], None] | None = None) -> Batch:
        """Issue ``count`` UCIs as one batch, committed in short transactions (``_fill``), with one event at the end.

        The batch row is committed first, incomplete: until its last UCI is in, the batch cannot be used
        (``usable_batch``: no labels, manifests, exports by batch or moves of its devices) and `station stats`
        names it, so that an interrupted batch is finished (``resume_batch``) or given up (``void_batch``),
        never used by halves.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise Invalid(f"count must be a whole number of at least 1, not {count!r}")
        product = self._issuable(product_id)
        created = now()
        name = fields.text(name, "a batch name") if name else f"{product_id}-{created[:19].replace(':', '').replace('-', '')}"
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM batches WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"batch name {name!r} is already used; choose another with --batch")
            conn.execute(
                "INSERT INTO batches(name, product, count, created, actor, complete, issued) VALUES (?, ?, ?, ?, ?, 0, 0)",
                (name, product.id, count, created, actor),
            )
        return self._fill(self.batch(name), actor, progress)

    def resume_batch(self, name: str, *, actor: str = "cli", progress: Callable[[int], None] | None = None) -> Batch:
        """Finish an interrupted batch: issue the UCIs it still lacks, then mark it complete with its event."""
        batch = self.batch(name)
        if batch.complete:
            raise Conflict(f"batch {name!r} is complete ({batch.count:,} claim IDs); there is nothing to resume")
        return self._fill(batch, actor, progress)

    def void_batch(self, name: str, reason: str, *, actor: str = "cli") -> Batch:
        """Give up an incomplete batch: its devices become void (their UCIs are never issued again), with one
        ``batch-voided`` event that each device's history shows; the batch then counts as settled."""
        reason = fields.reason(reason, "voiding a batch")
        batch = self.batch(name)
        if batch.complete:
            raise Conflict(f"batch {name!r} is complete; void its devices one by one with `station void CODE --reason TEXT`")
        void, issued = lifecycle.void(lifecycle.STATES[0]), lifecycle.STATES[0]  # the one state an incomplete batch holds
        last = voided = 0
        while True:  # short transactions, as the batch was made: a live line keeps its turns at the lock
            with self.transaction() as conn:
                self._unsettled(conn, batch)
                began, upto = time.monotonic(), last
                while upto is not None and time.monotonic() - began < self._hold():
                    last = upto
                    upto = conn.execute(
                        "SELECT max(rowid) FROM (SELECT rowid FROM devices WHERE batch = ? AND rowid > ? ORDER BY rowid LIMIT ?)",
                        (batch.id, last, CHUNK)).fetchone()[0]
                    if upto is not None:
                        voided += conn.execute(
                            "UPDATE devices SET state = ?, updated = ? "
                            "WHERE batch = ? AND rowid > ? AND rowid <= ? AND state = ?",
                            (void, now(), batch.id, last, upto, issued)).rowcount
                if upto is None:
                    conn.execute("UPDATE batches SET complete = 1 WHERE id = ?", (batch.id,))
                    self._event(conn, "batch-voided", actor, {"reason": reason, "devices": voided,
                                                              "count": batch.count}, batch=batch.id)
                    return self.batch(name)
            time.sleep(GIVE_WAY)

    def _hold(self, live: bool = False) -> float:
        """Seconds a batch may hold the write lock at a time: well inside the busy timeout other writers wait, and
        short while another process wrote since the batch's last transaction (``live``): the line's requests wait
        for the lock once per transaction."""
        hold = max(self.timeout / HOLD_SHARE, 0.01)
        return min(hold, LIVE_HOLD) if live else hold

    def _unsettled(self, conn: sqlite3.Connection, batch: Batch) -> int:
        """How many UCIs the incomplete batch holds, read under the write lock; refused once another command
        completed or voided it."""
        row = conn.execute("SELECT complete, issued FROM batches WHERE id = ?", (batch.id,)).fetchone()
        if row is None or row[0]:
            raise Conflict(f"batch {batch.name!r} was completed or voided by another command meanwhile; `station stats` shows it")
        return row[1]

    def _fill(self, batch: Batch, actor: str, progress: Callable[[int], None] | None) -> Batch:
        """Store the UCIs an incomplete batch lacks, in transactions of at most ``_hold()`` seconds each with a
        pause of ``GIVE_WAY`` between them, so that the server's writer and the line get the lock in time
        (they wait ``database_timeout``); the last one marks the batch complete and writes ``batch-issued``.

        UCIs come in key order (``_draws``), so each transaction inserts into one range of the UCI index: the
        index is written about once per batch, not once per transaction, whatever the registry's size.
        """
        product = self._issuable(batch.product)
        insert = ("INSERT OR IGNORE INTO devices(uci, product, batch, state) "
                  "SELECT value, ?, ?, 'issued' FROM json_each(?) ORDER BY value")
        draws = _draws(product, batch.count - batch.issued)
        part, redrawn = next(draws), 0
        if batch.count - batch.issued >= CHUNK:  # a big batch touches most pages of the UCI index: read them in order first
            prefetch(self.path)
        # The product was checked and the batch row exists, so per-row foreign key look-ups would only repeat
        # that work (they cost about a quarter of the insert time).
        self.conn.execute("PRAGMA foreign_keys=OFF")
        seen = None  # PRAGMA data_version at the last transaction: it changes when another connection commits
        try:
            while True:
                with self.transaction() as conn:
                    issued = self._unsettled(conn, batch)
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    hold, seen = self._hold(live=seen is not None and version != seen), version
                    began, added = time.monotonic(), 0
                    while issued < batch.count and time.monotonic() - began < hold:
                        part = part[: batch.count - issued]  # another command resuming it may have added some
                        stored = conn.execute(insert, (product.id, batch.id, json.dumps(part))).rowcount
                        issued, added, redrawn = issued + stored, added + stored, redrawn + len(part) - stored
                        if issued < batch.count:
                            part = draws.send(stored)
                    conn.execute("UPDATE batches SET issued = ? WHERE id = ?", (issued, batch.id))
                    if issued == batch.count:
                        conn.execute("UPDATE batches SET complete = 1 WHERE id = ?", (batch.id,))
                        self._event(conn, "batch-issued", actor, {"product": product.id, "count": batch.count,
                                                                  "redrawn": redrawn}, batch=batch.id)
                if progress:
                    progress(added)
                if issued == batch.count:
                    return self.batch(batch.name)
                time.sleep(GIVE_WAY)
        except StationError as exc:
            try:  # say what is left to do, where something is (another command may have settled it meanwhile)
                now_stored = self.batch(batch.name)
            except StationError:  # the database is gone too: the first error is the one to act on
                raise exc from None
            if now_stored.complete:
                raise
            raise type(exc)(f"{exc}; {now_stored.incomplete()}") from exc
        finally:
            self.conn.execute("PRAGMA foreign_keys=ON")

    @staticmethod
    def _batch(row: dict[str, Any]) -> Batch:
        return Batch(**{**row, "complete": bool(row["complete"])})

    def batch(self, name: str) -> Batch:
        for row in self._query("SELECT * FROM batches WHERE name = ?", (name,)):
            return self._batch(row)
        raise NotFound(f"unknown batch {name!r}: `station stats` lists the batches")

    def _usable_batch_of(self, conn: sqlite3.Connection, batch_id: int) -> None:
        """Refuse a move of a device whose batch is incomplete (voiding it stays allowed)."""
        row = conn.execute("SELECT name FROM batches WHERE id = ? AND NOT complete", (batch_id,)).fetchone()
        if row is not None:
            raise Conflict(self.batch(row[0]).incomplete())

    def usable_batch(self, name: str) -> Batch:
        """The batch, if it is complete: the one check before its devices are labelled, exported or listed."""
        found = self.batch(name)
        if not found.complete:
            raise Conflict(found.incomplete())
        return found

    def usable_device(self, code: str) -> Device:
        """The device, refused while its batch is incomplete: no label or unit may carry its claim ID yet."""
        found = self.device(code)
        if found.batch is not None:
            self.usable_batch(found.batch)
        return found

    def batches(self, product: str | None = None) -> list[Batch]:
        where, params = ("WHERE product = ?", (product,)) if product else ("", ())
        return [self._batch(r) for r in self._query(f"SELECT * FROM batches {where} ORDER BY id", params)]

    # --- devices ------------------------------------------------------------------------------------------

    _DEVICE_SELECT = (
        "SELECT d.uci, d.product, d.state, coalesce(d.created, b.created) AS created, "
        "coalesce(d.updated, d.created, b.created) AS updated, b.name AS batch, d.serial, d.hwkey, "
        "p.check_symbol FROM devices d JOIN products p ON p.id = d.product LEFT JOIN batches b ON b.id = d.batch"
    )

    @staticmethod
    def _device(row: dict[str, Any]) -> Device:
        check = row.pop("check_symbol")
        return Device(**row, display=uci.display(row["uci"], check=bool(check)))

    def device(self, code: str) -> Device:
        """The device with this canonical UCI."""
        for row in self._query(self._DEVICE_SELECT + " WHERE d.uci = ?", (code,)):
            return self._device(row)
        raise NotFound(f"no device has claim ID {code}")

    def find(self, typed: str) -> Device:
        """The device a person's typed or scanned code names, across products of every size (DESIGN.md 1)."""
        reading = uci.read_typed(typed)
        sizes = {row["bits"] // 5 for row in self._query("SELECT DISTINCT bits FROM products")}
        candidates = [code for code in reading.readings if len(code) in sizes]
        found = []
        if candidates:
            marks = ",".join("?" * len(candidates))
            found = [self._device(r) for r in self._query(self._DEVICE_SELECT + f" WHERE d.uci IN ({marks})", candidates)]
        if len(found) == 1:
            return found[0]
        if found:
            raise Ambiguous(
                f"claim code {typed.strip()!r} matches {len(found)} devices ({', '.join(d.display for d in found)}); "
                f"type the whole code with its check symbol"
            )
        if reading.problem and len(reading.cleaned) - 1 in sizes:
            raise reading.problem
        raise NotFound(f"no device has claim code {typed.strip()!r}; check it against the label")

    def devices(self, *, product: str | None = None, batch: str | None = None, state: str | None = None,
                serial: str | None = None, limit: int | None = None, offset: int = 0) -> Iterator[Device]:
        """Devices in issue order, filtered; an iterator, so that exports of millions stream."""
        clauses: list[str] = []
        params: list[str | int] = []
        if product:
            self.product(product)
            clauses.append("d.product = ?")
            params.append(product)
        if batch:
            clauses.append("d.batch = ?")
            params.append(self.usable_batch(batch).id)
        else:  # a batch is all or nothing: none of its devices is listed before it is complete
            clauses.append("(d.batch IS NULL OR b.complete)")
        if state:
            clauses.append("d.state = ?")
            params.append(lifecycle.check_state(state))
        if serial:
            clauses.append("d.serial = ?")
            params.append(serial)
        sql = self._DEVICE_SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY d.rowid"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return (self._device(row) for row in self._query(sql, params))  # the filters are checked before the first row

    def issue(self, product_id: str, *, serial: str | None = None, hwkey: str | None = None,
              idempotency_key: str | None = None, remote: str = "", actor: str = "operator", kind: str = "issued",
              details: dict[str, Any] | None = None, repeat_window: float = REPEAT_WINDOW,
              idempotency_window: float = IDEMPOTENCY_WINDOW) -> tuple[Device, bool]:
        """One UCI for one unit, committed before it returns; ``(device, True)`` when newly issued.

        A unit that says who it is gets its UCI back, with an event: by its hardware key while it is still
        in the factory (not yet registered, and within ``repeat_window`` seconds of its issue), by an
        idempotency key from the same client address (``remote``) within ``idempotency_window`` seconds. A refusal
        raises its error and is recorded as a ``refused`` event.
        """
        request = {"product_id": product_id, "serial": serial, "hwkey": hwkey, "idempotency_key": idempotency_key,
                   "remote": remote, "actor": actor, "kind": kind, "details": details,
                   "repeat_window": repeat_window, "idempotency_window": idempotency_window}
        with self.transaction() as conn:
            result = self._issue_one(conn, request, {}, now())
        if isinstance(result, Exception):
            raise result
        return self.device(result[0]), result[1]

    def _issuable(self, product_id: str) -> Product:
        """The product, if claim IDs may be issued for it; else the error that names it."""
        product = self.product(product_id)
        if not product.enabled:
            raise Conflict(f"product {product_id} is disabled; `station product enable {product_id}` allows issuing again")
        return product

    def _issue_one(self, conn: sqlite3.Connection, request: dict[str, Any], products: dict[str, Product],
                   stamp: str) -> tuple[str, bool] | Exception:
        """One request (``issue``'s keyword arguments) under its own savepoint: ``(uci, created)``, or the
        error that refused it, whose ``refused`` event is written after its changes are rolled back.

        Whatever goes wrong in one request stays in it: a bug is logged and fails that request alone, so the
        group's other requests are committed. Only a failure of the database itself (locked, full, broken)
        ends the transaction, and refuses them all.
        """
        details = request.get("details") or {}
        actor, kind = request.get("actor", "operator"), request.get("kind", "issued")
        conn.execute("SAVEPOINT request")
        try:
            product_id = fields.product_id(request["product_id"])
            serial, hwkey, idem = (request.get(name) for name in ("serial", "hwkey", "idempotency_key"))
            serial = None if serial is None else fields.serial(serial)
            hwkey = None if hwkey is None else fields.hardware_key(hwkey)
            idem = None if idem is None else fields.idempotency_key(idem)
            if product_id not in products:
                products[product_id] = self._issuable(product_id)
            windows = (request.get("repeat_window", REPEAT_WINDOW), request.get("idempotency_window", IDEMPOTENCY_WINDOW))
            result: tuple[str, bool] | Exception = self._issue(
                conn, products[product_id], serial, hwkey, (idem, str(request.get("remote") or "")), windows,
                actor, kind, details, stamp)
        except Exception as exc:
            if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, _REQUEST_ERRORS):
                raise  # the database itself failed (locked, full, broken): the transaction's error, for the whole group
            conn.execute("ROLLBACK TO request")
            if isinstance(exc, StationError):
                refusal = {**details, "reason": str(exc)}
            else:  # its details may be what broke it: the event keeps only what is sure to store
                log.exception("issuing failed (a bug): this request is refused, the group's others go on",
                              extra={"actor": actor, "product": fields.shown(request.get("product_id"))})
                refusal = {"reason": "internal error of the station; its log has the details"}
            refusal.update({"attempted": kind}, **{name: fields.shown(request.get(key))
                                                   for name, key in REFUSAL_FIELDS if request.get(key) is not None})
            try:
                self._event(conn, "refused", actor, refusal, code=getattr(exc, "uci", None))
            except (TypeError, ValueError):  # the request's details do not store: the refusal without them
                self._event(conn, "refused", actor, {k: v for k, v in refusal.items() if k not in details},
                            code=getattr(exc, "uci", None))
            result = exc
        conn.execute("RELEASE request")
        return result

    def _known(self, conn: sqlite3.Connection, name: str, key: tuple[str, ...], product: Product,
               actor: str) -> tuple[str, str, str | None] | None:
        """``(uci, state, created)`` of the device a hardware key, serial (``name`` "hwkey", "serial": ``key``
        is its value) or idempotency key (``key`` is the key and the client's address) names, if it is not void.

        A void UCI is never issued again: the key is released from the void device, with an event that keeps
        its value, so that the unit gets a new UCI under the same key.
        """
        if name in ("hwkey", "serial"):
            select = f"SELECT uci, state, created FROM devices WHERE product = ? AND {name} = ?"
            release = f"UPDATE devices SET {name} = NULL WHERE product = ? AND {name} = ?"
            params: tuple[str, ...] = (product.id, key[0])
        else:
            select = ("SELECT i.uci, d.state, i.created FROM idempotency i LEFT JOIN devices d ON d.uci = i.uci "
                      "WHERE i.product = ? AND i.key = ? AND i.remote = ?")
            release = "DELETE FROM idempotency WHERE product = ? AND key = ? AND remote = ?"
            params = (product.id, *key)
        row = conn.execute(select, params).fetchone()
        if row is None:
            return None
        if row[1] != "void":
            return row
        conn.execute(release, params)
        self._event(conn, "key-released", actor, {"key": name, "value": key[0], "reason": RELEASED}, code=row[0])
        return None

    def _issue(self, conn: sqlite3.Connection, product: Product, serial: str | None, hwkey: str | None,
               idem: tuple[str | None, str], windows: tuple[float, float], actor: str, kind: str,
               details: dict[str, Any], stamp: str) -> tuple[str, bool]:
        existing = None
        if hwkey is not None:
            existing = self._known(conn, "hwkey", (hwkey,), product, actor)
            if existing is not None and (existing[1] not in IN_FACTORY or (existing[2] or "") < _ago(stamp, windows[0])):
                raise RepeatRefused(
                    f"the unit {hwkey} of product {product.id} already has a claim ID and has left the factory "
                    f"(registered, or issued more than {windows[0]:g} s ago): it is not given out again. Read it "
                    f"from the unit or its label, or void it (`station void`) to issue a new one", existing[0])
        if existing is None and idem[0] is not None:
            # Expired keys go first (lazily, by the index on their age): the same key is then a new request.
            conn.execute("DELETE FROM idempotency WHERE created < ?", (_ago(stamp, windows[1]),))
            existing = self._known(conn, "idempotency-key", (idem[0], idem[1]), product, actor)
            if existing is not None and existing[1] not in IN_FACTORY:
                raise RepeatRefused(
                    f"the Idempotency-Key {idem[0]} of product {product.id} names a unit that has left the factory "
                    f"(registered): its claim ID is not given out again; send a new key for a new unit", existing[0])
        if existing is not None:
            self._event(conn, kind + "-repeat", actor, details, code=existing[0])
            return existing[0], False
        if serial is not None:
            taken = self._known(conn, "serial", (serial,), product, actor)
            if taken:
                raise SerialTaken(
                    f"serial {serial} of product {product.id} already has claim ID {product.display(taken[0])}; "
                    f"reprint its label instead of issuing a new one", taken[0]
                )
        for _ in range(TRIES):
            code = uci.generate(product.bits)
            try:
                conn.execute(
                    "INSERT INTO devices(uci, product, state, serial, hwkey, created) VALUES (?, ?, 'issued', ?, ?, ?)",
                    (code, product.id, serial, hwkey, stamp),
                )
                break
            except sqlite3.IntegrityError:
                if conn.execute("SELECT 1 FROM devices WHERE uci = ?", (code,)).fetchone() is None:
                    raise
        else:
            raise _used_up(product)
        if idem[0] is not None:
            conn.execute("INSERT INTO idempotency(product, remote, key, uci, created) VALUES (?, ?, ?, ?, ?)",
                         (product.id, idem[1], idem[0], code, stamp))
        self._event(conn, kind, actor, {k: v for k, v in {**details, "serial": serial}.items() if v is not None},
                    code=code, time=stamp)
        return code, True

    def advance(self, code: str, state: str, kind: str, actor: str, details: dict[str, Any] | None = None) -> Device:
        """Record ``kind`` for the device and move it forward to ``state`` (a repeat moves nothing back)."""
        self._move([(code, kind)], lambda current: lifecycle.advance(current, state), actor, details)
        return self.device(code)

    def advance_many(self, moves: list[tuple[str, str]], state: str, actor: str,
                     details: dict[str, Any] | None = None) -> None:
        """``advance`` for many devices (``(uci, kind)`` each) in one transaction: a batch's labels.

        Every device gets its event or its refusal; the first refusal is raised after the commit.
        """
        self._move(moves, lambda current: lifecycle.advance(current, state), actor, details)

    def void(self, code: str, reason: str, actor: str) -> Device:
        """Void a device for good, with the reason; its UCI is never issued again."""
        reason = fields.reason(reason, "voiding a device")
        self._move([(code, "void")], lifecycle.void, actor, {"reason": reason})
        return self.device(code)

    def _move(self, moves: list[tuple[str, str]], rule: Callable[[str], str], actor: str,
              details: dict[str, Any] | None) -> None:
        """The one path of every state change: the life cycle's rule, the update and the event, together."""
        details = dict(details or {})
        refusals: list[StationError] = []
        with self.transaction() as conn:
            for code, kind in moves:
                row = conn.execute("SELECT state, batch FROM devices WHERE uci = ?", (code,)).fetchone()
                try:
                    if row is None:
                        raise NotFound(f"no device has claim ID {code}")
                    new = rule(row[0])
                    if row[1] is not None and new != lifecycle.VOID:
                        self._usable_batch_of(conn, row[1])
                except StationError as exc:
                    refusals.append(exc if row is None else type(exc)(f"{code}: {exc}"))
                    self._event(conn, "refused", actor, {**details, "attempted": kind, "reason": str(exc)}, code=code)
                    continue
                stamp = now()
                if new != row[0]:
                    conn.execute("UPDATE devices SET state = ?, updated = ? WHERE uci = ?", (new, stamp, code))
                self._event(conn, kind, actor, {**details, "from": row[0], "to": new}, code=code, time=stamp)
        if refusals:
            raise refusals[0]

    def record_many(self, codes: list[str], kind: str, actor: str, details: dict[str, Any] | None = None) -> None:
        """``record`` for many devices in one transaction (a failed batch print)."""
        with self.transaction() as conn:
            for code in codes:
                self._event(conn, kind, actor, details, code=code)

    def with_events(self, codes: list[str], kinds: tuple[str, ...]) -> set[str]:
        """Which of these devices have an event of one of these kinds (which already have a label)."""
        found: set[str] = set()
        kind_marks = ",".join("?" * len(kinds))
        for i in range(0, len(codes), 500):
            part = codes[i : i + 500]
            found.update(r["uci"] for r in self._query(
                f"SELECT DISTINCT uci FROM events WHERE kind IN ({kind_marks}) AND uci IN ({','.join('?' * len(part))})",
                (*kinds, *part)))
        return found

    # --- reports ------------------------------------------------------------------------------------------

    def stats(self) -> list[dict[str, Any]]:
        """Device counts by product, batch and state."""
        return list(self._query(
            "SELECT d.product, b.name AS batch, d.state, count(*) AS devices FROM devices d "
            "LEFT JOIN batches b ON b.id = d.batch GROUP BY d.product, d.batch, d.state ORDER BY d.product, d.batch, d.state"
        ))

    # --- the web service: issuance in groups, API tokens ------------------------------------------------------

    def issue_group(self, requests: list[dict[str, Any]]) -> list[tuple[str, bool] | Exception]:
        """Issue for many requests in one durable transaction (group commit): one fsync for the lot.

        Each request holds ``issue``'s keyword arguments; each gets ``(uci, created)`` or the error that
        refused it alone (its savepoint is rolled back, then its ``refused`` event written; a bug is logged).
        An error of the transaction (the database locked, full or broken) refuses them all.
        """
        products: dict[str, Product] = {}
        stamp = now()  # the group's one commit: one time for all its devices
        with self.transaction() as conn:
            return [self._issue_one(conn, request, products, stamp) for request in requests]

    @staticmethod
    def _token_hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def create_token(self, name: str, scopes: tuple[str, ...] = DEFAULT_SCOPES, actor: str = "cli") -> str:
        """A new API token, returned once: only its SHA-256 is stored, so the database alone grants no access.
        ``scopes`` (of TOKEN_SCOPES) say what it may do; least privilege by default: read only."""
        name = (name or "").strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise Invalid(f"a token needs a name of 1 to 64 printable characters (who or what uses it), not {name!r}")
        unknown = [scope for scope in scopes if scope not in TOKEN_SCOPES]
        if unknown or not scopes:
            raise Invalid(f"a token's scopes are {', '.join(TOKEN_SCOPES)} (one or more), not {', '.join(unknown) or 'none'}")
        granted = " ".join(scope for scope in TOKEN_SCOPES if scope in scopes)
        token = "stn_" + secrets.token_urlsafe(32)
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"a token named {name!r} exists; revoke it with `station token revoke {name}` or choose another name")
            conn.execute("INSERT INTO tokens(name, hash, created, scopes) VALUES (?, ?, ?, ?)",
                         (name, self._token_hash(token), now(), granted))
            self._event(conn, "token-created", actor, {"name": name, "scopes": granted})
        return token

    def token_grant(self, token: str) -> tuple[str, frozenset[str]] | None:
        """The name and scopes of the stored token that matches, or None."""
        for row in self._query("SELECT name, scopes FROM tokens WHERE hash = ?", (self._token_hash(token),)):
            return row["name"], frozenset(row["scopes"].split())
        return None

    def touch_token(self, name: str) -> None:
        """Note when a token was last used, so that unused tokens can be found and revoked."""
        with self.transaction() as conn:
            conn.execute("UPDATE tokens SET last_used = ? WHERE name = ?", (now(), name))

    def tokens(self) -> list[dict[str, Any]]:
        """The tokens' names, scopes and dates (never their hashes)."""
        return list(self._query("SELECT name, scopes, created, last_used FROM tokens ORDER BY name"))

    def revoke_token(self, name: str, actor: str = "cli") -> None:
        """Delete a token: requests that carry it are refused from now on."""
        with self.transaction() as conn:
            if not conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount:
                raise NotFound(f"no token is named {name!r}: `station token list` shows them")
            self._event(conn, "token-revoked", actor, {"name": name})
