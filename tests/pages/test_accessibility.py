"""Accessibility basics on every page an admin sees, in Chromium at the line PCs' and a tablet's size: text
contrast (WCAG AA) measured on the rendered page, a name on every field, the keyboard reaching every control
with a focus ring that can be seen, nothing only a mouse can do, and no sideways scrolling."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from station import accounts
from station.store import IssueRequest, Store
from tests.pages.conftest import ADMIN, OPERATOR, PASSWORD, VIEWPORTS, Line, screenshot, sign_in

CYCLE_WITHIN = 60_000  # ms: bounds a unit's cycle on the line; never a measurement
AUDIT = (Path(__file__).parent / "a11y.js").read_text()
# name: (path, who is signed in); "{device}" is a device of the module's own. The error page is what an
# operator gets at the admins' settings; DISPLAY is the screen beside the line.
DISPLAY = "dora"
PAGES = {"line": ("/", ADMIN), "production": ("/production", ADMIN), "devices": ("/devices", ADMIN),
         "device": ("/devices/{device}", ADMIN), "batches": ("/batches", ADMIN), "batch": ("/batches/a11y-batch", ADMIN),
         "products": ("/products", ADMIN), "settings": ("/settings", ADMIN), "error": ("/settings", OPERATOR),
         "signin": ("/signin", None), "line-display": ("/", DISPLAY), "production-display": ("/production?display=1", DISPLAY)}


@dataclass
class Seeded:
    device: str  # a UCI with a full history


@pytest.fixture(scope="module")
def seeded(line: Line, browser: Browser) -> Iterator[Seeded]:
    """Every colour the pages use on them: a device in every state, a batch, a unit that serialized itself
    (its label not printed), and on the line a unit that passed (slot A) and one that failed (slot F)."""
    with Store.open(line.server.db) as store:
        product = store.products()[0].id
        made = {}
        for state, kind in (("issued", None), ("labeled", "printed"), ("flashed", "flashed"),
                            ("registered", "registered"), ("claimed", "claimed"), ("void", None)):
            device = store.issue(IssueRequest(product, actor="test", serial=f"SN-{state[:4].upper()}"))[0]
            if kind:
                store.advance(device.uci, state, kind, "test")
            made[state] = device.uci
        store.void(made["void"], "label torn", "test")
        store.generate_batch(product, 3, name="a11y-batch", actor="test")
        accounts.add_user(store, DISPLAY, "display", PASSWORD)
    assert line.server.serialize().status == 200
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, line)
    for slot in ("A", "F"):  # F's unit misses its first registration
        page.select_option("#slot", slot)
        page.keyboard.type(f"A11Y-LINE-{slot}")
        page.keyboard.press("Enter")
        expect(page.locator("#serial")).to_have_value("")  # the scan was taken
    for slot, verdict in (("A", "PASS"), ("F", "FAIL")):
        expect(page.locator(f"#tile-{slot} .verdict")).to_have_text(verdict, timeout=CYCLE_WITHIN)
    context.close()
    yield Seeded(made["registered"])


def audit(page: Page, name: str) -> list[str]:
    """Every problem on the page as it stands, one line each (empty when it passes)."""
    page.evaluate(AUDIT)
    problems = [f"contrast {o}" for o in page.evaluate("a11y.contrast()")]
    problems += [f"no name: {field}" for field in unnamed_fields(page)]
    problems += [f"mouse only: {where}" for where in page.evaluate("a11y.mouseOnly()")]
    problems += keyboard(page)
    wide = page.evaluate("a11y.wide()")
    if wide["scrollWidth"] > wide["clientWidth"]:
        problems.append(f"scrolls sideways: {wide['scrollWidth']}px of content in {wide['clientWidth']}px: {wide['found']}")
    screenshot(page, f"a11y-{name}")
    return problems


def unnamed_fields(page: Page) -> list[str]:
    """Fields without an accessible name, as Playwright's accessibility tree computes it (label element,
    aria-label or aria-labelledby; a placeholder is not a name)."""
    found = []
    for field in page.locator("input:not([type=hidden]), select, textarea").all():
        if not field.is_visible():
            continue
        first = field.aria_snapshot().splitlines()[0]
        placeholder = field.get_attribute("placeholder")
        named = re.match(r'- \'?[\w-]+ "(.+?)"', first)  # YAML quotes a line with braces
        if not named or named.group(1) == placeholder:
            found.append(f"{field.evaluate('el => el.outerHTML.slice(0, 120)')} ({first})")
    return found


def keyboard(page: Page) -> list[str]:
    """Tab from the top of the page until every control was focused, each with a ring that can be seen."""
    stops: list[str] = page.evaluate("a11y.focusables()")
    reached: set[int] = set()
    problems: list[str] = []
    page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    for _ in range(2 * len(stops) + 4):  # bounded: a page that traps focus runs out of presses
        page.keyboard.press("Tab")
        focus: dict[str, Any] = page.evaluate("a11y.focused()")
        if focus["index"] is not None:
            reached.add(focus["index"])
        if focus.get("problem"):
            problems.append(f"focus on {focus['where']}: {focus['problem']}")
        if len(reached) == len(stops):
            break
    problems += [f"Tab never reaches {stops[i]}" for i in range(len(stops)) if i not in reached]
    return sorted(set(problems), key=problems.index)


@pytest.mark.parametrize("page", list(VIEWPORTS), indirect=True)
@pytest.mark.parametrize("name", list(PAGES))
def test_page_is_accessible(page: Page, line: Line, seeded: Seeded, name: str) -> None:
    path, user = PAGES[name]
    if user:
        sign_in(page, line, user)
    page.goto(line.url + path.format(device=seeded.device))
    expect(page.locator("h1")).to_be_visible()
    viewport = page.viewport_size or {}
    problems = audit(page, f"{name}-{viewport.get('width')}x{viewport.get('height')}")
    assert not problems, "\n".join(problems)


def test_every_page_in_the_menu_is_audited(page: Page, line: Line) -> None:
    sign_in(page, line, ADMIN)
    menu = {href for href in page.locator("nav a").evaluate_all("links => links.map((a) => a.getAttribute('href'))")}
    assert menu - {path for path, user in PAGES.values() if user == ADMIN} == set(), "add these pages to PAGES in tests/pages/test_accessibility.py"


def test_the_skip_link_takes_the_keyboard_past_the_menu(page: Page, line: Line) -> None:
    sign_in(page, line, ADMIN)
    page.goto(line.url + "/products")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the element has the focus (bounded by the page's number of controls)."""
    for _ in range(page.locator("a[href], button, input, select, textarea").count() + 2):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_product_is_added_with_the_keyboard_alone(page: Page, line: Line) -> None:
    sign_in(page, line, ADMIN)
    page.goto(line.url + "/products")
    tab_to(page, "input[name=id]")
    for value in ("01KEYBOARDONLY000000000000", "Keys", "K-1"):  # id, name, model, one Tab apart
        page.keyboard.type(value)
        page.keyboard.press("Tab")
    tab_to(page, "input[name=no_check_symbol]")
    page.keyboard.press("Space")
    expect(page.locator("input[name=no_check_symbol]")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.locator("form.grid button[type=submit]")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("table.list")).to_contain_text("01KEYBOARDONLY000000000000")
    with Store.open(line.server.db) as store:
        added = next(p for p in store.products() if p.id == "01KEYBOARDONLY000000000000")
    assert (added.name, added.model, added.check_symbol) == ("Keys", "K-1", False)
