"""The station's clock as people read it: stored times are UTC (core.models.now), shown and counted in the
configured ``timezone``, with the zone named, on every page and export; the day and the shifts start there.

One place owns this so that a page, a CSV and the line's count of today agree on when today began.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .core.errors import Invalid
from .core.models import stored

# Three eight-hour shifts, the common pattern; a station with others names its own in ``shifts``.
DEFAULT_SHIFTS = ({"name": "early", "start": "06:00"}, {"name": "late", "start": "14:00"},
                  {"name": "night", "start": "22:00"})


@dataclass(frozen=True)
class Shift:
    """A shift of the day, from ``start`` (local time) until the next shift's start."""

    name: str
    start: time


@dataclass(frozen=True)
class Span:
    """From ``start`` up to ``end`` (stored UTC times, compared as text), as a person names it."""

    name: str
    start: str
    end: str
    label: str


def check_zone(where: str, value: Any) -> tzinfo | None:
    """``timezone``: an IANA zone name such as "Europe/Berlin"; null is the machine's own zone."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{where} must be a time zone name such as \"Europe/Berlin\" or \"UTC\", not {value!r}")
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(f"{where}: {value!r} is not a time zone this machine knows; write an IANA name such as "
                      f"\"Europe/Berlin\", \"America/Chicago\" or \"UTC\" (install tzdata if none is known)") from exc


def check_shifts(where: str, value: Any) -> tuple[Shift, ...]:
    """``shifts``: ``[{name, start: "HH:MM"}, ...]``, each running until the next one's start."""
    example = '[{name: "early", start: "06:00"}, {name: "late", start: "14:00"}]'
    if not isinstance(value, (list, tuple)) or not value:
        raise Invalid(f"{where} must be a list of shifts such as {example}, not {value!r}")
    shifts = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"name", "start"} or not isinstance(entry["name"], str) \
                or not entry["name"].strip() or not isinstance(entry["start"], str):
            raise Invalid(f"{where}: each shift has a name and a start, as in {example}; not {entry!r}")
        try:
            start = time.fromisoformat(entry["start"])
        except ValueError as exc:
            raise Invalid(f"{where}: the start of shift {entry['name']!r} must be a time of day such as \"06:00\", "
                          f"not {entry['start']!r}") from exc
        if start.minute % 15 or start.second or start.microsecond:
            raise Invalid(f"{where}: shift {entry['name']!r} must start on a quarter hour (:00, :15, :30 or :45), "
                          f"by which the production figures are counted; not {entry['start']!r}")
        shifts.append(Shift(entry["name"].strip(), start))
    starts = [shift.start for shift in shifts]
    if len(set(starts)) != len(starts) or len({s.name for s in shifts}) != len(shifts):
        raise Invalid(f"{where}: two shifts share a name or a start time")
    return tuple(sorted(shifts, key=lambda shift: shift.start))


def zone(configured: tzinfo | None) -> tzinfo:
    """The zone times are shown in: the configured one, else the machine's."""
    return configured or datetime.now().astimezone().tzinfo or UTC


def moment(stamp: str) -> datetime:
    """A stored time as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def shown(stamp: str | None, where: tzinfo, seconds: bool = True) -> str:
    """A stored time as people read it: ``2026-12-03 13:49:22 CET`` (``-`` for none)."""
    if not stamp:
        return "-"
    local = moment(stamp).astimezone(where)
    return local.strftime(f"%Y-%m-%d %H:%M{':%S' if seconds else ''} ") + (local.tzname() or "")


def exported(stamp: str | None, where: tzinfo) -> str | None:
    """A stored time in an export: ISO 8601 in the station's zone, with its offset (None for none)."""
    return moment(stamp).astimezone(where).isoformat(timespec="milliseconds") if stamp else None


def day_start(where: tzinfo, at: datetime | None = None) -> datetime:
    """The local midnight that began the day of ``at`` (now)."""
    local = (at or datetime.now(UTC)).astimezone(where)
    return datetime.combine(local.date(), time(0), tzinfo=where)


def current_shift(shifts: tuple[Shift, ...], where: tzinfo, at: datetime | None = None) -> tuple[Shift, datetime, datetime]:
    """The shift running at ``at`` (now), with its start and end as aware times."""
    local = (at or datetime.now(UTC)).astimezone(where)
    starts = []  # each shift's start on the day before, the day of and the day after ``at``, in order
    for offset in (-1, 0, 1):
        day = local.date() + timedelta(days=offset)
        starts += [(shift, datetime.combine(day, shift.start, tzinfo=where)) for shift in shifts]
    for (shift, start), (_, end) in zip(starts, starts[1:], strict=False):
        if start <= local < end:
            return shift, start, end
    raise AssertionError("a moment lies between two shift starts")  # the three days cover it


def spans(shifts: tuple[Shift, ...], where: tzinfo, at: datetime | None = None) -> dict[str, Span]:
    """Today, the current shift and the last 7 days, up to ``at`` (now)."""
    at = at or datetime.now(UTC)
    end = stored(at)
    today = day_start(where, at)
    shift, start, _ = current_shift(shifts, where, at)
    week = day_start(where, at - timedelta(days=6))
    return {
        "today": Span("today", stored(today), end, f"today, since {today:%H:%M} {today.tzname()}"),
        "shift": Span("shift", stored(start), end, f"{shift.name} shift, since {start:%H:%M} {start.tzname()}"),
        "7d": Span("7d", stored(week), end, f"the last 7 days, since {week:%Y-%m-%d} {week.tzname()}"),
    }
