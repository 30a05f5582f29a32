"""Batches: claim IDs issued ahead, committed in short transactions beside a live line."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from ..core import fields, lifecycle, uci
from ..core.errors import BadRows, Conflict, Invalid, StationError
from ..core.lifecycle import Kind
from ..core.models import Batch, Product, now
from .devices import TRIES, DevicesTable, used_up
from .engine import Connection
from .products import Owner, checked_owner

CHUNK = 50_000  # UCIs per part of a bulk insert (the engine's insert_devices), sorted for sequential B-tree inserts
PARTS = 10  # parts per insert_devices call at most: what an engine keeps of them (PostgreSQL's, to redo a COPY) is bounded
HOLD_SHARE = 3  # a batch holds the write lock for at most this fraction (1/3) of the busy timeout other writers wait
LIVE_HOLD = 0.25  # s a batch holds the lock at most while another process writes too (a live line waits no longer)


def _draws(product: Product, count: int) -> Iterator[list[str]]:
    """``count`` fresh UCIs in key order, as sorted lists of at most CHUNK; what a batch could not store of them
    (UCIs already used, or drawn twice) is drawn again by a later pass of its own.

    Drawing how many UCIs start with each symbol (one CSPRNG symbol per UCI), then the rest of each UCI, gives
    the same UCIs as drawing them whole and sorting them (every symbol is uniform and independent, DESIGN.md 1),
    with one range in memory at a time. Nothing waits on a range being stored: an engine may store one while the
    next is drawn.
    """
    firsts = "".join(uci.generate_many(-(-count // uci.symbols(product.bits)), product.bits))[:count]
    for symbol in uci.ALPHABET:
        if wanted := firsts.count(symbol):
            codes = sorted(uci.generate_many(wanted, product.bits, symbol))
            for i in range(0, len(codes), CHUNK):
                yield codes[i : i + CHUNK]


def _taking(draws: Iterator[list[str]], deadline: float, room: int) -> Iterator[list[str]]:
    """The parts of ``draws`` one insert stores: the first, then more until ``deadline`` (time.monotonic()), and
    ``room`` codes at most (another command resuming the batch may have stored some)."""
    for part in draws:
        yield part[:room]
        room -= len(part)
        if room <= 0 or time.monotonic() >= deadline:
            return


def _listed(rows: Sequence[tuple[int, str]], read: Callable[[str], str],
            shown: Callable[[str], str]) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """A list's values as ``read`` makes them, each with its first line, and the problems by line: a value
    ``read`` refuses, or one that repeats an earlier line."""
    lines: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for line, value in rows:
        try:
            item = read(value)
        except Invalid as exc:
            problems.append((line, str(exc)))
            continue
        if item in lines:
            problems.append((line, f"{shown(item)} repeats line {lines[item]}"))
        else:
            lines[item] = line
    return lines, problems


class BatchesTable(DevicesTable):

    def generate_batch(self, product_id: str, count: int, *, name: str | None = None, actor: str = "cli",
                       progress: Callable[[int], None] | None = None, owner: Owner = None) -> Batch:
        """Issue ``count`` UCIs as one batch, committed in short transactions (``_fill``), with one event at the end.

        The batch row is committed first, incomplete: until its last UCI is in, the batch cannot be used
        (``usable_batch``: no labels, manifests, exports by batch or moves of its devices) and `station stats`
        names it, so that an interrupted batch is finished (``resume_batch``) or given up (``void_batch``),
        never used by halves.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise Invalid(f"count must be a whole number of at least 1, not {count!r}")
        product = self._issuable(product_id)
        with self.transaction() as conn:
            batch = self._new_batch(conn, product, name, count, actor, owner=owner)
        return self._fill(self.batch(batch[1]), actor, progress)

    def _new_batch(self, conn: Connection, product: Product, name: str | None, count: int, actor: str,
                   complete: bool = False, owner: Owner = None) -> tuple[int, str]:
        """The batch's row (its id and name), incomplete unless it is stored whole in this transaction; a
        pre-claimed batch's ``owner`` (Ioto account and cloud) goes into its units' device files."""
        account, cloud = checked_owner(*(owner or (None, None)))
        created = now()
        name = fields.text(name, "a batch name") if name else f"{product.id}-{created[:19].replace(':', '').replace('-', '')}"
        if conn.execute("SELECT 1 FROM batches WHERE name = ?", (name,)).fetchone():
            raise Conflict(f"batch name {name!r} is already used; choose another with --batch")
        batch_id = conn.execute(
            "INSERT INTO batches(name, product, count, created, actor, complete, issued, account, cloud, station) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (name, product.id, count, created, actor, int(complete), count if complete else 0, account, cloud,
             self.station)).fetchall()
        return int(batch_id[0][0]), name

    def generate_for_serials(self, product_id: str, serials: Sequence[tuple[int, str]], *, name: str | None = None,
                             actor: str = "cli", source: str = "the list of serials", owner: Owner = None) -> Batch:
        """One UCI per manufacturer serial (``(line, serial)`` each), as one batch in one transaction: all or
        nothing, and a refusal names every bad line (a bad serial, one that repeats, one that has a claim ID)."""
        product = self._issuable(product_id)
        lines, problems = _listed(serials, fields.serial, lambda serial: f"serial {serial}")
        with self.transaction() as conn:
            taken = self._taken(conn, "serial", product.id, list(lines))
            problems += [(lines[serial], f"serial {serial} already has claim ID {product.display(code)}")
                         for serial, code in taken]
            if problems or not lines:
                raise BadRows(source, sorted(problems) or [(0, "no serials")])
            batch_id, name = self._new_batch(conn, product, name, len(lines), actor, complete=True, owner=owner)
            for serial in lines:
                for _ in range(TRIES):  # a UCI drawn twice (never seen yet, but possible) is drawn again
                    if conn.execute("INSERT INTO devices(uci, product, batch, state, serial) VALUES (?, ?, ?, 'issued', ?) "
                                    "ON CONFLICT (uci) DO NOTHING RETURNING uci",
                                    (uci.generate(product.bits), product.id, batch_id, serial)).fetchall():
                        break
                else:
                    raise used_up(product)
            self._event(conn, Kind.BATCH_ISSUED, actor, {"product": product.id, "count": len(lines),
                                                          "serials": source}, batch=batch_id)
        return self.batch(name)

    def import_batch(self, product_id: str, codes: Sequence[tuple[int, str]], *, name: str | None = None,
                     actor: str = "cli", source: str = "the list of claim IDs", owner: Owner = None) -> Batch:
        """Claim IDs made elsewhere (by hand, or by a system being replaced) as one batch of the product, in one
        transaction: each read as the product's codes are (its size, a check symbol where given) or as an agent's
        IDs (10 to 20 symbols), none twice,
        none the station holds already; all or nothing, and a refusal names every bad line."""
        product = self._issuable(product_id)
        lines, problems = _listed(codes, lambda value: uci.parse_made_elsewhere(value, product.bits),
                                  product.display)
        with self.transaction() as conn:
            problems += [(lines[code], f"{product.display(code)} is held by the station already")
                         for code, _ in self._taken(conn, "uci", None, list(lines))]
            if problems or not lines:
                raise BadRows(source, sorted(problems) or [(0, "no claim IDs")])
            batch_id, name = self._new_batch(conn, product, name, len(lines), actor, complete=True, owner=owner)
            if self.engine.insert_devices(conn, [sorted(lines)], product.id, batch_id)[1] != len(lines):
                raise Conflict("another command stored some of these claim IDs meanwhile; nothing was stored: try again")
            self._event(conn, Kind.BATCH_IMPORTED, actor, {"product": product.id, "count": len(lines),
                                                            "source": source}, batch=batch_id)
        return self.batch(name)

    @staticmethod
    def _taken(conn: Connection, column: str, product_id: str | None, values: list[str]) -> list[tuple[str, str]]:
        """``(value, uci)`` of the devices that hold one of ``values`` in ``column`` (serial of the product, or uci)."""
        where = {"serial": "product = ? AND serial", "uci": "uci"}[column]
        found: list[tuple[str, str]] = []
        for i in range(0, len(values), 500):
            part = values[i : i + 500]
            params = ([product_id] if column == "serial" else []) + part
            found += conn.execute(f"SELECT {column}, uci FROM devices WHERE {where} IN ({','.join('?' * len(part))})",
                                  params).fetchall()
        return found

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
                        "SELECT max(rowid) FROM (SELECT rowid FROM devices WHERE batch = ? AND rowid > ? ORDER BY rowid LIMIT ?) AS part",
                        (batch.id, last, CHUNK)).fetchone()[0]
                    if upto is not None:
                        voided += conn.execute(
                            "UPDATE devices SET state = ?, updated = ? "
                            "WHERE batch = ? AND rowid > ? AND rowid <= ? AND state = ?",
                            (void, now(), batch.id, last, upto, issued)).rowcount
                if upto is None:
                    conn.execute("UPDATE batches SET complete = 1 WHERE id = ?", (batch.id,))
                    self._event(conn, Kind.BATCH_VOIDED, actor, {"reason": reason, "devices": voided,
                                                              "count": batch.count}, batch=batch.id)
                    return self.batch(name)
            time.sleep(self.engine.give_way)

    def _hold(self, live: bool = False) -> float:
        """Seconds a batch may hold the write lock at a time: well inside the busy timeout other writers wait, and
        short while another process wrote since the batch's last transaction (``live``): the line's requests wait
        for the lock once per transaction."""
        hold = max(self.timeout / HOLD_SHARE, 0.01)
        return min(hold, LIVE_HOLD) if live else hold

    def _unsettled(self, conn: Connection, batch: Batch) -> int:
        """How many UCIs the incomplete batch holds, read under the write lock; refused once another command
        completed or voided it."""
        row = conn.execute("SELECT complete, issued FROM batches WHERE id = ?", (batch.id,)).fetchone()
        if row is None or row[0]:
            raise Conflict(f"batch {batch.name!r} was completed or voided by another command meanwhile; `station stats` shows it")
        return int(row[1])

    def _fill(self, batch: Batch, actor: str, progress: Callable[[int], None] | None) -> Batch:
        """Store the UCIs an incomplete batch lacks, in transactions of at most ``_hold()`` seconds each with a
        pause of the engine's ``give_way`` between them, so that the server's writer and the line get the lock in time
        (they wait ``database_timeout``); the last one marks the batch complete and writes ``batch-issued``.

        UCIs come in key order (``_draws``), so each transaction inserts into one range of the UCI index: the
        index is written about once per batch, not once per transaction, whatever the registry's size.
        """
        product = self._issuable(batch.product)
        draws, fruitless, stored_by_pass, redrawn = _draws(product, batch.count - batch.issued), 0, 0, 0
        if batch.count - batch.issued >= CHUNK:  # a big batch touches most pages of the UCI index: read them in order first
            self.engine.warm()
        try:
            # The product was checked and the batch row exists: per-row checks of them would only repeat that work.
            with self.engine.bulk():
                while True:
                    with self.transaction() as conn:
                        issued = self._unsettled(conn, batch)
                        deadline = time.monotonic() + self._hold(live=self.engine.contended(conn))
                        added = 0
                        while issued < batch.count:
                            offered, stored = self.engine.insert_devices(
                                conn, _taking(draws, deadline, min(batch.count - issued, PARTS * CHUNK)), product.id,
                                batch.id)
                            issued, added, redrawn = issued + stored, added + stored, redrawn + offered - stored
                            stored_by_pass += stored
                            if not offered:  # this pass is drawn and offered whole: draw what it could not store
                                fruitless = 0 if stored_by_pass else fruitless + 1
                                if fruitless == TRIES:
                                    raise used_up(product)
                                draws, stored_by_pass = _draws(product, batch.count - issued), 0
                            elif time.monotonic() >= deadline:
                                break
                        conn.execute("UPDATE batches SET issued = ? WHERE id = ?", (issued, batch.id))
                        if issued == batch.count:  # (a batch begun before stations had names is the finisher's)
                            conn.execute("UPDATE batches SET complete = 1, station = coalesce(station, ?) WHERE id = ?",
                                         (self.station, batch.id))
                            self._event(conn, Kind.BATCH_ISSUED, actor, {"product": product.id, "count": batch.count,
                                                                      "redrawn": redrawn}, batch=batch.id)
                    if progress:
                        progress(added)
                    if issued == batch.count:
                        return self.batch(batch.name)
                    time.sleep(self.engine.give_way)
        except StationError as exc:
            try:  # say what is left to do, where something is (another command may have settled it meanwhile)
                now_stored = self.batch(batch.name)
            except StationError:  # the database is gone too: the first error is the one to act on
                raise exc from None
            if now_stored.complete:
                raise
            raise type(exc)(f"{exc}; {now_stored.incomplete()}") from exc
