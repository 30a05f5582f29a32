"""Webhooks' place in the events: the events table is the outbox (written in the same transaction as each
change), so an endpoint needs only its cursor, the id of the last event it has been delivered (or passed as
not of its kinds), the events after it already delivered (``ahead``: its lanes overlap), and the state of its
deliveries.

Event ids only grow and become visible in order (every write holds the engine's one write lock from BEGIN to
COMMIT), so "events after the cursor, up to the last id read first" never skips one that commits later.

Stations that share a registry may name the same endpoint: one of them at a time holds its row (``holder``,
until ``held_until``: a lease its deliverer renews), and only the holder moves the cursor, so each event goes
out once; when the holder stops, or its lease runs out (a station killed or cut off), another takes over from
the stored cursor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.models import Event, now, stored
from ..core.webhooks import Endpoint
from .events import EventsTable

LAST_ERROR_MAX = 300  # characters of a delivery's error kept and shown


@dataclass(frozen=True)
class WebhookState:
    """An endpoint's deliveries as stored, with its backlog (events of its kinds after its cursor)."""

    name: str
    cursor: int
    attempts: int
    last_error: str | None
    last_error_at: str | None
    next_attempt: str | None
    last_delivered: str | None
    backlog: int
    holder: str | None  # the station delivering them, while its lease runs


class WebhooksTable(EventsTable):

    def webhook_start(self, name: str, from_start: bool) -> None:
        """The endpoint's row, where it has none: a new endpoint starts at the last event (or, ``from_start``,
        before the first)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO webhooks(name, cursor, created) "
                "VALUES (?, CASE WHEN ? THEN 0 ELSE (SELECT coalesce(max(id), 0) FROM events) END, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, from_start, now()))

    def webhook_hold(self, name: str, holder: str, lease: float) -> tuple[int, frozenset[int]] | None:
        """Take the endpoint's deliveries, or keep them, for ``lease`` seconds from now: while ``holder`` has them,
        the cursor and the events after it already delivered; None while another holder's lease runs."""
        stamp = now()
        row = self.conn.execute("SELECT holder, held_until FROM webhooks WHERE name = ?", (name,)).fetchone()
        if row is not None and row[0] not in (None, holder) and (row[1] or "") >= stamp:
            return None  # another's, read without the write lock: a waiting station writes only to take over
        with self.transaction() as conn:
            if not conn.execute(
                    "UPDATE webhooks SET holder = ?, held_until = ? "
                    "WHERE name = ? AND (holder IS NULL OR holder = ? OR held_until IS NULL OR held_until < ?)",
                    (holder, stored(datetime.now(UTC) + timedelta(seconds=lease)), name, holder, stamp)).rowcount:
                return None
            cursor, ahead = conn.execute("SELECT cursor, ahead FROM webhooks WHERE name = ?", (name,)).fetchone()
            return int(cursor), frozenset(int(event) for event in json.loads(ahead))

    def webhook_release(self, name: str, holder: str) -> None:
        """Give the endpoint's deliveries up at once (a station stopping): another station takes them over."""
        with self.transaction() as conn:
            conn.execute("UPDATE webhooks SET holder = NULL, held_until = NULL WHERE name = ? AND holder = ?",
                         (name, holder))

    def webhook_events(self, after: int, kinds: Sequence[str], limit: int) -> tuple[list[Event], int]:
        """Up to ``limit`` events of ``kinds`` after event ``after``, in order, and the id up to which every
        event was read (the last one returned when the limit cut the list, else the last event of all)."""
        last = self.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        marks = ", ".join("?" * len(kinds))
        rows = self.conn.execute(
            f"SELECT id, time, uci, batch, kind, actor, details, station FROM events WHERE id > ? AND id <= ? "
            f"AND kind IN ({marks}) ORDER BY id LIMIT ?", (after, last, *kinds, limit)).fetchall()
        events = [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows]
        return events, (events[-1].id if len(events) == limit else max(after, last))

    def webhook_delivered(self, name: str, holder: str, cursor: int, delivered: bool, ahead: Sequence[int] = (),
                          recovered: bool = True) -> bool:
        """Move the cursor on (never back): every event of the endpoint's kinds up to ``cursor`` has been
        delivered, and so have the events ``ahead`` after it; ``delivered`` when one was just now (its time is
        kept); ``recovered`` when no delivery is failing any more (its failed attempts are over). False, and
        nothing stored, once ``holder`` no longer holds the endpoint (another station took it over)."""
        with self.transaction() as conn:
            return bool(conn.execute(
                "UPDATE webhooks SET cursor = CASE WHEN cursor > ? THEN cursor ELSE ? END, ahead = ?, "
                "attempts = CASE WHEN ? THEN 0 ELSE attempts END, "
                "next_attempt = CASE WHEN ? THEN NULL ELSE next_attempt END, "
                "last_delivered = CASE WHEN ? THEN ? ELSE last_delivered END WHERE name = ? AND holder = ?",
                (cursor, cursor, json.dumps(sorted(ahead)), recovered, recovered, delivered, now(), name,
                 holder)).rowcount)

    def webhook_failed(self, name: str, holder: str, error: str, next_attempt: str) -> None:
        """Count a failed attempt at the endpoint's next event, with its error and when it is tried again (while
        ``holder`` holds the endpoint)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE webhooks SET attempts = attempts + 1, last_error = ?, last_error_at = ?, next_attempt = ? "
                "WHERE name = ? AND holder = ?", (error[:LAST_ERROR_MAX], now(), next_attempt, name, holder))

    def webhook_states(self, endpoints: Sequence[Endpoint]) -> list[WebhookState]:
        """Each configured endpoint's deliveries and backlog; one never started shows what it would start with."""
        last = self.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        states = []
        for endpoint in endpoints:
            row: dict[str, Any] = next(self._query("SELECT * FROM webhooks WHERE name = ?", (endpoint.name,)), {})
            cursor = row.get("cursor", 0 if endpoint.start == "start" else last)
            marks = ", ".join("?" * len(endpoint.kinds))
            backlog = self.conn.execute(f"SELECT count(*) FROM events WHERE id > ? AND kind IN ({marks})",
                                        (cursor, *endpoint.kinds)).fetchone()[0] - len(json.loads(row.get("ahead", "[]")))
            states.append(WebhookState(endpoint.name, cursor, row.get("attempts", 0), row.get("last_error"),
                                       row.get("last_error_at"), row.get("next_attempt"), row.get("last_delivered"),
                                       backlog, row.get("holder") if (row.get("held_until") or "") >= now() else None))
        return states
