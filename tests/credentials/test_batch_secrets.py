"""Unique-firmware builds of a product with secrets: `station generate --device-json` writes each unit's fresh
secret into its device file only; the station keeps the hash, and writing the files again replaces them all."""

from __future__ import annotations

import json
from pathlib import Path

from station.credentials.secret import verify
from station.store import Store
from tests.credentials.run import fails, station

PRODUCT = "01H4R15D3478JD26YDYK408XE6"


def files_of(folder: Path) -> dict[str, dict[str, object]]:
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json5")}


def test_each_device_file_carries_its_own_secret_and_only_the_hash_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    station(data, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    station(data, "product", "credentials", PRODUCT, "--kinds", "secret", "--username", "dev-{uci}")
    (data / "station.json5").write_text("{secret_iterations: 7}")
    station(data, "generate", "--product", PRODUCT, "--count", "5", "--batch", "fw-1", "--device-json", str(tmp_path / "fw"))
    written = files_of(tmp_path / "fw")
    assert len(written) == 5
    with Store.open(data / "station.db") as store:
        hashes = dict(store.secret_lines())
        for uci, device in written.items():
            mqtt = device["mqtt"]
            assert isinstance(mqtt, dict) and device["id"] == uci and mqtt["username"] == f"dev-{uci}"
            assert hashes[f"dev-{uci}"].startswith("$7$7$") and verify(hashes[f"dev-{uci}"], mqtt["password"])
        kinds = [e.kind for e in store.events(next(iter(written)))]
    assert kinds == ["batch-issued", "secret-made"]
    secrets = [str(device["mqtt"]["password"]) for device in written.values()]  # type: ignore[index]
    stored = b"".join(path.read_bytes() for path in data.iterdir() if path.is_file())
    assert len(set(secrets)) == 5 and not any(secret.encode() in stored for secret in secrets)

    station(data, "batch", "files", "fw-1", "--device-json", str(tmp_path / "again"))
    again = files_of(tmp_path / "again")
    with Store.open(data / "station.db") as store:
        hashes = dict(store.secret_lines())
        for uci, device in again.items():
            new, old = device["mqtt"]["password"], written[uci]["mqtt"]["password"]  # type: ignore[index]
            assert new != old and verify(hashes[f"dev-{uci}"], new) and not verify(hashes[f"dev-{uci}"], old)
        assert store.events(uci)[-1].kind == "secret-regenerated"


def test_device_files_into_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    station(data, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    station(data, "product", "credentials", PRODUCT, "--kinds", "secret")
    (tmp_path / "taken").write_text("a file, not a folder")
    fails(data, "generate", "--product", PRODUCT, "--count", "2", "--batch", "fw-2", "--device-json",
          str(tmp_path / "taken" / "fw"), message="station batch files")
    with Store.open(data / "station.db") as store:
        assert store.secret_lines() == []
