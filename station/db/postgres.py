"""The shared registry's engine: one PostgreSQL database for many stations, through psycopg 3 and its pool.

What makes it behave as the embedded SQLite does, so that the rest of db/ keeps one SQL:
- every write transaction first takes one advisory lock of the registry, as SQLite's ``BEGIN IMMEDIATE`` takes its
  file's: writes are serial across stations, so event ids grow in commit order (the webhooks' cursor relies on
  it) and a device's read-then-update needs no row locks;
- every write transaction stores a token (``commits``): when the connection drops during COMMIT, the station
  looks the token up once it holds the lock again (the old transaction has then ended) and knows whether the
  group was stored before it answers anything;
- text columns compare bytewise (``COLLATE "C"``), as SQLite's do, whatever the database's locale;
- ``?`` and ``:name`` placeholders are translated once per statement text.
The schema is created and migrated only by ``station db migrate``: many stations share it.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from ..core.errors import NotAStationDatabase, StationError, Unavailable
from ..core.lifecycle import Kind
from ..core.models import now, stored
from .engine import Connection, Cursor
from .location import shown
from .schema import PREV_AT_STATION, SCHEMA_VERSION
from .sqlite import APPLICATION_ID

WRITE_LOCK = APPLICATION_ID  # the advisory lock every write transaction holds: one writer at a time, as on SQLite
POOL_SIZE = 20  # connections a station keeps open at most (more wait, then connect for a moment): size max_connections to it
POOL_WAIT = 1.0  # s a connection is waited for from the pool before one of its own is made
# A registry that goes silent (a cut cable, a host gone without a reset) must fail a write in seconds, not when
# the kernel gives up on the connection: connecting, and every unanswered write or keep-alive, is bounded.
SILENCE: dict[str, Any] = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
           "tcp_user_timeout": 15000}
TOKENS_KEPT = timedelta(days=1)  # commit tokens older than this are swept: a dropped commit is resolved in seconds
SWEEP_EVERY = 1000  # write transactions of a connection between two sweeps of old tokens
LOOK_MIN = 10.0  # s a station keeps trying to reach the registry to resolve a dropped commit (at least)


_PLACES = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|\?|:([A-Za-z_]\w*)|%")


@lru_cache(maxsize=1024)
def placeholders(sql: str) -> str:
    """SQL written for SQLite's ``?`` and ``:name`` as psycopg takes it (``%s``, ``%(name)s``, ``%%``); quoted text
    and ``::`` casts are left as they are."""
    def place(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "?":
            return "%s"
        if text == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return text.replace("%", "%%")

    return _PLACES.sub(place, sql)


class PgConnection:
    """A psycopg connection as the tables use it: ``execute`` with ``?`` placeholders, rows as tuples."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Any = None, /) -> Cursor:
        if not parameters:
            return self.raw.execute(sql)
        return self.raw.execute(placeholders(sql), parameters)


def _configure(raw: psycopg.Connection[Any]) -> None:
    """Each new connection: JSON read back as the text that was stored (as SQLite gives it), waits bounded."""
    raw.adapters.register_loader("json", TextLoader)
    raw.adapters.register_loader("jsonb", TextLoader)


# The pool's every failed attempt while a registry is down would be a line of its own: the station says it once per
# request that fails (Unavailable, naming the registry and why), so the pool speaks only of its own faults.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

_pools: dict[tuple[int, str], tuple[ConnectionPool, int]] = {}  # per process and URL: the pool, its engines
_pools_lock = threading.Lock()


def _pool(url: str) -> ConnectionPool:
    """This process's pool for the registry (a forked worker makes its own), held until its last engine closes."""
    key = (os.getpid(), url)
    with _pools_lock:
        pool, users = _pools.get(key) or (None, 0)
        if pool is None:
            pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, kwargs={"autocommit": True, **SILENCE},
                                  configure=_configure, check=ConnectionPool.check_connection, name="station-registry",
                                  open=True)
        _pools[key] = (pool, users + 1)
        return pool


def _release(url: str) -> None:
    key = (os.getpid(), url)
    with _pools_lock:
        pool, users = _pools[key]
        if users > 1:
            _pools[key] = (pool, users - 1)
            return
        del _pools[key]
    pool.close()


