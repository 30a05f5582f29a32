"""The devices pages against a real `station serve`: the list newest first, sorted by any column, filtered
and paged with its total, every choice kept in its links; a device's reprint, void and re-flash on a slot of
simulated units, their events on the device page after the redirect; and each bad input a clear message."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from station import accounts, times
from station import config as config_mod
from station.simulator import Unit
from station.store import IssueRequest, Store
from tests.conftest import PRODUCT
from tests.web.conftest import OTHER, Server, count, prepare
from tests.web.test_hostile_access import ADMIN, OPERATOR, PASSWORD, Person

DISPLAY = "dana"
FAST = 2_000_000  # baud
BLANKS, OTHERS, BATCH = 60, 5, 10  # devices of each kind in the registry the list tests read
BATCH_NAME = "b-ten"
CYCLE_WITHIN = 60.0  # s: bounds the wait for a re-flash's verdict (flash, boot, registration); never a measurement


@dataclass
class Station:
    server: Server
    labels: Path
    units: dict[str, Unit]

    def person(self, name: str = OPERATOR) -> Person:
        who = Person(self.server)
        assert who.sign_in(name, PASSWORD).status_code == 302
        return who

    def ucis(self, sql: str = "SELECT uci FROM devices ORDER BY rowid DESC") -> list[str]:
        with Store.open(self.server.db) as store:
            return [row[0] for row in store.conn.execute(sql)]

    def fresh(self) -> str:
        """A device of its own for a test that changes it."""
        with Store.open(self.server.db) as store:
            return store.issue(IssueRequest(PRODUCT, actor="test"))[0].uci


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    """Blank devices with serials, Other devices, a batch; a file printer; slot A (a unit that passes) and slot S
    (one whose agent starts far later than the registration is waited for, so the slot stays busy a while)."""
    data_dir = tmp_path_factory.mktemp("station-data")
    labels = data_dir / "labels-out"
    units = {"A": Unit(baud=FAST), "S": Unit(baud=FAST, faults=["slow-boot=60"])}
    for unit in units.values():
        unit.start()
    try:
        (data_dir / "station.json5").write_text(json.dumps({
            "printers": {"files": {"type": "file", "path": str(labels), "format": "png"}},
            "rig": {"baud": FAST, "register_timeout": 8, "trigger_wait": 2, "login_timeout": 20, "command_timeout": 5},
            "slots": {name: {"port": unit.path} for name, unit in units.items()},
        }))
        prepare(data_dir)
        with Store.open(data_dir / "station.db") as store:
            for name, role in ((OPERATOR, "operator"), (ADMIN, "admin"), (DISPLAY, "display")):
                accounts.add_user(store, name, role, PASSWORD)
            for n in range(BLANKS):  # serials in an order of their own, so that sorting by serial is not issue order
                store.issue(IssueRequest(PRODUCT, serial=f"SN-{(n * 37) % BLANKS:04d}", actor="test"))
            for _ in range(OTHERS):
                store.issue(IssueRequest(OTHER, actor="test"))
            store.generate_batch(PRODUCT, BATCH, name=BATCH_NAME, actor="test")
        server = Server(data_dir)
        for unit in units.values():
            unit.builder = f"http://127.0.0.1:{server.port}/api"
        try:
            yield Station(server, labels, units)
        finally:
            assert server.stop() == 0
    finally:
        for unit in units.values():
            unit.stop()


# --- reading the pages --------------------------------------------------------------------------------------

def rows(page: str) -> list[str]:
    """The claim IDs of the list's rows, in order (the canonical UCI of each row's link)."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'href="/devices/([0-9A-Z]+)"', body)


def shown_count(page: str) -> str:
    return html.unescape(re.search(r'<p class="count" id="count">(.*?)</p>', page).group(1))  # type: ignore[union-attr]


def link(page: str, rel: str) -> str:
    return html.unescape(re.search(rf'<a rel="{rel}" href="([^"]+)"', page).group(1))  # type: ignore[union-attr]


def header(page: str, title: str) -> tuple[str | None, str]:
    """A column header's aria-sort (None when it is not the sorted one) and its link."""
    th = re.search(rf'<th scope="col"\s*(?:aria-sort="(\w+)")?>\s*<a class="sort" href="([^"]+)">{title}', page)
    assert th, f"no header {title}"
    return th.group(1), html.unescape(th.group(2))


