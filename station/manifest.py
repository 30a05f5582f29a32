"""Manifests and exports: devices streamed to CSV, JSON or one device.json5 each, without holding a batch in memory."""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, tzinfo
from pathlib import Path
from typing import IO

from . import files, times
from .core.errors import Invalid
from .store import Batch, Device, Product

COLUMNS = ("uci", "display", "product", "batch", "state", "serial", "created", "provisioning")
FORMATS = ("csv", "json")


# A cell that starts with one of these is run as a formula by spreadsheets (OWASP's "CSV Injection"): a serial
# scanned or sent as `=HYPERLINK(...)`, `+cmd|...`, `@SUM(...)` or `-2+3`, or led by a tab or a carriage return.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _row(device: Device, zone: tzinfo) -> dict[str, object]:
    row = {column: getattr(device, column) for column in COLUMNS}
    row["created"] = times.exported(device.created, zone)  # the station's zone, its offset named, as on its pages
    return row


def csv_cell(value: object) -> object:
    """A value as a CSV cell a spreadsheet shows and never runs: text that would start a formula gets a leading
    single quote (OWASP's rule). Only CSV goes through here: JSON keeps every value exact."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def checked(devices: Iterable[Device]) -> Iterator[Device]:
    """The devices, with the first one already read: a look-up's error (an unknown product or batch) comes
    out before a header or a file is written."""
    iterator = iter(devices)
    first = next(iterator, None)
    return iterator if first is None else itertools.chain([first], iterator)


def write(devices: Iterable[Device], out: IO[str], fmt: str, zone: tzinfo = UTC) -> int:
    """Write devices in ``fmt`` and return how many; JSON is an array written item by item. Times are in
    ``zone`` (the station's: ``config.zone``), with their offset."""
    if fmt not in FORMATS:
        raise Invalid(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    devices = checked(devices)
    count = 0
    if fmt == "csv":
        # RFC 4180's CRLF: the csv module quotes only cells holding the line terminator's characters, and a CR
        # in an unquoted cell (stored by a station of before the field rules) would break the row apart.
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for count, device in enumerate(devices, 1):  # noqa: B007 (the count is the result)
            writer.writerow({column: csv_cell(value) for column, value in _row(device, zone).items()})
    else:
        out.write("[")
        for count, device in enumerate(devices, 1):  # noqa: B007 (the count is the result)
            out.write(("\n" if count == 1 else ",\n") + json.dumps(_row(device, zone)))
        out.write("\n]\n" if count else "]\n")
    return count


def write_file(devices: Iterable[Device], path: str | os.PathLike[str], fmt: str, zone: tzinfo = UTC) -> int:
    """Write to a file whole or not at all (files.replacing): a failed run leaves no half manifest, and a link
    planted at the name or beside it is never written through."""
    path = Path(path)
    devices = checked(devices)
    try:
        with files.replacing(path) as out:
            return write(devices, out, fmt, zone)
    except OSError as exc:
        raise Invalid(f"cannot write {path}: {exc.strerror}; check the folder and free space") from exc


def device_files(product: Product, devices: Iterable[Device], batch: Batch | None = None) -> Iterator[tuple[str, bytes]]:
    """``(<UCI>.json5, its bytes)`` per device of ``batch``: the device object with its UCI, for unique-firmware builds."""
    for device in devices:
        yield f"{device.uci}.json5", product.device_file(device.uci, device.serial, batch)


def write_device_files(named: Iterable[tuple[str, bytes]], folder: str | os.PathLike[str]) -> int:
    """Each ``(name, bytes)`` as a file of ``folder``, whole (files.write_bytes); how many."""
    folder = Path(folder)
    count = 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for count, (name, data) in enumerate(named, 1):  # noqa: B007 (the count is the result)
            files.write_bytes(folder / name, data)
    except OSError as exc:
        raise Invalid(f"cannot write device files into {folder}: {exc.strerror}; check the folder and free space, "
                      f"then write them again (`station batch files`; with secrets, every file gets a new one)") from exc
    return count
