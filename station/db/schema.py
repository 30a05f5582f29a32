"""The schema and its migrations: each moves the schema one version up."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from ..core import uci
from ..core.lifecycle import Kind


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


def _v4(db: sqlite_utils.Database) -> None:
    """Credentials (DESIGN.md section 4a): a product's settings, its units' secret hashes and certificates.

    A secret is kept only as its broker's password-file hash, one per unit (regenerating replaces it, revoking
    deletes it; the events keep the history). Certificates are public and kept whole, each under its serial,
    with its state; a unit may have had several (re-flashed, revoked)."""
    db.execute("ALTER TABLE products ADD COLUMN credentials TEXT NOT NULL DEFAULT '{}'")
    db.execute(
        "CREATE TABLE secrets (uci TEXT PRIMARY KEY REFERENCES devices(uci), username TEXT NOT NULL, "
        "hash TEXT NOT NULL, created TEXT NOT NULL)"
    )
    db.execute("CREATE UNIQUE INDEX idx_secrets_username ON secrets(username)")  # one broker line per name
    db.execute(
        "CREATE TABLE certificates (serial TEXT PRIMARY KEY, uci TEXT NOT NULL REFERENCES devices(uci), "
        "fingerprint TEXT NOT NULL, key_origin TEXT NOT NULL, not_before TEXT NOT NULL, not_after TEXT NOT NULL, "
        "pem TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active', revoked TEXT, reason TEXT, created TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX idx_certificates_uci ON certificates(uci)")
    db.execute("CREATE INDEX idx_certificates_state ON certificates(state)")  # the CRL: WHERE state = 'revoked'


def _v5(db: sqlite_utils.Database) -> None:
    """End-user claims: who claimed each claimed unit (one row per claimed unit; a release deletes it, the
    events keep the history), and per product whether its units may be claimed before they register."""
    db.execute("ALTER TABLE products ADD COLUMN claim_before_registration INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "CREATE TABLE claims (uci TEXT PRIMARY KEY REFERENCES devices(uci), account TEXT NOT NULL, "
        "actor TEXT NOT NULL, created TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX idx_claims_account ON claims(account)")


def _v6(db: sqlite_utils.Database) -> None:
    """Webhooks: the events table is their outbox, so each endpoint keeps only its cursor (every event it asked
    for up to that id has been delivered) and how its deliveries go: failed attempts of the event now waiting,
    the last error and when, when it is tried next, the last delivery."""
    db.execute(
        "CREATE TABLE webhooks (name TEXT PRIMARY KEY, cursor INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "last_error TEXT, last_error_at TEXT, next_attempt TEXT, last_delivered TEXT, created TEXT NOT NULL)"
    )


def _v7(db: sqlite_utils.Database) -> None:
    """Pre-claimed units: the Ioto account and cloud a product's units are bound to before they leave."""
    db.execute("ALTER TABLE products ADD COLUMN account TEXT")
    db.execute("ALTER TABLE products ADD COLUMN cloud TEXT")


def _v8(db: sqlite_utils.Database) -> None:
    """Pre-claimed batches: a batch may carry its own Ioto account and cloud, over its product's."""
    db.execute("ALTER TABLE batches ADD COLUMN account TEXT")
    db.execute("ALTER TABLE batches ADD COLUMN cloud TEXT")