T = 'text COLLATE "C"'  # text that compares bytewise, as SQLite's does
_QUARTER = "coalesce(floor(extract(epoch FROM stamp::timestamptz) / 900)::bigint, 0)"
_PASS, _FAIL = Kind.LINE_PASS.value, Kind.LINE_FAIL.value

# The schema at version 12, SQLite's (db/schema.py) column for column; later versions migrate both engines.
BASELINE = f"""
CREATE TABLE station_schema (application bigint NOT NULL, version integer NOT NULL);
CREATE TABLE commits (token {T} PRIMARY KEY, time {T} NOT NULL);
CREATE INDEX idx_commits_time ON commits(time);
CREATE TABLE products (id {T} PRIMARY KEY, name {T} NOT NULL, model {T} NOT NULL, description {T} DEFAULT '',
  bits integer NOT NULL DEFAULT 80, check_symbol integer NOT NULL DEFAULT 1, claim_url {T}, layout {T},
  enabled integer NOT NULL DEFAULT 1, created {T} NOT NULL, credentials {T} NOT NULL DEFAULT '{{}}',
  claim_before_registration integer NOT NULL DEFAULT 0, account {T}, cloud {T});
CREATE TABLE batches (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name {T} NOT NULL,
  product {T} NOT NULL REFERENCES products(id), count bigint NOT NULL, created {T} NOT NULL, actor {T} NOT NULL,
  complete integer NOT NULL DEFAULT 1, issued bigint NOT NULL DEFAULT 0, account {T}, cloud {T});
CREATE UNIQUE INDEX idx_batches_name ON batches(name);
CREATE TABLE devices (uci {T} PRIMARY KEY, product {T} NOT NULL REFERENCES products(id),
  batch bigint REFERENCES batches(id), state {T} NOT NULL, serial {T}, hwkey {T}, created {T}, updated {T},
  rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE);
CREATE INDEX idx_devices_batch ON devices(batch, rowid);
CREATE UNIQUE INDEX idx_devices_serial ON devices(product, serial) WHERE serial IS NOT NULL;
CREATE UNIQUE INDEX idx_devices_hwkey ON devices(product, hwkey) WHERE hwkey IS NOT NULL;
CREATE TABLE events (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, time {T} NOT NULL, uci {T},
  batch bigint, kind {T} NOT NULL, actor {T} NOT NULL, details json NOT NULL, station {T});
CREATE INDEX idx_events_uci ON events(uci);
CREATE INDEX idx_events_kind_time ON events(kind, time);
CREATE FUNCTION station_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION station_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION station_append_only();
CREATE TABLE idempotency (product {T} NOT NULL, remote {T} NOT NULL, key {T} NOT NULL, uci {T} NOT NULL,
  created {T} NOT NULL, PRIMARY KEY (product, remote, key));
CREATE INDEX idx_idempotency_created ON idempotency(created);
CREATE TABLE tokens (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name {T} NOT NULL, hash {T} NOT NULL,
  created {T} NOT NULL, last_used {T}, scopes {T} NOT NULL DEFAULT '');
CREATE UNIQUE INDEX idx_tokens_name ON tokens(name);
CREATE UNIQUE INDEX idx_tokens_hash ON tokens(hash);
CREATE TABLE users (name {T} PRIMARY KEY, role {T} NOT NULL, password_hash {T} NOT NULL, created {T} NOT NULL,
  enabled integer NOT NULL DEFAULT 1);
CREATE TABLE sessions (id {T} PRIMARY KEY, "user" {T} NOT NULL REFERENCES users(name), created {T} NOT NULL,
  expires {T} NOT NULL);
CREATE INDEX idx_sessions_user ON sessions("user");
CREATE TABLE secrets (uci {T} PRIMARY KEY REFERENCES devices(uci), username {T} NOT NULL, hash {T} NOT NULL,
  created {T} NOT NULL);
CREATE UNIQUE INDEX idx_secrets_username ON secrets(username);
CREATE TABLE certificates (serial {T} PRIMARY KEY, uci {T} NOT NULL REFERENCES devices(uci), fingerprint {T} NOT NULL,
  key_origin {T} NOT NULL, not_before {T} NOT NULL, not_after {T} NOT NULL, pem {T} NOT NULL,
  state {T} NOT NULL DEFAULT 'active', revoked {T}, reason {T}, created {T} NOT NULL);
CREATE INDEX idx_certificates_uci ON certificates(uci);
CREATE INDEX idx_certificates_state ON certificates(state);
CREATE TABLE claims (uci {T} PRIMARY KEY REFERENCES devices(uci), account {T} NOT NULL, actor {T} NOT NULL,
  created {T} NOT NULL);
CREATE INDEX idx_claims_account ON claims(account);
CREATE TABLE webhooks (name {T} PRIMARY KEY, cursor bigint NOT NULL, attempts integer NOT NULL DEFAULT 0,
  last_error {T}, last_error_at {T}, next_attempt {T}, last_delivered {T}, created {T} NOT NULL,
  ahead {T} NOT NULL DEFAULT '[]');
CREATE TABLE verdicts (id bigint PRIMARY KEY REFERENCES events(id), time {T} NOT NULL, uci {T} NOT NULL, slot {T},
  passed integer NOT NULL, step {T}, reason {T}, prev {T}, prev_here {T}, prev_pass {T}, prev_pass_here {T});
CREATE INDEX idx_verdicts_uci ON verdicts(uci, slot, passed, time);
CREATE TABLE verdict_counts (slot {T} NOT NULL, quarter bigint NOT NULL, passed integer NOT NULL,
  prev bigint NOT NULL, prev_here bigint NOT NULL, prev_pass bigint NOT NULL, prev_pass_here bigint NOT NULL,
  n bigint NOT NULL, PRIMARY KEY (slot, quarter, passed, prev, prev_here, prev_pass, prev_pass_here));
CREATE TABLE failure_counts (slot {T} NOT NULL, quarter bigint NOT NULL, step {T} NOT NULL, reason {T} NOT NULL,
  n bigint NOT NULL, PRIMARY KEY (slot, quarter, step, reason));
CREATE FUNCTION station_quarter(stamp text) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT {_QUARTER} $$;
CREATE FUNCTION station_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE here text := NEW.details ->> 'slot';
  BEGIN
    INSERT INTO verdicts VALUES (NEW.id, NEW.time, NEW.uci, here, (NEW.kind = '{_PASS}')::int,
      NEW.details ->> 'step', NEW.details ->> 'reason',
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci),
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND slot IS NOT DISTINCT FROM here),
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND passed = 1),
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND passed = 1 AND slot IS NOT DISTINCT FROM here));
    RETURN NULL;
  END $$;
CREATE TRIGGER events_verdict AFTER INSERT ON events FOR EACH ROW
  WHEN (NEW.kind IN ('{_FAIL}', '{_PASS}') AND NEW.uci IS NOT NULL) EXECUTE FUNCTION station_verdict();
CREATE FUNCTION station_count_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO verdict_counts VALUES (coalesce(NEW.slot, ''), station_quarter(NEW.time), NEW.passed,
      station_quarter(NEW.prev), station_quarter(NEW.prev_here), station_quarter(NEW.prev_pass),
      station_quarter(NEW.prev_pass_here), 1)
      ON CONFLICT (slot, quarter, passed, prev, prev_here, prev_pass, prev_pass_here)
      DO UPDATE SET n = verdict_counts.n + 1;
    IF NEW.passed = 0 THEN
      INSERT INTO failure_counts VALUES (coalesce(NEW.slot, ''), station_quarter(NEW.time), coalesce(NEW.step, ''),
        coalesce(NEW.reason, ''), 1)
        ON CONFLICT (slot, quarter, step, reason) DO UPDATE SET n = failure_counts.n + 1;
    END IF;
    RETURN NULL;
  END $$;
CREATE TRIGGER verdicts_counted AFTER INSERT ON verdicts FOR EACH ROW EXECUTE FUNCTION station_count_verdict();
"""
BASELINE_VERSION = 12
_COUNTED = ("station, slot, quarter, passed, prev, prev_here, prev_pass, prev_pass_here", "station, slot, quarter, step, reason")
# Each later version's SQL for PostgreSQL, by the version it makes (SQLite's, and why, are in db/schema.py).
MIGRATIONS: dict[int, str] = {13: f"""
ALTER TABLE devices ADD COLUMN station {T};
ALTER TABLE batches ADD COLUMN station {T};
UPDATE batches SET station = (SELECT e.station FROM events e WHERE e.batch = batches.id AND e.uci IS NULL
  ORDER BY e.id LIMIT 1);
UPDATE devices SET station = (SELECT e.station FROM events e WHERE e.uci = devices.uci
  AND e.kind IN ('{Kind.ISSUED.value}', '{Kind.ADOPTED.value}') ORDER BY e.id LIMIT 1) WHERE batch IS NULL;
CREATE INDEX idx_devices_station ON devices(station) WHERE station IS NOT NULL;
CREATE INDEX idx_batches_station ON batches(station);
ALTER TABLE verdicts ADD COLUMN station {T};
UPDATE verdicts SET station = (SELECT station FROM events WHERE id = verdicts.id);
{PREV_AT_STATION};
DROP INDEX idx_verdicts_uci;
CREATE INDEX idx_verdicts_uci ON verdicts(uci, station, slot, passed, time);
ALTER TABLE verdict_counts ADD COLUMN station {T} NOT NULL DEFAULT '';
ALTER TABLE verdict_counts DROP CONSTRAINT verdict_counts_pkey;
ALTER TABLE verdict_counts ADD PRIMARY KEY ({_COUNTED[0]});
ALTER TABLE failure_counts ADD COLUMN station {T} NOT NULL DEFAULT '';
ALTER TABLE failure_counts DROP CONSTRAINT failure_counts_pkey;
ALTER TABLE failure_counts ADD PRIMARY KEY ({_COUNTED[1]});
TRUNCATE verdict_counts, failure_counts;
INSERT INTO verdict_counts({_COUNTED[0]}, n) SELECT coalesce(station, ''), coalesce(slot, ''), station_quarter(time),
  passed, station_quarter(prev), station_quarter(prev_here), station_quarter(prev_pass), station_quarter(prev_pass_here),
  count(*) FROM verdicts GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO failure_counts({_COUNTED[1]}, n) SELECT coalesce(station, ''), coalesce(slot, ''), station_quarter(time),
  coalesce(step, ''), coalesce(reason, ''), count(*) FROM verdicts WHERE passed = 0 GROUP BY 1, 2, 3, 4, 5;
CREATE OR REPLACE FUNCTION station_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE here text := NEW.details ->> 'slot';
  BEGIN
    INSERT INTO verdicts(id, time, uci, slot, passed, step, reason, prev, prev_here, prev_pass, prev_pass_here, station)
    VALUES (NEW.id, NEW.time, NEW.uci, here, (NEW.kind = '{_PASS}')::int, NEW.details ->> 'step',
      NEW.details ->> 'reason',
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND station IS NOT DISTINCT FROM NEW.station),
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND station IS NOT DISTINCT FROM NEW.station
        AND slot IS NOT DISTINCT FROM here),
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND station IS NOT DISTINCT FROM NEW.station AND passed = 1),
      (SELECT max(time) FROM verdicts WHERE uci = NEW.uci AND station IS NOT DISTINCT FROM NEW.station AND passed = 1
        AND slot IS NOT DISTINCT FROM here),
      NEW.station);
    RETURN NULL;
  END $$;
CREATE OR REPLACE FUNCTION station_count_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO verdict_counts({_COUNTED[0]}, n) VALUES (coalesce(NEW.station, ''), coalesce(NEW.slot, ''),
      station_quarter(NEW.time), NEW.passed, station_quarter(NEW.prev), station_quarter(NEW.prev_here),
      station_quarter(NEW.prev_pass), station_quarter(NEW.prev_pass_here), 1)
      ON CONFLICT ({_COUNTED[0]}) DO UPDATE SET n = verdict_counts.n + 1;
    IF NEW.passed = 0 THEN
      INSERT INTO failure_counts({_COUNTED[1]}, n) VALUES (coalesce(NEW.station, ''), coalesce(NEW.slot, ''),
        station_quarter(NEW.time), coalesce(NEW.step, ''), coalesce(NEW.reason, ''), 1)
        ON CONFLICT ({_COUNTED[1]}) DO UPDATE SET n = failure_counts.n + 1;
    END IF;
    RETURN NULL;
  END $$;
""", 14: f"""
ALTER TABLE devices DROP CONSTRAINT devices_product_fkey, DROP CONSTRAINT devices_batch_fkey;
CREATE FUNCTION station_refs_locked() RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
      RAISE invalid_transaction_state USING MESSAGE = 'devices, products and batches are written under READ COMMITTED '
        'only: the checks of their references read the rows committed last';
    END IF;
    PERFORM pg_advisory_xact_lock({WRITE_LOCK});
  END $$;
CREATE FUNCTION station_added_refs() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM station_refs_locked();
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT product, batch FROM added OFFSET 0) AS used
               WHERE NOT EXISTS (SELECT 1 FROM products WHERE id = used.product)
                 OR used.batch IS NOT NULL AND NOT EXISTS (SELECT 1 FROM batches WHERE id = used.batch)) THEN
      RAISE foreign_key_violation USING MESSAGE = 'a device names a product or batch the registry does not hold';
    END IF;
    RETURN NULL;
  END $$;
CREATE TRIGGER devices_added_refs AFTER INSERT ON devices REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION station_added_refs();
CREATE FUNCTION station_changed_refs() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM station_refs_locked();
    IF NOT EXISTS (SELECT 1 FROM products WHERE id = NEW.product)
       OR NEW.batch IS NOT NULL AND NOT EXISTS (SELECT 1 FROM batches WHERE id = NEW.batch) THEN
      RAISE foreign_key_violation USING MESSAGE = 'a device names a product or batch the registry does not hold';
    END IF;
    RETURN NEW;
  END $$;
CREATE TRIGGER devices_changed_refs BEFORE UPDATE OF product, batch ON devices FOR EACH ROW
  WHEN (NEW.product IS DISTINCT FROM OLD.product OR NEW.batch IS DISTINCT FROM OLD.batch)
  EXECUTE FUNCTION station_changed_refs();
CREATE FUNCTION station_referred() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM station_refs_locked();
    IF TG_OP = 'TRUNCATE' THEN
      IF EXISTS (SELECT 1 FROM devices) THEN
        RAISE foreign_key_violation USING MESSAGE = format('devices refer to %s: it cannot be emptied', TG_TABLE_NAME);
      END IF;
      RETURN NULL;
    ELSIF TG_TABLE_NAME = 'products' THEN
      IF EXISTS (SELECT 1 FROM devices WHERE product = OLD.id) THEN
        RAISE foreign_key_violation USING MESSAGE = format('devices refer to product %s', OLD.id);
      END IF;
    ELSIF EXISTS (SELECT 1 FROM devices WHERE batch = OLD.id) THEN
      RAISE foreign_key_violation USING MESSAGE = format('devices refer to batch %s', OLD.id);
    END IF;
    IF TG_OP = 'DELETE' THEN
      RETURN OLD;
    END IF;
    RETURN NEW;
  END $$;
CREATE TRIGGER products_referred BEFORE DELETE ON products FOR EACH ROW EXECUTE FUNCTION station_referred();
CREATE TRIGGER products_rekeyed BEFORE UPDATE OF id ON products FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id)
  EXECUTE FUNCTION station_referred();
CREATE TRIGGER products_emptied BEFORE TRUNCATE ON products FOR EACH STATEMENT EXECUTE FUNCTION station_referred();
CREATE TRIGGER batches_referred BEFORE DELETE ON batches FOR EACH ROW EXECUTE FUNCTION station_referred();
CREATE TRIGGER batches_rekeyed BEFORE UPDATE OF id ON batches FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id)
  EXECUTE FUNCTION station_referred();
CREATE TRIGGER batches_emptied BEFORE TRUNCATE ON batches FOR EACH STATEMENT EXECUTE FUNCTION station_referred();
""", 15: f"""
ALTER TABLE webhooks ADD COLUMN holder {T}, ADD COLUMN held_until {T};
"""}


