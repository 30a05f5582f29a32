"""Devices: issuing claim IDs (one at a time and in request groups), finding devices, moving them along
the life cycle, and which batches and devices are usable."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from ..core import credentials, fields, lifecycle, uci
from ..core.errors import Conflict, Invalid, NotFound, StationError, Unavailable
from ..core.lifecycle import Kind
from ..core.models import Batch, Device, IssueRequest, Product, ago, now
from .engine import Connection
from .events import encoded, log
from .products import ProductsTable

RELEASED = "its claim ID was voided; the unit gets a new one"  # why a key leaves a void device
IN_FACTORY = lifecycle.STATES[: lifecycle.STATES.index("registered")]  # states in which a repeat may get the UCI back
REFUSAL_FIELDS = (("product", "product_id"), ("serial", "serial"), ("hwkey", "hwkey"))  # (event detail, request key)
TRIES = 100  # draws (or bulk chunks) in a row that store nothing new before a product's IDs count as used up
# The device list's sort keys (the devices page's columns): the ORDER BY term of each.
LIST_SORTS = {"issued": "d.rowid", "claim": "d.uci", "state": "d.state", "product": "p.name", "batch": "b.name",
              "serial": "d.serial"}
NULLABLE = ("batch", "serial")  # sort keys a device may lack: listed first going up, last going down


class Fresh(NamedTuple):
    """A group's request for a new UCI that needs no look-up first (DevicesTable._fresh_only)."""

    product: str
    actor: str
    details: str  # as stored (events.encoded)
    hwkey: str | None


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


def used_up(product: Product) -> Unavailable:
    return Unavailable(f"product {product.id} has run out of fresh claim IDs at {product.bits} bits; use more bits")