def _v9(db: sqlite_utils.Database) -> None:
    """The production view (db/production.py): each line verdict also as a row of ``verdicts``, written by a
    trigger in the insert of its event, with the times of its unit's verdict and pass before it (on any slot and
    on its own). Whether a verdict is its unit's first in a span is then "the one before is older than the span",
    so a span's figures are sums over its rows of one index: no DISTINCT and no look-up per verdict."""
    db.execute(
        "CREATE TABLE verdicts (id INTEGER PRIMARY KEY REFERENCES events(id), time TEXT NOT NULL, uci TEXT NOT NULL, "
        "slot TEXT, passed INTEGER NOT NULL, step TEXT, reason TEXT, "
        "prev TEXT, prev_here TEXT, prev_pass TEXT, prev_pass_here TEXT)")  # the latest earlier times, else NULL
    slot = "json_extract(details, '$.slot')"
    earlier = "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    db.execute(  # the verdicts of before, in one pass, their earlier times from the window of their unit
        f"INSERT INTO verdicts SELECT id, time, uci, {slot}, kind = '{Kind.LINE_PASS}', "
        f"json_extract(details, '$.step'), json_extract(details, '$.reason'), "
        f"max(time) OVER (PARTITION BY uci ORDER BY id {earlier}), "
        f"max(time) OVER (PARTITION BY uci, {slot} ORDER BY id {earlier}), "
        f"max(CASE WHEN kind = '{Kind.LINE_PASS}' THEN time END) OVER (PARTITION BY uci ORDER BY id {earlier}), "
        f"max(CASE WHEN kind = '{Kind.LINE_PASS}' THEN time END) OVER (PARTITION BY uci, {slot} ORDER BY id {earlier}) "
        f"FROM events WHERE kind IN ('{Kind.LINE_FAIL}', '{Kind.LINE_PASS}') AND uci IS NOT NULL ORDER BY id")
    db.execute("CREATE INDEX idx_verdicts_uci ON verdicts(uci, slot, passed, time)")  # the trigger's look-ups
    # A span's figures read these alone: its range by time (the station) or by slot and time, and what they sum.
    db.execute("CREATE INDEX idx_verdicts_time ON verdicts(time, slot, passed, prev, prev_here, prev_pass, prev_pass_here)")
    db.execute("CREATE INDEX idx_verdicts_slot ON verdicts(slot, time, passed, prev, prev_here, prev_pass, prev_pass_here)")
    new_slot = "json_extract(NEW.details, '$.slot')"
    # ``+``: only the unit's entries of idx_verdicts_uci are read; without it, a planner with no statistics may walk
    # a slot's every verdict through idx_verdicts_slot, once per verdict written.
    before = "SELECT max(time) FROM verdicts WHERE uci = NEW.uci"
    db.execute(
        f"CREATE TRIGGER events_verdict AFTER INSERT ON events "
        f"WHEN NEW.kind IN ('{Kind.LINE_FAIL}', '{Kind.LINE_PASS}') AND NEW.uci IS NOT NULL BEGIN "
        f"INSERT INTO verdicts VALUES (NEW.id, NEW.time, NEW.uci, {new_slot}, NEW.kind = '{Kind.LINE_PASS}', "
        f"json_extract(NEW.details, '$.step'), json_extract(NEW.details, '$.reason'), "
        f"({before}), ({before} AND +slot IS {new_slot}), ({before} AND +passed), "
        f"({before} AND +passed AND +slot IS {new_slot})); END")


def _quarter(stamp: str) -> str:
    """SQL for the quarter hour a stored time falls in, as unix time // 900; 0 for none."""
    return f"coalesce(CAST(strftime('%s', {stamp}) AS INTEGER) / 900, 0)"


def _v10(db: sqlite_utils.Database) -> None:
    """The production view's sums kept as they happen: per quarter hour and slot, the verdicts counted by whether
    they passed and by the quarters of their unit's verdict and pass before them (``verdict_counts``), and the
    failures by step and reason (``failure_counts``). Spans start on quarter hours (days, shifts and the hours of
    every zone do), so "the one before is older than the span" holds of a quarter as of a time, and a view of
    7 days sums some thousands of rows however many verdicts it holds. ``verdicts`` stays for the look-ups of the
    times before; its indexes by time and slot go."""
    db.execute(
        "CREATE TABLE verdict_counts (slot TEXT NOT NULL, quarter INTEGER NOT NULL, passed INTEGER NOT NULL, "
        "prev INTEGER NOT NULL, prev_here INTEGER NOT NULL, prev_pass INTEGER NOT NULL, prev_pass_here INTEGER NOT NULL, "
        "n INTEGER NOT NULL, PRIMARY KEY (slot, quarter, passed, prev, prev_here, prev_pass, prev_pass_here)) "
        "WITHOUT ROWID")  # slot '' for verdicts of no slot, quarter 0 for "none before" (NULL would never conflict)
    db.execute(
        "CREATE TABLE failure_counts (slot TEXT NOT NULL, quarter INTEGER NOT NULL, step TEXT NOT NULL, "
        "reason TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (slot, quarter, step, reason)) WITHOUT ROWID")
    # By slot first: a span is one range per slot, read in the order its figures are summed, with no sort.
    counted = ("slot, quarter, passed, prev, prev_here, prev_pass, prev_pass_here", "slot, quarter, step, reason")

    def counts(row: str) -> tuple[str, str]:
        """The keys of a verdict ``row`` (NEW, or the table's own columns) in each table."""
        return (f"coalesce({row}slot, ''), {_quarter(f'{row}time')}, {row}passed, {_quarter(f'{row}prev')}, "
                f"{_quarter(f'{row}prev_here')}, {_quarter(f'{row}prev_pass')}, {_quarter(f'{row}prev_pass_here')}",
                f"coalesce({row}slot, ''), {_quarter(f'{row}time')}, coalesce({row}step, ''), coalesce({row}reason, '')")

    verdict_keys, failure_keys = counts("")
    db.execute(f"INSERT INTO verdict_counts({counted[0]}, n) SELECT {verdict_keys}, count(*) FROM verdicts GROUP BY 1, 2, 3, 4, 5, 6, 7")
    db.execute(f"INSERT INTO failure_counts({counted[1]}, n) SELECT {failure_keys}, count(*) FROM verdicts WHERE NOT passed "
               f"GROUP BY 1, 2, 3, 4")
    new_verdict, new_failure = counts("NEW.")
    db.execute(
        f"CREATE TRIGGER verdicts_counted AFTER INSERT ON verdicts BEGIN "
        f"INSERT INTO verdict_counts({counted[0]}, n) VALUES ({new_verdict}, 1) ON CONFLICT ({counted[0]}) DO UPDATE SET n = n + 1; "
        f"INSERT INTO failure_counts({counted[1]}, n) SELECT {new_failure}, 1 WHERE NOT NEW.passed "
        f"ON CONFLICT ({counted[1]}) DO UPDATE SET n = n + 1; END")
    db.execute("DROP INDEX idx_verdicts_time")
    db.execute("DROP INDEX idx_verdicts_slot")