def error(page: str) -> str:
    return html.unescape(re.search(r'class="message error" role="alert">(.*?)</p>', page, re.S).group(1))  # type: ignore[union-attr]


def following(page: str) -> bool:
    """Whether the device page follows a slot's work on the unit (and says on which slot)."""
    return bool(re.search(r'<p id="working"[^>]* data-follow>On slot ', page))


def post(person: Person, path: str, **form: str) -> requests.Response:
    return person.http.post(person.url + path, data={**form, "csrf_token": person.csrf}, allow_redirects=False,
                            timeout=30)


def kinds(station: Station, uci: str) -> list[str]:
    with Store.open(station.server.db) as store:
        return [e.kind for e in store.events(uci)]


def wait_for_event(station: Station, uci: str, wanted: tuple[str, ...]) -> str:
    deadline = time.monotonic() + CYCLE_WITHIN
    while time.monotonic() < deadline:
        found = [k for k in kinds(station, uci) if k in wanted]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"none of {wanted} for {uci} within {CYCLE_WITHIN:g} s: {kinds(station, uci)}")


# --- the list -----------------------------------------------------------------------------------------------

def test_the_list_is_newest_first_with_product_names_and_a_total(station: Station) -> None:
    everything = station.ucis()
    total = len(everything)
    page = station.person().get("/devices")
    assert page.status_code == 200
    assert rows(page.text) == everything[:50]  # the batch, made last, on top
    assert shown_count(page.text) == f"1–50 of {total}"
    assert header(page.text, "Issued")[0] == "descending"
    assert header(page.text, "Claim ID")[0] is None
    assert f'<span class="product" title="{PRODUCT}">Blank</span>' in page.text
    # A batch's devices hold no time of their own: the batch's is shown.
    with Store.open(station.server.db) as store:
        created = store.batch(BATCH_NAME).created
    shown = html.escape(times.shown(created, config_mod.load(station.server.data_dir, create=False).zone))
    first_row = page.text.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert f"<td>{shown}</td>" in first_row
    # Page 2 is the rest, and its links lead back.
    second = station.person().get(link(page.text, "next"))
    assert rows(second.text) == everything[50:100]
    assert shown_count(second.text) == f"51–{total} of {total}"
    assert "page=" not in link(second.text, "first") and "rel=\"next\"" not in second.text


def test_a_header_sorts_and_a_second_click_reverses(station: Station) -> None:
    person = station.person()
    _, by_claim = header(person.get("/devices").text, "Claim ID")
    assert "sort=claim" in by_claim and "order=asc" in by_claim
    ascending = person.get(by_claim).text
    assert rows(ascending) == sorted(station.ucis())[:50]
    state, reverse = header(ascending, "Claim ID")
    assert state == "ascending" and "order=desc" in reverse
    assert header(ascending, "Issued")[0] is None
    descending = person.get(reverse).text
    assert rows(descending) == sorted(station.ucis(), reverse=True)[:50]
    assert header(descending, "Claim ID")[0] == "descending"


def test_filters_sort_and_page_stay_in_every_link(station: Station) -> None:
    person = station.person()
    first = person.get(f"/devices?product={PRODUCT}&sort=serial&order=desc")
    serials = station.ucis(f"SELECT uci FROM devices WHERE product = '{PRODUCT}' AND serial IS NOT NULL ORDER BY serial DESC")
    batch = station.ucis(f"SELECT uci FROM devices WHERE product = '{PRODUCT}' AND serial IS NULL ORDER BY rowid DESC")
    expected = serials + batch  # descending: devices without a serial last, newest first among them
    total = BLANKS + BATCH
    assert rows(first.text) == expected[:50] and shown_count(first.text) == f"1–50 of {total}"
    following = link(first.text, "next")
    for kept in (f"product={PRODUCT}", "sort=serial", "order=desc", "page=2"):
        assert kept in following
    _, by_state = header(first.text, "State")
    assert f"product={PRODUCT}" in by_state and "page=" not in by_state  # a new sort starts at page 1
    second = person.get(following)
    assert rows(second.text) == expected[50:] and shown_count(second.text) == f"51–{total} of {total}"
    assert all(kept in link(second.text, "prev") for kept in (f"product={PRODUCT}", "sort=serial", "page=1"))
    # The filter form carries the sort along.
    assert '<input type="hidden" name="sort" value="serial">' in first.text
    by_batch = person.get(f"/devices?batch={BATCH_NAME}&state=issued&sort=claim")
    assert rows(by_batch.text) == sorted(station.ucis("SELECT uci FROM devices WHERE batch IS NOT NULL"))
    assert shown_count(by_batch.text) == f"1–{BATCH} of {BATCH}"
    others = person.get(f"/devices?product={OTHER}")
    assert shown_count(others.text) == f"1–{OTHERS} of {OTHERS}" and ">Other</span>" in others.text