class DevicesTable(ProductsTable):

    _DEVICE_SELECT = (
        "SELECT d.uci, d.product, d.state, coalesce(d.created, b.created) AS created, "
        "coalesce(d.updated, d.created, b.created) AS updated, b.name AS batch, d.serial, d.hwkey, "
        "coalesce(d.station, b.station) AS station, p.check_symbol, EXISTS (SELECT 1 FROM secrets s WHERE s.uci = d.uci) "
        "OR EXISTS (SELECT 1 FROM certificates c WHERE c.uci = d.uci) AS credentialed "
        "FROM devices d JOIN products p ON p.id = d.product LEFT JOIN batches b ON b.id = d.batch"
    )

    @staticmethod
    def _device(row: dict[str, Any]) -> Device:
        check, made = row.pop("check_symbol"), row.pop("credentialed")
        return Device(**row, display=uci.display(row["uci"], check=bool(check)),
                      provisioning=credentials.provisioning_state(row["state"], bool(made)))

    def device(self, code: str) -> Device:
        """The device with this canonical UCI."""
        for row in self._query(self._DEVICE_SELECT + " WHERE d.uci = ?", (code,)):
            return self._device(row)
        raise NotFound(f"no device has claim ID {code}")

    def find(self, typed: str) -> Device:
        """The device a person's typed or scanned code names, across products of every size (DESIGN.md 1)."""
        reading = uci.read_typed(typed)
        sizes = {row["bits"] // 5 for row in self._query("SELECT DISTINCT bits FROM products")}
        agents = range(uci.AGENT_SYMBOLS[0], uci.AGENT_SYMBOLS[1] + 1)  # agent-made IDs, of any product
        candidates = [code for code in reading.readings if len(code) in sizes or len(code) in agents]
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
        if reading.problem and len(reading.cleaned) - 1 in sizes and reading.cleaned[:-1] not in reading.readings:
            raise reading.problem  # the reading with a check symbol failed (mistyped), and none other is stored
        raise NotFound(f"no device has claim code {typed.strip()!r}; check it against the label")

    def devices(self, *, product: str | None = None, batch: str | None = None, state: str | None = None,
                serial: str | None = None, station: str | None = None, limit: int | None = None,
                offset: int = 0) -> Iterator[Device]:
        """Devices in issue order, filtered (``station``: issued by that station); an iterator, so that exports of
        millions stream."""
        where, params = self._where(product, batch, state, serial, station)
        sql = self._DEVICE_SELECT + where + " ORDER BY d.rowid"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return (self._device(row) for row in self._query(sql, params))  # the filters are checked before the first row

    def listing(self, *, sort: str = "issued", descending: bool = True, product: str | None = None,
                batch: str | None = None, state: str | None = None, station: str | None = None, limit: int,
                offset: int = 0) -> tuple[list[Device], int]:
        """One page of the devices page's list, sorted by a column of LIST_SORTS, and how many devices the filters
        match. Newest first (issue order backwards) and by claim ID walk the table's own keys, so a page of a
        registry of millions costs a page; the total is one count over the same filters."""
        if sort not in LIST_SORTS:
            raise Invalid(f"unknown sort {sort!r}: sort by one of {', '.join(LIST_SORTS)}")
        where, params = self._where(product, batch, state, None, station)
        way = " DESC" if descending else ""
        nulls = (" NULLS LAST" if descending else " NULLS FIRST") if sort in NULLABLE else ""  # as SQLite, on every engine
        order = LIST_SORTS[sort] + way + nulls + ("" if sort in ("issued", "claim") else f", d.rowid{way}")  # ties: issue order
        page = [self._device(row) for row in self._query(
            self._DEVICE_SELECT + where + f" ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset])]
        return page, self._total(product, batch, state, station)

    def _total(self, product: str | None, batch: str | None, state: str | None, station: str | None) -> int:
        """How many devices the filters match: every one, less those of batches still being made (few, by the
        batch index). Counted without the join, the count of a registry of millions reads an index, not the table."""
        clauses, params = self._filters(product, batch, state, None, station)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        unfinished = " AND ".join([*clauses, "d.batch IN (SELECT id FROM batches WHERE complete = 0)"])
        return int(next(iter(self._query(
            f"SELECT (SELECT count(*) FROM devices d{where}) - (SELECT count(*) FROM devices d WHERE {unfinished}) AS n",
            params * 2)))["n"])

    def _where(self, product: str | None, batch: str | None, state: str | None, serial: str | None,
               station: str | None = None) -> tuple[str, list[str | int]]:
        """The WHERE clause of the device filters (over ``devices d`` and ``batches b``), each value checked; a
        batch is all or nothing: none of its devices is listed before it is complete."""
        clauses, params = self._filters(product, batch, state, serial, station)
        if not batch:  # a named batch is a usable one (_filters)
            clauses.append("(d.batch IS NULL OR b.complete = 1)")
        return " WHERE " + " AND ".join(clauses), params

    def _filters(self, product: str | None, batch: str | None, state: str | None, serial: str | None,
                 station: str | None = None) -> tuple[list[str], list[str | int]]:
        """The terms of the device filters over ``devices d`` and their values, each value checked."""
        clauses: list[str] = []
        params: list[str | int] = []
        if product:
            self.product(product)
            clauses.append("d.product = ?")
            params.append(product)
        if batch:
            clauses.append("d.batch = ?")
            params.append(self.usable_batch(batch).id)
        if state:
            clauses.append("d.state = ?")
            params.append(lifecycle.check_state(state))
        if serial:
            clauses.append("d.serial = ?")
            params.append(serial)
        if station:  # a device issued alone names its station; a batch's, by its batch
            clauses.append("(d.station = ? OR d.batch IN (SELECT id FROM batches WHERE station = ?))")
            params += [fields.station_name("a station filter", station), station]
        return clauses, params

    def issue(self, request: IssueRequest | str) -> tuple[Device, bool]:
        """One UCI for one unit (a request, or a product ID with the defaults), committed before it returns;
        ``(device, True)`` when newly issued, ``(device, False)`` when the unit was known (with an
        ``issued-repeat`` event). A refusal raises its error and is recorded as a ``refused`` event."""
        if isinstance(request, str):
            request = IssueRequest(request)
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

    def _issue_one(self, conn: Connection, request: IssueRequest, products: dict[str, Product],
                   stamp: str) -> tuple[str, bool] | Exception:
        """One request under its own savepoint: ``(uci, created)``, or the error that refused it, whose
        ``refused`` event is written after its changes are rolled back.

        Whatever goes wrong in one request stays in it: a bug is logged and fails that request alone, so the
        group's other requests are committed. Only a failure of the database itself (locked, full, broken)
        ends the transaction, and refuses them all.
        """
        details, actor = request.details, request.actor
        conn.execute("SAVEPOINT request")
        try:
            product_id = fields.product_id(request.product_id)
            serial = None if request.serial is None else fields.serial(request.serial)
            hwkey = None if request.hwkey is None else fields.hardware_key(request.hwkey)
            idem = None if request.idempotency_key is None else fields.idempotency_key(request.idempotency_key)
            if product_id not in products:
                products[product_id] = self._issuable(product_id)
            result: tuple[str, bool] | Exception = self._issue(
                conn, products[product_id], serial, hwkey, (idem, request.remote),
                (request.repeat_window, request.idempotency_window), actor, details, stamp)
        except Exception as exc:
            if isinstance(exc, self.engine.error) and not isinstance(exc, self.engine.request_errors):
                raise  # the database itself failed (locked, full, broken): the transaction's error, for the whole group
            conn.execute("ROLLBACK TO request")
            if isinstance(exc, StationError):
                refusal = {**details, "reason": str(exc)}
            else:  # its details may be what broke it: the event keeps only what is sure to store
                log.exception("issuing failed (a bug): this request is refused, the group's others go on",
                              extra={"actor": actor, "product": fields.shown(request.product_id)})
                refusal = {"reason": "internal error of the station; its log has the details"}
            refusal.update({"attempted": Kind.ISSUED}, **{name: fields.shown(getattr(request, key))
                                                         for name, key in REFUSAL_FIELDS if getattr(request, key) is not None})
            try:
                self._event(conn, Kind.REFUSED, actor, refusal, code=getattr(exc, "uci", None))
            except (TypeError, ValueError):  # the request's details do not store: the refusal without them
                self._event(conn, Kind.REFUSED, actor, {k: v for k, v in refusal.items() if k not in details},
                            code=getattr(exc, "uci", None))
            result = exc
        conn.execute("RELEASE request")
        return result

    def _known(self, conn: Connection, name: str, key: tuple[str, ...], product: Product,
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
            return row[0], row[1], row[2]
        conn.execute(release, params)
        self._event(conn, Kind.KEY_RELEASED, actor, {"key": name, "value": key[0], "reason": RELEASED}, code=row[0])
        return None

    def _issue(self, conn: Connection, product: Product, serial: str | None, hwkey: str | None,
               idem: tuple[str | None, str], windows: tuple[float, float], actor: str,
               details: dict[str, Any], stamp: str) -> tuple[str, bool]:
        existing = None
        if hwkey is not None:
            existing = self._known(conn, "hwkey", (hwkey,), product, actor)
            if existing is not None and (existing[1] not in IN_FACTORY or (existing[2] or "") < ago(stamp, windows[0])):
                raise RepeatRefused(
                    f"the unit {hwkey} of product {product.id} already has a claim ID and has left the factory "
                    f"(registered, or issued more than {windows[0]:g} s ago): it is not given out again. Read it "
                    f"from the unit or its label, or void it (`station void`) to issue a new one", existing[0])
        if existing is None and idem[0] is not None:
            # Expired keys go first (lazily, by the index on their age): the same key is then a new request.
            conn.execute("DELETE FROM idempotency WHERE created < ?", (ago(stamp, windows[1]),))
            existing = self._known(conn, "idempotency-key", (idem[0], idem[1]), product, actor)
            if existing is not None and existing[1] not in IN_FACTORY:
                raise RepeatRefused(
                    f"the Idempotency-Key {idem[0]} of product {product.id} names a unit that has left the factory "
                    f"(registered): its claim ID is not given out again; send a new key for a new unit", existing[0])
        if existing is not None:
            self._event(conn, Kind.ISSUED_REPEAT, actor, details, code=existing[0])
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
            if conn.execute(  # a UCI held already (by this station or another) is drawn again
                    "INSERT INTO devices(uci, product, state, serial, hwkey, created, station) "
                    "VALUES (?, ?, 'issued', ?, ?, ?, ?) ON CONFLICT (uci) DO NOTHING RETURNING uci",
                    (code, product.id, serial, hwkey, stamp, self.station)).fetchall():
                break
        else:
            raise used_up(product)
        if idem[0] is not None:
            conn.execute("INSERT INTO idempotency(product, remote, key, uci, created) VALUES (?, ?, ?, ?, ?)",
                         (product.id, idem[1], idem[0], code, stamp))
        self._event(conn, Kind.ISSUED, actor, {k: v for k, v in {**details, "serial": serial}.items() if v is not None},
                    code=code, time=stamp)
        return code, True

    def adopt(self, typed: str, product_id: str, actor: str, details: dict[str, Any] | None = None, *,
              registered: bool = False) -> Device:
        """Record a claim ID the unit's agent made itself (DESIGN.md section 2) as a new device of the product
        (``adopted``, origin ``agent``), and with ``registered`` move it on in the same transaction; an ID the
        station holds already is refused."""
        code = uci.agent_id(typed)
        product = self._issuable(product_id)
        details = {**(details or {}), "origin": "agent"}
        stamp = now()
        with self.transaction() as conn:
            held = conn.execute("SELECT product FROM devices WHERE uci = ?", (code,)).fetchone()
            if held is not None:
                raise Conflict(f"{product.display(code)} is held by the station already (product {held[0]}): "
                               f"`station show {code}` shows it")
            conn.execute("INSERT INTO devices(uci, product, state, created, station) VALUES (?, ?, 'issued', ?, ?)",
                         (code, product.id, stamp, self.station))
            self._event(conn, Kind.ADOPTED, actor, details, code=code, time=stamp)
            if registered:
                self._step(conn, code, Kind.REGISTERED, lambda current: lifecycle.advance(current, "registered"),
                           actor, details)
        return self.device(code)

    def advance(self, code: str, state: str, kind: str, actor: str, details: dict[str, Any] | None = None) -> Device:
        """Record ``kind`` for the device and move it forward to ``state`` (a repeat moves nothing back)."""
        self._move([(code, kind)], lambda current: lifecycle.advance(current, state), actor, details)
        return self.device(code)

    def advance_many(self, moves: Sequence[tuple[str, str]], state: str, actor: str,
                     details: dict[str, Any] | None = None) -> None:
        """``advance`` for many devices (``(uci, kind)`` each) in one transaction: a batch's labels.

        Every device gets its event or its refusal; the first refusal is raised after the commit.
        """
        self._move(moves, lambda current: lifecycle.advance(current, state), actor, details)

    def void(self, code: str, reason: str, actor: str) -> Device:
        """Void a device for good, with the reason; its UCI is never issued again."""
        reason = fields.reason(reason, "voiding a device")
        self._move([(code, Kind.VOID)], lifecycle.void, actor, {"reason": reason})
        return self.device(code)

    def _move(self, moves: Sequence[tuple[str, str]], rule: Callable[[str], str], actor: str,
              details: dict[str, Any] | None) -> None:
        """The one path of every state change: the life cycle's rule, the update and the event, together."""
        details = dict(details or {})
        refusals: list[StationError] = []
        with self.transaction() as conn:
            for code, kind in moves:
                try:
                    self._step(conn, code, kind, rule, actor, details)
                except StationError as exc:
                    refusals.append(exc)
                    self._event(conn, Kind.REFUSED, actor, {**details, "attempted": kind, "reason": str(exc)}, code=code)
        if refusals:
            raise refusals[0]

    def _step(self, conn: Connection, code: str, kind: str, rule: Callable[[str], str], actor: str,
              details: dict[str, Any]) -> str:
        """One device's change of state inside the caller's transaction: the rule, the update and the event;
        the new state, or the refusal (whose event the caller writes)."""
        row = conn.execute("SELECT state, batch FROM devices WHERE uci = ?", (code,)).fetchone()
        if row is None:
            raise NotFound(f"no device has claim ID {code}")
        try:
            new = rule(row[0])
            if row[1] is not None and new != lifecycle.VOID:
                self._usable_batch_of(conn, row[1])
        except StationError as exc:
            raise type(exc)(f"{code}: {exc}") from None
        stamp = now()
        if new != row[0]:
            conn.execute("UPDATE devices SET state = ?, updated = ? WHERE uci = ?", (new, stamp, code))
        self._event(conn, kind, actor, {**details, "from": row[0], "to": new}, code=code, time=stamp)
        return new

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

    @staticmethod
    def _batch(row: dict[str, Any]) -> Batch:
        return Batch(**{**row, "complete": bool(row["complete"])})

    def batch(self, name: str) -> Batch:
        for row in self._query("SELECT * FROM batches WHERE name = ?", (name,)):
            return self._batch(row)
        raise NotFound(f"unknown batch {name!r}: `station stats` lists the batches")

    def _usable_batch_of(self, conn: Connection, batch_id: int) -> None:
        """Refuse a move of a device whose batch is incomplete (voiding it stays allowed)."""
        row = conn.execute("SELECT name FROM batches WHERE id = ? AND complete = 0", (batch_id,)).fetchone()
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

    def issue_group(self, requests: list[IssueRequest]) -> list[tuple[str, bool] | Exception]:
        """Issue for many requests in one durable transaction (group commit): one fsync for the lot.

        Each request gets ``(uci, created)`` or the error that
        refused it alone (its savepoint is rolled back, then its ``refused`` event written; a bug is logged).
        An error of the transaction (the database locked, full or broken) refuses them all.
        """
        products: dict[str, Product] = {}
        stamp = now()  # the group's one commit: one time for all its devices
        with self.transaction() as conn:
            results: list[tuple[str, bool] | Exception | None] = [None] * len(requests)
            fresh = self._fresh_only(conn, requests, products)
            for i, code in self._issue_fresh(conn, fresh, products, stamp).items():
                results[i] = (code, True)
            return [self._issue_one(conn, requests[i], products, stamp) if result is None else result
                    for i, result in enumerate(results)]

    def _fresh_only(self, conn: Connection, requests: list[IssueRequest],
                    products: dict[str, Product]) -> dict[int, Fresh]:
        """The requests of a group that only ask for a new UCI of an issuable product, by position: no serial or
        idempotency key, and a hardware key no device holds yet (looked up for the lot, one query per product),
        the first of the group to bring it. Any other (a repeat, a released key, a refusal) goes the one-by-one way,
        and so does one whose check fails in any way, which that way refuses alone, with its event."""
        fresh: dict[int, Fresh] = {}
        keyed: dict[tuple[str, str], int] = {}  # (product, hardware key): the first request to bring it
        for i, request in enumerate(requests):
            if request.serial is not None or request.idempotency_key is not None:
                continue
            try:
                product_id = fields.product_id(request.product_id)
                if product_id not in products:
                    products[product_id] = self._issuable(product_id)
                hwkey = None if request.hwkey is None else fields.hardware_key(request.hwkey)
                details = encoded({k: v for k, v in request.details.items() if v is not None})
            except Exception:  # whatever it is, the one-by-one way refuses it alone (a bug, logged)
                continue
            if hwkey is not None:
                if (product_id, hwkey) in keyed:
                    continue  # its repeat, once the first is stored
                keyed[product_id, hwkey] = i
            fresh[i] = Fresh(product_id, request.actor, details, hwkey)
        for product_id in {product for product, _ in keyed}:
            keys = [hwkey for product, hwkey in keyed if product == product_id]
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                for (held,) in conn.execute(f"SELECT hwkey FROM devices WHERE product = ? AND hwkey IN "
                                            f"({', '.join('?' * len(part))})", [product_id, *part]).fetchall():
                    del fresh[keyed[product_id, held]]
        return fresh

    def _issue_fresh(self, conn: Connection, fresh: dict[int, Fresh], products: dict[str, Product],
                     stamp: str) -> dict[int, str]:
        """New UCIs for the requests ``_fresh_only`` found, with their ``issued`` events, in a statement or two each
        for the lot (a registry's server answers each statement over the network): the UCI of each stored."""
        issued: dict[int, str] = {}
        pending = list(fresh)
        for _ in range(TRIES):
            if not pending:
                break
            drawn = {i: uci.generate(products[fresh[i].product].bits) for i in pending}
            unique = {code: i for i, code in drawn.items()}  # a UCI drawn twice in one draw: one of them draws again
            marks = ", ".join(["(?, ?, 'issued', ?, ?, ?)"] * len(unique))
            stored = {row[0] for row in conn.execute(
                f"INSERT INTO devices(uci, product, state, hwkey, created, station) VALUES {marks} "
                f"ON CONFLICT (uci) DO NOTHING RETURNING uci",
                [value for code, i in unique.items()
                 for value in (code, fresh[i].product, fresh[i].hwkey, stamp, self.station)]).fetchall()}
            issued.update((i, code) for code, i in unique.items() if code in stored)
            pending = [i for i in pending if i not in issued]
        if issued:
            self._events(conn, Kind.ISSUED, [(issued[i], fresh[i].actor, fresh[i].details) for i in sorted(issued)], stamp)
        return issued


    def stats(self, station: str | None = None) -> list[dict[str, Any]]:
        """Device counts by product, batch and state; of the devices one station issued, or of the whole registry."""
        clauses, params = self._filters(None, None, None, None, station)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return list(self._query(
            f"SELECT d.product, b.name AS batch, d.state, count(*) AS devices FROM devices d "
            f"LEFT JOIN batches b ON b.id = d.batch{where} GROUP BY d.product, d.batch, b.name, d.state "
            f"ORDER BY d.product, d.batch NULLS FIRST, d.state", params))

    def stations(self) -> list[str]:
        """The stations that issued devices or batches here: one seek per station along their indexes."""
        found = {row["station"] for row in self._query(
            "WITH RECURSIVE s(station) AS (SELECT min(station) FROM devices UNION ALL "
            "SELECT (SELECT min(station) FROM devices WHERE station > s.station) FROM s WHERE s.station IS NOT NULL) "
            "SELECT station FROM s WHERE station IS NOT NULL UNION SELECT DISTINCT station FROM batches "
            "WHERE station IS NOT NULL")}
        return sorted(found)

