"""Pre-claimed units (issue 15, point 5): a product carries the Ioto account and cloud; every device file the
station writes carries them, the agent sends them in its registration, and the station records them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from station.core.errors import Invalid
from station.store import Store
from tests.web.conftest import PRODUCT, STATION, Server, station

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


def test_a_pre_claimed_batch_carries_its_own_owner_over_the_products(server: Server, tmp_path: Path) -> None:
    station(server.data_dir, "product", "preclaimed", PRODUCT, "--account", ACCOUNT, "--cloud", CLOUD)
    try:
        mine, theirs = "01HBATCHACCOUNT00000000001", "01HBATCHCLOUD0000000000001"
        station(server.data_dir, "generate", "--product", PRODUCT, "--count", "2", "--batch", "pre-batch",
                "--account", mine, "--cloud", theirs, "--device-json", str(tmp_path / "batch"))
        serials = tmp_path / "serials.txt"
        serials.write_text("SN-PRE-1\n")
        station(server.data_dir, "generate", "--product", PRODUCT, "--serials", str(serials), "--batch", "pre-serials",
                "--account", mine, "--cloud", theirs, "--device-json", str(tmp_path / "serials"))
        station(server.data_dir, "generate", "--product", PRODUCT, "--count", "1", "--batch", "pre-product",
                "--device-json", str(tmp_path / "product"))
        for folder, owner in (("batch", (mine, theirs)), ("serials", (mine, theirs)), ("product", (ACCOUNT, CLOUD))):
            for path in (tmp_path / folder).glob("*.json5"):
                device = json.loads(path.read_text())
                assert (device["account"], device["cloud"]) == owner, folder
        with Store.open(server.db) as store:
            assert (store.batch("pre-batch").account, store.batch("pre-batch").cloud) == (mine, theirs)
        half = server.data_dir / "half"
        refused = subprocess.run(
            [*STATION, "--data-dir", str(server.data_dir), "generate", "--product", PRODUCT, "--count", "1", "--account", mine, "--device-json", str(half)],
            capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode == 1 and "both --account and --cloud" in refused.stderr and not half.exists()
    finally:
        station(server.data_dir, "product", "preclaimed", PRODUCT, "--none")


def test_a_batchs_owner_is_checked_before_anything_is_stored(store: Store) -> None:
    with pytest.raises(Invalid, match="Ioto cloud ID"):
        store.generate_batch(PRODUCT, 3, owner=(ACCOUNT, "not an id"))
    with pytest.raises(Invalid, match="Ioto account ID"):
        store.import_batch(PRODUCT, [(1, "0123456789")], owner=("no good", CLOUD))
    assert store.batches() == [] and list(store.devices()) == []
