"""A batch's device files, one way for `station generate --device-json`, `station batch files` and the batches
page: for a product whose units get secrets, every file carries a fresh one and the station keeps its hash."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import IO

from . import manifest
from .config import Config
from .core.errors import Invalid
from .credentials import batch as batch_credentials
from .store import Batch, Store


def owner(account: str | None, cloud: str | None) -> tuple[str, str] | None:
    """A pre-claimed batch's Ioto account and cloud (both, or neither)."""
    if (account is None) != (cloud is None):
        raise Invalid("a pre-claimed batch needs both an account and a cloud (in the CLI: both --account and --cloud)")
    return (account, cloud) if account is not None and cloud is not None else None


def write_device_files(store: Store, config: Config, batch: Batch, folder: str | os.PathLike[str], actor: str) -> int:
    """``<UCI>.json5`` for every device of the complete ``batch`` into ``folder``; how many. Where the product's
    units get secrets, each file gets a new one (the hash replaces the stored one, recorded for ``actor``)."""
    product, devices = store.product(batch.product), store.devices(batch=store.usable_batch(batch.name).name)
    if product.credentials.secret:
        return batch_credentials.write_device_files(store, product, devices, folder, config.get("secret_iterations"),
                                                    actor, batch)
    return manifest.write_device_files(product, devices, folder, batch)


def zip_device_files(store: Store, config: Config, batch: Batch, out: IO[bytes], actor: str) -> int:
    """The batch's device files as one zip of ``<UCI>.json5`` written to ``out`` (a download); how many. They pass
    through a private temporary folder (mode 0700, removed at once): secrets are never kept by the station."""
    with tempfile.TemporaryDirectory(prefix="station-device-files-") as folder:
        count = write_device_files(store, config, batch, folder, actor)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(Path(folder).iterdir()):
                archive.write(path, path.name)
    return count
