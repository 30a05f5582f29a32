"""The station's store: products, batches, devices and their append-only events, on the embedded SQLite file
or a shared PostgreSQL registry (db/connection.py picks the engine).

Every change of a device's state goes through ``_move``, which asks the life cycle for the new state and
writes the event in the same transaction. A UCI is committed durably before any caller can hand it out. A ``Store`` owns one connection and is used from one thread at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from .core.models import IDEMPOTENCY_WINDOW, REPEAT_WINDOW, Batch, Device, Event, IssueRequest, Product, now
from .db.batches import CHUNK, BatchesTable
from .db.claims import ClaimedElsewhere, ClaimsTable, NoSuchUnit
from .db.connection import NotAStationDatabase, is_url
from .db.credentials import CredentialsTable
from .db.devices import Ambiguous, RepeatRefused, SerialTaken
from .db.production import ProductionTable
from .db.schema import SCHEMA_VERSION
from .db.serialized import SerializedTable
from .db.sqlite import prefetch
from .db.tokens import DEFAULT_SCOPES, TOKEN_SCOPES, TokensTable
from .db.users import UsersTable
from .db.webhooks import WebhooksTable, WebhookState

if TYPE_CHECKING:
    from .config import Config

__all__ = ["CHUNK", "DEFAULT_SCOPES", "IDEMPOTENCY_WINDOW", "REPEAT_WINDOW", "SCHEMA_VERSION", "TOKEN_SCOPES", "Ambiguous",
           "Batch", "ClaimedElsewhere", "Device", "Event", "IssueRequest", "NoSuchUnit", "NotAStationDatabase", "Product", "RepeatRefused", "SerialTaken", "Store", "WebhookState", "now",
           "is_url", "prefetch"]


class Store(BatchesTable, ClaimsTable, CredentialsTable, ProductionTable, SerializedTable, TokensTable, UsersTable,
            WebhooksTable):
    """The station database: every table group's operations on one connection. Open it with
    ``Store.open(path)``, or ``Store.configured(config)`` as the station does; close it when done."""

    @classmethod
    def configured(cls, config: Config, *, migrate: bool = False) -> Self:
        """The configured station's store: its database, its wait for another's write, its name in every event;
        ``migrate``: a shared registry is migrated too (SQLite always is)."""
        return cls.open(config.database, timeout=config.database_timeout, station=config.station, migrate=migrate)
