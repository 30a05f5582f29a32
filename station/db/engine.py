"""What every database engine of the station provides (db/sqlite.py, db/postgres.py): the rest of db/ writes
its SQL once, with ``?`` (and ``:name``) placeholders, and asks the engine only for what differs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..core.errors import StationError


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection as the tables use it: ``execute(sql, params)`` with ``?`` placeholders, rows as tuples."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...


class Engine(Protocol):
    """One connection to the station's database on one engine."""

    location: str  # what messages name: a file, or a server's URL without its password
    timeout: float  # seconds a write waits for another's
    migrated_from: int | None  # the schema version this connection migrated from, if it did
    give_way: float  # seconds a batch leaves the write lock free between its transactions, for the writers waiting

    @property
    def error(self) -> type[Exception]:
        """The driver's base error."""

    @property
    def request_errors(self) -> tuple[type[Exception], ...]:
        """Errors one statement's values cause (a bug), not the database's failure: they refuse one request."""

    @property
    def conn(self) -> Connection:
        """The connection, for reads outside a transaction (reconnected when it was lost)."""

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction, committed durably at the end; on the engines' one write lock."""

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts."""

    def translate(self, exc: Exception) -> StationError:
        """The driver's error as a message a user can act on."""

    def insert_devices(self, conn: Connection, parts: Iterable[Sequence[str]], product: str, batch: int) -> tuple[int, int]:
        """Store each part's sorted codes as issued devices of a batch, skipping those held already: how many codes
        the parts held, and how many were new. The parts may be drawn as they are taken."""

    def bulk(self) -> AbstractContextManager[None]:
        """Around a batch's transactions: what checks per row can be left out (the batch row was checked)."""

    def contended(self, conn: Connection) -> bool:
        """Whether other writers are live (a line beside a batch): a batch then holds the lock for less."""

    def warm(self) -> None:
        """Bring the registry into memory before a big batch, where the engine gains from it."""

    def close(self) -> None: ...
