"""The store on real SQLite files: products, batches, the life cycle, events, look-ups and failures."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest

from station.core import fields, lifecycle, uci
from station.core.errors import Conflict, Invalid, NotFound, Unavailable
from station.core.models import now
from station.db import connection, devices, schema
from station.store import Ambiguous, IssueRequest, NotAStationDatabase, Store, is_url
from tests.conftest import PRODUCT, at_version, dump, sqlite_only


def test_new_database_is_marked_and_migrated(store: Store) -> None:
    if is_url(store.location):
        assert store.conn.execute("SELECT application, version FROM station_schema").fetchall() == [
            (connection.APPLICATION_ID, schema.SCHEMA_VERSION)]
        assert store.conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"
    else:
        assert store.conn.execute("PRAGMA application_id").fetchone()[0] == connection.APPLICATION_ID
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    reopened = Store.open(store.location)
    assert reopened.product(PRODUCT).name == "Blank"
    reopened.close()


def test_products_are_checked(store: Store) -> None:
    with pytest.raises(Conflict, match="already exists"):
        store.add_product(PRODUCT, "Blank", "Blank-01")
    with pytest.raises(Invalid, match="size in bits"):
        store.add_product("P2", "x", "y", bits=52)
    with pytest.raises(Invalid, match="product token"):
        store.add_product("bad id!", "x", "y")
    with pytest.raises(Invalid, match="cannot hold"):
        store.add_product("P3", "x", "y", claim_url="https://x.example/?id={id}")
    with pytest.raises(NotFound, match="unknown product 'nope'"):
        store.product("nope")
    assert [p.id for p in store.products()] == [PRODUCT]


def test_batch_issues_unique_ids_with_one_event(store: Store) -> None:
    batch = store.generate_batch(PRODUCT, 1000, name="b1")
    devices = list(store.devices(batch="b1"))
    assert len(devices) == 1000 == len({d.uci for d in devices})
    assert {d.state for d in devices} == {"issued"}
    assert all(len(d.uci) == 16 and d.display == uci.display(d.uci) for d in devices)
    batch_events = store.conn.execute("SELECT kind, details FROM events WHERE batch = ?", (batch.id,)).fetchall()
    assert [k for k, _ in batch_events] == ["batch-issued"]
    assert json.loads(batch_events[0][1])["count"] == 1000
    assert store.conn.execute("SELECT count(*) FROM events WHERE uci IS NOT NULL").fetchone()[0] == 0
    assert [e.kind for e in store.events(devices[0].uci)] == ["batch-issued"]


def test_batch_bad_input_changes_nothing(store: Store) -> None:
    store.generate_batch(PRODUCT, 3, name="b1")
    before = dump(store.location)
    for count in (0, -1, True, 2.5):
        with pytest.raises(Invalid, match="count"):
            store.generate_batch(PRODUCT, count)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="unknown product"):
        store.generate_batch("nope", 3)
    with pytest.raises(Conflict, match="already used"):
        store.generate_batch(PRODUCT, 3, name="b1")
    store.set_product_enabled(PRODUCT, False)
    with pytest.raises(Conflict, match="disabled"):
        store.generate_batch(PRODUCT, 3)
    assert [line for line in dump(store.location) if "devices" in line] == [line for line in before if "devices" in line]


def test_colliding_ids_are_drawn_again_never_reused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = uci.generate_many
    planned: list[list[str]] = []

    def drawing(count: int, bits: int = 80, first: str = "") -> list[str]:
        # A batch draws its UCIs' first symbols, then the rest of each range's UCIs; planned draws come first.
        return planned.pop(0)[:count] if planned else real(count, bits, first)

    monkeypatch.setattr(uci, "generate_many", drawing)
    planned.append(["D" * 16])  # the first symbols: all five UCIs start with D
    store.generate_batch(PRODUCT, 5, name="old")
    old = {d.uci: d for d in store.devices(batch="old")}
    # The new batch's first draw of its D range repeats three stored IDs and one ID twice.
    planned += [["D" * 16], list(old)[:3] + ["DUPLICATEDUPLICA", "DUPLICATEDUPLICA"]]
    batch = store.generate_batch(PRODUCT, 5, name="new")
    new = [d.uci for d in store.devices(batch="new")]
    assert len(new) == 5 == len(set(new))
    assert not set(new) & set(old)
    assert "DUPLICATEDUPLICA" in new
    assert {d.uci: d for d in store.devices(batch="old")} == old
    details = json.loads(store.conn.execute("SELECT details FROM events WHERE batch = ?", (batch.id,)).fetchone()[0])
    assert details["redrawn"] == 4


def test_life_cycle_moves_forward_and_records_everything(store: Store) -> None:
    device, created = store.issue(IssueRequest(PRODUCT, serial="SN1", actor="operator:ann"))
    assert created and device.state == "issued" and device.serial == "SN1"
    assert store.advance(device.uci, "labeled", "printed", "cli").state == "labeled"
    assert store.advance(device.uci, "flashed", "flashed", "rig:A").state == "flashed"
    assert store.advance(device.uci, "labeled", "reprinted", "cli", {"reason": "smudged"}).state == "flashed"
    assert store.advance(device.uci, "registered", "registered", "device").state == "registered"
    assert store.advance(device.uci, "registered", "registered", "device").state == "registered"
    voided = store.void(device.uci, "returned damaged", "cli")
    assert voided.state == "void"
    with pytest.raises(lifecycle.TransitionRefused, match="void"):
        store.advance(device.uci, "claimed", "claimed", "cli")
    with pytest.raises(lifecycle.TransitionRefused, match="already void"):
        store.void(device.uci, "again", "cli")
    kinds = [e.kind for e in store.events(device.uci)]
    assert kinds == ["issued", "printed", "flashed", "reprinted", "registered", "registered", "void", "refused", "refused"]
    assert store.events(device.uci)[3].details == {"reason": "smudged", "from": "flashed", "to": "flashed"}


def test_refusals_for_unknown_devices_are_events(store: Store) -> None:
    with pytest.raises(NotFound):
        store.advance("0000000000000000", "labeled", "printed", "cli")
    assert [e.kind for e in store.events("0000000000000000")] == ["refused"]
    with pytest.raises(Invalid, match="reason"):
        store.void("0000000000000000", " ", "cli")
    with pytest.raises(Invalid, match="unknown state"):
        lifecycle.advance("issued", "shipped")


def test_events_are_append_only(store: Store) -> None:
    device, _ = store.issue(PRODUCT)
    with pytest.raises(store.engine.error, match="append-only"):
        store.conn.execute("UPDATE events SET kind = 'x'")
    with pytest.raises(store.engine.error, match="append-only"):
        store.conn.execute("DELETE FROM events")
    assert [e.kind for e in store.events(device.uci)] == ["issued"]


def test_hardware_key_and_idempotency_key_return_the_same_uci(store: Store) -> None:
    first, created = store.issue(IssueRequest(PRODUCT, hwkey="mac:00:11:22", actor="device"))
    again, created_again = store.issue(IssueRequest(PRODUCT, hwkey="mac:00:11:22", actor="device"))
    assert created and not created_again and again.uci == first.uci
    one, _ = store.issue(IssueRequest(PRODUCT, idempotency_key="k-1", actor="device"))
    two, created_two = store.issue(IssueRequest(PRODUCT, idempotency_key="k-1", actor="device"))
    assert one.uci == two.uci and not created_two
    assert [e.kind for e in store.events(first.uci)] == ["issued", "issued-repeat"]
    assert store.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 2


def test_a_serial_gets_one_uci_per_product(store: Store) -> None:
    device, _ = store.issue(IssueRequest(PRODUCT, serial="SN-7"))
    with pytest.raises(Conflict, match=re.escape(f"already has claim ID {device.display}")):
        store.issue(IssueRequest(PRODUCT, serial="SN-7"))
    store.add_product("P2", "Other", "O-1")
    other, _ = store.issue(IssueRequest("P2", serial="SN-7"))
    assert other.uci != device.uci


def test_find_reads_any_typed_form(store: Store) -> None:
    device, _ = store.issue(PRODUCT)
    typed = device.display.lower().replace("0", "o").replace("-", " ")
    assert store.find(typed).uci == device.uci
    assert store.find(device.uci).uci == device.uci
    wrong = next(c for c in uci.ALPHABET if c != device.display[-1])
    with pytest.raises(uci.MistypedError, match="mistyped"):
        store.find(device.display[:-1] + wrong)
    with pytest.raises(NotFound, match="no device"):
        store.find(uci.generate())


def test_find_reports_two_devices_as_ambiguous(store: Store) -> None:
    store.add_product("P85", "Long", "L-1", bits=85)
    short = uci.encode(37 * 123456789 + 5)  # check symbol "5", a symbol that can also end a body
    # An 85-bit ID that is the 80-bit ID followed by its check symbol: the label's code reads both ways.
    for code, product in ((short, PRODUCT), (short + "5", "P85")):
        with store.transaction() as conn:
            conn.execute("INSERT INTO devices(uci, product, state, created) VALUES (?, ?, 'issued', ?)",
                         (code, product, now()))
    with pytest.raises(Ambiguous, match="matches 2 devices"):
        store.find(uci.display(short))
    assert store.find(short).uci == short


@sqlite_only
def test_a_locked_database_is_a_clear_error_and_changes_nothing(store: Store) -> None:
    holder = sqlite3.connect(store.location, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        impatient = Store.open(store.location, timeout=0.1)
        with pytest.raises(Unavailable, match="locked by another process"):
            impatient.generate_batch(PRODUCT, 10)
        impatient.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 0


@sqlite_only
def test_a_full_database_is_a_clear_error_and_stores_nothing(store: Store) -> None:
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages + 5}")
    with pytest.raises(Unavailable, match="full.*batch 'big' is incomplete .*station batch resume big"):
        store.generate_batch(PRODUCT, 20_000, name="big")
    store.conn.execute("PRAGMA max_page_count=1073741823")
    assert store.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 0
    batch = store.batch("big")  # committed first, incomplete: resumed once there is room, or voided
    assert (batch.complete, batch.issued) == (False, 0)
    assert store.resume_batch("big").issued == 20_000


def test_other_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes(x)")
    conn.close()
    with pytest.raises(NotAStationDatabase, match="another program"):
        Store.open(other)
    text = tmp_path / "text.db"
    text.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(NotAStationDatabase, match="not a station database"):
        Store.open(text)
    assert text.read_text().startswith("hello")


def test_a_newer_schema_is_refused(store: Store) -> None:
    store.conn.execute(f"UPDATE station_schema SET version = {schema.SCHEMA_VERSION + 1}" if is_url(store.location)
                       else f"PRAGMA user_version={schema.SCHEMA_VERSION + 1}")
    with pytest.raises(NotAStationDatabase, match="upgrade station"):
        Store.open(store.location)


def test_stats_count_by_product_batch_and_state(store: Store) -> None:
    store.generate_batch(PRODUCT, 4, name="b1")
    device, _ = store.issue(PRODUCT)
    store.void(device.uci, "test", "cli")
    assert store.stats() == [
        {"product": PRODUCT, "batch": None, "state": "void", "devices": 1},
        {"product": PRODUCT, "batch": "b1", "state": "issued", "devices": 4},
    ]


def test_advance_many_records_every_device_in_one_transaction(store: Store) -> None:
    store.generate_batch(PRODUCT, 4, name="b1")
    codes = [d.uci for d in store.devices(batch="b1")]
    store.void(codes[2], "dropped", "cli")
    store.advance(codes[3], "flashed", "flashed", "rig:A")
    with pytest.raises(lifecycle.TransitionRefused, match=f"{codes[2]}: the device is void"):
        store.advance_many([(code, "printed") for code in codes], "labeled", "cli", {"printer": "p"})
    assert [store.device(code).state for code in codes] == ["labeled", "labeled", "void", "flashed"]
    assert [e.kind for e in store.events(codes[2])][-1] == "refused"
    assert store.with_events(codes, ("printed",)) == {codes[0], codes[1], codes[3]}
    store.record_many(codes[:2], "print-failed", "cli", {"error": "paper out"})
    assert store.with_events(codes, ("print-failed",)) == set(codes[:2])


def _refusals(store: Store) -> list[tuple[str | None, str, dict[str, object]]]:
    rows = store.conn.execute("SELECT uci, actor, details FROM events WHERE kind = 'refused' ORDER BY id").fetchall()
    return [(code, actor, json.loads(details)) for code, actor, details in rows]


@pytest.mark.parametrize("key", ["hwkey", "idempotency_key"])
def test_a_void_uci_is_never_issued_again_to_its_unit(store: Store, key: str) -> None:
    first, _ = store.issue(IssueRequest(PRODUCT, **{key: "unit-1"}, actor="device"))
    store.void(first.uci, "label torn", "cli")
    second, created = store.issue(IssueRequest(PRODUCT, **{key: "unit-1"}, actor="device"))
    assert created and second.uci != first.uci and second.state == "issued"
    again, created_again = store.issue(IssueRequest(PRODUCT, **{key: "unit-1"}, actor="device"))
    assert again.uci == second.uci and not created_again
    name = "hwkey" if key == "hwkey" else "idempotency-key"
    released = store.events(first.uci)[-1]
    assert (released.kind, released.actor) == ("key-released", "device")
    assert released.details == {"key": name, "value": "unit-1", "reason": devices.RELEASED}
    assert store.device(first.uci).hwkey is None and store.device(first.uci).state == "void"
    if key == "hwkey":
        assert second.hwkey == "unit-1"
    assert store.conn.execute("SELECT uci FROM idempotency").fetchall() == ([(second.uci,)] if key != "hwkey" else [])
    assert [e.kind for e in store.events(second.uci)] == ["issued", "issued-repeat"]


def test_a_group_never_hands_back_a_void_uci(store: Store) -> None:
    (first, _), = store.issue_group([IssueRequest(PRODUCT, hwkey="mac:01", idempotency_key="boot-1")])
    store.void(first, "returned", "cli")
    (second, created), (third, created_third) = store.issue_group([
        IssueRequest(PRODUCT, hwkey="mac:01", idempotency_key="boot-1"),
        IssueRequest(PRODUCT, hwkey="mac:01"),
    ])
    assert created and second != first and (third, created_third) == (second, False)
    assert [e.details["key"] for e in store.events(first) if e.kind == "key-released"] == ["hwkey", "idempotency-key"]
    assert store.conn.execute("SELECT uci FROM idempotency").fetchall() == [(second,)]


def test_refused_issues_are_events(store: Store) -> None:
    store.add_product("P2", "Other", "O-1")
    store.set_product_enabled("P2", False)
    taken, _ = store.issue(IssueRequest(PRODUCT, serial="SN-1"))
    before = store.conn.execute("SELECT count(*) FROM devices").fetchone()[0]
    with pytest.raises(NotFound, match="unknown product 'nope'"):
        store.issue(IssueRequest("nope", serial="SN-9", actor="operator:ann"))
    with pytest.raises(Conflict, match="P2 is disabled"):
        store.issue(IssueRequest("P2", actor="operator:ann"))
    with pytest.raises(Conflict, match="already has claim ID"):
        store.issue(IssueRequest(PRODUCT, serial="SN-1", actor="operator:ann", details={"slot": "A"}))
    assert store.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == before
    refusals = _refusals(store)
    assert [(code, actor) for code, actor, _ in refusals] == [(None, "operator:ann"), (None, "operator:ann"), (taken.uci, "operator:ann")]
    assert refusals[0][2] == {"attempted": "issued", "product": "nope", "serial": "SN-9",
                              "reason": "unknown product 'nope': add it with `station product add` or check `station product list`"}
    assert refusals[1][2]["product"] == "P2" and "disabled" in refusals[1][2]["reason"]
    assert refusals[2][2]["slot"] == "A" and refusals[2][2]["serial"] == "SN-1" and "reprint" in refusals[2][2]["reason"]
    assert [e.kind for e in store.events(taken.uci)] == ["issued", "refused"]


def test_a_group_records_each_refusal_and_rolls_back_only_the_refused_request(store: Store) -> None:
    store.issue(IssueRequest(PRODUCT, serial="TAKEN"))
    results = store.issue_group([
        IssueRequest("01NOPE", actor="device", details={"remote": "10.0.0.9"}),
        IssueRequest(PRODUCT, hwkey="mac:02", actor="device"),
        IssueRequest(PRODUCT, serial="TAKEN", hwkey="mac:03", actor="device"),
    ])
    assert isinstance(results[0], NotFound) and isinstance(results[2], Conflict) and results[1][1] is True
    assert [(code is None, details["product"], details.get("remote"), details.get("hwkey")) for code, _, details in _refusals(store)] == [
        (True, "01NOPE", "10.0.0.9", None), (False, PRODUCT, None, "mac:03")]
    assert store.conn.execute("SELECT count(*) FROM devices WHERE hwkey = 'mac:03'").fetchone()[0] == 0


@sqlite_only
def test_the_daily_counts_use_the_kind_time_index(store: Store) -> None:
    plan = store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT json_extract(details, '$.slot') AS slot, kind, count(*) FROM events "
        "WHERE kind IN (?, ?) AND time >= ? GROUP BY slot, kind", ("pass", "fail", "2026-01-01T00:00:00.000Z"),
    ).fetchall()
    assert any("idx_events_kind_time" in row[-1] for row in plan), plan


def test_a_batch_that_draws_only_stored_ids_gives_up(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = uci.generate_many
    draws = []

    def stale(count: int, bits: int = 80, first: str = "") -> list[str]:
        # The first symbols of every UCI are D (odd draws); the old batch's D range is drawn for real, every later
        # one is stale: each pass of the new batch draws its first symbols, then its D range.
        draws.append(count)
        assert len(draws) <= 1000, "the batch draws forever"
        if len(draws) % 2:
            return ["D" * 16] * count
        return real(count, bits, first) if len(draws) == 2 else old[:count]

    monkeypatch.setattr(uci, "generate_many", stale)
    store.generate_batch(PRODUCT, 5, name="old")
    old = [d.uci for d in store.devices(batch="old")]
    before = [line for line in dump(store.location) if "INSERT INTO \"devices\"" in line]
    with pytest.raises(Unavailable, match="run out of fresh claim IDs at 80 bits.*batch 'new' is incomplete"):
        store.generate_batch(PRODUCT, 3, name="new")
    assert len(draws) == 2 + 2 * devices.TRIES
    assert [line for line in dump(store.location) if "INSERT INTO \"devices\"" in line] == before
    if not is_url(store.location):
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.void_batch("new", "no fresh claim IDs left").complete


def test_a_serial_whose_claim_id_was_voided_gets_a_new_one(store: Store) -> None:
    first, _ = store.issue(IssueRequest(PRODUCT, serial="SN-REWORK"))
    store.void(first.uci, "label damaged", "operator:ann")
    second, created = store.issue(IssueRequest(PRODUCT, serial="SN-REWORK", actor="operator:ann"))
    assert created and second.uci != first.uci and second.serial == "SN-REWORK"
    assert store.device(first.uci).serial is None
    released = [e for e in store.events(first.uci) if e.kind == "key-released"]
    assert released and released[0].details["value"] == "SN-REWORK"
    with pytest.raises(Conflict, match="already has claim ID"):
        store.issue(IssueRequest(PRODUCT, serial="SN-REWORK"))


def test_an_event_kind_outside_the_life_cycles_list_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path / "station.db") as store:
        with pytest.raises(ValueError, match="not an event kind of station/core/lifecycle.py"):
            store.record(None, "flash-finished", "cli")  # a typo of a kind a reader would never find
        assert store.record(None, lifecycle.Kind.SIGN_IN_REFUSED, "cli") > 0
        assert store.conn.execute("SELECT kind FROM events").fetchall() == [("sign-in-refused",)]


def test_an_unknown_code_ending_in_a_check_symbol_outside_the_alphabet_is_not_found(store: Store) -> None:
    """Five of the 37 check symbols (* ~ $ = U) are no claim ID symbols: a code that ends in one, read as a
    claim ID alone, fails, but its reading with the check symbol is right, so an unknown one is "not found"."""
    for check in "*~$=U":
        code = next(c for c in iter(lambda: uci.generate(), None) if uci.check_symbol(c) == check)
        with pytest.raises(NotFound, match="check it against the label"):
            store.find(uci.display(code))


def test_every_event_names_the_station_that_wrote_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "station.db", station="line-2") as line:
        line.add_product(PRODUCT, "Blank", "Blank-01")
        code = line.issue(PRODUCT)[0].uci
        assert [e.station for e in line.events(code)] == ["line-2"]
    with Store.open(tmp_path / "station.db") as unnamed:
        unnamed.void(code, "dropped", actor="test")
        assert [e.station for e in unnamed.events(code)] == ["line-2", fields.host_station()]


def test_events_of_before_names_keep_none_and_new_ones_get_it(tmp_path: Path) -> None:
    old = at_version(tmp_path / "station.db", 10)
    old.execute("INSERT INTO products(id, name, model, created) VALUES (?, 'Blank', 'Blank-01', ?)", (PRODUCT, now()))
    old.execute("INSERT INTO devices(uci, product, state, created) VALUES ('0000000000000001', ?, 'issued', ?)",
                (PRODUCT, now()))
    old.execute("INSERT INTO events(time, uci, kind, actor, details) VALUES (?, '0000000000000001', 'issued', 'cli', '{}')",
                (now(),))
    old.close()
    with Store.open(tmp_path / "station.db", station="line-3") as upgraded:
        upgraded.void("0000000000000001", "dropped", actor="test")
        assert [e.station for e in upgraded.events("0000000000000001")] == [None, "line-3"]
        assert upgraded.device("0000000000000001").station is None  # issued before stations had names


def test_the_host_name_as_a_station_name() -> None:
    assert fields.STATION_NAME.fullmatch(fields.host_station())


def test_a_newer_station_migrating_meanwhile_is_never_stamped_down(tmp_path: Path) -> None:
    """This station finds version 11 and waits for the write lock; a newer station holds it, migrates to a version
    beyond this one's and commits: this one must then refuse, not write its own version over the newer schema."""
    import threading

    path = tmp_path / "station.db"
    Store.open(path).close()
    newer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    newer.execute("ALTER TABLE webhooks DROP COLUMN ahead")
    newer.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION - 1}")
    newer.execute("BEGIN IMMEDIATE")

    def migrate_beyond() -> None:
        time.sleep(0.5)
        newer.execute("ALTER TABLE webhooks ADD COLUMN ahead TEXT NOT NULL DEFAULT '[]'")
        newer.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION + 1}")
        newer.execute("COMMIT")

    other = threading.Thread(target=migrate_beyond)
    other.start()
    try:
        with pytest.raises(NotAStationDatabase, match="newer than this station's"):
            Store.open(path, timeout=10)
    finally:
        other.join()
    assert newer.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION + 1
    newer.close()


