"""The production view's queries: the line's verdicts (``line-pass``, ``line-fail``, station/line/cycle.py) in a
span of time, counted per slot and for the station. station/production.py turns the rows into figures.

Every query reads the span's rows of ``verdicts`` (schema v9: one per verdict event, written by a trigger with
the times of its unit's verdict and pass before it) from one index by time that holds what they sum. A verdict
is its unit's first in the span where the one before it is older than the span's start, and its first ever
where there is none: sums, never a DISTINCT or a look-up per verdict.
"""

from __future__ import annotations

from typing import Any

from .events import EventsTable

# Per scope: the station's units by their verdicts on any slot, a slot's by their verdicts on it.
STATION = ("prev", "prev_pass")
HERE = ("prev_here", "prev_pass_here")


FIGURES = ("verdicts", "tested", "passed", "first_units", "first_passed")


def _figures(prev: str, prev_pass: str, prefix: str = "") -> str:
    """The sums of FIGURES over a scope's verdicts, named with ``prefix``."""
    return (f"count(*) AS {prefix}verdicts, total({prev} IS NULL OR {prev} < :start) AS {prefix}tested, "
            f"total(passed AND ({prev_pass} IS NULL OR {prev_pass} < :start)) AS {prefix}passed, "
            f"total(prev IS NULL) AS {prefix}first_units, total(prev IS NULL AND passed) AS {prefix}first_passed")


# Every slot that ever had a verdict, one seek each along the index by slot (SQLite has no loose index scan).
_SLOTS = ("WITH RECURSIVE s(slot) AS (SELECT min(slot) FROM verdicts UNION ALL "
          "SELECT (SELECT min(slot) FROM verdicts WHERE slot > s.slot) FROM s WHERE s.slot IS NOT NULL) "
          "SELECT slot FROM s WHERE slot IS NOT NULL")


def _whole(row: dict[str, Any]) -> dict[str, Any]:
    """A row of figures with its counts as whole numbers (SQLite's ``total`` sums as a float)."""
    return {key: int(value) if key in FIGURES else value for key, value in row.items()}


def _span(slot: str | None) -> str:
    return "time >= :start AND time < :end" + (" AND slot = :slot" if slot is not None else "")


class ProductionTable(EventsTable):

    def verdict_figures(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """For the verdicts from ``start`` up to ``end``: ``tested`` (distinct units), ``passed`` (distinct units with
        a pass), ``verdicts``, ``first_units`` (verdicts that were their unit's first ever) and ``first_passed`` (of
        those, passes). The first row (``slot`` None) is of ``slot``'s verdicts, or of all; without a ``slot``, one
        row per slot with verdicts in the span follows. Each is one range of an index (by time, or by slot and time):
        no sort of the span's rows."""
        params = {"start": start, "end": end, "slot": slot}
        if slot is not None:
            return [_whole({"slot": None, **self._slot_figures(params)})]
        rows = [_whole({"slot": None, **next(self._query(
            f"SELECT {_figures(*STATION)} FROM verdicts WHERE {_span(None)}", params))})]
        for name in [None, *(row["slot"] for row in self._query(_SLOTS))]:  # None: verdicts of no slot, if any
            figures = self._slot_figures({**params, "slot": name})
            if figures["verdicts"]:
                rows.append(_whole({"slot": name, **figures}))
        return rows

    def _slot_figures(self, params: dict[str, Any]) -> dict[str, Any]:
        return next(self._query(f"SELECT {_figures(*HERE)} FROM verdicts WHERE slot IS :slot AND "
                                "time >= :start AND time < :end", params))

    def passes_by_hour(self, start: str, bounds: list[str], slot: str | None = None) -> list[int]:
        """Units that passed between each two of ``bounds`` (stored times, in order: the span's hours), each counted
        once, at its first pass since ``start``. One range of the index by time per hour: counted where they lie,
        with no sort of the span's rows."""
        prev_pass = "prev_pass_here" if slot is not None else "prev_pass"
        pairs = list(zip(bounds, bounds[1:], strict=False))
        if not pairs:
            return []
        values = ", ".join("(?, ?, ?)" for _ in pairs)
        here = " AND slot = ?" if slot is not None else ""
        return [row["passed"] for row in self._query(
            f"WITH hours(n, lo, hi) AS (VALUES {values}) SELECT (SELECT count(*) FROM verdicts "
            f"WHERE time >= lo AND time < hi AND passed AND ({prev_pass} IS NULL OR {prev_pass} < ?){here}) AS passed "
            f"FROM hours ORDER BY n",
            [*(value for n, (lo, hi) in enumerate(pairs) for value in (n, lo, hi)), start,
             *((slot,) if slot is not None else ())])]

    def failures_by_step(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """FAIL verdicts from ``start`` up to ``end`` per ``step`` and ``reason`` (``failures``), most first."""
        return list(self._query(
            f"SELECT step, reason, count(*) AS failures FROM verdicts WHERE {_span(slot)} AND NOT passed "
            "GROUP BY step, reason ORDER BY failures DESC, step, reason", {"start": start, "end": end, "slot": slot}))
