"""The batches pages against a real `station serve`: batches made from the browser's form (a count, or an uploaded
list of serials) in the background, their downloads (manifest, device files, labels) and printing, resume and void
of an interrupted batch, and every bad input refused with a message on the page and nothing half-done."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import json5
import pytest
import requests

from station import accounts
from station.core.errors import Invalid
from station.credentials.secret import verify
from station.store import Store
from tests.conftest import PRODUCT
from tests.labels.conftest import pdf_pages, qr_texts
from tests.pages.conftest import ADMIN, OPERATOR, PASSWORD  # one set of accounts for the pages and their browser tests
from tests.web.conftest import OTHER, Server, count, prepare, station
from tests.web.test_hostile_access import Person

SHEET = "a4-3x8-70x37"  # 24 labels on an A4 sheet, 3 across
WAIT = 60.0  # s, at most, for a background run


def closed_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on: a raw printer there is offline."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("station-data")
    prepare(data)
    station(data, "product", "credentials", OTHER, "--kinds", "secret")  # Other's units get MQTT secrets
    running = start(data, {
        "printers": {"sheets": {"type": "file", "path": "printed", "format": "pdf", "layout": SHEET},
                     "offline": {"type": "raw", "host": "127.0.0.1", "port": closed_port(), "timeout": 5}},
        "label_printer": "sheets", "timezone": "Europe/Berlin", "secret_iterations": 7, "database_timeout": 30})
    yield running
    assert running.stop() == 0


def start(data: Path, settings: dict[str, Any]) -> Server:
    """``station serve`` on a prepared data directory with an admin, an operator and ``settings``."""
    with Store.open(data / "station.db") as store:
        accounts.add_user(store, ADMIN, "admin", PASSWORD)
        accounts.add_user(store, OPERATOR, "operator", PASSWORD)
    (data / "station.json5").write_text(json.dumps(settings))
    return Server(data)


def session(server: Server, name: str) -> requests.Session:
    """A browser's session signed in as ``name``, with its CSRF token kept in ``http.token``."""
    person = Person(server)
    assert person.sign_in(name, PASSWORD).status_code == 302
    http = person.http
    http.token, http.url = person.csrf, person.url  # type: ignore[attr-defined]
    return http


@pytest.fixture(scope="module")
def admin(server: Server) -> requests.Session:
    return session(server, ADMIN)


@pytest.fixture(scope="module")
def operator(server: Server) -> requests.Session:
    return session(server, OPERATOR)


def post(http: requests.Session, path: str, files: dict[str, Any] | None = None, **form: str) -> requests.Response:
    return http.post(http.url + path, data={"csrf_token": http.token, **form}, files=files,  # type: ignore[attr-defined]
                     allow_redirects=False, timeout=60)


def get(http: requests.Session, path: str) -> requests.Response:
    return http.get(http.url + path, allow_redirects=False, timeout=60)  # type: ignore[attr-defined]


def finished(http: requests.Session, started: requests.Response) -> dict[str, Any]:
    """Follow a started run (the form's redirect) until it is no longer running: its last state."""
    assert started.status_code == 302, started.text
    page = get(http, started.headers["Location"])
    assert page.status_code == 200 and 'id="run-progress"' in page.text
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        state = get(http, started.headers["Location"] + ".json").json()
        if state["state"] != "running":
            return state
        time.sleep(0.1)
    raise AssertionError(f"the run did not end within {WAIT} s: {state}")


def make(http: requests.Session, name: str, product: str = PRODUCT, files: dict[str, Any] | None = None,
         **form: str) -> dict[str, Any]:
    state = finished(http, post(http, "/batches", files, product=product, name=name, **form))
    assert state["state"] == "done", state
    return state


def batches(server: Server) -> int:
    return count(server.db, "SELECT count(*) FROM batches")


def ucis(server: Server, name: str) -> list[str]:
    with Store.open(server.db) as store:
        return [d.uci for d in store.devices(batch=name)]


def message(page: requests.Response) -> str:
    """The page's alert, as a person reads it."""
    found = re.search(r'role="alert"[^>]*>([^<]+)<', page.text)
    assert found, page.text[:2000]
    return found.group(1).replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_an_operator_sees_the_batches_but_no_form_and_may_not_make_one(server: Server, operator: requests.Session) -> None:
    page = get(operator, "/batches")
    assert page.status_code == 200 and "<h1>Batches</h1>" in page.text and "Make a batch" not in page.text
    before = batches(server)
    refused = post(operator, "/batches", product=PRODUCT, name="by-operator", count="5")
    assert refused.status_code == 403 and "only admin accounts may do this" in message(refused)
    assert batches(server) == before