def test_stations_on_one_database_see_the_whole_registry_and_count_their_own_line(database: str | Path) -> None:
    """Two stations on one database (a shared registry, or one file): lists, stats and exports see every device, with
    a station filter; each line's counts and production figures are its own, even on slots of the same name."""
    with Store.open(database, station="line-1") as one, Store.open(database, station="line-2") as two:
        one.add_product(PRODUCT, "Blank", "Blank-01")
        mine = one.issue(IssueRequest(PRODUCT, serial="SN-1"))[0]
        theirs = two.issue(IssueRequest(PRODUCT, serial="SN-2"))[0]
        two.generate_batch(PRODUCT, 3, name="b2")
        assert (mine.station, theirs.station) == ("line-1", "line-2")
        assert one.stations() == ["line-1", "line-2"]
        assert [d.uci for d in one.devices(station="line-1")] == [mine.uci]
        assert {d.station for d in two.devices()} == {"line-1", "line-2"} and len(list(two.devices())) == 5
        assert len(list(one.devices(station="line-2"))) == 4  # its single device and its batch's
        assert one.listing(station="line-2", limit=10)[1] == 4
        assert sum(row["devices"] for row in one.stats("line-2")) == 4 and sum(r["devices"] for r in one.stats()) == 5
        with pytest.raises(Invalid, match="a station filter"):
            one.stats("no such; station")
        for store, code, passed in ((one, mine.uci, True), (two, theirs.uci, False)):
            with store.transaction() as conn:
                store._event(conn, lifecycle.Kind.LINE_PASS if passed else lifecycle.Kind.LINE_FAIL, "operator:olga",
                             {"slot": "A", "step": None if passed else "flash", "reason": "" if passed else "no answer"},
                             code=code)
        since = "2000-01-01T00:00:00.000Z"
        assert [(r["slot"], r["kind"], r["n"]) for r in one.counts_by_slot(("line-pass", "line-fail"), since)] == [
            ("A", "line-pass", 1)]
        assert [(r["slot"], r["kind"], r["n"]) for r in two.counts_by_slot(("line-pass", "line-fail"), since)] == [
            ("A", "line-fail", 1)]
        end = now()
        assert [(r["slot"], r["verdicts"], r["passed"]) for r in one.verdict_figures(since, end)] == [
            (None, 1, 1), ("A", 1, 1)]
        assert [(r["slot"], r["verdicts"], r["passed"]) for r in two.verdict_figures(since, end)] == [
            (None, 1, 0), ("A", 1, 0)]
        assert one.failures_by_step(since, end) == [] and len(two.failures_by_step(since, end)) == 1


