"""Lists that production engineers bring: manufacturer serials for a batch, claim IDs made elsewhere for an
import. One value a line, or one column of a CSV file with a header row (a spreadsheet's export); each value
keeps its line number, so that a refusal names the line to fix."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .core.errors import Invalid, NotFound

MAX_ROWS = 100_000  # values in one list: its batch is one transaction (all or nothing), which a live line waits for
MAX_BYTES = 64 * 1024 * 1024


def read(path: str | os.PathLike[str], column: str | None = None) -> list[tuple[int, str]]:
    """``(line number, value)`` of every non-empty value: the named ``column`` of a CSV file, or without one,
    each line whole (a file whose first line holds a comma is read as CSV and needs ``column``)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise Invalid(f"{path} is larger than {MAX_BYTES // 2**20} MiB; split it into several lists")
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist") from None
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from exc
    return values(data, str(path), column)


def values(data: bytes, source: str, column: str | None = None) -> list[tuple[int, str]]:
    """``read``'s values of a list already in memory (an upload on the batches page); ``source`` names it in
    refusals."""
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's UTF-8 export starts with a BOM
    except UnicodeDecodeError as exc:
        raise Invalid(f"{source} is not UTF-8 text (byte {exc.start}); export it as UTF-8 CSV or plain text") from exc
    lines = text.splitlines()
    if column is None and lines and "," in lines[0]:
        raise Invalid(f"{source} is a CSV file (its first line has commas): name the column with --column")
    if column is None:
        rows = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    else:
        reader = csv.reader(io.StringIO(text))
        header = [name.strip() for name in next(reader, [])]
        if column not in header:
            raise Invalid(f"{source} has no column {column!r} (its columns: {', '.join(header) or 'none'})")
        at = header.index(column)
        rows = [(reader.line_num, row[at].strip()) for row in reader if len(row) > at and row[at].strip()]
    if not rows:
        raise Invalid(f"{source} holds no values")
    if len(rows) > MAX_ROWS:
        raise Invalid(f"{source} holds {len(rows):,} values; at most {MAX_ROWS:,} make one batch: split it")
    return rows

