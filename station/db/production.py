"""The production view's queries: the line's verdict events (``line-pass``, ``line-fail``, station/line/cycle.py)
in a span of time, counted per slot and for the station. station/production.py turns the rows into figures.

Every query scans only the span's verdicts along the (kind, time) index. Whether a verdict was its unit's first
ever is one look-up per verdict in the partial index of verdicts by unit (schema v9), never a scan of the unit's
other events.
"""

from __future__ import annotations

from typing import Any

from ..core.lifecycle import Kind
from .events import EventsTable

# Written out, not bound: SQLite uses a partial index only where the query repeats its WHERE term literally.
VERDICT = f"kind IN ('{Kind.LINE_FAIL}', '{Kind.LINE_PASS}')"
SLOT = "json_extract(e.details, '$.slot')"
# A verdict is its unit's first when no verdict of the unit has a smaller id (ids grow with every event).
FIRST = f"NOT EXISTS (SELECT 1 FROM events p WHERE p.uci = e.uci AND p.{VERDICT} AND p.id < e.id)"


def _span(kinds: tuple[str, ...], start: str, end: str, slot: str | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause of the span's verdicts of ``kinds`` (of one slot, or all), and its parameters."""
    where = f"e.kind IN ({', '.join('?' * len(kinds))}) AND e.time >= ? AND e.time < ?"
    if slot is None:
        return where, (*kinds, start, end)
    return f"{where} AND {SLOT} = ?", (*kinds, start, end, slot)


class ProductionTable(EventsTable):

    def verdict_figures(self, start: str, end: str, slot: str | None = None, *, by_slot: bool = False) -> list[dict[str, Any]]:
        """For the verdicts from ``start`` up to ``end`` (of ``slot``, or every slot): ``tested`` (distinct units),
        ``passed`` (distinct units with a pass), ``verdicts``, ``first_units`` (verdicts that were their unit's first
        ever) and ``first_passed`` (of those, passes); one row for them all, or one per ``slot`` (``by_slot``)."""
        where, params = _span((Kind.LINE_PASS, Kind.LINE_FAIL), start, end, slot)
        group = "slot" if by_slot else "NULL"
        return list(self._query(
            f"SELECT {group} AS slot, count(DISTINCT uci) AS tested, count(DISTINCT CASE WHEN passed THEN uci END) AS passed, "
            f"count(*) AS verdicts, coalesce(sum(first), 0) AS first_units, coalesce(sum(first AND passed), 0) AS first_passed "
            f"FROM (SELECT e.uci, e.kind = ? AS passed, {SLOT} AS slot, {FIRST} AS first FROM events e WHERE {where}) "
            f"{'GROUP BY slot ORDER BY slot' if by_slot else ''}",
            (Kind.LINE_PASS, *params)))

    def passes_by_quarter(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """Units that passed from ``start`` up to ``end``, each counted once at its first pass in the span, per
        quarter hour (``quarter``, its UTC start as stored; every zone's hours begin on a quarter)."""
        where, params = _span((Kind.LINE_PASS,), start, end, slot)
        return list(self._query(
            "SELECT substr(t, 1, 14) || printf('%02d', CAST(substr(t, 15, 2) AS INTEGER) / 15 * 15) || ':00.000Z' "
            "AS quarter, count(*) AS passed "
            f"FROM (SELECT min(e.time) AS t FROM events e WHERE {where} GROUP BY e.uci) GROUP BY quarter ORDER BY quarter",
            params))

    def failures_by_step(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """FAIL verdicts from ``start`` up to ``end`` per ``step`` and ``reason`` (``failures``), most first."""
        where, params = _span((Kind.LINE_FAIL,), start, end, slot)
        return list(self._query(
            "SELECT json_extract(e.details, '$.step') AS step, json_extract(e.details, '$.reason') AS reason, "
            f"count(*) AS failures FROM events e WHERE {where} GROUP BY step, reason ORDER BY failures DESC, step, reason",
            params))
