"""Factory mode's labels through a real `station serve`: a unit that serialized itself over /ioto/serialize gets
its label from the fixture's printer (``factory_printer`` by the unit's address, or the product's own), printed
off the request path; a repeat prints nothing; a printer that fails, or an address no fixture holds, leaves the
UCI issued with a ``print-failed`` event that says why."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from station import config as config_mod
from station.labels.factory import Target, target
from station.store import Store
from tests.labels.conftest import pdf_pages, png_image, qr_texts
from tests.labels.test_cups import QUEUE, cups_queue, wait_for_pdf  # noqa: F401 (cups_queue: the queue's fixture)
from tests.web.conftest import IOTO_BODY, OTHER, Server, count, prepare

NOWHERE = "01NOFIXTUREPRODUCT00000001"  # its factory_printer holds no 127.0.0.0/8 address
BROKEN = "01BROKENPRINTERPRODUCT0001"  # its factory printer cannot write
WAIT = 30.0  # seconds a label may take to appear: a bound, never a measurement


def config() -> dict[str, object]:
    return {
        "printers": {"fixture": {"type": "file", "path": "labels-out", "format": "png"},
                     "jammed": {"type": "file", "path": "jammed/labels", "format": "png"},
                     "office": {"type": "cups", "queue": QUEUE, "format": "pdf", "layout": "thermal-50x25-300",
                                "timeout": 30}},
        "factory_printer": {"127.0.0.0/8": "fixture"},
        "products": {OTHER: {"factory_printer": "office"},
                     NOWHERE: {"factory_printer": {"10.20.0.0/16": "fixture"}},
                     BROKEN: {"factory_printer": "jammed"}},
    }


def start(data_dir: Path) -> Server:
    prepare(data_dir)
    with Store.open(data_dir / "station.db") as store:
        store.add_product(NOWHERE, "Nowhere", "Nowhere-01")
        store.add_product(BROKEN, "Broken", "Broken-01")
    (data_dir / "station.json5").write_text(json.dumps(config()))
    (data_dir / "jammed").write_text("a file where the printer's folder should be: every write fails")
    return Server(data_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start(tmp_path_factory.mktemp("station-data"))
    yield running
    assert running.stop() == 0


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def kinds(db: Path, code: str) -> list[str]:
    with Store.open(db) as store:
        return [e.kind for e in store.events(code)]


def event(db: Path, code: str, kind: str) -> dict[str, object]:
    with Store.open(db) as store:
        found = [e.details for e in store.events(code) if e.kind == kind]
    assert len(found) == 1, f"one {kind} event for {code}: {kinds(db, code)}"
    return found[0]


def state(db: Path, code: str) -> str:
    with Store.open(db) as store:
        return store.device(code).state


def labels(server: Server, code: str) -> list[Path]:
    return sorted((server.data_dir / "labels-out").glob(f"{code}-*.png"))


def printed(server: Server, code: str) -> None:
    """Wait for the label's event (written once the printer took the job)."""
    wait_for(f"the label of {code}", lambda: any(k in ("printed", "print-failed") for k in kinds(server.db, code)))


def test_the_first_block_holding_the_address_names_the_printer(tmp_path: Path) -> None:
    (tmp_path / "station.json5").write_text(json.dumps({
        "factory_printer": {"127.0.0.0/24": "near", "127.0.0.0/8": "far", "::1/128": "six"},
        "products": {OTHER: {"factory_printer": "office"}, NOWHERE: {"factory_printer": None}}}))
    loaded = config_mod.load(tmp_path)
    assert target(loaded, IOTO_BODY["product"], "127.0.0.9") == Target("near")  # first match wins
    assert target(loaded, IOTO_BODY["product"], "127.1.0.9") == Target("far")
    assert target(loaded, IOTO_BODY["product"], "::ffff:127.0.0.9") == Target("near")  # a dual-stack socket's client
    assert target(loaded, IOTO_BODY["product"], "::1") == Target("six")
    assert target(loaded, IOTO_BODY["product"], "10.0.0.1") == Target(None, "no factory_printer for address 10.0.0.1")
    assert target(loaded, IOTO_BODY["product"], "") == Target(None, "no factory_printer for address (none)")
    assert target(loaded, OTHER, "10.0.0.1") == Target("office")  # the product's own, a name: any address
    assert target(loaded, NOWHERE, "127.0.0.9").printer is None
    assert not target(loaded, NOWHERE, "127.0.0.9").configured  # no label wanted: no failure is recorded