@pytest.mark.parametrize(("query", "status", "message"), [
    ("sort=colour", 400, "unknown sort 'colour': sort by one of issued, claim, state, product, batch, serial"),
    ("sort=claim&order=sideways", 400, "unknown order 'sideways': asc or desc"),
    ("page=0", 400, "page must be a whole number from 1 to 1000000, not '0'"),
    ("page=1000001", 400, "page must be a whole number from 1 to 1000000, not '1000001'"),
    ("page=40", 404, "page 40 is past the end: 75 devices make 2 page(s) of 50"),
    ("product=01NOSUCHPRODUCT00000000000", 404, "unknown product '01NOSUCHPRODUCT00000000000'"),
    ("state=lost", 400, "unknown state 'lost'"),
    ("batch=nope", 404, "unknown batch 'nope'"),
])
def test_bad_list_input_is_said_on_the_list(station: Station, query: str, status: int, message: str) -> None:
    reply = station.person().get(f"/devices?{query}")
    assert reply.status_code == status
    assert error(reply.text).startswith(message)
    assert '<form method="get" class="filters">' in reply.text  # the list's own page, its filters to change


# --- a device's actions -------------------------------------------------------------------------------------

def test_reprint_on_a_chosen_printer_shows_its_event_after_the_redirect(station: Station) -> None:
    person, uci = station.person(), station.fresh()
    page = person.get(f"/devices/{uci}").text
    assert 'id="reprint"' in page and "<option>files</option>" in page  # the configured printers
    for reason in ("first label", "smudged"):
        reply = post(person, f"/devices/{uci}/reprint", printer="files", reason=reason)
        assert reply.status_code == 303 and reply.headers["Location"] == f"/devices/{uci}?done=reprint"
    shown = person.get(f"/devices/{uci}?done=reprint").text
    assert "The label was printed again." in shown
    history = shown.split('id="history"', 1)[1]
    assert "<td>printed</td>" in history and "<td>reprinted</td>" in history and "reason: smudged" in history
    assert kinds(station, uci)[-2:] == ["printed", "reprinted"]
    assert any(uci in p.name for p in station.labels.iterdir())


def test_bad_reprints_are_said_on_the_device_page(station: Station) -> None:
    person, uci = station.person(), station.fresh()
    reply = post(person, f"/devices/{uci}/reprint", printer="files", reason="  ")
    assert reply.status_code == 400 and error(reply.text) == "say why the label is printed again (the Reason field)"
    assert kinds(station, uci) == ["issued"]  # nothing was attempted
    reply = post(person, f"/devices/{uci}/reprint", printer="nope", reason="torn")
    assert reply.status_code == 404 and error(reply.text).startswith("no printer named 'nope'")
    assert kinds(station, uci) == ["issued", "print-failed"]  # the labels part records the failed attempt
    assert '<h1 class="code">' in reply.text  # the device page, with its forms


def test_void_with_a_reason_then_again_is_refused(station: Station) -> None:
    person, uci = station.person(), station.fresh()
    reply = post(person, f"/devices/{uci}/void", reason="")
    assert reply.status_code == 400 and error(reply.text) == "say why the device is voided (the Reason field)"
    reply = post(person, f"/devices/{uci}/void", reason="failed final test")
    assert reply.status_code == 303
    shown = person.get(reply.headers["Location"]).text
    assert '<span class="state state-void">void</span>' in shown and "reason: failed final test" in shown
    assert 'id="void"' not in shown and 'id="reflash"' not in shown  # the life cycle allows neither now
    again = post(person, f"/devices/{uci}/void", reason="twice")
    assert again.status_code == 409 and "the device is already void" in error(again.text)
    assert kinds(station, uci) == ["issued", "void", "refused"]
    flash = post(person, f"/devices/{uci}/reflash", slot="A")
    assert flash.status_code == 409 and "void" in error(flash.text)