class PostgresEngine:
    """One connection of the pool to the registry, reconnected when it was lost."""

    error = psycopg.Error
    request_errors = (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.DataError)
    give_way = 0.0  # the server hands the lock to the writers queued for it as it is released, before a batch asks again

    def __init__(self, url: str, timeout: float, *, migrate: bool = False) -> None:
        self.url = url
        self.location = shown(url)
        self.timeout = timeout
        self.migrated_from: int | None = None
        self._pool = _pool(url)
        self._raw: psycopg.Connection[Any] | None = None
        self._own = False  # the connection held is not the pool's (its pool could not give one in time)
        self._writes = 0
        self._closed = False
        try:
            self._connect()
            self._check(migrate)
        except BaseException:
            self.close()
            raise

    # -- the connection

    def _connect(self) -> psycopg.Connection[Any]:
        """A live connection: the one held, else one of the pool, else one of its own (the pool's reconnection backs
        off for up to minutes after an outage: a station must be back as soon as the registry is); waits bounded."""
        raw = self._raw
        if raw is not None and not raw.closed and not raw.broken:
            return raw
        if raw is not None:
            self._raw = None
            self._give_back(raw)
        own = False
        try:
            raw = self._pool.getconn(timeout=min(self.timeout, POOL_WAIT))
        except PoolTimeout:
            try:
                raw = psycopg.connect(self.url, autocommit=True, **SILENCE)
            except psycopg.Error as exc:
                raise Unavailable(f"the registry {self.location} cannot be reached ({_first_line(exc)}); check that its "
                                  f"server runs and takes connections: the station reconnects by itself once it does") \
                    from None
            _configure(raw)
            own = True
        try:
            # The write lock's wait; a transaction left idle (a stalled station) ends before others wait long; READ
            # COMMITTED whatever the server's default, so that a statement after the lock sees what the lock's last
            # holder committed (the commit token's look-up, a device's state); commits that wait for the disk.
            wait = int(self.timeout * 1000)
            raw.execute(f"SET lock_timeout = {wait}; SET idle_in_transaction_session_timeout = {max(wait * 4, 10000)}; "
                        "SET default_transaction_isolation = 'read committed'; SET synchronous_commit = on")
        except psycopg.Error as exc:
            self._own = own
            self._give_back(raw)
            raise self.translate(exc) from exc
        self._raw, self._own = raw, own
        return raw

    def _give_back(self, raw: psycopg.Connection[Any]) -> None:
        """Back to the pool (which discards a broken one), or closed when it was this engine's own."""
        if self._own:
            raw.close()
        else:
            self._pool.putconn(raw)

    @property
    def conn(self) -> Connection:
        return PgConnection(self._connect())

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            if not raw.closed and not raw.broken and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self._rollback(raw)
            self._give_back(raw)
        if not self._closed:
            self._closed = True
            _release(self.url)

    # -- the schema

    def _version(self, raw: psycopg.Connection[Any]) -> int | None:
        """The registry's schema version (at most this station's); None while it has no station schema."""
        if raw.execute("SELECT to_regclass('station_schema')").fetchone() == (None,):
            others = raw.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()
            if others and others[0]:
                raise NotAStationDatabase(f"the database {self.location} holds another program's tables: give the "
                                          f"station a database of its own (CREATE DATABASE)")
            return None
        row = raw.execute("SELECT application, version FROM station_schema").fetchone()
        if row is None or row[0] != APPLICATION_ID:
            raise NotAStationDatabase(f"the database {self.location} is not a station registry")
        if row[1] > SCHEMA_VERSION:  # a newer station's, read before and again under the lock: never stamped down
            raise NotAStationDatabase(f"the registry {self.location} has schema version {row[1]}, newer than this "
                                      f"station's {SCHEMA_VERSION}; upgrade station")
        return int(row[1])

    def _check(self, migrate: bool) -> None:
        try:
            raw = self._connect()
            version = self._version(raw)
            if version == SCHEMA_VERSION:
                return
            if not migrate:
                raise NotAStationDatabase(
                    f"the registry {self.location} " + ("has no station schema yet" if version is None else
                                                         f"has schema version {version}, older than this station's "
                                                         f"{SCHEMA_VERSION}") + ": run `station db migrate` once")
            raw.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")  # one station migrates, the others wait
            try:
                version = self._version(raw)  # another station may have migrated meanwhile
                if version != SCHEMA_VERSION:
                    self.migrated_from = version or 0
                    if version is None:
                        raw.execute(BASELINE)
                        raw.execute(f"INSERT INTO station_schema VALUES ({APPLICATION_ID}, {BASELINE_VERSION})")
                        version = BASELINE_VERSION
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        raw.execute(MIGRATIONS[step])
                    raw.execute(f"UPDATE station_schema SET version = {SCHEMA_VERSION}")
                raw.execute("COMMIT")
            except BaseException:
                self._rollback(raw)
                raise
        except psycopg.Error as exc:
            raise self.translate(exc) from exc

    # -- transactions and queries

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN, the registry's write lock and this transaction's commit token, ... COMMIT; a commit whose
        connection dropped is looked up before anything is answered from it."""
        token = secrets.token_hex(16)
        begin = f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK}); INSERT INTO commits VALUES ('{token}', '{now()}')"
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            begin += f"; DELETE FROM commits WHERE time < '{stored(datetime.now(UTC) - TOKENS_KEPT)}'"
        raw = self._fresh(lambda raw: raw.execute(begin))
        try:
            yield PgConnection(raw)
        except psycopg.Error as exc:
            self._rollback(raw)
            raise self.translate(exc) from exc
        except BaseException:
            self._rollback(raw)
            raise
        if raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:  # an error was swallowed: never COMMIT
            self._rollback(raw)
            raise StationError(f"a statement failed in a transaction on {self.location}; nothing was stored")
        try:
            raw.execute("COMMIT")
        except psycopg.Error as exc:
            if not self._stored(token, exc):
                raise Unavailable(f"the registry {self.location} dropped the connection before the commit was "
                                  f"stored ({_first_line(exc)}): nothing was stored; try again") from exc

    def _rollback(self, raw: psycopg.Connection[Any]) -> None:
        if not raw.closed and not raw.broken:
            try:
                raw.rollback()
            except psycopg.Error:
                pass

    def _stored(self, token: str, failure: psycopg.Error) -> bool:
        """Whether the transaction whose COMMIT got no answer was stored: its token, looked up under the write lock
        (which it held until it ended) on a new connection, retried until the registry answers."""
        deadline = time.monotonic() + max(self.timeout, LOOK_MIN)
        while True:
            try:
                raw = self._connect()
                raw.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                found = raw.execute("SELECT 1 FROM commits WHERE token = %s", (token,)).fetchone() is not None
                raw.execute("COMMIT")
                return found
            except (psycopg.Error, Unavailable) as exc:
                if self._raw is not None:
                    self._rollback(self._raw)
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"the registry {self.location} dropped the connection during a commit ({_first_line(failure)}) "
                        f"and cannot be reached to tell whether it was stored ({exc}); nothing was answered from it: "
                        f"try again once the registry is back") from exc
                time.sleep(0.2)

    def _fresh(self, first: Callable[[psycopg.Connection[Any]], object]) -> psycopg.Connection[Any]:
        """The connection, after ``first`` ran on it; a connection the server dropped while it was idle (a restart,
        a failover) shows it only now, before anything of this work was sent: then once more on a new one."""
        for attempt in (1, 2):
            raw = self._connect()
            try:
                first(raw)
                return raw
            except psycopg.Error as exc:
                self._rollback(raw)
                if attempt == 2 or not raw.broken:
                    raise self.translate(exc) from exc
        raise AssertionError("unreachable")

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        cursors: list[psycopg.Cursor[dict[str, Any]]] = []

        def execute(raw: psycopg.Connection[Any]) -> None:
            cursors[:] = [raw.cursor(row_factory=dict_row)]
            cursors[0].execute(placeholders(sql) if params else sql, params or None)

        in_transaction = self._raw is not None and self._raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        try:
            if in_transaction:  # inside a write: never on another connection
                execute(self._connect())
            else:
                self._fresh(execute)
            with cursors[0] as cursor:
                yield from cursor
        except psycopg.Error as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: Exception) -> StationError:
        return self.translate_for(self.location, self.timeout, exc)

    @staticmethod
    def translate_for(location: str, timeout: float, exc: Exception) -> StationError:
        """A driver's error on the registry as a message a user can act on."""
        where = f"the registry {location}"
        if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
            return Unavailable(f"{where} is locked by another station: its write lock was held for longer than "
                               f"{timeout:g} s (database_timeout); nothing was stored, try again")
        if isinstance(exc, pg_errors.DiskFull | pg_errors.OutOfMemory):
            return Unavailable(f"{where} is out of space ({_first_line(exc)}): nothing was stored; ask its operator")
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return Unavailable(f"the station's role may not do this on {where} ({_first_line(exc)}); grant it the "
                               f"rights the README's Shared registry section lists")
        if isinstance(exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn | pg_errors.UndefinedFunction):
            return NotAStationDatabase(f"{where} lacks part of the station's schema ({_first_line(exc)}): run "
                                       f"`station db migrate`")
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return Unavailable(f"{where} is unreachable ({_first_line(exc)}); the station reconnects by itself once "
                               f"it is back: try again then")
        if isinstance(exc, StationError):
            return exc
        return StationError(f"database error on {where}: {_first_line(exc)}")

    # -- what differs from SQLite

    def insert_devices(self, conn: Connection, parts: Iterable[Sequence[str]], product: str,
                       batch: int) -> tuple[int, int]:
        """One COPY straight into ``devices`` under a savepoint, written part by part: the server stores a part
        while the next is drawn. Where a UCI is held already (rare: drawn at random from 80 bits or more), that is
        undone and the codes go through a temporary table and one sorted INSERT that skips the held ones. Product
        IDs, batch ids and claim IDs hold nothing COPY's text format escapes."""
        raw = self._connect()
        sent: list[Sequence[str]] = []
        rest = f"\t{product}\t{batch}\tissued\n"
        raw.execute("SAVEPOINT copied")
        try:
            with raw.cursor() as cursor, cursor.copy("COPY devices (uci, product, batch, state) FROM STDIN") as copy:
                for codes in parts:
                    sent.append(codes)
                    copy.write(rest.join(codes) + rest)
        except pg_errors.UniqueViolation:
            raw.execute("ROLLBACK TO SAVEPOINT copied")
        else:
            raw.execute("RELEASE SAVEPOINT copied")
            offered = sum(map(len, sent))
            return offered, offered
        raw.execute('CREATE TEMPORARY TABLE IF NOT EXISTS new_devices (uci text COLLATE "C") ON COMMIT DELETE ROWS')
        raw.execute("TRUNCATE new_devices")
        with raw.cursor() as cursor, cursor.copy("COPY new_devices (uci) FROM STDIN") as copy:
            for codes in sent:
                copy.write("".join(f"{code}\n" for code in codes))
        return sum(map(len, sent)), raw.execute(
            "INSERT INTO devices(uci, product, batch, state) SELECT uci, %s, %s, 'issued' FROM new_devices "
            "ORDER BY uci ON CONFLICT DO NOTHING", (product, batch)).rowcount

    def bulk(self) -> nullcontext[None]:
        return nullcontext()

    def contended(self, conn: Connection) -> bool:
        """Whether another station waits for the write lock now."""
        return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND "
                                 f"objid = {WRITE_LOCK} AND NOT granted AND database = "
                                 "(SELECT oid FROM pg_database WHERE datname = current_database()))").fetchone()[0])

    def warm(self) -> None:
        """The server keeps its own cache."""


