"""The line page's units that serialized themselves, in a real Chromium against a real `station serve`: a label
that did not print says so with its reason and prints from its button once the printer is fixed; per fixture
address, the IDs issued without a registration are counted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from station import accounts
from station.store import Store
from tests.conftest import PRODUCT
from tests.pages.conftest import OPERATOR, PASSWORD, Line, screenshot, sign_in
from tests.web.conftest import IOTO_BODY, Server

FIXTURE, STRAY = "127.0.0.2", "127.0.0.3"  # a fixture's address, and one that no factory_printer block holds
WAIT = 30.0  # seconds: a bound on the print thread, never a measurement


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    data_dir = tmp_path_factory.mktemp("station-data")
    config = {
        "printers": {"fixture": {"type": "file", "path": "labels-out/fixture", "format": "png"}},
        "factory_printer": {"127.0.0.1/32": "fixture", f"{FIXTURE}/32": "fixture"},
    }
    (data_dir / "station.json5").write_text(json.dumps(config))
    (data_dir / "labels-out").write_text("a file where the printer's folder should be: the printer is broken")
    with Store.open(data_dir / "station.db") as store:
        store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        accounts.add_user(store, OPERATOR, "operator", PASSWORD)
    server = Server(data_dir)
    try:
        yield Line(server, data_dir / "labels-out" / "fixture")
    finally:
        assert server.stop() == 0


def outcome(db: Path, code: str) -> list[str]:
    """The label events of the unit, once the print thread has tried it (a bounded wait)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        with Store.open(db) as store:
            found = [e.kind for e in store.events(code) if e.kind in ("printed", "print-failed")]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the print thread did not try the label of {code} within {WAIT} s")


def test_a_label_that_did_not_print_prints_from_the_page_once_the_printer_is_fixed(page: Page, station: Line) -> None:
    server = station.server
    codes = [server.serialize(source=FIXTURE).json["id"] for _ in range(3)]  # one unit restarting: a new ID each time
    assert len(set(codes)) == 3
    registered = {**IOTO_BODY, "id": codes[0], "created": "1970-01-01T00:00:00.000Z"}
    assert server.register(registered).status == 200
    for code in codes:
        assert outcome(server.db, code) == ["print-failed"]

    sign_in(page, station)
    units = page.locator("#serialized-units")
    for code in codes:
        row = units.locator(f'li[data-uci="{code}"]')
        expect(row.locator(".reason")).to_contain_text("issued, label not printed: cannot write the label")
        expect(row.locator(".facts")).to_contain_text(FIXTURE)
        expect(row.locator("img.label-preview")).to_have_attribute("src", f"/devices/{code}/label.png")
    fixture = page.locator(f'#serialized-addresses tr[data-remote="{FIXTURE}"]')
    expect(fixture.locator(".issued")).to_have_text("3")
    expect(fixture.locator(".unregistered")).to_have_text("2")  # 3 serializes, 1 registration
    screenshot(page, "factory-units-not-printed")

    (station.labels.parent).unlink()  # the printer is fixed: its folder can be made
    row = units.locator(f'li[data-uci="{codes[1]}"]')
    button = row.locator("button.print")
    expect(button).to_have_text("Print label on fixture")
    button.click()
    expect(row.locator(".state")).to_have_text("labeled")
    expect(row.locator(".reason")).to_have_text("")
    expect(button).to_be_hidden()
    assert outcome(server.db, codes[1]) == ["print-failed", "printed"]
    assert len(list(station.labels.glob(f"{codes[1]}-*.png"))) == 1
    expect(units.locator(f'li[data-uci="{codes[2]}"] .reason')).to_contain_text("issued, label not printed")
    screenshot(page, "factory-units-printed")


def test_an_address_no_fixture_holds_shows_why_its_label_did_not_print(page: Page, station: Line) -> None:
    code = station.server.serialize(source=STRAY).json["id"]
    assert outcome(station.server.db, code) == ["print-failed"]
    sign_in(page, station)
    row = page.locator(f'#serialized-units li[data-uci="{code}"]')
    expect(row.locator(".reason")).to_have_text(f"issued, label not printed: no factory_printer for address {STRAY}")
    expect(row.locator(".state")).to_have_text("issued")
    expect(row.locator("button.print")).to_have_text("Print label on fixture")  # the printer chosen at the top
    expect(page.locator("#serialized-units li").first).to_have_attribute("data-uci", code)  # newest first
    stray = page.locator(f'#serialized-addresses tr[data-remote="{STRAY}"]')
    expect(stray.locator(".unregistered")).to_have_text("1")
