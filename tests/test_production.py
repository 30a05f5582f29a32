"""The production view's figures (station/production.py) on a real store: known units with verdicts at known
times, in Europe/Berlin, checked figure by figure for today, the current shift and the last 7 days."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from station import production, times
from station.core.errors import Invalid
from station.core.lifecycle import Kind
from station.core.models import stored
from station.db import postgres
from station.store import Store, is_url
from tests.conftest import PRODUCT, at_version, sqlite_only
from tests.postgres_servers import drop_database, fresh_database

BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 12, 3, 13, 30, tzinfo=BERLIN)  # in the early shift (06:00-14:00), CET (UTC+1)

# (unit, slot, local time, PASS?, step, reason) in the order the line recorded them
VERDICTS = [
    ("U6", "A", datetime(2026, 11, 23, 9, 0), True, None, ""),  # 10 days ago: outside every span
    ("U4", "A", datetime(2026, 12, 2, 16, 0), False, "label", "printer offline"),  # yesterday
    ("U4", "A", datetime(2026, 12, 3, 3, 0), True, None, ""),  # the night shift
    ("U5", "B", datetime(2026, 12, 3, 5, 30), True, None, ""),  # the night shift
    ("U1", "A", datetime(2026, 12, 3, 7, 10), True, None, ""),
    ("U2", "A", datetime(2026, 12, 3, 7, 20), False, "flash", "no answer"),
    ("U2", "B", datetime(2026, 12, 3, 7, 40), True, None, ""),
    ("U3", "B", datetime(2026, 12, 3, 8, 5), False, "register", "timeout"),
    ("U3", "B", datetime(2026, 12, 3, 8, 30), False, "register", "timeout"),
    ("U6", "A", datetime(2026, 12, 3, 9, 0), True, None, ""),
    ("U7", "A", datetime(2026, 12, 3, 10, 5), True, None, ""),
    ("U7", "A", datetime(2026, 12, 3, 11, 10), True, None, ""),  # passed again: still one unit passed
]


@pytest.fixture
def line(store: Store) -> Store:
    """The store with the units' verdicts written at their times, as the line's cycle records them."""
    units = {name: store.issue(PRODUCT)[0].uci for name in sorted({v[0] for v in VERDICTS})}
    with store.transaction() as conn:
        for unit, slot, local, passed, step, reason in VERDICTS:
            store._event(conn, Kind.LINE_PASS if passed else Kind.LINE_FAIL, "operator:olga",
                         {"slot": slot, "step": step, "reason": reason}, code=units[unit],
                         time=stored(local.replace(tzinfo=BERLIN)))
    return store


def spans() -> dict[str, times.Span]:
    return times.spans(times.check_shifts("shifts", times.DEFAULT_SHIFTS), BERLIN, AT)


def local(exported: str) -> tuple[datetime, str]:
    """An exported time as the local time it names, and its offset."""
    moment = datetime.fromisoformat(exported)
    return moment.replace(tzinfo=None), exported[-6:]


def figures(report: production.Report) -> dict[str | None, tuple[int | float | None, ...]]:
    """Each scope's (tested, passed, units per hour, first units, first passed, FPY, retests, verdicts)."""
    return {f.slot: (f.tested, f.passed, round(f.units_per_hour, 4), f.first_units, f.first_passed,
                     f.first_pass_yield, f.retests, f.verdicts) for f in (report.figures, *report.slots)}


def test_today_for_the_station_and_each_slot(line: Store) -> None:
    report = production.report(line, spans()["today"], zone=BERLIN)
    assert figures(report) == {
        None: (7, 6, round(6 / 13.5, 4), 5, 3, 0.6, 5, 10),
        "A": (5, 4, round(4 / 13.5, 4), 3, 2, 2 / 3, 3, 6),
        "B": (3, 2, round(2 / 13.5, 4), 2, 1, 0.5, 2, 4),
    }
    assert [(h.label, h.passed) for h in report.hours] == [
        ("00:00", 0), ("01:00", 0), ("02:00", 0), ("03:00", 1), ("04:00", 0), ("05:00", 1), ("06:00", 0),
        ("07:00", 2), ("08:00", 0), ("09:00", 1), ("10:00", 1), ("11:00", 0), ("12:00", 0), ("13:00", 0)]
    assert sum(h.passed for h in report.hours) == report.figures.passed
    assert report.hours[0].start == "2026-12-02T23:00:00.000Z"  # local midnight, stored in UTC
    assert [(f.step, f.reason, f.failures, round(f.cumulative, 4)) for f in report.failures] == [
        ("register", "timeout", 2, 0.6667), ("flash", "no answer", 1, 1.0)]
    assert report.top_failure == report.failures[0]