def test_details_that_no_engine_stores_as_they_are_are_stored_shown(store: Store) -> None:
    """NUL and lone surrogates in an event's details (PostgreSQL's json refuses both) are kept as escapes, the same
    on both engines; characters beyond the BMP and backslashes stay as they are."""
    device, _ = store.issue(PRODUCT)
    details = {"nul": "a\x00b", "lone": "\ud800", "emoji": "\U0001f600", "slash": "\\u0000 is text", "\x00key": 1}
    store.record(device.uci, lifecycle.Kind.REFUSED, "test", details)
    [kept] = [e.details for e in store.events(device.uci) if e.kind == "refused"]
    assert kept == {"nul": "a\\u0000b", "lone": "\\ud800", "emoji": "\U0001f600", "slash": "\\u0000 is text",
                    "\\u0000key": 1}
    store.record(device.uci, lifecycle.Kind.REFUSED, "test", {"emoji": "\U0001f600", "slash": "\\u0000 is text"})
    assert [e.details for e in store.events(device.uci) if e.kind == "refused"][1] == {
        "emoji": "\U0001f600", "slash": "\\u0000 is text"}


def test_a_group_issues_fresh_ids_together_and_keyed_or_refused_requests_alone(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group's requests that only ask for a new UCI are stored together, a drawn UCI that is held already (or drawn
    twice in one draw) drawn again; a unit with a key gets its own, and a refused request its refusal, each with its
    event, as when they come alone."""
    held = store.issue(PRODUCT)[0].uci
    real = uci.generate
    planned = [held, "DUPLICATEDUPLICA", "DUPLICATEDUPLICA"]  # the group's first draws

    def drawing(bits: int = 80) -> str:
        return planned.pop(0) if planned else real(bits)

    monkeypatch.setattr(uci, "generate", drawing)
    requests = [IssueRequest(PRODUCT, details={"remote": f"10.0.0.{n}"}) for n in range(4)]
    requests[1:1] = [IssueRequest(PRODUCT, hwkey="mac:keyed"), IssueRequest("01NOPE"), IssueRequest(PRODUCT, serial="S1")]
    results = store.issue_group(requests)
    issued = [result[0] for result in results if isinstance(result, tuple)]
    assert [type(result).__name__ if isinstance(result, Exception) else result[1] for result in results] == [
        True, True, "NotFound", True, True, True, True]
    assert len(set(issued)) == 6 and held not in issued and "DUPLICATEDUPLICA" in issued
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, tuple):
            [event] = store.events(result[0])
            assert (event.kind, event.details) == ("issued", {**request.details, **(
                {"serial": request.serial} if request.serial else {})})
            assert store.device(result[0]).station == store.station
    assert [e.kind for e in store.events("01NOPE")] == [] and store.conn.execute(
        "SELECT count(*) FROM events WHERE kind = 'refused'").fetchone()[0] == 1
    assert store.issue_group([IssueRequest(PRODUCT, hwkey="mac:keyed")])[0] == (issued[1], False)  # its repeat


def test_a_group_issues_new_units_by_their_keys_together_and_known_ones_alone(store: Store) -> None:
    """Units that say who they are: a key no device holds is issued with the group's fresh ones; the same key twice
    in one group gets one UCI (the second is its repeat); a key held already is that unit's repeat; a key held by a
    void device is released, and the unit gets a new UCI."""
    known = store.issue(IssueRequest(PRODUCT, hwkey="mac:known"))[0].uci
    voided = store.void(store.issue(IssueRequest(PRODUCT, hwkey="mac:voided"))[0].uci, "dropped", "cli").uci
    keys = ["mac:new-1", "mac:known", "mac:new-2", "mac:new-1", "mac:voided"]
    results = store.issue_group([IssueRequest(PRODUCT, hwkey=key) for key in keys])
    assert all(isinstance(result, tuple) for result in results)
    codes = [result[0] for result in results if isinstance(result, tuple)]
    assert [result[1] for result in results if isinstance(result, tuple)] == [True, False, True, False, True]
    assert codes[0] == codes[3] and codes[1] == known and codes[4] != voided and len(set(codes)) == 4
    assert [d.uci for d in store.devices() if d.hwkey == "mac:new-1"] == [codes[0]]
    assert [e.kind for e in store.events(codes[0])] == ["issued", "issued-repeat"]
    assert [e.kind for e in store.events(voided)][-1] == "key-released"
    assert store.device(codes[4]).hwkey == "mac:voided" and store.device(voided).hwkey is None
