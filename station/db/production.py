"""The production view's queries: the line's verdicts (``line-pass``, ``line-fail``, station/line/cycle.py) in a
span of time, counted per slot and for the station. station/production.py turns the rows into figures.

Every query sums rows of ``verdict_counts`` or ``failure_counts`` (schema v10: kept by a trigger as each verdict
is written), one row per station, quarter hour, slot and kind of verdict, so a span's cost follows its quarters, not
its verdicts; a station sees its own (a shared registry holds many lines', whose slots may share names). A verdict is its unit's first in the span where the one before it is older than the span's start (its
quarter is earlier: spans start on quarter hours), and its first ever where there is none (quarter 0). A
span's end counts up to the end of its quarter: the views end now, and no verdict is later than now.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from ..core.errors import Invalid
from .events import EventsTable

QUARTER = 900  # seconds: the counts' unit of time
# Per scope: the station's units by their verdicts on any slot, a slot's by their verdicts on it.
STATION = ("prev", "prev_pass")
HERE = ("prev_here", "prev_pass_here")


FIGURES = ("verdicts", "tested", "passed", "first_units", "first_passed")


def _figures(prev: str, prev_pass: str, prefix: str = "") -> str:
    """The sums of FIGURES over a scope's counts, named with ``prefix``."""
    def where(condition: str) -> str:
        return f"coalesce(sum(CASE WHEN {condition} THEN n ELSE 0 END), 0)"

    return (f"coalesce(sum(n), 0) AS {prefix}verdicts, {where(f'{prev} < :start')} AS {prefix}tested, "
            f"{where(f'passed = 1 AND {prev_pass} < :start')} AS {prefix}passed, "
            f"{where('prev = 0')} AS {prefix}first_units, {where('prev = 0 AND passed = 1')} AS {prefix}first_passed")


# This station's counts (schema v13): its own, and those written before stations had names (station ''), which
# only a station's own file holds.
_HERE = "station IN (:station, '')"
# The slots of this station that ever had a verdict, one seek each along the counts (no loose index scan in SQLite).
_SLOTS = (f"WITH RECURSIVE s(slot) AS (SELECT min(slot) FROM verdict_counts WHERE {_HERE} UNION ALL "
          f"SELECT (SELECT min(slot) FROM verdict_counts WHERE {_HERE} AND slot > s.slot) FROM s WHERE s.slot IS NOT NULL) "
          "SELECT slot FROM s WHERE slot IS NOT NULL")


def _whole(row: dict[str, Any]) -> dict[str, Any]:
    """A row of figures with its counts as whole numbers (PostgreSQL sums bigints as numeric), and its slot."""
    return {key: int(value) if key in FIGURES else (value or None) if key == "slot" else value
            for key, value in row.items()}


def quarter(stamp: str, *, up: bool = False) -> int:
    """The quarter hour of a stored time (unix time // 900); ``up``: the first one at or after it."""
    seconds = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return -int(-seconds // QUARTER) if up else int(seconds // QUARTER)


def _span(start: str, end: str, slot: str | None, station: str) -> tuple[str, dict[str, Any]]:
    """The condition and parameters of the counts of ``station`` from ``start`` (a quarter hour) up to ``end``: a
    range of each slot's, or of ``slot``'s."""
    first = quarter(start)
    if first * QUARTER != datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp():
        raise Invalid(f"the production figures count by quarter hours: a span must start on one, not at {start}")
    slots = "slot = :slot" if slot is not None else f"slot IN ({_SLOTS})"
    return (f"{_HERE} AND {slots} AND quarter >= :start AND quarter < :end",
            {"start": first, "end": quarter(end, up=True), "slot": slot or "", "station": station})


class ProductionTable(EventsTable):

    def verdict_figures(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """For the verdicts from ``start`` up to ``end``: ``tested`` (distinct units), ``passed`` (distinct units with
        a pass), ``verdicts``, ``first_units`` (verdicts that were their unit's first ever) and ``first_passed`` (of
        those, passes). The first row (``slot`` None) is of ``slot``'s verdicts, or of all; without a ``slot``, one
        row per slot with verdicts in the span follows. One pass over each slot's range: a verdict is on one slot,
        so the station's sums are the slots' sums of its own kind."""
        where, params = _span(start, end, slot, self.station)
        rows = list(self._query(f"SELECT slot, {_figures(*HERE)}, {_figures(*STATION, 'station_')} "
                                f"FROM verdict_counts WHERE {where} GROUP BY slot ORDER BY slot", params))
        station = {key: sum(row[f"station_{key}"] for row in rows) for key in FIGURES}
        if slot is not None:
            return [_whole({"slot": None, **{key: sum(row[key] for row in rows) for key in FIGURES}})]
        return [_whole({"slot": None, **station}), *(_whole({key: row[key] for key in ("slot", *FIGURES)}) for row in rows)]

    def passes_by_hour(self, start: str, bounds: list[str], slot: str | None = None) -> list[int]:
        """Units that passed between each two of ``bounds`` (stored times, in order, on quarter hours but the last:
        the span's hours), each counted once, at its first pass since ``start``."""
        if len(bounds) < 2:
            return []
        where, params = _span(start, bounds[-1], slot, self.station)
        prev_pass = "prev_pass_here" if slot is not None else "prev_pass"
        by_quarter = {row["quarter"]: int(row["passed"]) for row in self._query(
            f"SELECT quarter, sum(n) AS passed FROM verdict_counts WHERE {where} AND passed = 1 AND {prev_pass} < :start "
            "GROUP BY quarter", params)}
        edges = [quarter(bound) for bound in bounds[:-1]] + [params["end"]]
        passed = [0] * (len(edges) - 1)
        for q, count in by_quarter.items():  # each quarter into its hour once (7 days: 672 quarters, 168 hours)
            hour = bisect.bisect_right(edges, q) - 1
            if 0 <= hour < len(passed):
                passed[hour] += count
        return passed

    def failures_by_step(self, start: str, end: str, slot: str | None = None) -> list[dict[str, Any]]:
        """FAIL verdicts from ``start`` up to ``end`` per ``step`` and ``reason`` (``failures``), most first."""
        where, params = _span(start, end, slot, self.station)
        return [{"step": row["step"] or None, "reason": row["reason"], "failures": int(row["failures"])}
                for row in self._query(
                    f"SELECT step, reason, sum(n) AS failures FROM failure_counts WHERE {where} "
                    "GROUP BY step, reason ORDER BY failures DESC, step, reason", params)]