def _v11(db: sqlite_utils.Database) -> None:
    """Stations have names (``name`` in station.json5, default the host name), recorded in every event they write:
    the first step to a registry shared by several lines. Events of before keep NULL."""
    db.execute("ALTER TABLE events ADD COLUMN station TEXT")


def _v12(db: sqlite_utils.Database) -> None:
    """Webhook lanes deliver out of event order across units, so an endpoint also keeps the events after its
    cursor it has delivered (``ahead``, a JSON list of ids, at most a window's): a restart skips them."""
    db.execute("ALTER TABLE webhooks ADD COLUMN ahead TEXT NOT NULL DEFAULT '[]'")


_EARLIER = "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
# v13, on both engines: each verdict's earlier times at its own station, as the v13 triggers write them (one pass).
PREV_AT_STATION = (
    "UPDATE verdicts SET prev = w.prev, prev_here = w.prev_here, prev_pass = w.prev_pass, "
    "prev_pass_here = w.prev_pass_here FROM (SELECT id, "
    f"max(time) OVER (PARTITION BY uci, station ORDER BY id {_EARLIER}) AS prev, "
    f"max(time) OVER (PARTITION BY uci, station, slot ORDER BY id {_EARLIER}) AS prev_here, "
    f"max(CASE WHEN passed = 1 THEN time END) OVER (PARTITION BY uci, station ORDER BY id {_EARLIER}) AS prev_pass, "
    f"max(CASE WHEN passed = 1 THEN time END) OVER (PARTITION BY uci, station, slot ORDER BY id {_EARLIER}) "
    "AS prev_pass_here FROM verdicts) AS w WHERE w.id = verdicts.id")