def test_a_unit_that_serializes_itself_gets_its_label_from_the_fixtures_printer(server: Server) -> None:
    reply = server.serialize()  # the stock agent's body: no hardware key
    assert reply.status == 200
    code = reply.json["id"]
    printed(server, code)
    assert kinds(server.db, code) == ["issued", "printed"]
    details = event(server.db, code, "printed")
    assert details["printer"] == "fixture" and state(server.db, code) == "labeled"
    [label] = labels(server, code)
    assert str(label) == details["where"]
    assert qr_texts(png_image(label.read_bytes())) == [code]
    with Store.open(server.db) as store:
        assert [e.actor for e in store.events(code)] == ["device", "factory"]


def test_a_repeat_by_hardware_key_prints_nothing_and_one_without_gets_its_own_label(server: Server) -> None:
    unit = {**IOTO_BODY, "serial": "HW-REPEAT-1"}
    code = server.serialize(unit).json["id"]
    printed(server, code)
    assert server.serialize(unit).json["id"] == code  # restarted before its ID was saved: its UCI again
    # Labels print in issue order: once a later unit's label is out, a second one of the repeat would be too.
    later = server.serialize().json["id"]
    printed(server, later)
    assert kinds(server.db, code) == ["issued", "printed", "issued-repeat"]
    assert len(labels(server, code)) == 1

    again = server.serialize().json["id"]  # the stock agent without a hardware key asks again: a new unit
    assert again != later
    printed(server, again)
    assert kinds(server.db, again) == ["issued", "printed"]
    assert qr_texts(png_image(labels(server, again)[0].read_bytes())) == [again]


@pytest.mark.usefixtures("cups_queue")  # the queue is there (in CI, or a failure says how to set it up)
def test_a_product_of_its_own_prints_on_the_real_cups_queue(server: Server) -> None:
    code = server.serialize({**IOTO_BODY, "product": OTHER}).json["id"]
    printed(server, code)
    details = event(server.db, code, "printed")
    assert details["printer"] == "office" and QUEUE in str(details["where"])  # lp's "request id is ..."
    output = wait_for_pdf(code)
    pages = pdf_pages(output.read_bytes())
    output.unlink()
    assert qr_texts(pages[0]) == [code]
    assert state(server.db, code) == "labeled"


def test_a_printer_that_fails_leaves_the_uci_issued_with_its_reason(server: Server) -> None:
    reply = server.serialize({**IOTO_BODY, "product": BROKEN})
    assert reply.status == 200
    code = reply.json["id"]
    printed(server, code)
    details = event(server.db, code, "print-failed")
    assert details["printer"] == "jammed" and "cannot write the label" in str(details["error"])
    assert state(server.db, code) == "issued"


def test_an_address_that_no_fixture_holds_is_issued_and_not_printed(server: Server) -> None:
    code = server.serialize({**IOTO_BODY, "product": NOWHERE}, source="127.0.0.7").json["id"]
    printed(server, code)
    assert event(server.db, code, "print-failed") == {"error": "no factory_printer for address 127.0.0.7",
                                                      "remote": "127.0.0.7"}
    assert state(server.db, code) == "issued"
    assert labels(server, code) == []


def test_labels_queued_at_shutdown_print_or_are_recorded_as_not_printed(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    running = start(tmp_path / "data")
    codes = [running.serialize().json["id"] for _ in range(8)]
    assert running.stop() == 0  # SIGTERM right after the replies: the queue is still printing
    for code in codes:
        outcome = [k for k in kinds(running.db, code) if k in ("printed", "print-failed")]
        assert len(outcome) == 1, f"{code}: {kinds(running.db, code)}"
    assert count(running.db, "SELECT count(*) FROM events WHERE kind = 'printed' AND actor = 'factory'") == \
        len([c for c in codes if state(running.db, c) == "labeled"])


@pytest.mark.parametrize("setting", [
    {"factory_printer": "nowhere"},
    {"factory_printer": {"127.0.0.0/8": "nowhere"}},
    {"products": {OTHER: {"factory_printer": "nowhere"}}},
])
def test_a_factory_printer_that_names_no_printer_stops_the_station_at_start(tmp_path: Path, setting: dict) -> None:
    prepare(tmp_path)
    (tmp_path / config_mod.CONFIG_NAME).write_text(json.dumps(setting))
    with pytest.raises(AssertionError, match="no printer named 'nowhere'"):
        Server(tmp_path)