@pytest.mark.parametrize(("count_text", "expected"), [
    ("0", "the count must be a whole number from 1 to 1000000, not '0'"),
    ("-3", "the count must be a whole number from 1 to 1000000, not '-3'"),
    ("many", "the count must be a whole number from 1 to 1000000, not 'many'"),
    ("1000001", "the count must be a whole number from 1 to 1000000, not '1000001'"),
    ("", "give how many claim IDs to issue, or choose a file of serials"),
])
def test_a_bad_count_is_refused_on_the_form_and_makes_nothing(server: Server, admin: requests.Session, count_text: str,
                                                              expected: str) -> None:
    before = batches(server)
    refused = post(admin, "/batches", product=PRODUCT, name="bad-count", count=count_text)
    assert refused.status_code == 400 and message(refused) == expected
    assert 'value="bad-count"' in refused.text  # the form keeps what was typed
    assert batches(server) == before


def test_an_empty_list_a_taken_name_or_half_an_owner_is_refused_on_the_form(server: Server, admin: requests.Session) -> None:
    make(admin, "taken", count="1")
    before = batches(server)
    empty = post(admin, "/batches", files={"serials": ("serials.txt", b"\n  \n")}, product=PRODUCT, name="empty")
    assert empty.status_code == 400 and message(empty) == "serials.txt holds no values"
    both = post(admin, "/batches", files={"serials": ("s.txt", b"SN-1\n")}, product=PRODUCT, name="both", count="3")
    assert both.status_code == 400 and message(both) == "give either a count or a file of serials, not both"
    taken = post(admin, "/batches", product=PRODUCT, name="taken", count="3")
    assert taken.status_code == 409 and message(taken) == "batch name 'taken' is already used; choose another"
    half = post(admin, "/batches", product=PRODUCT, name="half", count="3", account="ACME")
    assert half.status_code == 400 and "needs both an account and a cloud" in message(half)
    assert batches(server) == before


@pytest.mark.parametrize(("listed", "expected"), [
    (b"SN-1\nSN-2\nSN-1\n", "line 3: serial SN-1 repeats line 1"),
    ("SN-1\nSN-\u00e92\n".encode(), "line 2:"),
])
def test_a_list_of_serials_with_repeats_or_bad_characters_is_refused_whole(server: Server, admin: requests.Session,
                                                                           listed: bytes, expected: str) -> None:
    before, devices = batches(server), count(server.db, "SELECT count(*) FROM devices")
    state = finished(admin, post(admin, "/batches", files={"serials": ("serials.txt", listed)}, product=PRODUCT,
                                 name="bad-serials"))
    assert state["state"] == "failed" and "serials.txt" in state["error"] and expected in state["error"], state
    assert batches(server) == before and count(server.db, "SELECT count(*) FROM devices") == devices
    page = get(admin, "/batches/bad-serials")
    assert page.status_code == 404  # nothing half-done: no batch by that name


def test_a_counted_batch_runs_in_the_background_and_its_manifests_download(server: Server, admin: requests.Session) -> None:
    state = make(admin, "web-30", count="30")
    assert state["batch"] == "web-30" and state["done"] == 30 and state["url"] == "/batches/web-30"
    unknown = get(admin, "/batches/runs/nope.json")
    assert unknown.status_code == 404 and "no such batch run" in unknown.json()["error"]
    page = get(admin, "/batches/web-30")
    assert page.status_code == 200 and "Blank (Blank-01)" in page.text and "by operator:adam" in page.text
    assert re.search(r"<td>30</td>", page.text) and "CET" in page.text  # 30 issued; times in the station's zone
    issued = ucis(server, "web-30")
    assert len(issued) == 30
    with Store.open(server.db) as store:
        assert [e.actor for e in store.events(issued[0])] == ["operator:adam"]

    as_csv = get(admin, "/batches/web-30/manifest.csv")
    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    assert 'filename=web-30.csv' in as_csv.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert [r["uci"] for r in rows] == issued and all(r["batch"] == "web-30" for r in rows)
    assert all(r["created"].endswith("+01:00") for r in rows)  # Europe/Berlin in December, its offset named
    as_json = get(admin, "/batches/web-30/manifest.json").json()
    assert [d["uci"] for d in as_json] == issued and as_json[0]["created"] == rows[0]["created"]


