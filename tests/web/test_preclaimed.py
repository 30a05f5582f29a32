"""Pre-claimed units (issue 15, point 5): a product carries the Ioto account and cloud; every device file the
station writes carries them, the agent sends them in its registration, and the station records them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.core.errors import Invalid
from station.store import Store
from tests.web.conftest import PRODUCT, Server, station

ACCOUNT, CLOUD = "01HACCOUNT0000000000000001", "01HCLOUD000000000000000001"


def test_a_pre_claimed_units_device_file_and_registration_carry_its_owner(server: Server, tmp_path: Path) -> None:
    done = station(server.data_dir, "product", "preclaimed", PRODUCT, "--account", ACCOUNT, "--cloud", CLOUD)
    assert ACCOUNT in done.stdout
    try:
        station(server.data_dir, "generate", "--product", PRODUCT, "--count", "1", "--batch", "pre-1",
                "--device-json", str(tmp_path / "files"))
        [path] = (tmp_path / "files").glob("*.json5")
        device = json.loads(path.read_text())
        assert (device["account"], device["cloud"]) == (ACCOUNT, CLOUD)
        reply = server.register(device)  # the agent sends its device object, account and cloud included
        assert reply.status == 200 and reply.json["registered"] is True and "token" not in reply.json
        with Store.open(server.db) as store:
            event = store.events(device["id"])[-1]
        assert event.kind == "registered" and (event.details["account"], event.details["cloud"]) == (ACCOUNT, CLOUD)
        bad = server.register({**device, "account": "not an id!"})
        assert bad.status == 400 and "account" in bad.json["error"]
    finally:
        station(server.data_dir, "product", "preclaimed", PRODUCT, "--none")


def test_an_owner_needs_both_ids(store: Store) -> None:
    with pytest.raises(Invalid, match="both"):
        store.set_product_owner(PRODUCT, ACCOUNT, None)
    with pytest.raises(Invalid, match="Ioto account ID"):
        store.set_product_owner(PRODUCT, "bad id", CLOUD)
    assert store.set_product_owner(PRODUCT, ACCOUNT, CLOUD).device_object("X")["account"] == ACCOUNT
    assert "account" not in store.set_product_owner(PRODUCT, None, None).device_object("X")
