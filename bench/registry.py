"""A station that already holds N devices, for the benchmarks' ``--registry N``: built once, reused, copied cold.

Building ten million devices through `station generate` would take minutes, so the template is written with
plain SQL, a million at a time, each million sorted in one transaction as the station stores a batch, into a
database the station itself created (same schema, pragmas and indexes): its UCI index has the pages of a
registry grown batch after batch, not the denser ones of one sorted load. It is kept in the temporary folder
under a name with N and the schema version, and each run gets a fresh copy whose pages are dropped from the
operating system's page cache: the run starts cold, as a station does after a reboot.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from station.core import uci
from station.store import SCHEMA_VERSION, Store, now

PRODUCT = "01H4R15D3478JD26YDYK408XE6"
PIECE = 500_000  # UCIs per INSERT while building
BATCH = 1_000_000  # UCIs per batch while building: the pages of the UCI index fill as a real line's do


def template(devices: int) -> Path:
    """The template database holding ``devices`` devices of the Blank product; built on first use."""
    folder = Path(tempfile.gettempdir()) / f"station-bench-registry-{devices}-v{SCHEMA_VERSION}-batches"
    db = folder / "station.db"
    if (folder / "complete").exists():
        return db
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    print(f"building a registry of {devices:,} devices in {folder} (once)", flush=True)
    with Store.open(db) as store:
        store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        stored = 0
        for n in range(-(-devices // BATCH)):  # as a line's registry grows: batch after batch, each in key order
            count = min(BATCH, devices - stored)
            with store.transaction() as conn:
                batch = conn.execute(
                    "INSERT INTO batches(name, product, count, created, actor, complete, issued) "
                    "VALUES (?, ?, 0, ?, 'bench', 1, 0)", (f"registry-{n}", PRODUCT, now())).lastrowid
                codes = sorted(uci.generate_many(count))
                added = sum(conn.execute(
                    "INSERT OR IGNORE INTO devices(uci, product, batch, state) "
                    "SELECT value, ?, ?, 'issued' FROM json_each(?)",
                    (PRODUCT, batch, json.dumps(codes[i : i + PIECE]))).rowcount for i in range(0, count, PIECE))
                conn.execute("UPDATE batches SET count = ?, issued = ? WHERE id = ?", (added, added, batch))
            stored += added
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (folder / "complete").touch()
    print(f"built in {time.perf_counter() - started:.0f} s ({db.stat().st_size / 2**20:,.0f} MB)", flush=True)
    return db


def cold_copy(source: Path, data_dir: Path) -> Path:
    """A copy of the template as ``data_dir``/station.db, on disk and out of the page cache."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "station.db"
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages cannot be dropped: write them first
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return target