def test_device_files_of_a_product_with_secrets_are_new_on_each_download(server: Server, admin: requests.Session) -> None:
    make(admin, "fw-serials", product=OTHER, count="", column="serial",
         files={"serials": ("line.csv", b"serial,colour\nSN-A1,red\nSN-A2,blue\nSN-A3,red\n")})
    page = get(admin, "/batches/fw-serials")
    assert 'id="secrets-note"' in page.text and "keeps only its hash" in page.text

    def download() -> dict[str, Any]:
        reply = post(admin, "/batches/fw-serials/device-files")
        assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/zip", reply.text[:500]
        with zipfile.ZipFile(io.BytesIO(reply.content)) as archive:
            return {name: json5.loads(archive.read(name)) for name in archive.namelist()}

    first, second = download(), download()
    issued = ucis(server, "fw-serials")
    assert sorted(first) == sorted(f"{uci}.json5" for uci in issued) and sorted(second) == sorted(first)
    assert sorted(d["serial"] for d in first.values()) == ["SN-A1", "SN-A2", "SN-A3"]
    with Store.open(server.db) as store:
        hashes = dict(store.secret_lines())
        for name, device in second.items():
            old, new = first[name]["mqtt"], device["mqtt"]
            assert device["id"] == name.removesuffix(".json5") and new["password"] != old["password"]
            assert verify(hashes[new["username"]], new["password"]) and not verify(hashes[new["username"]], old["password"])
        assert store.events(issued[0])[-1].actor == "operator:adam"


def test_labels_download_as_pdf_sheets_from_a_start_position_and_as_zpl(server: Server, admin: requests.Session) -> None:
    make(admin, "sheet-5", count="5")
    issued = ucis(server, "sheet-5")
    pdf = post(admin, "/batches/sheet-5/labels", format="pdf", layout=SHEET, start_at="4")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    pages = pdf_pages(pdf.content, dpi=150)
    assert len(pages) == 1 and sorted(qr_texts(pages[0])) == sorted(issued)
    assert count(server.db, "SELECT count(*) FROM devices WHERE batch = (SELECT id FROM batches WHERE name = 'sheet-5') "
                 "AND state = 'labeled'") == 5

    again = post(admin, "/batches/sheet-5/labels", format="zpl")
    assert again.status_code == 409 and "already has a label" in message(again)
    zpl = post(admin, "/batches/sheet-5/labels", format="zpl", reason="sheet jammed")
    assert zpl.status_code == 200 and zpl.content.count(b"^XA") == 5
    assert all(uci.encode() in zpl.content for uci in issued)
    bad_start = post(admin, "/batches/sheet-5/labels", format="pdf", layout=SHEET, start_at="25", reason="again")
    assert bad_start.status_code == 400 and "cannot start at label 25" in message(bad_start)
    with Store.open(server.db) as store:
        assert [e.kind for e in store.events(issued[0])] == ["batch-issued", "printed", "reprinted", "print-failed"]


def test_an_offline_printer_leaves_the_labels_unprinted_and_the_page_says_so(server: Server,
                                                                              admin: requests.Session) -> None:
    make(admin, "to-print", count="4")
    issued = ucis(server, "to-print")
    offline = post(admin, "/batches/to-print/print", printer="offline")
    assert offline.status_code == 503 and "refused the connection" in message(offline)
    assert "Nothing is recorded as printed" in offline.text
    with Store.open(server.db) as store:
        assert all(store.device(uci).state == "issued" for uci in issued)
        assert store.events(issued[0])[-1].kind == "print-failed"
    missing = post(admin, "/batches/to-print/print", printer="nowhere")
    assert missing.status_code == 404 and "no printer named 'nowhere'" in message(missing)

    printed = post(admin, "/batches/to-print/print", printer="sheets")
    assert printed.status_code == 200 and "printed 4 labels (4 first prints, 0 reprints) as pdf" in printed.text
    sheets = list((server.data_dir / "printed").glob("to-print-*.pdf"))
    assert len(sheets) == 1 and sorted(qr_texts(pdf_pages(sheets[0].read_bytes(), dpi=150)[0])) == sorted(issued)


