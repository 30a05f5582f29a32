"""How the line is doing: the production view's figures, defined here once for the page, the API's JSON and CSV.

The source is the line's verdict events (``line-pass``, ``line-fail``: station/line/cycle.py), each naming its
slot, and for a FAIL the step and the reason, in a span of ``times.spans`` (today, the current shift, the last
7 days). For the station and for each slot:

- **units tested**: distinct units with a verdict in the span; **passed**: those of them with a PASS;
- **units per hour**: units passed per hour of the span so far, and per hour of the station's clock (each unit
  counted at its first PASS in the span);
- **first-pass yield**: of the units whose first verdict ever falls in the span, the share whose first verdict
  was a PASS (a slot counts the units whose first verdict was on it);
- **retests**: verdicts in the span that were not their unit's first;
- **failures**: FAIL verdicts by step and reason, most first, with the cumulative share (a Pareto).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from . import manifest, times
from .core.errors import Invalid
from .core.models import stored
from .store import Store

PARETO_BARS = 10  # failure causes shown one by one; the rest are summed in one "other" bar
HOUR = timedelta(hours=1)
PARTS = ("figures", "hours", "failures")  # the CSV tables of a report

DEFINITIONS = {
    "tested": "units with a verdict (PASS or FAIL) in the span",
    "passed": "units tested with a PASS in the span",
    "units_per_hour": "units passed per hour of the span so far",
    "first_pass_yield": "of the units whose first verdict ever falls in the span, the share that passed it",
    "retests": "verdicts in the span that were not their unit's first",
    "failures": "FAIL verdicts by step and reason, most first, with the cumulative share",
}


@dataclass(frozen=True)
class Figures:
    """The figures of the station (``slot`` None) or of one slot in a span."""

    slot: str | None
    tested: int
    passed: int
    units_per_hour: float
    first_units: int  # units whose first verdict ever is in the span (and, for a slot, was on it)
    first_passed: int  # of those, the ones whose first verdict was a PASS
    retests: int
    verdicts: int

    @property
    def first_pass_yield(self) -> float | None:
        """The share (0..1) of first verdicts that passed; None when no unit had its first verdict in the span."""
        return self.first_passed / self.first_units if self.first_units else None

    def to_json(self) -> dict[str, Any]:
        fpy = self.first_pass_yield
        return {"slot": self.slot, "tested": self.tested, "passed": self.passed,
                "units_per_hour": round(self.units_per_hour, 2), "first_units": self.first_units,
                "first_passed": self.first_passed, "first_pass_yield": None if fpy is None else round(fpy, 4),
                "retests": self.retests, "verdicts": self.verdicts}


@dataclass(frozen=True)
class Hour:
    """One hour of the station's clock: units that passed in it."""

    start: str  # stored UTC time
    label: str  # the hour as people read it on the station's clock ("14:00", "Mon 03 14:00" over several days)
    passed: int


@dataclass(frozen=True)
class Failure:
    """One bar of the Pareto: FAILs at ``step`` for ``reason``; ``cumulative``: the share (0..1) up to this bar."""

    step: str
    reason: str
    failures: int
    share: float
    cumulative: float

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "reason": self.reason, "failures": self.failures, "share": round(self.share, 4),
                "cumulative": round(self.cumulative, 4)}