# The rights a station's role needs on each table: it reads and writes rows, and never changes the schema.
RIGHTS = "SELECT, INSERT, UPDATE, DELETE"


@dataclass(frozen=True)
class RegistryInspection:
    """What a registry is, seen without changing it (``station db check``)."""

    server: str  # the server's version, as it names it
    version: int | None  # its station schema version; None while it has none
    station: bool  # a station's registry (or an empty database a migration will make one of)
    writable: str | None  # None when the write lock was taken and a write undone within the wait, else why not
    missing: tuple[str, ...]  # "table: right" the role lacks


def inspect(url: str, *, timeout: float) -> RegistryInspection:
    """Look at the registry without migrating it: its server, schema, write lock and the role's rights."""
    location = shown(url)
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=max(int(timeout), 1))
    except psycopg.Error as exc:
        raise Unavailable(f"the registry {location} cannot be reached ({_first_line(exc)}); check the URL (database in "
                          f"station.json5, or STATION_DATABASE_URL), the server and its pg_hba.conf") from exc
    try:
        server = str(raw.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        tables = [row[0] for row in raw.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        if "station_schema" not in tables:
            return RegistryInspection(server, None, not tables, None, ())
        row = raw.execute("SELECT application, version FROM station_schema").fetchone()
        station = row is not None and row[0] == APPLICATION_ID
        version = int(row[1]) if row else 0
        missing = tuple(f"{table}: {right}" for table in sorted(tables) for right in RIGHTS.split(", ")
                        if not raw.execute("SELECT has_table_privilege(%s, %s)", (table, right)).fetchone()[0])  # type: ignore[index]
        try:  # a write, undone: the lock within the wait, and a row the role may insert
            raw.execute(f"SET lock_timeout = {int(timeout * 1000)}")
            with raw.transaction(force_rollback=True):
                raw.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                raw.execute("INSERT INTO commits VALUES ('station db check', '')")
            writable = None
        except psycopg.Error as exc:
            writable = str(PostgresEngine.translate_for(location, timeout, exc))
        return RegistryInspection(server, version, station, writable, missing)
    except psycopg.Error as exc:
        raise PostgresEngine.translate_for(location, timeout, exc) from exc
    finally:
        raw.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
