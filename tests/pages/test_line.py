"""The line as an operator works it: sign in, scan units, watch them pass, handle a failure, look units up."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from station.core import uci
from station.store import IssueRequest, Store
from tests.pages.conftest import ADMIN, Line, screenshot, sign_in

PASS_WITHIN = 60_000  # ms: bounds the wait for a cycle (label, flash, boot, registration); never a measurement


def device_with_serial(line: Line, serial: str):  # type: ignore[no-untyped-def]
    with Store.open(line.server.db) as store:
        found = list(store.devices(serial=serial))
    assert len(found) == 1, f"one device for serial {serial}"
    return found[0]


def passes_today(line: Line) -> int:
    with Store.open(line.server.db) as store:
        return store.conn.execute("SELECT count(*) FROM events WHERE kind = 'line-pass'").fetchone()[0]


def test_three_units_pass_through_the_line(page: Page, line: Line) -> None:
    before = passes_today(line)
    sign_in(page, line)
    screenshot(page, "line-idle")
    page.select_option("#slot", "A")
    scan = page.locator("#serial")
    for serial in ("SN-1001", "SN-1002", "SN-1003"):
        expect(scan).to_be_focused()
        page.keyboard.type(serial)
        page.keyboard.press("Enter")
        expect(scan).to_have_value("")
    for slot, serial in (("A", "SN-1001"), ("B", "SN-1002"), ("C", "SN-1003")):
        tile = page.locator(f"#tile-{slot}")
        expect(tile.locator(".verdict")).to_have_text("PASS", timeout=PASS_WITHIN)
        device = device_with_serial(line, serial)
        expect(tile.locator(".claim")).to_contain_text(device.display)
        assert device.state == "registered"
        assert (line.labels).exists() and any(line.labels.iterdir())
    expect(page.locator("#count-pass")).to_have_text(f"{before + 3} passed")
    expect(page.locator("#tile-A img.label-preview")).to_be_visible()
    screenshot(page, "line-three-passed")


def test_a_unit_that_never_registers_fails_then_passes_on_retry(page: Page, line: Line) -> None:
    sign_in(page, line)
    page.select_option("#slot", "F")
    page.keyboard.type("SN-2001")
    page.keyboard.press("Enter")
    tile = page.locator("#tile-F")
    expect(tile.locator(".verdict")).to_have_text("FAIL", timeout=PASS_WITHIN)
    expect(tile.locator(".reason")).to_contain_text("Failed at register")
    screenshot(page, "line-fail")
    device = device_with_serial(line, "SN-2001")
    assert device.state == "flashed"
    # Keyboard only: Tab from the scan field reaches the tile's Retry button.
    tile.locator("button.retry").focus()
    page.keyboard.press("Enter")
    expect(tile.locator(".verdict")).to_have_text("PASS", timeout=PASS_WITHIN)
    expect(page.locator("#serial")).to_be_focused()
    assert device_with_serial(line, "SN-2001").state == "registered"


def test_reprint_and_void_ask_for_a_reason(page: Page, line: Line) -> None:
    sign_in(page, line)
    page.select_option("#slot", "F")
    line.units["F"].faults.add("no-register=1")  # the next boot misses its registration again
    page.keyboard.type("SN-3001")
    page.keyboard.press("Enter")
    tile = page.locator("#tile-F")
    expect(tile.locator(".verdict")).to_have_text("FAIL", timeout=PASS_WITHIN)
    page.once("dialog", lambda dialog: dialog.accept("smudged"))
    tile.locator("button.reprint").click()
    expect(tile.locator(".steps")).to_contain_text("label printed again: smudged")
    page.once("dialog", lambda dialog: dialog.accept("unit failed final test"))
    tile.locator("button.void").click()
    expect(tile.locator(".verdict")).to_have_text("VOID")
    device = device_with_serial(line, "SN-3001")
    assert device.state == "void"
    with Store.open(line.server.db) as store:
        kinds = [e.kind for e in store.events(device.uci)]
    assert "reprinted" in kinds and kinds[-1] == "void"


def test_look_up_a_unit_by_a_mistyped_form_of_its_code(page: Page, line: Line) -> None:
    with Store.open(line.server.db) as store:
        device = store.issue(IssueRequest(store.products()[0].id, actor="test"))[0]
        store.advance(device.uci, "labeled", "printed", "test")
    sign_in(page, line)
    page.click("nav >> text=Devices")
    typed = device.display.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    page.fill("input[name=q]", typed)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(device.display)
    expect(page.locator("table.events")).to_contain_text("printed")
    expect(page.locator("img.label-preview")).to_be_visible()
    screenshot(page, "device")
    wrong = next(c for c in uci.ALPHABET if c != uci.check_symbol(device.uci))
    page.click("nav >> text=Devices")
    page.fill("input[name=q]", device.uci + wrong)
    page.keyboard.press("Enter")
    expect(page.locator(".message.error")).to_contain_text("mistyped")
    screenshot(page, "devices-mistyped")


def test_requests_without_the_csrf_token_are_refused(page: Page, line: Line) -> None:
    sign_in(page, line, ADMIN)
    refused = page.request.post(line.url + "/line/units", data={"product": "x", "printer": "files", "slot": "A", "serial": ""})
    assert refused.status == 403 and "reload the page" in refused.json()["error"]
    page.goto(line.url + "/products")
    page.evaluate("document.querySelector('form.grid input[name=csrf_token]').remove()")
    page.fill("input[name=id]", "01FORGEDPRODUCT00000000000")
    page.fill("input[name=name]", "Forged")
    page.fill("input[name=model]", "F-1")
    page.click("form.grid button[type=submit]")
    expect(page.locator(".message.error")).to_contain_text("reload the page")
    with Store.open(line.server.db) as store:
        assert "01FORGEDPRODUCT00000000000" not in [p.id for p in store.products()]


def test_main_pages_render_for_an_admin(page: Page, line: Line) -> None:
    with Store.open(line.server.db) as store:  # a registered unit of its own: the test needs no other to run first
        device = store.issue(IssueRequest(store.products()[0].id, actor="test"))[0]
        store.advance(device.uci, "registered", "registered", "device")
    sign_in(page, line, ADMIN)
    for name, path, heading in (("batches", "/batches", "Batches"), ("products", "/products", "Products"),
                                ("settings", "/settings", "Settings"), ("devices", "/devices", "Devices")):
        page.goto(line.url + path)
        expect(page.locator("h1")).to_have_text(heading)
        screenshot(page, name)
    expect(page.locator("table.list")).to_contain_text("registered")
    page.goto(line.url + "/settings")
    expect(page.locator("main")).to_contain_text("thermal-50x25-203")
    expect(page.locator("main")).to_contain_text("50 x 25 mm")


def test_the_line_fits_a_line_pc_and_a_tablet(page: Page, line: Line) -> None:
    sign_in(page, line)
    for name, width, height in (("line-1366x768", 1366, 768), ("line-tablet-landscape", 1280, 800),
                                ("line-tablet-portrait", 800, 1280)):
        page.set_viewport_size({"width": width, "height": height})
        page.reload()
        expect(page.locator("#serial")).to_be_focused()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: the page is {overflow} px wider than the screen"
        box = page.locator("#serial").bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, f"{name}: the scan field is below the fold"
        screenshot(page, name)
