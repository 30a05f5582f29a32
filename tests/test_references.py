"""A device names a product and perhaps a batch the database holds, on both engines: SQLite checks its foreign keys
row by row, PostgreSQL (schema v14) once per statement and on the products and batches side under the write lock.
Each refusal is tried through the station's own connection and through another program writing beside it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from station.core import uci
from station.core.errors import StationError
from station.store import Store, is_url
from tests.conftest import PRODUCT

REFUSED = "FOREIGN KEY constraint failed|names a product or batch|devices refer to"
OTHER = "01H4R15D3478JD26YDYK408XE7"
HOLD = 0.3  # s the other program keeps its transaction open while the station waits for the write lock


def count(store: Store, sql: str = "SELECT count(*) FROM devices") -> int:
    return int(store.conn.execute(sql).fetchone()[0])


def insert(store: Store, rows: list[tuple[str, str, int | None]]) -> None:
    """Devices ``(uci, product, batch)`` in one statement of one station transaction."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO devices(uci, product, batch, state) VALUES "
                     + ", ".join("(?, ?, ?, 'issued')" for _ in rows), [value for row in rows for value in row])


@contextmanager
def other_program(store: Store) -> Iterator[Callable[[str, tuple[Any, ...]], None]]:
    """Another program's open write transaction on the database (its ``execute``, ``?`` placeholders), committed
    when the block ends; a refusal inside it is raised as the driver's IntegrityError."""
    if is_url(store.location):
        with psycopg.connect(str(store.location)) as pg:  # READ COMMITTED, the server's default
            yield lambda sql, params: pg.execute(sql.replace("?", "%s"), params) and None
        return
    lite = sqlite3.connect(store.location, isolation_level=None, timeout=10)
    try:
        lite.execute("PRAGMA foreign_keys=ON")
        lite.execute("BEGIN IMMEDIATE")
        yield lambda sql, params: lite.execute(sql, params) and None
        lite.execute("COMMIT")
    finally:
        lite.close()


def integrity_error(store: Store) -> type[Exception]:
    return psycopg.IntegrityError if is_url(store.location) else sqlite3.IntegrityError


def test_a_device_names_a_product_and_a_batch_the_database_holds(store: Store) -> None:
    batch = store.generate_batch(PRODUCT, 3, name="held")
    before = count(store)
    for rows in ([(uci.generate(), "01NOSUCHPRODUCT", None)],
                 [(uci.generate(), PRODUCT, batch.id + 1000)],
                 # one bad row among good ones: the statement is refused whole
                 [(uci.generate(), PRODUCT, None), (uci.generate(), PRODUCT, batch.id), (uci.generate(), OTHER, None)]):
        with pytest.raises(StationError, match=REFUSED):
            insert(store, rows)
    assert count(store) == before
    insert(store, [(uci.generate(), PRODUCT, None), (uci.generate(), PRODUCT, batch.id)])
    assert count(store) == before + 2


def test_a_batch_insert_names_a_held_batch(store: Store) -> None:
    with pytest.raises(StationError, match=REFUSED), store.transaction() as conn:
        store.engine.insert_devices(conn, [sorted(uci.generate_many(5))], PRODUCT, 4242)
    assert count(store) == 0


def test_a_device_moves_only_to_a_held_product(store: Store) -> None:
    device, _ = store.issue(PRODUCT)
    with pytest.raises(StationError, match=REFUSED), store.transaction() as conn:
        conn.execute("UPDATE devices SET product = ? WHERE uci = ?", (OTHER, device.uci))
    store.add_product(OTHER, "Other", "Other-01")
    with store.transaction() as conn:
        conn.execute("UPDATE devices SET product = ? WHERE uci = ?", (OTHER, device.uci))
    assert store.device(device.uci).product == OTHER