def _v13(db: sqlite_utils.Database) -> None:
    """One registry for many stations: each device and batch names the station that issued it (a filter of the
    pages, the API and the exports; batch devices by their batch's), and the production view counts each station's
    own verdicts (``station`` leads the counts' keys; the units' earlier verdicts are looked up at the same station).
    What was written before stations had names counts as station '': every station's own, since a station's file
    had no other."""
    db.execute("ALTER TABLE devices ADD COLUMN station TEXT")
    db.execute("ALTER TABLE batches ADD COLUMN station TEXT")
    db.execute("UPDATE batches SET station = (SELECT e.station FROM events e WHERE e.batch = batches.id AND e.uci IS NULL "
               "ORDER BY e.id LIMIT 1)")
    db.execute(f"UPDATE devices SET station = (SELECT e.station FROM events e WHERE e.uci = devices.uci AND e.kind IN "
               f"('{Kind.ISSUED}', '{Kind.ADOPTED}') ORDER BY e.id LIMIT 1) WHERE batch IS NULL")
    db.execute("CREATE INDEX idx_devices_station ON devices(station) WHERE station IS NOT NULL")  # the stations, seeks
    db.execute("CREATE INDEX idx_batches_station ON batches(station)")
    for trigger in ("events_verdict", "verdicts_counted"):
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("ALTER TABLE verdicts ADD COLUMN station TEXT")
    db.execute("UPDATE verdicts SET station = (SELECT station FROM events WHERE id = verdicts.id)")
    db.execute(PREV_AT_STATION)
    db.execute("DROP INDEX idx_verdicts_uci")
    db.execute("CREATE INDEX idx_verdicts_uci ON verdicts(uci, station, slot, passed, time)")
    for table in ("verdict_counts", "failure_counts"):
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_v12")
    db.execute(
        "CREATE TABLE verdict_counts (station TEXT NOT NULL, slot TEXT NOT NULL, quarter INTEGER NOT NULL, "
        "passed INTEGER NOT NULL, prev INTEGER NOT NULL, prev_here INTEGER NOT NULL, prev_pass INTEGER NOT NULL, "
        "prev_pass_here INTEGER NOT NULL, n INTEGER NOT NULL, "
        "PRIMARY KEY (station, slot, quarter, passed, prev, prev_here, prev_pass, prev_pass_here)) WITHOUT ROWID")
    db.execute(
        "CREATE TABLE failure_counts (station TEXT NOT NULL, slot TEXT NOT NULL, quarter INTEGER NOT NULL, "
        "step TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (station, slot, quarter, step, reason)) "
        "WITHOUT ROWID")
    verdict_keys, failure_keys = _counted("")
    db.execute(f"INSERT INTO verdict_counts({COUNTED[0]}, n) SELECT {verdict_keys}, count(*) FROM verdicts "
               f"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8")
    db.execute(f"INSERT INTO failure_counts({COUNTED[1]}, n) SELECT {failure_keys}, count(*) FROM verdicts WHERE NOT passed "
               f"GROUP BY 1, 2, 3, 4, 5")
    for table in ("verdict_counts", "failure_counts"):
        db.execute(f"DROP TABLE {table}_v12")
    new_slot = "json_extract(NEW.details, '$.slot')"
    # ``+``: only the unit's entries of idx_verdicts_uci are read (a planner with no statistics might walk others).
    before = "SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND +station IS NEW.station"
    db.execute(
        f"CREATE TRIGGER events_verdict AFTER INSERT ON events "
        f"WHEN NEW.kind IN ('{Kind.LINE_FAIL}', '{Kind.LINE_PASS}') AND NEW.uci IS NOT NULL BEGIN "
        f"INSERT INTO verdicts(id, time, uci, slot, passed, step, reason, prev, prev_here, prev_pass, prev_pass_here, "
        f"station) VALUES (NEW.id, NEW.time, NEW.uci, {new_slot}, NEW.kind = '{Kind.LINE_PASS}', "
        f"json_extract(NEW.details, '$.step'), json_extract(NEW.details, '$.reason'), "
        f"({before}), ({before} AND +slot IS {new_slot}), ({before} AND +passed), "
        f"({before} AND +passed AND +slot IS {new_slot}), NEW.station); END")
    new_verdict, new_failure = _counted("NEW.")
    db.execute(
        f"CREATE TRIGGER verdicts_counted AFTER INSERT ON verdicts BEGIN "
        f"INSERT INTO verdict_counts({COUNTED[0]}, n) VALUES ({new_verdict}, 1) ON CONFLICT ({COUNTED[0]}) DO UPDATE SET n = n + 1; "
        f"INSERT INTO failure_counts({COUNTED[1]}, n) SELECT {new_failure}, 1 WHERE NOT NEW.passed "
        f"ON CONFLICT ({COUNTED[1]}) DO UPDATE SET n = n + 1; END")


def _v14(db: sqlite_utils.Database) -> None:
    """None on SQLite: on PostgreSQL, v14 checks the products and batches devices name once per statement instead
    of once per row, so that a batch's COPY is not mostly foreign-key look-ups; SQLite's per-row checks stay, off
    while a batch stores its devices (``SqliteEngine.bulk``)."""


def _v15(db: sqlite_utils.Database) -> None:
    """One deliverer per endpoint, however many stations name it: the station that holds an endpoint's row
    (``holder``, until ``held_until``, renewed while it delivers) moves its cursor; the others wait to take over."""
    db.execute("ALTER TABLE webhooks ADD COLUMN holder TEXT")
    db.execute("ALTER TABLE webhooks ADD COLUMN held_until TEXT")


# The keys of the counts (schema v13): the station first, then as v10 had them.
COUNTED = ("station, slot, quarter, passed, prev, prev_here, prev_pass, prev_pass_here", "station, slot, quarter, step, reason")


def _counted(row: str) -> tuple[str, str]:
    """The keys of a verdict ``row`` (NEW., or the table's own columns) in each counts table, as of v13."""
    return (f"coalesce({row}station, ''), coalesce({row}slot, ''), {_quarter(f'{row}time')}, {row}passed, "
            f"{_quarter(f'{row}prev')}, {_quarter(f'{row}prev_here')}, {_quarter(f'{row}prev_pass')}, "
            f"{_quarter(f'{row}prev_pass_here')}",
            f"coalesce({row}station, ''), coalesce({row}slot, ''), {_quarter(f'{row}time')}, coalesce({row}step, ''), "
            f"coalesce({row}reason, '')")


# Each migration moves the schema one version up; they run in order inside one transaction.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10,
                                                             _v11, _v12, _v13, _v14, _v15]
SCHEMA_VERSION = len(MIGRATIONS)


