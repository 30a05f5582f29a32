"""The field rules (station/fields.py) where every way in ends: the store's issuance and products, on a real
SQLite file, and `station product add` as a real process. A bad value is refused with a message naming the
field, nothing of it is stored, and a bad request never fails the good ones of its group."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from station.core import fields
from station.core.errors import Invalid
from station.store import IssueRequest, RepeatRefused, Store
from tests.conftest import PRODUCT, dump

STATION = [sys.executable, "-c", "from station.cli import main; main()"]

# Serials a scanner or a hostile client may send: none can be printed as Code128, some cannot even be stored.
BAD_SERIALS = {
    "NUL": "SN\x00-1",
    "ESC": "SN\x1b[31m-1",
    "right-to-left override": "SN-\u202e1-NS",
    "emoji": "SN-\U0001f600",
    "200 characters": "S" * 200,
    "lone surrogate": "SN-\ud800",
    "DEL": "SN-\x7f",
}


@pytest.mark.parametrize("value", BAD_SERIALS.values(), ids=BAD_SERIALS.keys())
def test_a_serial_or_hardware_key_is_printable_ascii_and_short(value: str) -> None:
    with pytest.raises(Invalid, match="serial"):
        fields.serial(value)
    with pytest.raises(Invalid, match="mac"):
        fields.hardware_key(f"mac:{value}")
    with pytest.raises(Invalid, match="Idempotency-Key"):
        fields.idempotency_key(value if len(value) < 100 else value * 2)


def test_good_keys_pass_unchanged_but_for_surrounding_spaces() -> None:
    assert fields.serial("  SN-0001/A b  ") == "SN-0001/A b"
    assert fields.serial("S" * fields.KEY_MAX) == "S" * fields.KEY_MAX
    assert fields.hardware_key("mac:AA:BB:CC:00:11:22") == "mac:AA:BB:CC:00:11:22"
    assert fields.idempotency_key("7d0c3f4e-2b1a-4c5d-9e8f-0a1b2c3d4e5f") == "7d0c3f4e-2b1a-4c5d-9e8f-0a1b2c3d4e5f"


@pytest.mark.parametrize("value,problem", [
    ("Blank\x1b[2J", r"U\+001B"), ("Blank\u202eTNEMEGANAM", r"U\+202E"), ("Blank\x00", r"U\+0000"),
    ("Blank\ud800", r"U\+D800"), ("B" * 201, "longer than 200"), ("   ", "must not be empty"),
])
def test_names_are_printable_text_of_any_script_and_bounded(value: str, problem: str) -> None:
    with pytest.raises(Invalid, match=problem):
        fields.text(value, "a product's name")
    assert fields.text(" Détecteur 煙 📦 ", "a product's name") == "Détecteur 煙 📦"


def test_every_string_and_field_name_of_a_body_must_be_storable() -> None:
    fields.check_tree({"product": PRODUCT, "extra": {"list": [1, "ok", {"é": "煙"}]}})
    with pytest.raises(Invalid, match=r"^extra\.list\[1\] holds text that cannot be stored"):
        fields.check_tree({"product": PRODUCT, "extra": {"list": [1, "\ud800"]}})
    with pytest.raises(Invalid, match="^serial holds"):
        fields.check_tree({"serial": "A\x00B"})
    with pytest.raises(Invalid, match=r"a field name in extra cannot be stored \(x\\ud800\)"):
        fields.check_tree({"extra": {"x\ud800": 1}})


def test_shown_values_are_storable_printable_and_short() -> None:
    shown = fields.shown("\ud800\x00\x1b\u202e" + "x" * 500)
    assert shown.startswith("\\ud800\\u0000\\u001b\\u202e") and shown.endswith("...") and len(shown) < 120
    assert fields.storable(shown) and shown.isprintable()


@pytest.mark.parametrize("request_fields", [
    {"serial": "SN-\ud800"}, {"hwkey": "serial:\ud800"}, {"hwkey": "mac:AA\x00BB"}, {"product_id": "01H4\ud800"},
    {"idempotency_key": "k\ud800"}, {"serial": "SN-\x1b[31m"}, {"serial": "S" * 200}, {"hwkey": "hwid:\u202e1"},
], ids=["surrogate serial", "surrogate hwkey", "NUL mac", "surrogate product", "surrogate key", "ESC serial",
        "long serial", "RLO hwid"])
def test_a_bad_request_in_a_group_is_refused_alone_and_the_rest_commit(store: Store, request_fields: dict[str, str]) -> None:
    results = store.issue_group([
        IssueRequest(PRODUCT, hwkey="serial:GOOD-1", actor="device"),
        IssueRequest(**{"product_id": PRODUCT, "actor": "device", "details": {"remote": "10.0.0.9"}, **request_fields}),
        IssueRequest(PRODUCT, serial="GOOD-2", actor="device"),
    ])
    first, bad, last = results
    assert isinstance(bad, Invalid) and not isinstance(first, Exception) and not isinstance(last, Exception)
    assert store.device(first[0]).hwkey == "serial:GOOD-1" and store.device(last[0]).serial == "GOOD-2"
    assert store.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 2
    row = store.conn.execute("SELECT details FROM events WHERE kind = 'refused' ORDER BY id DESC").fetchone()
    refused = json.loads(row[0])  # stored, and printable: no value it refused comes back as it was sent
    assert refused["remote"] == "10.0.0.9" and refused["attempted"] == "issued" and str(bad) == refused["reason"]
    assert all(fields.storable(value) and value.isprintable() for value in refused.values())


def test_a_bug_in_one_request_fails_it_alone_and_is_logged(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    # Details that cannot be written as JSON fail the request's own event after its device row went in: a bug
    # in the request's work, past every check. Its savepoint goes, and the group commits the others.
    with caplog.at_level(logging.ERROR, logger="station.store"):
        good, broken, after = store.issue_group([
            IssueRequest(PRODUCT, hwkey="mac:01"),
            IssueRequest(PRODUCT, hwkey="mac:02", details={"unwritable": object()}),
            IssueRequest(PRODUCT, hwkey="mac:03"),
        ])
    assert isinstance(broken, TypeError) and good[1] and after[1]
    assert [r.message for r in caplog.records] == ["issuing failed (a bug): this request is refused, the group's others go on"]
    assert {r[0] for r in store.conn.execute("SELECT hwkey FROM devices")} == {"mac:01", "mac:03"}
    refused = json.loads(store.conn.execute("SELECT details FROM events WHERE kind = 'refused'").fetchone()[0])
    assert refused == {"attempted": "issued", "hwkey": "mac:02", "product": PRODUCT,
                       "reason": "internal error of the station; its log has the details"}
    with pytest.raises(TypeError):  # one request alone: the caller gets the bug, and nothing is stored
        store.issue(IssueRequest(PRODUCT, hwkey="mac:04", details={"unwritable": object()}))
    assert store.conn.execute("SELECT count(*) FROM devices WHERE hwkey = 'mac:04'").fetchone()[0] == 0


@pytest.mark.parametrize("value", BAD_SERIALS.values(), ids=BAD_SERIALS.keys())
def test_store_issue_refuses_a_bad_serial_and_stores_no_device(store: Store, value: str) -> None:
    with pytest.raises(Invalid, match="serial"):
        store.issue(IssueRequest(PRODUCT, serial=value))
    assert store.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 0


@pytest.mark.parametrize("change,problem", [
    ({"name": "N" * 15000}, "name is longer than 200"),
    ({"name": "Blank\x1b]0;pwned\x07"}, r"U\+001B"),
    ({"model": "M\u202e10-knalB"}, r"U\+202E"),
    ({"description": "D" * 1001}, "description is longer than 1000"),
    ({"description": "line\x00"}, r"U\+0000"),
    ({"product_id": "01H4\ud800"}, "Ioto product token"),
    ({"layout": "thermal\x1b"}, "layout"),
    ({"claim_url": "HTTPS://EXAMPLE.COM/{id}/" + "A" * 300}, "claim URL is longer"),
])
def test_add_product_refuses_garbage_and_stores_nothing(data_dir: Path, change: dict[str, str], problem: str) -> None:
    args = {"product_id": "01GOODPRODUCT0000000000001", "name": "Good", "model": "Good-01", **change}
    with Store.open(data_dir / "station.db") as store:
        before = dump(store.location)
        with pytest.raises(Invalid, match=problem):
            store.add_product(**args)
        assert dump(store.location) == before


def test_product_add_on_the_command_line_refuses_a_huge_or_escaping_name(data_dir: Path) -> None:
    for name, problem in (("N" * 15000, "longer than 200"), ("Blank\x1b[2J", "U+001B")):
        done = subprocess.run([*STATION, "--data-dir", str(data_dir), "product", "add", "--id", PRODUCT, "--name", name,
                               "--model", "Blank-01"], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1 and problem in done.stderr
        assert "Traceback" not in done.stderr and "\x1b" not in done.stderr
    done = subprocess.run([*STATION, "--data-dir", str(data_dir), "product", "list"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert PRODUCT not in done.stdout


@pytest.mark.parametrize(("name", "problem"), [("B" * 201, "longer than 200"), ("lot\x1b[2J", r"U\+001B"),
                                              ("lot\u202e1", r"U\+202E"), ("  ", "must not be empty")])
def test_a_batch_name_follows_the_text_rule_and_stores_nothing(store: Store, name: str, problem: str) -> None:
    before = dump(store.location)
    with pytest.raises(Invalid, match=problem):
        store.generate_batch(PRODUCT, 3, name=name)
    assert dump(store.location) == before


def test_hardware_key_repeats_end_when_the_unit_leaves_the_factory(store: Store) -> None:
    unit, created = store.issue(IssueRequest(PRODUCT, hwkey="mac:AA", actor="device"))
    assert created and store.issue(IssueRequest(PRODUCT, hwkey="mac:AA", actor="device")) == (unit, False)
    for state in ("labeled", "flashed"):  # still in the factory
        store.advance(unit.uci, state, state, "tests")
        assert store.issue(IssueRequest(PRODUCT, hwkey="mac:AA", actor="device"))[0].uci == unit.uci
    store.advance(unit.uci, "registered", "registered", "device")
    with pytest.raises(RepeatRefused) as refused:
        store.issue(IssueRequest(PRODUCT, hwkey="mac:AA", actor="device"))
    assert refused.value.status == 409 and unit.uci not in str(refused.value) and unit.display not in str(refused.value)
    assert [e.kind for e in store.events(unit.uci)][-1] == "refused"  # recorded against the unit it names

    old, _ = store.issue(IssueRequest(PRODUCT, hwkey="mac:BB", actor="device"))
    store.conn.execute("UPDATE devices SET created = '2026-01-01T00:00:00.000Z' WHERE uci = ?", (old.uci,))
    with pytest.raises(RepeatRefused, match="issued more than 86400 s ago"):  # still issued, but long ago
        store.issue(IssueRequest(PRODUCT, hwkey="mac:BB", actor="device"))
    assert store.issue(IssueRequest(PRODUCT, hwkey="mac:BB", actor="device", repeat_window=10**9))[0].uci == old.uci

    store.void(unit.uci, "asked again after registration", "tests")  # the way out: void it, the unit gets a new one
    assert store.issue(IssueRequest(PRODUCT, hwkey="mac:AA", actor="device"))[0].uci not in (unit.uci, old.uci)


def test_an_idempotency_key_gives_no_claim_id_of_a_unit_that_left_the_factory(store: Store) -> None:
    unit, _ = store.issue(IssueRequest(PRODUCT, idempotency_key="boot-1", remote="10.0.0.1"))
    store.advance(unit.uci, "registered", "registered", "device")
    with pytest.raises(RepeatRefused) as refused:
        store.issue(IssueRequest(PRODUCT, idempotency_key="boot-1", remote="10.0.0.1"))
    assert unit.uci not in str(refused.value) and refused.value.status == 409
    assert [e.kind for e in store.events(unit.uci)][-1] == "refused"


def test_an_idempotency_key_is_scoped_to_its_client_and_expires(store: Store) -> None:
    first, _ = store.issue(IssueRequest(PRODUCT, idempotency_key="boot-1", remote="10.0.0.1"))
    assert store.issue(IssueRequest(PRODUCT, idempotency_key="boot-1", remote="10.0.0.1")) == (first, False)
    elsewhere, created = store.issue(IssueRequest(PRODUCT, idempotency_key="boot-1", remote="10.0.0.2"))
    assert created and elsewhere.uci != first.uci  # another client's key is another request
    store.conn.execute("UPDATE idempotency SET created = '2026-01-01T00:00:00.000Z' WHERE remote = '10.0.0.1'")
    later, created = store.issue(IssueRequest(PRODUCT, idempotency_key="boot-1", remote="10.0.0.1"))
    assert created and later.uci not in (first.uci, elsewhere.uci)  # expired: a new request under an old name
    assert store.issue(IssueRequest(PRODUCT, idempotency_key="boot-1", remote="10.0.0.1")) == (later, False)
    store.conn.execute("UPDATE idempotency SET created = '2026-01-01T00:00:00.000Z' WHERE remote = '10.0.0.2'")
    store.issue(IssueRequest(PRODUCT, idempotency_key="other", remote="10.0.0.3"))
    rows = store.conn.execute("SELECT remote, uci FROM idempotency ORDER BY remote").fetchall()
    assert rows == [("10.0.0.1", later.uci), ("10.0.0.3", store.issue(IssueRequest(PRODUCT, idempotency_key="other", remote="10.0.0.3"))[0].uci)]


def test_a_refusal_whose_details_do_not_store_still_fails_only_its_request(store: Store) -> None:
    results = store.issue_group([
        IssueRequest("01UNKNOWNPRODUCT0000000000", details={"unwritable": object(), "text": "\ud800"}),
        IssueRequest(PRODUCT, hwkey="mac:GOOD"),
    ])
    assert isinstance(results[0], Exception) and "unknown product" in str(results[0])
    assert results[1][1] is True and store.device(results[1][0]).hwkey == "mac:GOOD"
    refused = store.conn.execute("SELECT details FROM events WHERE kind = 'refused' ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert "unknown product" in refused and "unwritable" not in refused


@pytest.mark.parametrize(("reason", "problem"), [("", "needs a reason"), ("  ", "needs a reason"), ("R" * 1001, "longer than 1000"),
                                                 ("smudged\x1b[2J", r"U\+001B"), ("torn\x00", r"U\+0000")])
def test_a_void_reason_follows_the_text_rule_and_changes_nothing(store: Store, reason: str, problem: str) -> None:
    unit, _ = store.issue(IssueRequest(PRODUCT, serial="SN-REASON"))
    before = dump(store.location)
    with pytest.raises(Invalid, match=problem):
        store.void(unit.uci, reason, actor="test")
    assert dump(store.location) == before
