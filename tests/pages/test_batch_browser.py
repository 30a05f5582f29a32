"""The batches pages in Chromium, as an admin uses them: a batch made from the form and followed until it is
done, its labels downloaded as PDF sheets whose QR codes read back as the batch's claim IDs, its device files
downloaded as a zip of JSON5 files, a print to an offline printer refused on the page; an operator sees no form."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import json5
import pytest
from playwright.sync_api import Page, expect

from station.store import Store
from tests.conftest import PRODUCT
from tests.labels.conftest import pdf_pages, qr_texts
from tests.pages.conftest import ADMIN, OPERATOR, PASSWORD, screenshot
from tests.web.conftest import Server, prepare
from tests.web.test_batch_pages import SHEET, closed_port, start

RUN_WAIT = 60_000  # ms, at most, for a background run to end


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("station-data")
    prepare(data)
    running = start(data, {"printers": {"offline": {"type": "raw", "host": "127.0.0.1", "port": closed_port(),
                                                    "timeout": 5}}, "timezone": "Europe/Berlin"})
    yield running
    assert running.stop() == 0


def url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def sign_in(page: Page, server: Server, name: str) -> None:
    page.goto(url(server) + "/batches")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(url(server) + "/batches")


def ucis(server: Server, batch: str) -> list[str]:
    with Store.open(server.db) as store:
        return [d.uci for d in store.devices(batch=batch)]


def test_an_admin_makes_a_batch_watches_it_finish_and_downloads_what_it_needs(page: Page, server: Server,
                                                                              tmp_path: Path) -> None:
    sign_in(page, server, ADMIN)
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    form = page.locator("#new-batch")
    form.get_by_label("Product").select_option(label="Blank (Blank-01)")
    form.get_by_label("Batch name").fill("browser-25")
    form.get_by_label("How many claim IDs").fill("25")
    screenshot(page, "batches-form")
    form.get_by_role("button", name="Make batch").click()
    page.wait_for_url(url(server) + "/batches/browser-25", timeout=RUN_WAIT)
    assert any("/batches/runs/" in seen for seen in visited), visited  # the run's page led here when it was done
    expect(page.get_by_role("heading", name="Batch browser-25")).to_be_visible()
    expect(page.locator("table.batch-counts td").first).to_have_text("25")  # all 25 issued
    screenshot(page, "batch-page")
    issued = ucis(server, "browser-25")
    assert len(issued) == 25

    labels = page.locator("#labels-file")
    labels.get_by_label("Format").select_option("pdf")
    labels.get_by_label("Layout").select_option(SHEET)
    labels.get_by_label("Start at label").fill("3")
    with page.expect_download() as pdf_download:
        labels.get_by_role("button", name="Download labels").click()
    sheets = pdf_pages(Path(pdf_download.value.path()).read_bytes(), dpi=150)
    assert pdf_download.value.suggested_filename == "browser-25-labels.pdf"
    assert len(sheets) == 2  # 22 labels from the 3rd slot of 24, then 3 on the next sheet
    assert [len(qr_texts(sheet)) for sheet in sheets] == [22, 3]
    assert sorted(qr_texts(sheets[0]) + qr_texts(sheets[1])) == sorted(issued)

    with page.expect_download() as zip_download:
        page.get_by_role("button", name="Device files").click()
    with zipfile.ZipFile(io.BytesIO(Path(zip_download.value.path()).read_bytes())) as archive:
        devices = {name: json5.loads(archive.read(name)) for name in archive.namelist()}
    assert sorted(devices) == sorted(f"{uci}.json5" for uci in issued)
    assert all(d["id"] == name.removesuffix(".json5") and d["product"] == PRODUCT for name, d in devices.items())

    page.goto(url(server) + "/batches/browser-25")
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="CSV").click()
    lines = Path(csv_download.value.path()).read_text().splitlines()
    assert len(lines) == 26 and lines[0].startswith("uci,")


def test_bad_input_and_an_offline_printer_are_said_on_the_page(page: Page, server: Server) -> None:
    sign_in(page, server, ADMIN)
    form = page.locator("#new-batch")
    form.get_by_label("Batch name").fill("zero")
    form.get_by_label("How many claim IDs").fill("0")
    form.get_by_role("button", name="Make batch").click()
    expect(page.get_by_role("alert")).to_have_text("the count must be a whole number from 1 to 1000000, not '0'")
    expect(page.locator("#new-batch").get_by_label("Batch name")).to_have_value("zero")

    page.locator("#new-batch").get_by_label("List of serials").set_input_files(
        files=[{"name": "serials.txt", "mimeType": "text/plain", "buffer": b"SN-1\nSN-2\nSN-1\n"}])
    page.locator("#new-batch").get_by_label("How many claim IDs").fill("")
    page.locator("#new-batch").get_by_label("Batch name").fill("repeats")
    page.locator("#new-batch").get_by_role("button", name="Make batch").click()
    expect(page.locator("#run-error")).to_contain_text("line 3: serial SN-1 repeats line 1", timeout=RUN_WAIT)
    expect(page.locator("#run-error")).to_contain_text("nothing was stored")
    screenshot(page, "batch-run-refused")

    page.goto(url(server) + "/batches")
    form = page.locator("#new-batch")
    form.get_by_label("Batch name").fill("to-print")
    form.get_by_label("How many claim IDs").fill("3")
    form.get_by_role("button", name="Make batch").click()
    page.wait_for_url(url(server) + "/batches/to-print", timeout=RUN_WAIT)
    printing = page.locator("#labels-print")
    printing.get_by_label("Printer").select_option("offline")
    printing.get_by_role("button", name="Print labels").click()
    expect(page.get_by_role("alert")).to_contain_text("refused the connection")
    expect(page.get_by_text("Nothing is recorded as printed")).to_be_visible()
    screenshot(page, "batch-print-offline")
    with Store.open(server.db) as store:
        assert {d.state for d in store.devices(batch="to-print")} == {"issued"}


def test_an_operator_sees_the_batches_but_no_form(page: Page, server: Server) -> None:
    sign_in(page, server, OPERATOR)
    expect(page.get_by_role("heading", name="Batches")).to_be_visible()
    expect(page.get_by_role("heading", name="Make a batch")).to_have_count(0)
