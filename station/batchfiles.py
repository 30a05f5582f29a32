"""A batch's device files, one way for `station generate --device-json`, `station batch files` and the batches
page: for a product whose units get secrets, every file carries a fresh one and the station keeps its hash."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
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


def device_files(store: Store, config: Config, batch: Batch, actor: str) -> Iterator[tuple[str, bytes]]:
    """``(<UCI>.json5, its bytes)`` for every device of the complete ``batch``. Where the product's units get
    secrets, each file gets a new one (the hash replaces the stored one, recorded for ``actor``)."""
    product, devices = store.product(batch.product), store.devices(batch=store.usable_batch(batch.name).name)
    if product.credentials.secret:
        return batch_credentials.device_files(store, product, devices, config.get("secret_iterations"), actor, batch)
    return manifest.device_files(product, devices, batch)


def write_device_files(store: Store, config: Config, batch: Batch, folder: str | os.PathLike[str], actor: str) -> int:
    """The batch's device files into ``folder`` (`station generate --device-json`, `station batch files`); how many."""
    return manifest.write_device_files(device_files(store, config, batch, actor), folder)


def zip_device_files(store: Store, config: Config, batch: Batch, out: IO[bytes], actor: str) -> int:
    """The batch's device files as one zip of ``<UCI>.json5`` written to ``out`` (a download); how many. They go
    straight into the zip: no secret is written to a file of the station."""
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for count, (name, data) in enumerate(device_files(store, config, batch, actor), 1):  # noqa: B007 (the count)
            archive.writestr(name, data)
    return count