@dataclass(frozen=True)
class Report:
    """The production view of one span, for the station and each slot or for one slot (``slot``)."""

    span: times.Span
    zone: tzinfo
    slot: str | None
    figures: Figures
    slots: tuple[Figures, ...]  # each slot with verdicts in the span (none when the report is of one slot)
    hours: tuple[Hour, ...]
    failures: tuple[Failure, ...]

    @property
    def top_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def to_json(self) -> dict[str, Any]:
        """The report as the API's JSON: times in the station's zone with their offset (times.exported)."""
        return {
            "span": {"name": self.span.name, "label": self.span.label, "start": times.exported(self.span.start, self.zone),
                     "end": times.exported(self.span.end, self.zone)},
            "slot": self.slot,
            "figures": self.figures.to_json(),
            "slots": [figures.to_json() for figures in self.slots],
            "hours": [{"start": times.exported(hour.start, self.zone), "label": hour.label, "passed": hour.passed}
                      for hour in self.hours],
            "failures": [failure.to_json() for failure in self.failures],
            "definitions": DEFINITIONS,
        }

    def to_csv(self, part: str = "figures") -> str:
        """One table of the report as CSV (``part``: figures, hours or failures), each row naming its span."""
        out = io.StringIO()
        writer = _Cells(csv.writer(out, lineterminator="\r\n"))
        span = [self.span.name, times.exported(self.span.start, self.zone), times.exported(self.span.end, self.zone)]
        if part == "figures":
            fields = ["tested", "passed", "units_per_hour", "first_units", "first_passed", "first_pass_yield", "retests",
                      "verdicts"]
            writer.writerow(["span", "start", "end", "slot", *fields])
            for figures in (self.figures, *self.slots):
                row = figures.to_json()
                writer.writerow([*span, figures.slot or "", *("" if row[f] is None else row[f] for f in fields)])
        elif part == "hours":
            writer.writerow(["span", "start", "end", "slot", "hour", "label", "passed"])
            for hour in self.hours:
                writer.writerow([*span, self.slot or "", times.exported(hour.start, self.zone), hour.label, hour.passed])
        elif part == "failures":
            writer.writerow(["span", "start", "end", "slot", "step", "reason", "failures", "share", "cumulative"])
            for failure in self.failures:
                row = failure.to_json()
                writer.writerow([*span, self.slot or "", *(row[f] for f in ("step", "reason", "failures", "share",
                                                                           "cumulative"))])
        else:
            raise Invalid(f"part must be figures, hours or failures (one table of the report each), not {part!r}")
        return out.getvalue()


class _Cells:
    """A CSV writer whose cells a spreadsheet never runs as formulas (a failure's reason may quote a unit)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def writerow(self, row: list[Any]) -> None:
        self.writer.writerow([manifest.csv_cell(cell) for cell in row])


def report(store: Store, span: times.Span, slot: str | None = None, *, zone: tzinfo | None = None) -> Report:
    """The figures of ``span`` for the station and each slot, or for ``slot`` alone; hours are labelled in
    ``zone`` (the station's, ``config.zone``; else the machine's)."""
    where = times.zone(zone)
    hours = _span_hours(span)
    scope, *slots = store.verdict_figures(span.start, span.end, slot)
    return Report(span, where, slot, _figures(scope, slot, hours), tuple(_figures(row, row["slot"] or "", hours) for row in slots),
                  _hours(store, span, slot, where), _pareto(store, span, slot))


def _span_hours(span: times.Span) -> float:
    return max((times.moment(span.end) - times.moment(span.start)).total_seconds() / 3600, 0.0)


def _figures(row: dict[str, Any], slot: str | None, hours: float) -> Figures:
    return Figures(slot, row["tested"], row["passed"], row["passed"] / hours if hours else 0.0, row["first_units"],
                   row["first_passed"], row["verdicts"] - row["first_units"], row["verdicts"])


def hour_start(moment: datetime, where: tzinfo) -> datetime:
    """The start of the hour of the station's clock that ``moment`` falls in (zones offset by 30 or 45 minutes too)."""
    local = moment.astimezone(where)
    return moment - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)


def _hours(store: Store, span: times.Span, slot: str | None, where: tzinfo) -> tuple[Hour, ...]:
    """Every hour of the span, with the units passed in it (none where none passed)."""
    start, end = times.moment(span.start), times.moment(span.end)
    days = end - start > timedelta(days=1)
    starts = []
    hour = hour_start(start, where)
    while hour < end:
        starts.append(hour)
        hour += HOUR
    bounds = [span.start, *(stored(hour) for hour in starts[1:]), span.end]  # the first hour counts from the span's start
    passed = store.passes_by_hour(span.start, bounds, slot) if starts else []
    return tuple(Hour(stored(hour), hour.astimezone(where).strftime("%a %d %H:%M" if days else "%H:%M"), count)
                 for hour, count in zip(starts, passed, strict=True))


def _pareto(store: Store, span: times.Span, slot: str | None) -> tuple[Failure, ...]:
    """The failure causes, most first, the ones beyond PARETO_BARS summed as "other"."""
    rows = store.failures_by_step(span.start, span.end, slot)
    total = sum(row["failures"] for row in rows)
    causes = [(row["step"] or "unknown", row["reason"] or "", row["failures"]) for row in rows[:PARETO_BARS]]
    if len(rows) > PARETO_BARS:
        rest = rows[PARETO_BARS:]
        causes.append(("other", f"{len(rest)} other causes", sum(row["failures"] for row in rest)))
    failures, running = [], 0
    for step, reason, count in causes:
        running += count
        failures.append(Failure(step, reason, count, count / total, running / total))
    return tuple(failures)
