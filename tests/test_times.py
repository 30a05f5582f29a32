"""Times as people read them: the configured zone, named; the day and the shifts start there."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from station import config as config_mod
from station import manifest, times
from station.core.errors import Invalid
from station.store import Device
from tests.conftest import PRODUCT

BERLIN = times.check_zone("timezone", "Europe/Berlin")
SHIFTS = times.check_shifts("shifts", times.DEFAULT_SHIFTS)


def test_a_stored_time_is_shown_in_the_zone_with_its_name() -> None:
    assert times.shown("2026-12-03T11:00:00.000Z", BERLIN) == "2026-12-03 12:00:00 CET"
    assert times.shown("2026-07-03T11:00:00.000Z", BERLIN) == "2026-07-03 13:00:00 CEST"
    assert times.shown("2026-12-03T11:00:00.000Z", BERLIN, seconds=False) == "2026-12-03 12:00 CET"
    assert times.shown(None, BERLIN) == "-"


def test_today_and_the_shifts_start_at_the_zones_clock() -> None:
    late_evening = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)  # 23:30 in Berlin: the night shift began at 22:00
    spans = times.spans(SHIFTS, BERLIN, late_evening)
    assert spans["today"].start == "2026-12-02T23:00:00.000Z"
    assert spans["shift"].start == "2026-12-03T21:00:00.000Z" and spans["shift"].label.startswith("night shift")
    assert spans["7d"].start == "2026-11-26T23:00:00.000Z"
    assert all(span.end == "2026-12-03T22:30:00.000Z" for span in spans.values())
    after_midnight = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)  # 01:30 in Berlin: still the night shift of the 2nd
    assert times.spans(SHIFTS, BERLIN, after_midnight)["shift"].start == "2026-12-02T21:00:00.000Z"
    assert times.spans(SHIFTS, BERLIN, after_midnight)["today"].start == "2026-12-02T23:00:00.000Z"


def test_a_shift_across_a_clock_change_starts_at_its_local_time() -> None:
    # Berlin went from CEST to CET at 03:00 on 25 October 2026: the early shift starts at 06:00 CET (05:00 UTC).
    shift, start, end = times.current_shift(SHIFTS, BERLIN, datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    assert (shift.name, start.isoformat(), end.isoformat()) == (
        "early", "2026-10-25T06:00:00+01:00", "2026-10-25T14:00:00+01:00")


@pytest.mark.parametrize(("value", "says"), [
    ("Mars/Olympus", "not a time zone this machine knows"),
    ("", "must be a time zone name"),
    (3, "must be a time zone name"),
])
def test_an_unknown_zone_is_refused_saying_what_to_write(value: object, says: str) -> None:
    with pytest.raises(Invalid, match=says):
        times.check_zone("timezone", value)


@pytest.mark.parametrize(("value", "says"), [
    ([], "must be a list of shifts"),
    ([{"name": "early"}], "each shift has a name and a start"),
    ([{"name": "early", "start": "25:00"}], "must be a time of day"),
    ([{"name": "a", "start": "06:00"}, {"name": "b", "start": "06:00"}], "share a name or a start"),
])
def test_bad_shifts_are_refused(value: object, says: str) -> None:
    with pytest.raises(Invalid, match=says):
        times.check_shifts("shifts", value)


def test_station_json5_sets_the_zone_and_the_shifts(tmp_path: Path) -> None:
    (tmp_path / "station.json5").write_text(json.dumps({
        "timezone": "America/Chicago", "shifts": [{"name": "day", "start": "07:00"}, {"name": "night", "start": "19:00"}]}))
    loaded = config_mod.load(tmp_path)
    assert str(loaded.zone) == "America/Chicago"
    assert [shift.name for shift in loaded.get("shifts")] == ["day", "night"]
    (tmp_path / "station.json5").write_text(json.dumps({"timezone": "Europe/Atlantis"}))
    with pytest.raises(Invalid, match="timezone in .*not a time zone"):
        config_mod.load(tmp_path)


def test_exports_carry_the_zones_offset() -> None:
    device = Device(uci="7QJ4X9TN2KVBM0RA", product=PRODUCT, state="issued", created="2026-12-03T11:00:00.000Z",
                    updated=None)
    out = io.StringIO()
    manifest.write([device], out, "json", BERLIN)
    assert json.loads(out.getvalue())[0]["created"] == "2026-12-03T12:00:00.000+01:00"