def test_the_current_shift(line: Store) -> None:
    report = production.report(line, spans()["shift"], zone=BERLIN)
    assert report.span.label == "early shift, since 06:00 CET"
    assert figures(report)[None] == (5, 4, round(4 / 7.5, 4), 4, 2, 0.5, 4, 8)
    assert [h.label for h in report.hours][:2] == ["06:00", "07:00"] and len(report.hours) == 8


def test_the_last_seven_days(line: Store) -> None:
    report = production.report(line, spans()["7d"], zone=BERLIN)
    assert figures(report)[None] == (7, 6, round(6 / 157.5, 4), 6, 3, 0.5, 5, 11)
    assert len(report.hours) == 6 * 24 + 14  # from 27 November, midnight, to 13:30 on the 3rd
    assert report.hours[0].label == "Fri 27 00:00"
    assert [(f.step, f.failures, f.share, f.cumulative) for f in report.failures] == [
        ("register", 2, 0.5, 0.5), ("flash", 1, 0.25, 0.75), ("label", 1, 0.25, 1.0)]


def test_one_slot(line: Store) -> None:
    report = production.report(line, spans()["today"], "B", zone=BERLIN)
    assert figures(report) == {"B": (3, 2, round(2 / 13.5, 4), 2, 1, 0.5, 2, 4)}
    assert [(h.label, h.passed) for h in report.hours if h.passed] == [("05:00", 1), ("07:00", 1)]
    assert [(f.step, f.failures) for f in report.failures] == [("register", 2)]


def test_a_span_without_verdicts(store: Store) -> None:
    report = production.report(store, spans()["shift"], zone=BERLIN)
    assert figures(report) == {None: (0, 0, 0.0, 0, 0, None, 0, 0)}
    assert report.failures == () and report.top_failure is None
    assert report.to_json()["figures"]["first_pass_yield"] is None


def test_the_pareto_sums_the_causes_beyond_its_bars(store: Store) -> None:
    code = store.issue(PRODUCT)[0].uci
    with store.transaction() as conn:
        for n in range(production.PARETO_BARS + 2):
            for _ in range(n + 1):
                store._event(conn, Kind.LINE_FAIL, "rig", {"slot": "A", "step": "flash", "reason": f"cause {n}"},
                             code=code, time=stored(AT.replace(hour=8)))
    failures = production.report(store, spans()["today"], zone=BERLIN).failures
    assert [f.reason for f in failures] == [f"cause {n}" for n in range(11, 1, -1)] + ["2 other causes"]
    assert failures[-1].failures == 1 + 2 and failures[-1].cumulative == 1.0


def test_json_and_csv_say_the_same(line: Store) -> None:
    report = production.report(line, spans()["today"], zone=BERLIN)
    data = report.to_json()
    assert (data["span"]["name"], data["span"]["label"]) == ("today", "today, since 00:00 CET")
    assert local(data["span"]["start"]) == (datetime(2026, 12, 3, 0, 0), "+01:00")  # the zone's offset, as exported
    assert local(data["span"]["end"]) == (datetime(2026, 12, 3, 13, 30), "+01:00")
    assert data["figures"]["first_pass_yield"] == 0.6 and [s["slot"] for s in data["slots"]] == ["A", "B"]
    assert (local(data["hours"][3]["start"]), data["hours"][3]["label"], data["hours"][3]["passed"]) == (
        (datetime(2026, 12, 3, 3, 0), "+01:00"), "03:00", 1)
    assert set(data["definitions"]) >= {"tested", "first_pass_yield", "retests", "units_per_hour"}
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [(r["slot"], r["tested"], r["passed"], r["first_pass_yield"], r["retests"]) for r in rows] == [
        ("", "7", "6", "0.6", "5"), ("A", "5", "4", "0.6667", "3"), ("B", "3", "2", "0.5", "2")]
    assert rows[0]["start"] == data["span"]["start"]
    hours = list(csv.DictReader(io.StringIO(report.to_csv("hours"))))
    assert [(h["label"], h["passed"]) for h in hours if h["passed"] != "0"] == [
        ("03:00", "1"), ("05:00", "1"), ("07:00", "2"), ("09:00", "1"), ("10:00", "1")]
    failures = list(csv.DictReader(io.StringIO(report.to_csv("failures"))))
    assert [(f["step"], f["reason"], f["failures"], f["cumulative"]) for f in failures] == [
        ("register", "timeout", "2", "0.6667"), ("flash", "no answer", "1", "1.0")]


