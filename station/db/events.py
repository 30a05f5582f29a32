"""Events: the append-only history of every device and of the station."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from ..core import fields, lifecycle
from ..core.models import Event, now
from .connection import Database
from .engine import Connection

_DETAILS = json.JSONEncoder(sort_keys=True)  # an event's details as stored (json.dumps would build one each time)
# A NUL or a surrogate in the encoded details (an escape whose backslash is not itself escaped): a character beyond
# the BMP is a pair, which stores, but PostgreSQL's json refuses NUL and a lone surrogate, so details holding such a
# string are stored as fields.storable_tree makes them, on every engine alike.
_UNSTORABLE = re.compile(r"(?<!\\)(?:\\\\)*\\u(?:0000|[dD][89abAB][0-9a-fA-F]{2}|[dD][c-fC-F][0-9a-fA-F]{2})")
_KINDS = frozenset(lifecycle.Kind)
log = logging.getLogger("station.store")


def encoded(details: dict[str, Any]) -> str:
    """An event's details as stored."""
    text = _DETAILS.encode(details)
    return _DETAILS.encode(fields.storable_tree(details)) if "\\u" in text and _UNSTORABLE.search(text) else text


class EventsTable(Database):

    def _event(self, conn: Connection, kind: str, actor: str, details: dict[str, Any] | None = None,
               code: str | None = None, batch: int | None = None, time: str | None = None) -> int:
        if kind not in _KINDS:  # a bug: every kind is one of the life cycle's list, so that readers find it
            raise ValueError(f"{kind!r} is not an event kind of station/core/lifecycle.py (Kind)")
        return int(conn.execute(
            "INSERT INTO events(time, uci, batch, kind, actor, details, station) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (time or now(), code, batch, str(kind), actor, encoded(details or {}), self.station),
        ).fetchall()[0][0])

    def _events(self, conn: Connection, kind: str, events: list[tuple[str, str, str]], time: str) -> None:
        """Events of one kind at one time, ``(uci, actor, details as ``encoded`` made them)`` each, in one statement."""
        if kind not in _KINDS:
            raise ValueError(f"{kind!r} is not an event kind of station/core/lifecycle.py (Kind)")
        marks = ", ".join(["(?, ?, NULL, ?, ?, ?, ?)"] * len(events))
        conn.execute(f"INSERT INTO events(time, uci, batch, kind, actor, details, station) VALUES {marks}",
                     [value for code, actor, details in events for value in (time, code, str(kind), actor, details,
                                                                              self.station)])

    def record(self, code: str | None, kind: str, actor: str, details: dict[str, Any] | None = None) -> int:
        """Append an event that changes no state (a refusal, a failed attempt, a repeated request); its id.

        Event ids only grow: "after event N" is exact where times of day are not (milliseconds, clock steps).
        """
        if code is not None and not fields.storable(code):  # a device's refused request names what it sent
            code = fields.shown(code)
        with self.transaction() as conn:
            return self._event(conn, kind, actor, details, code=code)

    def counts_by_slot(self, kinds: tuple[str, ...], since: str) -> list[dict[str, Any]]:
        """How many events of each of ``kinds`` each slot (``details.slot``, None without one) of this station had since
        ``since``: on a shared registry, a line counts its own."""
        marks = ", ".join("?" * len(kinds))
        return list(self._query(
            f"SELECT details ->> 'slot' AS slot, kind, count(*) AS n FROM events "
            f"WHERE kind IN ({marks}) AND time >= ? AND station = ? GROUP BY slot, kind", (*kinds, since, self.station)))

    def events(self, code: str) -> list[Event]:
        """A device's history, with the event of the batch it was issued in."""
        sql = (
            "SELECT * FROM events WHERE uci = ? OR (uci IS NULL AND batch = "
            "(SELECT batch FROM devices WHERE uci = ?)) ORDER BY id"
        )
        return [
            Event(r["id"], r["time"], r["uci"], r["batch"], r["kind"], r["actor"], json.loads(r["details"]), r["station"])
            for r in self._query(sql, (code, code))
        ]