def test_products_and_batches_that_devices_name_stay(store: Store) -> None:
    batch = store.generate_batch(PRODUCT, 2, name="named")
    store.add_product(OTHER, "Other", "Other-01")
    empty = store.generate_batch(OTHER, 1, name="emptied")
    with store.transaction() as conn:  # a batch no device names any more
        conn.execute("DELETE FROM devices WHERE batch = ?", (empty.id,))
    for sql, params in (("DELETE FROM products WHERE id = ?", (PRODUCT,)),
                        ("DELETE FROM batches WHERE id = ?", (batch.id,)),
                        ("DELETE FROM batches", ()),
                        ("UPDATE batches SET id = id + 1000 WHERE id = ?", (batch.id,)),
                        ("UPDATE products SET id = ? WHERE id = ?", ("01RENAMED", PRODUCT))):
        with pytest.raises(StationError, match=REFUSED), store.transaction() as conn:
            conn.execute(sql, params)
        with pytest.raises(integrity_error(store)), other_program(store) as execute:
            execute(sql, params)
    if is_url(store.location):
        with pytest.raises(psycopg.IntegrityError, match="devices refer to"), other_program(store) as execute:
            execute("TRUNCATE products, batches CASCADE", ())
    with store.transaction() as conn:
        conn.execute("DELETE FROM batches WHERE id = ?", (empty.id,))
        conn.execute("UPDATE products SET name = ? WHERE id = ?", ("Blank, renamed", PRODUCT))
    assert count(store) == 2 and count(store, "SELECT count(*) FROM batches") == 1
    assert store.product(PRODUCT).name == "Blank, renamed"


def test_a_product_deleted_meanwhile_is_not_named_by_a_device(store: Store) -> None:
    # Another program deletes a product no device names yet and holds its transaction open; the station's insert of
    # a device of that product waits for the write lock, then finds the product gone.
    store.add_product(OTHER, "Other", "Other-01")
    outcome: list[BaseException | None] = []
    with other_program(store) as execute:
        execute("DELETE FROM products WHERE id = ?", (OTHER,))
        waiting = threading.Thread(target=_catching, args=(outcome, insert, store, [(uci.generate(), OTHER, None)]))
        waiting.start()
        time.sleep(HOLD)
        assert waiting.is_alive(), f"the station did not wait for the other program's transaction: {outcome}"
    waiting.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], StationError), outcome
    assert count(store) == 0


def test_a_product_named_meanwhile_is_not_deleted(store: Store) -> None:
    # The station stores a device of a product in a transaction still open; another program deleting that product
    # waits for it, then finds the device.
    store.add_product(OTHER, "Other", "Other-01")
    outcome: list[BaseException | None] = []

    def delete() -> None:
        with other_program(store) as execute:
            execute("DELETE FROM products WHERE id = ?", (OTHER,))

    with store.transaction() as conn:
        conn.execute("INSERT INTO devices(uci, product, state) VALUES (?, ?, 'issued')", (uci.generate(), OTHER))
        waiting = threading.Thread(target=_catching, args=(outcome, delete))
        waiting.start()
        time.sleep(HOLD)
        assert waiting.is_alive(), f"the other program did not wait for the station's transaction: {outcome}"
    waiting.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], integrity_error(store)), outcome
    assert count(store) == 1 and store.product(OTHER).name == "Other"


def _catching(outcome: list[BaseException | None], call: Callable[..., object], *args: object) -> None:
    try:
        call(*args)
    except BaseException as exc:  # noqa: BLE001  (the test thread reports what the call raised)
        outcome.append(exc)
    else:
        outcome.append(None)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # SQLite has one writer and no snapshots
def test_a_writer_of_a_snapshot_isolation_is_refused(store: Store) -> None:
    # Under REPEATABLE READ a check would read the rows of the transaction's start, not those committed last.
    store.add_product(OTHER, "Other", "Other-01")
    with psycopg.connect(str(store.location)) as pg:
        pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.errors.InvalidTransactionState, match="READ COMMITTED"):
            pg.execute("INSERT INTO devices(uci, product, state) VALUES (%s, %s, 'issued')", (uci.generate(), OTHER))
        pg.rollback()
        pg.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        with pytest.raises(psycopg.errors.InvalidTransactionState, match="READ COMMITTED"):
            pg.execute("DELETE FROM products WHERE id = %s", (OTHER,))
    assert count(store) == 0 and store.product(OTHER).name == "Other"
