"""Manifests and exports: devices streamed to CSV, JSON or one device.json5 each, without holding a batch in memory."""

from __future__ import annotations

import csv
import itertools
import json
import os
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import Invalid
from .store import Device, Product

COLUMNS = ("uci", "display", "product", "batch", "state", "serial", "created")
FORMATS = ("csv", "json")


def _row(device: Device) -> dict[str, object]:
    return {column: getattr(device, column) for column in COLUMNS}


def checked(devices: Iterable[Device]) -> Iterator[Device]:
    """The devices, with the first one already read: a look-up's error (an unknown product or batch) comes
    out before a header or a file is written."""
    iterator = iter(devices)
    first = next(iterator, None)
    return iterator if first is None else itertools.chain([first], iterator)


def write(devices: Iterable[Device], out: IO[str], fmt: str) -> int:
    """Write devices in ``fmt`` and return how many; JSON is an array written item by item."""
    if fmt not in FORMATS:
        raise Invalid(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    devices = checked(devices)
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for count, device in enumerate(devices, 1):
            writer.writerow(_row(device))
    else:
        out.write("[")
        for count, device in enumerate(devices, 1):
            out.write(("\n" if count == 1 else ",\n") + json.dumps(_row(device)))
        out.write("\n]\n" if count else "]\n")
    return count


def write_file(devices: Iterable[Device], path: str | os.PathLike[str], fmt: str) -> int:
    """Write to a file through a temporary name, so that a failed run leaves no half manifest."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    devices = checked(devices)
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            count = write(devices, out, fmt)
        os.replace(tmp, path)
    except OSError as exc:
        raise Invalid(f"cannot write {path}: {exc.strerror}; check the folder and free space") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return count


def write_device_files(product: Product, devices: Iterable[Device], folder: str | os.PathLike[str]) -> int:
    """One ``<UCI>.json5`` per device: the device object with its UCI, for unique-firmware builds."""
    folder = Path(folder)
    count = 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for count, device in enumerate(devices, 1):
            (folder / f"{device.uci}.json5").write_bytes(product.device_file(device.uci))
    except OSError as exc:
        raise Invalid(f"cannot write device files into {folder}: {exc.strerror}; check the folder and free space") from exc
    return count
