"""GET /api/v1/production through a real `station serve`: the production report of known units as JSON and as
CSV, for the station and one slot; 401 without a token, 403 for a token without the read scope."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from station import times
from station.core.lifecycle import Kind
from station.core.models import stored
from station.store import Store
from tests.conftest import PRODUCT
from tests.web.conftest import Server, prepare, station

# (unit, slot, PASS?, step, reason), in the order the line recorded them
VERDICTS = [
    ("U1", "A", True, None, "registered"),
    ("U2", "A", False, "flash", "no answer"),
    ("U2", "B", True, None, "registered"),
    ("U3", "B", False, "register", "timeout"),
]


def write_verdicts(db: Store, verdicts: list[tuple[str, str, bool, str | None, str]], where: tzinfo) -> None:
    """The verdicts as the line's cycle records them, at one moment between the station's midnight (in ``where``)
    and now: every one of them today, and the PASSes in one hour."""
    start = times.day_start(where)
    moment = start + (datetime.now(UTC) - start) / 2
    units = {name: db.issue(PRODUCT)[0].uci for name in sorted({v[0] for v in verdicts})}
    with db.transaction() as conn:
        for unit, slot, passed, step, reason in verdicts:
            db._event(conn, Kind.LINE_PASS if passed else Kind.LINE_FAIL, "operator:olga",
                      {"slot": slot, "step": step, "reason": reason}, code=units[unit], time=stored(moment))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("station-data")
    (data_dir / "station.json5").write_text(json.dumps({"timezone": "Europe/Berlin"}))
    prepare(data_dir)
    with Store.open(data_dir / "station.db") as db:
        write_verdicts(db, VERDICTS, ZoneInfo("Europe/Berlin"))
    server = Server(data_dir)
    yield server
    assert server.stop() == 0


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def reader(live: Server) -> str:
    """A token with the read scope alone, as a tool that only looks gets one."""
    return station(live.data_dir, "token", "create", "--name", "dashboard", "--scope", "read").stdout.strip()


def test_the_report_as_json(live: Server, reader: str) -> None:
    reply = live.call("GET", "/api/v1/production", headers=auth(reader))
    assert reply.status == 200 and reply.headers["content-type"].startswith("application/json")
    data = reply.json
    assert data["span"]["name"] == "today" and data["span"]["label"].startswith("today, since 00:00 CE")
    assert data["span"]["start"][10:19] == "T00:00:00"  # the station's midnight, in its zone
    figures = data["figures"]
    assert (figures["slot"], figures["tested"], figures["passed"], figures["verdicts"], figures["first_units"],
            figures["first_passed"], figures["first_pass_yield"], figures["retests"]) == (None, 3, 2, 4, 3, 1, 0.3333, 1)
    assert [(s["slot"], s["tested"], s["passed"], s["first_pass_yield"], s["retests"]) for s in data["slots"]] == [
        ("A", 2, 1, 0.5, 0), ("B", 2, 1, 0.0, 1)]
    assert sum(hour["passed"] for hour in data["hours"]) == 2 and max(hour["passed"] for hour in data["hours"]) == 2
    assert [(f["step"], f["reason"], f["failures"], f["cumulative"]) for f in data["failures"]] == [
        ("flash", "no answer", 1, 0.5), ("register", "timeout", 1, 1.0)]
    assert "first_pass_yield" in data["definitions"]


def test_one_slot_and_another_span(live: Server, reader: str) -> None:
    data = live.call("GET", "/api/v1/production?slot=B&span=7d", headers=auth(reader)).json
    assert data["slot"] == "B" and data["slots"] == [] and data["span"]["name"] == "7d"
    assert (data["figures"]["tested"], data["figures"]["passed"], data["figures"]["retests"]) == (2, 1, 1)
    assert [f["step"] for f in data["failures"]] == ["register"]
    assert len(data["hours"]) > 6 * 24  # every hour of the 7 days so far


def test_the_report_as_csv(live: Server, reader: str) -> None:
    reply = live.call("GET", "/api/v1/production?format=csv", headers=auth(reader))
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/csv")
    assert 'filename="production-today-figures.csv"' in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.raw.decode())))
    assert [(r["slot"], r["tested"], r["passed"], r["first_pass_yield"], r["retests"]) for r in rows] == [
        ("", "3", "2", "0.3333", "1"), ("A", "2", "1", "0.5", "0"), ("B", "2", "1", "0.0", "1")]
    failures = live.call("GET", "/api/v1/production?format=csv&part=failures&slot=A", headers=auth(reader))
    assert [(r["slot"], r["step"], r["failures"], r["cumulative"]) for r in
            csv.DictReader(io.StringIO(failures.raw.decode()))] == [("A", "flash", "1", "1.0")]
    hours = csv.DictReader(io.StringIO(live.call("GET", "/api/v1/production?format=csv&part=hours",
                                                 headers=auth(reader)).raw.decode()))
    assert sum(int(h["passed"]) for h in hours) == 2


def test_no_token_is_401_and_a_token_without_read_is_403(live: Server) -> None:
    refused = live.call("GET", "/api/v1/production")
    assert refused.status == 401 and "station token create" in refused.json["error"]
    issuer = station(live.data_dir, "token", "create", "--name", "issuer-only", "--scope", "issue").stdout.strip()
    forbidden = live.call("GET", "/api/v1/production", headers=auth(issuer))
    assert forbidden.status == 403 and "--scope read" in forbidden.json["error"]


@pytest.mark.parametrize("query,word", [("span=yesterday", "span"), ("format=xlsx", "format"),
                                        ("format=csv&part=everything", "part"), ("slot=" + "A" * 101, "slot")])
def test_a_bad_question_is_a_clear_400(live: Server, reader: str, query: str, word: str) -> None:
    reply = live.call("GET", f"/api/v1/production?{query}", headers=auth(reader))
    assert reply.status == 400 and reply.json["error"].startswith(word)
