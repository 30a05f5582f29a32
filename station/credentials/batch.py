"""Device files for unique-firmware builds of a product whose units get secrets: each ``<UCI>.json5`` carries
the unit's own fresh secret, which exists nowhere else once the file is flashed into its firmware image.

Files are written a chunk at a time, each file whole (``files.write_bytes``), and the chunk's hashes are
recorded after its files are on disk, in one transaction. A run that stops half way leaves files whose
secrets the station may not know yet: `station batch files NAME` writes every file anew with new secrets,
replacing the hashes (``secret-regenerated``), so no unit of the batch keeps a secret the station does not hold.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .. import files
from ..core.errors import Invalid
from ..core.models import Batch, Device, Product
from ..db.credentials import CredentialsTable
from .secret import new_secret, password_hash

CHUNK = 1000  # files written before their hashes are recorded in one transaction


def write_device_files(store: CredentialsTable, product: Product, devices: Iterable[Device],
                       folder: str | os.PathLike[str], iterations: int, actor: str, batch: Batch | None = None) -> int:
    """One ``<UCI>.json5`` per device with ``mqtt: {username, password}`` (the product's username rule and a
    fresh secret); only the hashes are recorded. The number of files written."""
    folder = Path(folder)
    count = 0
    pending: list[tuple[str, str, str]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for count, device in enumerate(devices, 1):  # noqa: B007 (the count is the result)
            secret = new_secret()
            username = product.credentials.mqtt_username(device.uci, product.id)
            files.write_bytes(folder / f"{device.uci}.json5", product.device_file(
                device.uci, device.serial, batch, mqtt={"username": username, "password": secret}))
            pending.append((device.uci, username, password_hash(secret, iterations)))
            if len(pending) == CHUNK:
                store.set_secrets(pending, actor)
                pending = []
        if pending:
            store.set_secrets(pending, actor)
    except OSError as exc:
        raise Invalid(f"cannot write device files into {folder}: {exc.strerror}; check the folder and free space, "
                      f"then write them again with `station batch files` (every file gets a new secret)") from exc
    return count