def test_reflash_runs_the_cycle_on_the_slot_without_issuing(station: Station) -> None:
    person, uci = station.person(), station.fresh()
    devices = count(station.server.db, "SELECT count(*) FROM devices")
    page = person.get(f"/devices/{uci}").text
    assert '<option value="A">A</option>' in page and '<option value="S">S</option>' in page
    reply = post(person, f"/devices/{uci}/reflash", slot="A")
    assert reply.status_code == 303 and reply.headers["Location"] == f"/devices/{uci}?done=reflash"
    assert wait_for_event(station, uci, ("line-pass", "line-fail")) == "line-pass"
    shown = person.get(reply.headers["Location"]).text
    history = shown.split('id="history"', 1)[1]
    for kind in ("flash-started", "registered", "registration-confirmed", "line-pass"):
        assert f"<td>{kind}</td>" in history
    assert "<td>printed</td>" not in history  # label=False
    assert '<span class="state state-registered">registered</span>' in shown
    assert not following(shown)  # no slot works on it any more
    assert count(station.server.db, "SELECT count(*) FROM devices") == devices  # nothing issued


def test_a_busy_slot_and_an_unknown_slot_are_refused(station: Station) -> None:
    person, first, second = station.person(), station.fresh(), station.fresh()
    reply = post(person, f"/devices/{first}/reflash", slot="S")
    assert reply.status_code == 303
    assert following(person.get(f"/devices/{first}").text)  # its agent starts late: slot S is busy
    busy = post(person, f"/devices/{second}/reflash", slot="S")
    assert busy.status_code == 409 and error(busy.text).startswith("slot S is still busy with")
    unknown = post(person, f"/devices/{second}/reflash", slot="Z")
    assert unknown.status_code == 404 and error(unknown.text).startswith("no rig slot 'Z' (slots: A, S)")
    none = post(person, f"/devices/{second}/reflash", slot="")
    assert none.status_code == 400 and error(none.text) == "choose the slot the unit is on"
    assert kinds(station, second) == ["issued"]
    assert wait_for_event(station, first, ("line-pass", "line-fail")) == "line-fail"  # the agent missed its wait


def test_a_display_account_may_do_none_of_it(station: Station) -> None:
    display, uci = station.person(DISPLAY), station.fresh()
    for action, form in (("reprint", {"printer": "files", "reason": "x"}), ("void", {"reason": "x"}),
                         ("reflash", {"slot": "A"})):
        reply = post(display, f"/devices/{uci}/{action}", **form)
        assert reply.status_code == 403 and "dana is a display; only admin or operator accounts may do this" in reply.text
    assert display.get(f"/devices/{uci}").status_code == 403
    assert kinds(station, uci) == ["issued"]


def test_an_unknown_device_is_the_404_page(station: Station) -> None:
    person = station.person()
    assert person.get("/devices/0000000000000000").status_code == 404
    assert post(person, "/devices/0000000000000000/void", reason="x").status_code == 404


def test_a_unit_whose_label_cannot_be_made_is_told_so_instead_of_a_broken_image(station: Station) -> None:
    with Store.open(station.server.db) as store:
        long_serial = store.issue(IssueRequest(PRODUCT, serial="W" * 64, actor="test"))[0].uci
    person = station.person()
    page = html.unescape(person.get(f"/devices/{long_serial}").text)
    assert "No label can be made for this unit: element 4 (text 'serial') cannot fit 'S/N WWWW" in page
    assert 'class="label-preview"' not in page
    assert person.get(f"/devices/{long_serial}/label.png").status_code == 400  # what the image would have met
    fine = person.get(f"/devices/{station.fresh()}").text
    assert 'class="label-preview"' in fine and "No label can be made" not in fine
