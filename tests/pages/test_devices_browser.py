"""The devices pages in Chromium, as an engineer works them by keyboard: a device re-flashed on a slot of the
line, its steps and its PASS appearing in the history without a reload; the list sorted from its headers."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from station.store import IssueRequest, Store
from tests.conftest import PRODUCT
from tests.pages.conftest import Line, screenshot, sign_in

PASS_WITHIN = 60_000  # ms: bounds the wait for a cycle (flash, boot, registration); never a measurement


def issue(line: Line, serial: str) -> str:
    with Store.open(line.server.db) as store:
        return store.issue(IssueRequest(PRODUCT, serial=serial, actor="test"))[0].uci


def test_a_reflash_on_a_chosen_slot_shows_its_events_as_they_happen(page: Page, line: Line) -> None:
    uci = issue(line, "SN-R-1")
    line.units["C"].faults.add("slow-boot=3")  # the agent starts 3 s late: the page is open while the slot works
    sign_in(page, line)
    page.goto(f"{line.url}/devices/{uci}")
    page.evaluate("window.notReloaded = true")
    slot = page.locator("#reflash select[name=slot]")
    slot.focus()
    page.keyboard.press("c")  # a select takes the first option that starts with the key typed
    expect(slot).to_have_value("C")
    page.keyboard.press("Tab")
    expect(page.locator("#reflash button[type=submit]")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{line.url}/devices/{uci}?done=reflash")
    expect(page.locator(".message.ok")).to_contain_text("The re-flash has started")
    expect(page.locator("#working")).to_contain_text("On slot C now")
    page.evaluate("window.notReloaded = true")
    history = page.locator("#history")
    expect(history).to_contain_text("flash-started", timeout=PASS_WITHIN)
    kinds = history.locator("tbody td:nth-child(2)")  # the Event column
    expect(kinds.filter(has_text="line-pass")).to_have_count(1, timeout=PASS_WITHIN)
    expect(page.locator("#working")).to_be_empty()
    expect(page.locator("#facts .state")).to_have_text("registered")
    assert page.evaluate("window.notReloaded") is True  # the history came in place, the page stayed
    events = kinds.all_inner_texts()
    assert events.count("issued") == 1 and "printed" not in events  # no claim ID issued again, no label printed
    assert "registration-confirmed" in events
    screenshot(page, "device-reflashed")


def test_the_list_sorts_from_its_headers_by_keyboard(page: Page, line: Line) -> None:
    for n in range(3):
        issue(line, f"SN-S-{n}")
    with Store.open(line.server.db) as store:
        ucis = [d.uci for d in store.devices()]
        shown = {d.uci: d.display for d in store.devices()}
    sign_in(page, line)
    page.goto(f"{line.url}/devices")
    codes = page.locator("table.devices tbody td.code a")
    expect(codes.first).to_have_text(shown[ucis[-1]])  # newest first
    expect(page.locator("th[aria-sort]")).to_have_text("Issued ▼")
    claim = page.locator("th a.sort", has_text="Claim ID")
    claim.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/devices?sort=claim&order=asc")
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Claim ID")
    expect(codes).to_have_text([shown[u] for u in sorted(ucis)])
    screenshot(page, "devices-by-claim-id")
    page.locator("th a.sort", has_text="Claim ID").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/devices?sort=claim&order=desc")
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Claim ID")
    expect(codes).to_have_text([shown[u] for u in sorted(ucis, reverse=True)])
    expect(page.locator("#count")).to_have_text(f"1–{len(ucis)} of {len(ucis)}")