@pytest.mark.parametrize("zone,moment,start", [
    ("Asia/Kolkata", "2026-12-03T08:10:00+00:00", "2026-12-03T07:30:00+00:00"),  # UTC+5:30: 13:40 is in 13:00
    ("Asia/Kathmandu", "2026-12-03T08:10:00+00:00", "2026-12-03T07:15:00+00:00"),  # UTC+5:45: 13:55 is in 13:00
    ("Europe/Berlin", "2026-12-03T08:10:00+00:00", "2026-12-03T08:00:00+00:00"),
])
def test_hours_are_the_station_clock_hours(zone: str, moment: str, start: str) -> None:
    assert production.hour_start(datetime.fromisoformat(moment), ZoneInfo(zone)) == datetime.fromisoformat(start)


def test_an_hour_of_a_half_hour_zone_counts_its_own_passes(store: Store) -> None:
    """Passes at 13:20 and 13:50 in Kolkata are one hour of its clock, though two hours of UTC."""
    kolkata = ZoneInfo("Asia/Kolkata")
    code = store.issue(PRODUCT)[0].uci, store.issue(PRODUCT)[0].uci
    with store.transaction() as conn:
        for uci, minute in zip(code, (20, 50), strict=True):
            store._event(conn, Kind.LINE_PASS, "rig", {"slot": "A", "step": None, "reason": ""}, code=uci,
                         time=stored(datetime(2026, 12, 3, 13, minute, tzinfo=kolkata)))
    span = times.spans(times.check_shifts("shifts", times.DEFAULT_SHIFTS), kolkata,
                       datetime(2026, 12, 3, 14, 30, tzinfo=kolkata).astimezone(UTC))["today"]
    hours = production.report(store, span, zone=kolkata).hours
    assert [(h.label, h.passed) for h in hours if h.passed] == [("13:00", 2)]


def test_an_unknown_part_of_the_csv(line: Store) -> None:
    with pytest.raises(Invalid, match="figures, hours or failures"):
        production.report(line, spans()["today"], zone=BERLIN).to_csv("everything")


def test_a_reason_a_spreadsheet_would_run_is_exported_as_text(store: Store) -> None:
    uci = store.issue(PRODUCT)[0].uci
    with store.transaction() as conn:
        store._event(conn, Kind.LINE_FAIL, "operator:olga", {"slot": "A", "step": "write", "reason": "=HYPERLINK(1)"},
                     code=uci, time=stored(AT.replace(hour=9)))
    rows = list(csv.reader(io.StringIO(production.report(store, spans()["today"], zone=BERLIN).to_csv("failures"))))
    assert rows[1][5] == "'=HYPERLINK(1)"


TABLES = ("verdicts", "verdict_counts", "failure_counts")