def test_a_batch_still_being_made_refuses_its_downloads_with_409(server: Server, admin: requests.Session) -> None:
    holder = sqlite3.connect(server.db, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the run waits for the lock (database_timeout): it is still being made
        started = post(admin, "/batches", product=PRODUCT, name="held", count="10")
        assert started.status_code == 302
        for path in ("/batches/held/manifest.csv", "/batches/held/manifest.json"):
            refused = get(admin, path)
            assert refused.status_code == 409 and "batch 'held' is still being made" in message(refused)
        labels = post(admin, "/batches/held/labels", format="pdf")
        assert labels.status_code == 409 and "its downloads open once it is complete" in message(labels)
        busy = post(admin, "/batches", product=PRODUCT, name="second", count="1")
        assert busy.status_code == 409 and "another batch run is going" in message(busy)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    state = finished(admin, started)
    assert state["state"] == "done" and get(admin, "/batches/held/manifest.csv").status_code == 200


def interrupted(server: Server, name: str) -> int:
    """A batch whose generation stopped after its first transaction, as a killed `station generate` leaves it."""
    def stop(_: int) -> None:
        raise Invalid("stopped on purpose")

    # A busy timeout of 30 ms makes transactions of 10 ms; no machine stores 200,000 UCIs in one.
    with Store.open(server.db, timeout=0.03) as store:
        with pytest.raises(Invalid, match="is incomplete"):
            store.generate_batch(PRODUCT, 200_000, name=name, progress=stop)
        batch = store.batch(name)
    assert not batch.complete and 0 < batch.issued < batch.count
    return batch.issued


def test_an_interrupted_batch_offers_resume_and_void(server: Server, admin: requests.Session,
                                                     operator: requests.Session) -> None:
    interrupted(server, "cut")
    page = get(admin, "/batches/cut")
    assert page.status_code == 200 and "Interrupted" in page.text and ">Resume</button>" in page.text
    assert "Downloads" not in page.text and "Resume" not in get(operator, "/batches/cut").text
    refused = get(admin, "/batches/cut/manifest.csv")
    assert refused.status_code == 409 and "batch 'cut' is incomplete" in message(refused)
    assert post(operator, "/batches/cut/resume").status_code == 403
    state = finished(admin, post(admin, "/batches/cut/resume"))
    assert state["state"] == "done" and state["done"] == 200_000
    assert count(server.db, "SELECT complete FROM batches WHERE name = 'cut'") == 1
    assert "Downloads" in get(admin, "/batches/cut").text

    stored = interrupted(server, "given-up")
    no_reason = post(admin, "/batches/given-up/void", reason="  ")
    assert no_reason.status_code == 400 and "voiding a batch needs a reason" in message(no_reason)
    state = finished(admin, post(admin, "/batches/given-up/void", reason="wrong product"))
    assert state["state"] == "done", state
    assert count(server.db, "SELECT count(*) FROM devices WHERE batch = (SELECT id FROM batches WHERE name = "
                 "'given-up') AND state = 'void'") == stored
    again = post(admin, "/batches/given-up/void", reason="again")
    assert again.status_code == 409 and "is complete" in message(again)


def test_a_form_without_its_csrf_token_is_refused(server: Server, admin: requests.Session) -> None:
    before = batches(server)
    forged = admin.post(admin.url + "/batches", data={"product": PRODUCT, "name": "forged", "count": "2"},  # type: ignore[attr-defined]
                        allow_redirects=False, timeout=30)
    assert forged.status_code == 403 and "did not come from the station's own page" in message(forged)
    assert batches(server) == before


def test_a_long_list_of_serials_uploads_and_one_over_the_upload_limit_is_refused(server: Server,
                                                                                 admin: requests.Session) -> None:
    listed = "".join(f"SN-LONG-{n:06d}\n" for n in range(20_000)).encode()  # 300 KiB: far beyond a device body
    make(admin, "long-list", files={"serials": ("serials.txt", listed)})
    assert len(ucis(server, "long-list")) == 20_000
    before = batches(server)
    huge = post(admin, "/batches", files={"serials": ("serials.txt", b"SN-HUGE-0000001\n" * 300_000)},
                product=PRODUCT, name="huge-list")
    assert huge.status_code == 413 and "station generate --serials" in huge.json()["error"]
    assert batches(server) == before
    device = requests.post(f"http://127.0.0.1:{server.port}/ioto/serialize", data=b'{"product": "' + b"x" * 20_000 + b'"}', timeout=30)
    assert device.status_code == 413 and "16 KiB" in device.json()["error"]  # every other path keeps its limit
