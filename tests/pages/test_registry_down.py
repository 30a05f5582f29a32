"""The line page while its shared registry is down (issue 17, point 4), in a real Chromium against a station whose
registry is a private PostgreSQL server the test stops and starts again: a banner names the registry, the slot's
tile keeps its unit and verdict, a scan is refused with what failed, and once the server is back the banner goes
and the line works again, without restarting the station."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from station import accounts
from station import config as config_mod
from station.simulator import Unit
from station.store import Store
from tests.conftest import PRODUCT
from tests.pages.conftest import FAST, OPERATOR, PASSWORD, screenshot
from tests.postgres_servers import Cluster
from tests.web.conftest import Server

PASS_WITHIN = 60_000  # ms


@dataclass
class Registry:
    server: Server
    cluster: Cluster

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A station with one simulated unit on slot A, its registry on a private PostgreSQL cluster."""
    data_dir = tmp_path_factory.mktemp("station-data")
    unit = Unit(baud=FAST)
    unit.start()
    try:
        with Cluster() as cluster:
            (data_dir / "station.json5").write_text(json.dumps({
                "name": "line-9", "database": cluster.create_database(),
                "printers": {"files": {"type": "file", "path": str(data_dir / "labels-out"), "format": "png"}},
                "rig": {"baud": FAST, "register_timeout": 8, "trigger_wait": 2, "login_timeout": 20,
                        "command_timeout": 5},
                "slots": {"A": {"port": unit.path}},
                "database_timeout": 2,
            }))
            with Store.configured(config_mod.load(data_dir), migrate=True) as store:
                store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
                accounts.add_user(store, OPERATOR, "operator", PASSWORD)
            server = Server(data_dir)
            unit.builder = f"http://127.0.0.1:{server.port}/api"
            try:
                yield Registry(server, cluster)
            finally:
                assert server.stop() == 0
    finally:
        unit.stop()


@pytest.fixture
def tab(browser: Browser, registry: Registry) -> Iterator[Page]:
    """A browser tab, closed before the station stops (its page follows the line's event stream)."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def scan(page: Page, serial: str) -> None:
    page.locator("#serial").fill(serial)
    page.keyboard.press("Enter")


def test_the_line_page_names_the_registry_while_it_is_down_and_goes_on_once_it_is_back(
        registry: Registry, tab: Page) -> None:
    tab.goto(registry.url + "/")
    tab.fill("input[name=name]", OPERATOR)
    tab.fill("input[name=password]", PASSWORD)
    tab.keyboard.press("Enter")
    tab.wait_for_url(registry.url + "/")
    tile = tab.locator("#tile-A")
    scan(tab, "SN-BEFORE")
    expect(tile.locator(".verdict")).to_have_text("PASS", timeout=PASS_WITHIN)
    claim = tile.locator(".claim").inner_text()
    banner = tab.locator("#database-down")
    expect(banner).to_be_hidden()

    registry.cluster.stop()
    expect(banner).to_be_visible(timeout=20_000)
    expect(banner).to_contain_text(f"127.0.0.1:{registry.cluster.port}")
    expect(banner).to_contain_text("reconnects by itself")
    expect(tile.locator(".verdict")).to_have_text("PASS")  # the tile keeps its unit and verdict
    expect(tile.locator(".claim")).to_have_text(claim)
    scan(tab, "SN-WHILE-DOWN")
    expect(tab.locator("#problem")).to_contain_text("registry", timeout=20_000)
    expect(tile.locator(".claim")).to_have_text(claim)  # the refused scan took no claim ID and left the slot as it was
    screenshot(tab, "line-registry-down")

    registry.cluster.start()
    expect(banner).to_be_hidden(timeout=30_000)
    scan(tab, "SN-AFTER")
    expect(tile.locator(".claim")).not_to_have_text(claim, timeout=20_000)
    expect(tab.locator("#problem")).to_be_hidden()
    expect(tile.locator(".verdict")).to_have_text("PASS", timeout=PASS_WITHIN)
    with Store.open(registry.server.db) as store:
        assert [len(list(store.devices(serial=serial))) for serial in ("SN-BEFORE", "SN-WHILE-DOWN", "SN-AFTER")] == [
            1, 0, 1]
