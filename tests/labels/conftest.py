"""Fixtures for the label tests: a real store in a temporary data directory, devices of several sizes,
barcode decoding with zxing-cpp (PNG directly, PDF rasterised with pypdfium2), and a fake Zebra printer
listening on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
import zxingcpp
from PIL import Image

from station import config as config_mod
from station.store import Device, IssueRequest, Store

REPO_LAYOUTS = Path(__file__).resolve().parents[2] / "label_layouts"
CLAIM_URL = "https://example.com/claim/{id}"
_ids = count(1)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def write_config(data_dir: Path, values: dict[str, Any]) -> config_mod.Config:
    """Write station.json5 and load it, as the station would."""
    (data_dir / config_mod.CONFIG_NAME).write_text(json.dumps(values), encoding="utf-8")
    return config_mod.load(data_dir)


@pytest.fixture
def config(data_dir: Path) -> config_mod.Config:
    return write_config(data_dir, {"printers": {"folder": {"type": "file", "path": "labels-out", "format": "png"}}})


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    with Store.open(data_dir / config_mod.DB_NAME) as opened:
        yield opened


@pytest.fixture
def make_device(store: Store) -> Callable[..., Device]:
    """A freshly issued device of a new product with ``bits``, optional claim URL and serial."""

    def make(bits: int = 80, claim_url: str | None = None, serial: str | None = "SN-0001", name: str = "Blank",
             model: str = "Blank-01", layout: str | None = None) -> Device:
        product = f"PRODUCT{next(_ids)}"
        store.add_product(product, name, model, bits=bits, claim_url=claim_url, layout=layout)
        device, _ = store.issue(IssueRequest(product, serial=serial, actor="cli"))
        return device

    return make


PRINTED_FORMATS = [zxingcpp.BarcodeFormat.QRCodeModel2, zxingcpp.BarcodeFormat.Code128]


def decode(image: Image.Image) -> list[tuple[str, str]]:
    """Every barcode of the kinds labels carry (QR Model 2, Code128) that zxing-cpp finds, as (format, text),
    top to bottom; other symbologies could only be false readings of text and bars."""
    found = zxingcpp.read_barcodes(image, formats=PRINTED_FORMATS)
    return [(b.format.name, b.text) for b in sorted(found, key=lambda b: (b.position.top_left.y, b.position.top_left.x))]


def qr_texts(image: Image.Image) -> list[str]:
    """The texts of the QR codes the labels carry: standard Model 2 only. zxing-cpp's QRCode is a family that
    also reads Micro QR and rMQR, and on a page of barcodes and text those gave a rare false "0426"."""
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCodeModel2)]


def png_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pdf_pages(data: bytes, dpi: int = 300) -> list[Image.Image]:
    """The PDF's pages rasterised by pdfium, as a printer driver would."""
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.render(scale=dpi / 72).to_pil() for page in document]
    finally:
        document.close()


def pdf_text(data: bytes) -> list[str]:
    """The text of each page, extracted by pdfium."""
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def hs_reply(paper_out: int = 0, paused: int = 0, head_up: int = 0, ribbon_out: int = 0, transfer: int = 0) -> bytes:
    """The three strings a Zebra printer sends back for ~HS (ZPL II programming guide)."""
    strings = (f"030,{paper_out},{paused},0200,000,0,0,0,000,0,0,0",
               f"000,0,{head_up},{ribbon_out},{transfer},2,6,0,00000000,1,000",
               "1234,0")
    return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in strings)


class FakeZebra:
    """A printer on 127.0.0.1: answers ``~HS`` with ``status`` (None: stays silent, as a Zebra does with
    its head open) and keeps every job, the bytes after ~HS up to the sender's end of stream."""

    def __init__(self, status: bytes | None) -> None:
        self.status = status
        self.jobs: list[bytes] = []
        self.queries = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                received, answered = b"", False
                try:
                    while True:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                        if not answered and received.startswith(b"~HS"):
                            answered = True
                            self.queries += 1
                            if self.status is not None:
                                conn.sendall(self.status)
                except OSError:
                    pass
                job = received[3:] if received.startswith(b"~HS") else received
                if job:
                    self.jobs.append(job)
            self._done.set()

    def wait(self, timeout: float = 5) -> bool:
        """Wait until a connection has been handled."""
        return self._done.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


@pytest.fixture
def fake_zebra() -> Iterator[Callable[[bytes | None], FakeZebra]]:
    started: list[FakeZebra] = []

    def start(status: bytes | None = hs_reply()) -> FakeZebra:
        printer = FakeZebra(status)
        started.append(printer)
        return printer

    yield start
    for printer in started:
        printer.close()
