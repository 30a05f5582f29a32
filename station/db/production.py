"""The production view's queries: the line's verdict events (``line-pass``, ``line-fail``, station/line/cycle.py)
in a span of time, counted per slot and for the station. station/production.py turns the rows into figures.

Every query reads only the span's verdicts, from a partial index of the verdicts by time that holds their unit
and slot (schema v9), so no other event and no event's row is read (but a FAIL's, for its step and reason).
Whether a verdict was its unit's first ever is one look-up per verdict in a partial index of the verdicts by
unit, never a read of the unit's other events.
"""

from __future__ import annotations

from typing import Any

from ..core.lifecycle import Kind
from .events import EventsTable

# Written out, not bound: SQLite uses a partial index only where the query repeats its WHERE term literally.
VERDICT = f"kind IN ('{Kind.LINE_FAIL}', '{Kind.LINE_PASS}')"
SLOT = "json_extract(e.details, '$.slot')"  # as idx_events_verdict_times holds it (schema v9): the same text
# A verdict is its unit's first when no verdict of the unit has a smaller id (ids grow with every event).
FIRST = f"NOT EXISTS (SELECT 1 FROM events p WHERE p.uci = e.uci AND p.{VERDICT} AND p.id < e.id)"
FIGURES = ("count(DISTINCT uci) AS tested, count(DISTINCT CASE WHEN passed THEN uci END) AS passed, count(*) AS verdicts, "
           "coalesce(sum(first), 0) AS first_units, coalesce(sum(first AND passed), 0) AS first_passed")


def _span(start: str, end: str, slot: str | None, kind: str | None = None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause of the span's verdicts (of one ``kind``, else both; of one slot, else all) and its
    parameters; it reads idx_events_verdict_times alone (the slot and the unit are in it)."""
    where = f"e.{VERDICT} AND e.time >= ? AND e.time < ?{' AND e.kind = ?' if kind else ''}"
    params = (start, end, *((kind,) if kind else ()))
    if slot is None:
        return where, params
    return f"{where} AND {SLOT} = ?", (*params, slot)


class ProductionTable(EventsTable):

    def verdict_figures(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """For the verdicts from ``start`` up to ``end``: ``tested`` (distinct units), ``passed`` (distinct units with
        a pass), ``verdicts``, ``first_units`` (verdicts that were their unit's first ever) and ``first_passed`` (of
        those, passes). The first row (``slot`` None) is of ``slot``'s verdicts, or of all; without a ``slot``, one
        row per slot follows. The span's verdicts are read once."""
        where, params = _span(start, end, slot)
        per_slot = f" UNION ALL SELECT * FROM (SELECT slot, {FIGURES} FROM v GROUP BY slot ORDER BY slot)" if slot is None else ""
        return list(self._query(
            f"WITH v AS MATERIALIZED (SELECT e.uci, e.kind = ? AS passed, {SLOT} AS slot, {FIRST} AS first "
            f"FROM events e WHERE {where}) SELECT NULL AS slot, {FIGURES} FROM v{per_slot}",
            (Kind.LINE_PASS, *params)))

    def passes_by_quarter(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """Units that passed from ``start`` up to ``end``, each counted once at its first pass in the span, per
        quarter hour (``quarter``, its UTC start as stored; every zone's hours begin on a quarter)."""
        where, params = _span(start, end, slot, Kind.LINE_PASS)
        return list(self._query(
            "SELECT substr(t, 1, 14) || printf('%02d', CAST(substr(t, 15, 2) AS INTEGER) / 15 * 15) || ':00.000Z' "
            "AS quarter, count(*) AS passed "
            f"FROM (SELECT min(e.time) AS t FROM events e WHERE {where} GROUP BY e.uci) GROUP BY quarter ORDER BY quarter",
            params))

    def failures_by_step(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """FAIL verdicts from ``start`` up to ``end`` per ``step`` and ``reason`` (``failures``), most first."""
        where, params = _span(start, end, slot, Kind.LINE_FAIL)
        return list(self._query(
            "SELECT json_extract(e.details, '$.step') AS step, json_extract(e.details, '$.reason') AS reason, "
            f"count(*) AS failures FROM events e WHERE {where} GROUP BY step, reason ORDER BY failures DESC, step, reason",
            params))
