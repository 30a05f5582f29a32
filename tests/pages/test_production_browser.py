"""The production view in Chromium, as people see it: a display account's screen beside the line (large tiles
and the hourly chart with the known units' numbers, nothing to press, on the line page too), and an admin
reading the Pareto of failures and a slot's figures."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from station import accounts, times
from station.store import Store
from tests.pages.conftest import ADMIN, PASSWORD, STATION_NAME, Line, screenshot, sign_in
from tests.web.test_production_api import VERDICTS, write_verdicts

DISPLAY = "dora"


@pytest.fixture(scope="module")
def known(line: Line) -> Line:
    """The line with a display account and the known verdicts of three units (two passed, in one hour)."""
    with Store.open(line.server.db, station=STATION_NAME) as db:  # the line's own verdicts, as its station wrote them
        accounts.add_user(db, DISPLAY, "display", PASSWORD)
        write_verdicts(db, VERDICTS, times.zone(None))  # the station's zone: no timezone is configured
    return line


def test_a_display_account_sees_the_line_without_any_action(page: Page, known: Line) -> None:
    sign_in(page, known, DISPLAY)
    expect(page.locator(".tile")).to_have_count(len(known.units))
    for tile in page.locator(".tile").all():
        expect(tile).to_be_visible()
    expect(page.locator("#scan")).to_be_hidden()
    expect(page.locator("#setup")).to_be_hidden()
    expect(page.locator("#serialized")).to_be_hidden()
    expect(page.locator("main button:visible")).to_have_count(0)
    expect(page.get_by_role("link", name="Production")).to_be_visible()
    expect(page.get_by_role("link", name="Devices")).to_have_count(0)
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    refused = page.request.post(known.url + "/line/units", headers={"X-CSRF-Token": csrf},
                                data={"product": "x", "printer": "files", "slot": "A"})
    assert refused.status == 403 and "display" in refused.json()["error"]
    screenshot(page, "line-display-account")


def test_a_display_account_sees_big_tiles_and_the_hourly_chart(page: Page, known: Line) -> None:
    sign_in(page, known, DISPLAY)
    page.get_by_role("link", name="Production").click()
    page.wait_for_url(known.url + "/production")
    expect(page.locator(".production.display")).to_be_visible()
    expect(page.locator("#tile-rate .detail")).to_have_text("2 passed of 3 tested")
    expect(page.locator("#tile-fpy .value")).to_have_text("33.3 %")
    expect(page.locator("#tile-retests .value")).to_have_text("1")
    expect(page.locator("#tile-failure .value")).to_have_text("flash")
    expect(page.locator("#tile-failure .detail")).to_contain_text("no answer")
    big = page.locator("#tile-fpy .value").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert big >= 56, f"the tiles' figures are {big}px high: too small to read from a few metres"
    chart = page.get_by_role("img", name="Bar chart of units passed per hour")
    expect(chart).to_be_visible()
    assert "2 in" in (chart.get_attribute("aria-label") or "")
    assert chart.locator("text.value").all_text_contents() == ["2"]  # the one hour the two units passed in
    expect(page.locator("main button, main form, main input, main select")).to_have_count(0)
    expect(page.locator("main a")).to_have_count(0)  # no choices either: a screen is only looked at
    screenshot(page, "production-display")


def test_an_admin_reads_the_pareto_and_a_slots_figures(page: Page, known: Line) -> None:
    sign_in(page, known, ADMIN)
    page.get_by_role("link", name="Production").click()
    page.wait_for_url(known.url + "/production")
    expect(page.locator(".production.display")).to_have_count(0)
    pareto = page.get_by_role("img", name="Pareto chart of 2 failures by step and reason")
    expect(pareto).to_be_visible()
    assert pareto.locator("text.value").all_text_contents() == ["1", "1"]
    assert pareto.locator("text.share").all_text_contents() == ["50%", "100%"]
    assert "flash: no answer 1 (50% cumulative); register: timeout 1 (100% cumulative)" in (
        pareto.get_attribute("aria-label") or "")
    rows = page.locator("table.failures tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).locator("td").all_inner_texts() == ["flash", "no answer", "1", "50.0 %", "50.0 %"]
    slots = page.locator("table.slots tbody tr")
    expect(slots).to_have_count(2)
    expect(page.locator('table.slots tr[data-slot="A"] td').nth(0)).to_have_text("2")
    expect(page.locator('table.slots tr[data-slot="B"] td').nth(3)).to_have_text("0.0 %")
    expect(page.get_by_text("of the units whose first verdict ever falls in the span")).to_be_visible()
    screenshot(page, "production-admin")
    page.get_by_role("link", name="Slot B", exact=True).click()
    expect(page.locator("h1")).to_have_text("Production: slot B")
    expect(page.locator("#tile-fpy .value")).to_have_text("0.0 %")
    expect(page.locator("#tile-retests .value")).to_have_text("1")
    expect(page.locator("#tile-failure .value")).to_have_text("register")
    page.get_by_role("link", name="Display mode").click()
    expect(page.locator(".production.display")).to_be_visible()
    expect(page.locator("#tile-failure .value")).to_have_text("register")
