"""Printing through a real cupsd to the cups-pdf printer that .ci/setup-cups-labels sets up.

In CI (CI=true) a missing CUPS fails the test, so that it never passes by being skipped; on a developer
machine without CUPS it is skipped with the command that sets it up.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from station.labels import printing
from tests.labels.conftest import CLAIM_URL, decode, pdf_pages, pdf_text, write_config

QUEUE = os.environ.get("STATION_CUPS_QUEUE", "StationPDF")
OUT = Path(os.environ.get("STATION_CUPS_OUT", "/var/spool/cups-pdf-station"))


@pytest.fixture
def cups_queue() -> str:
    try:
        ready = subprocess.run(["lpstat", "-p", QUEUE], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ready = False
    if not ready or not OUT.is_dir():
        problem = f"no CUPS queue {QUEUE} writing into {OUT}: run .ci/setup-cups-labels (as root)"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return QUEUE


def wait_for_pdf(name_part: str, timeout: float = 30) -> Path:
    """The PDF cups-pdf wrote for the job titled ``name_part``, waiting a bounded time for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in OUT.glob("*.pdf") if name_part in p.name]
        if found and found[0].stat().st_size > 0:
            time.sleep(0.2)  # cups-pdf writes, then closes
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"cups-pdf wrote no PDF for {name_part} into {OUT} within {timeout} s")


def test_label_printed_through_lp_reaches_the_pdf_printer(store, data_dir, make_device, cups_queue) -> None:
    config = write_config(data_dir, {"printers": {"office": {"type": "cups", "queue": cups_queue, "format": "pdf",
                                                             "layout": "thermal-50x25-300", "timeout": 30}}})
    device = make_device(bits=80, claim_url=CLAIM_URL, serial="SN-CUPS-1")
    result = printing.print_label(store, config, device, printer="office", actor="cli")
    assert cups_queue in result.where  # lp's "request id is StationPDF-N"
    assert store.device(device.uci).state == "labeled"
    output = wait_for_pdf(device.uci)
    printed = output.read_bytes()
    output.unlink()
    page = pdf_pages(printed)[0]
    assert dict(decode(page)) == {"QRCode": f"HTTPS://EXAMPLE.COM/CLAIM/{device.uci}", "Code128": "SN-CUPS-1"}
    assert device.display in pdf_text(printed)[0]
