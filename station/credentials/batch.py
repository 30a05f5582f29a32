"""Device files for unique-firmware builds of a product whose units get secrets: each ``<UCI>.json5`` carries
the unit's own fresh secret, which exists nowhere else once the file is flashed into its firmware image.

Files are handed on a chunk at a time (to a folder, each file whole, or into a zip), and the chunk's hashes
are recorded after its files were taken, in one transaction. A run that stops half way leaves files whose
secrets the station may not know yet: `station batch files NAME` writes every file anew with new secrets,
replacing the hashes (``secret-regenerated``), so no unit of the batch keeps a secret the station does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..core.models import Batch, Device, Product
from ..db.credentials import CredentialsTable
from .secret import new_secret, password_hash

CHUNK = 1000  # files written before their hashes are recorded in one transaction


def device_files(store: CredentialsTable, product: Product, devices: Iterable[Device], iterations: int, actor: str,
                 batch: Batch | None = None) -> Iterator[tuple[str, bytes]]:
    """``(<UCI>.json5, its bytes)`` per device with ``mqtt: {username, password}`` (the product's username rule and
    a fresh secret); a chunk's hashes are recorded once the caller took its files, so only hashes are kept."""
    pending: list[tuple[str, str, str]] = []
    for device in devices:
        secret = new_secret()
        username = product.credentials.mqtt_username(device.uci, product.id)
        yield f"{device.uci}.json5", product.device_file(device.uci, device.serial, batch,
                                                         mqtt={"username": username, "password": secret})
        pending.append((device.uci, username, password_hash(secret, iterations)))
        if len(pending) == CHUNK:
            store.set_secrets(pending, actor)
            pending = []
    if pending:
        store.set_secrets(pending, actor)
