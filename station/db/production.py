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
        row per slot follows. The span's rows are read once: each verdict is of one slot, so the station's sums are
        the sums of its slots' rows of the station's terms."""
        params = {"start": start, "end": end, "slot": slot}
        if slot is not None:
            return [_whole({"slot": None, **row}) for row in self._query(
                f"SELECT {_figures(*HERE)} FROM verdicts WHERE {_span(slot)}", params)]
        rows = list(self._query(f"SELECT slot, {_figures(*HERE)}, {_figures(*STATION, prefix='all_')} FROM verdicts "
                                f"WHERE {_span(None)} GROUP BY slot ORDER BY slot", params))
        station = {key: sum(row[f"all_{key}"] for row in rows) for key in FIGURES}
        return [_whole({"slot": None, **station}), *(_whole({key: row[key] for key in ("slot", *FIGURES)}) for row in rows)]

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
