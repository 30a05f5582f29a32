"""The operator pages in a real headless Chromium (Debian's), driven by Playwright, against a real
`station serve` whose rig slots are simulated units on pseudo-terminals and whose printer writes files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from station import accounts
from station.simulator import Unit
from station.store import Store
from tests.conftest import PRODUCT
from tests.web.conftest import Server

STATION_NAME = "line-7"  # the pages name the station they are of
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
OPERATOR, ADMIN, PASSWORD = "olga", "adam", "line-password-1"
# Chromium as root on a closed network: no sandbox, no background connections (they are refused here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SLOTS = {"A": [], "B": [], "C": [], "F": ["no-register=1"]}  # F's agent misses its first registration
FAST = 2_000_000  # baud: pacing is not what these tests look at


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is missing: `apt-get install chromium` (.ci/setup-chromium does it in CI)")
    return found


@dataclass
class Line:
    """A station with four slots, each with a simulated unit, and a file printer."""

    server: Server
    labels: Path
    units: dict[str, Unit] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    data_dir = tmp_path_factory.mktemp("station-data")
    labels = data_dir / "labels-out"
    units = {name: Unit(faults=faults, baud=FAST) for name, faults in SLOTS.items()}
    for unit in units.values():
        unit.start()
    try:
        config = {
            "name": STATION_NAME,
            "printers": {"files": {"type": "file", "path": str(labels), "format": "png"}},
            "rig": {"baud": FAST, "register_timeout": 8, "trigger_wait": 2, "login_timeout": 20, "command_timeout": 5},
            "slots": {name: {"port": unit.path} for name, unit in units.items()},
        }
        (data_dir / "station.json5").write_text(json.dumps(config))
        with Store.open(data_dir / "station.db") as store:
            store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
            accounts.add_user(store, OPERATOR, "operator", PASSWORD)
            accounts.add_user(store, ADMIN, "admin", PASSWORD)
        server = Server(data_dir)
        for unit in units.values():
            unit.builder = f"http://127.0.0.1:{server.port}/api"
        try:
            yield Line(server, labels, units)
        finally:
            server.stop()
    finally:
        for unit in units.values():
            unit.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# The screens the pages are made for: two line PCs and a 10-inch tablet held upright.
VIEWPORTS = {"1366x768": (1366, 768), "1280x800": (1280, 800), "tablet-800x1280": (800, 1280)}


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser tab at 1366x768, or at the VIEWPORTS size given by indirect parametrisation."""
    width, height = VIEWPORTS[getattr(request, "param", "1366x768")]
    context = browser.new_context(viewport={"width": width, "height": height})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def sign_in(page: Page, line: Line, name: str = OPERATOR, password: str = PASSWORD) -> None:
    page.goto(line.url + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_url(line.url + "/")


def screenshot(page: Page, name: str) -> None:
    """Keep a picture of the page as a test artefact (test-artifacts/, not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