def unnamed(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their station, in one order."""
    return sorted(({**row, "station": None} for row in rows), key=lambda row: [str(value) for value in row.values()])


@sqlite_only  # a registry is migrated from its baseline, v12
def test_a_station_of_before_gets_its_verdicts_and_counts_from_its_events(line: Store) -> None:
    """The upgrades to schema v9 and v10 fill ``verdicts`` from the events, then the counts from the verdicts, each
    in one pass: the same rows the triggers write."""
    written = {table: list(line._query(f"SELECT * FROM {table}")) for table in TABLES}
    assert len(written["verdicts"]) == len(VERDICTS)
    assert sum(row["n"] for row in written["verdict_counts"]) == len(VERDICTS)
    assert sum(row["n"] for row in written["failure_counts"]) == sum(not v[3] for v in VERDICTS)
    for trigger in ("events_verdict", "verdicts_counted"):
        line.conn.execute(f"DROP TRIGGER {trigger}")
    for table in TABLES:
        line.conn.execute(f"DROP TABLE {table}")
    for table in ("devices", "batches"):  # v13
        line.conn.execute(f"DROP INDEX idx_{table}_station")
        line.conn.execute(f"ALTER TABLE {table} DROP COLUMN station")
    line.conn.execute("ALTER TABLE events DROP COLUMN station")  # v11
    line.conn.execute("ALTER TABLE webhooks DROP COLUMN ahead")  # v12
    for column in ("holder", "held_until"):  # v15
        line.conn.execute(f"ALTER TABLE webhooks DROP COLUMN {column}")
    line.conn.execute("PRAGMA user_version=8")
    upgraded = Store.open(line.location)
    try:  # the same rows, but for their station: events of before names had none ('' in the counts)
        assert {table: unnamed(upgraded._query(f"SELECT * FROM {table}")) for table in TABLES} == {
            table: unnamed(rows) for table, rows in written.items()}
        assert figures(production.report(upgraded, spans()["today"], zone=BERLIN))[None] == (
            7, 6, round(6 / 13.5, 4), 5, 3, 0.6, 5, 10)
    finally:
        upgraded.close()


def test_a_span_that_does_not_start_on_a_quarter_hour_is_refused(line: Store) -> None:
    span = dataclasses.replace(spans()["today"], start="2026-12-02T23:07:00.000Z")
    with pytest.raises(Invalid, match="quarter hours"):
        production.report(line, span, zone=BERLIN)


@pytest.mark.parametrize("start", ["06:10", "06:00:30", "14:59"])
def test_a_shift_starts_on_a_quarter_hour(start: str) -> None:
    with pytest.raises(Invalid, match="quarter hour"):
        times.check_shifts("shifts", [{"name": "early", "start": "06:00"}, {"name": "late", "start": start}])


@sqlite_only
def test_writing_a_verdict_reads_its_units_verdicts_only(store: Store) -> None:
    """The trigger's look-ups go by unit: the work of one more verdict does not grow with the slot's verdicts
    (counted in SQLite's virtual machine steps, not in time)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def one_more(n: int) -> int:
        nonlocal steps
        with store.transaction() as conn:
            for i in range(n):
                store._event(conn, Kind.LINE_PASS, "test", {"slot": "A", "step": None, "reason": ""}, code=f"U{n}-{i}")
        steps = 0
        store.conn.set_progress_handler(count, 1)
        try:
            store.record(f"U{n}-0", Kind.LINE_FAIL, "test", {"slot": "A", "step": "flash", "reason": "no answer"})
        finally:
            store.conn.set_progress_handler(None, 1)
        return steps

    few, many = one_more(50), one_more(5000)
    assert many < few * 2, (few, many)


# (time, unit, slot, passed, station): a unit tested on line-1, then on line-2, then again on line-1.
ACROSS = [("2026-12-03T08:00:00.000Z", "U1", "A", 0, "line-1"), ("2026-12-03T08:10:00.000Z", "U1", "A", 1, "line-1"),
          ("2026-12-03T09:00:00.000Z", "U1", "A", 1, "line-2"), ("2026-12-03T10:00:00.000Z", "U1", "B", 0, "line-1")]
PREVS = "SELECT id, station, prev, prev_here, prev_pass, prev_pass_here FROM verdicts ORDER BY id"


def test_the_upgrade_to_v13_counts_each_stations_verdicts_as_its_triggers_do(
        database: str | Path, tmp_path: Path) -> None:
    """Verdicts written before v13 looked their unit's earlier ones up at any station; the upgrade looks again at
    each verdict's own, so the migrated rows and counts are those a v13 station writes for the same events."""
    rows = [(time, unit, Kind.LINE_PASS.value if passed else Kind.LINE_FAIL.value,
             json.dumps({"slot": slot}), station) for time, unit, slot, passed, station in ACROSS]
    insert = "INSERT INTO events(time, uci, kind, actor, details, station) VALUES (?, ?, ?, 'test', ?, ?)"
    if is_url(database):
        old = fresh_database()
        with psycopg.connect(old, autocommit=True) as conn:
            conn.execute(postgres.BASELINE)
            conn.execute(f"INSERT INTO station_schema VALUES ({postgres.APPLICATION_ID}, 12)")
            conn.cursor().executemany(postgres.placeholders(insert), rows)
    else:
        old = str(tmp_path / "v12.db")
        conn = at_version(Path(old), 12)
        conn.executemany(insert, rows)
        conn.close()
    try:
        with Store.open(old, migrate=True) as migrated, Store.open(database) as fresh:
            with fresh.transaction() as conn:
                for row in rows:
                    conn.execute(insert, row)
            for table, sql in (("verdicts", PREVS), ("verdict_counts", "SELECT * FROM verdict_counts"),
                               ("failure_counts", "SELECT * FROM failure_counts")):
                assert unnamed_ids(migrated._query(sql)) == unnamed_ids(fresh._query(sql)), table
    finally:
        if is_url(database):
            drop_database(old)


def unnamed_ids(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in one order, without the event ids two databases number alike only by chance."""
    return sorted(({key: value for key, value in row.items() if key != "id"} for row in rows),
                  key=lambda row: [str(value) for value in row.values()])
