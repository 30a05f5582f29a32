"""Batch pre-generation speed: one million UCIs through `station generate`, against plain sqlite3 executemany.

Each station run is a fresh process calling the real CLI command (manifest off) on a fresh data directory;
its peak memory is that process's VmHWM. The baseline inserts the very rows the station
stored into a table of the same columns and indexes (DDL copied from the station's database), with the same
pragmas, through one plain `executemany` and commit. Prints medians of several runs.

--registry N also times the same batch into a station that already holds N devices (bench/registry.py: built
once with plain SQL and reused, copied cold for each run), in the same runs, and prints its time against the
batch into the empty station: a line that serializes for years must not slow down.

--database URL (a PostgreSQL server and a role that may CREATE DATABASE, such as
postgresql://station_test:station_test@127.0.0.1:5432/station_test) also times the same batch into a shared
registry, in the same runs: for each run a fresh database of that server (bench/pgregistry.py, dropped at the
end), migrated, named by the station.json5 of a fresh data directory; the child is the same, so the batch goes
through COPY as on a real registry. Prints its time against the SQLite station's (postgres/sqlite, target
<= 2), the child's peak memory (target < 400 MB), and a plain baseline on the same server: the rows the station
stored, through one COPY into a table of the same columns and indexes (LIKE devices INCLUDING ALL, which has no
foreign keys, as the SQLite baseline checks none).

    python bench/generate.py [--count 1000000] [--runs 3] [--registry 9000000] [--database URL]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from station.config import DATABASE_ENV

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pgregistry  # noqa: E402  (bench/pgregistry.py, beside this file)
import registry  # noqa: E402  (bench/registry.py, beside this file)

PRODUCT = "01H4R15D3478JD26YDYK408XE6"

# Runs in the child: times the `generate` command itself, without the interpreter's start-up.
CHILD = """
import sys, time
from station.cli import cli
if sys.argv[4] == "new":
    cli.main(["--data-dir", sys.argv[1], "product", "add", "--id", sys.argv[2], "--name", "Blank", "--model", "Blank-01"],
             standalone_mode=False)
start = time.perf_counter()
cli.main(["--data-dir", sys.argv[1], "generate", "--product", sys.argv[2], "--count", sys.argv[3], "--batch", "bench"],
         standalone_mode=False)
print("ELAPSED", time.perf_counter() - start)
# VmHWM is this process image's peak resident set (ru_maxrss would carry the parent's over fork and exec).
print("PEAK_KB", next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def station_run(count: int, workdir: Path, template: Path | None = None,
                database: str | None = None) -> tuple[float, float, Path]:
    """Seconds and peak MB of one `station generate` in a child process, and its SQLite file: a fresh station, a
    cold copy of the registry ``template``, or (the file unused) a station on the empty registry at ``database``."""
    data = workdir / "data"
    if template:
        registry.cold_copy(template, data)
    if database:
        pgregistry.point(data, pgregistry.migrated(database))
    out = subprocess.run([sys.executable, "-c", CHILD, str(data), PRODUCT, str(count), "registry" if template else "new"],
                         capture_output=True, text=True, check=True).stdout
    figures = dict(line.split() for line in out.splitlines() if line.startswith(("ELAPSED", "PEAK_KB")))
    return float(figures["ELAPSED"]), int(figures["PEAK_KB"]) / 1024, data / "station.db"


def baseline_run(station_db: Path, workdir: Path) -> float:
    """Seconds for the same rows through one plain executemany into a table of the same shape."""
    source = sqlite3.connect(station_db)
    ddl = [sql for (sql,) in source.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'devices' AND sql IS NOT NULL ORDER BY type DESC")]
    rows = source.execute("SELECT uci, product, batch, state FROM devices").fetchall()
    source.close()
    conn = sqlite3.connect(workdir / "baseline.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    for sql in ddl:
        conn.execute(sql)
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO devices(uci, product, batch, state) VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def copy_baseline(url: str) -> float:
    """Seconds for the rows the station stored in the registry at ``url`` through one plain COPY, committed, into a
    table of the same columns and indexes."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE plain_devices (LIKE devices INCLUDING ALL)")
        rows = conn.execute("SELECT uci, product, batch, state FROM devices ORDER BY rowid").fetchall()
        start = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor, \
                cursor.copy("COPY plain_devices (uci, product, batch, state) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--registry", type=int, default=0, metavar="N",
                        help="also time the batch into a station that already holds N devices")
    parser.add_argument("--database", metavar="URL",
                        help="also time the batch into a fresh database of this PostgreSQL server, for each run")
    args = parser.parse_args()
    template = registry.template(args.registry) if args.registry else None
    os.environ.pop(DATABASE_ENV, None)  # each data directory's station.json5 says where its station's database is
    station_s, baseline_s, peaks, registry_s = [], [], [], []
    postgres_s, copy_s, postgres_peaks = [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
            elapsed, peak, db = station_run(args.count, Path(tmp))
            base = baseline_run(db, Path(tmp))
        station_s.append(elapsed)
        baseline_s.append(base)
        peaks.append(peak)
        line = f"run {run + 1}: station {elapsed:.2f} s, baseline {base:.2f} s"
        if template:
            with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
                into, peak, _ = station_run(args.count, Path(tmp), template)
            registry_s.append(into)
            peaks.append(peak)
            line += f", station into {args.registry:,} devices {into:.2f} s ({into / elapsed:.2f}x)"
        if args.database:
            with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp, pgregistry.fresh(args.database) as url:
                on_pg, peak, _ = station_run(args.count, Path(tmp), database=url)
                plain = copy_baseline(url)
            postgres_s.append(on_pg)
            copy_s.append(plain)
            postgres_peaks.append(peak)
            line += f", postgres {on_pg:.2f} s ({on_pg / elapsed:.2f}x, {peak:.0f} MB), plain COPY {plain:.2f} s"
        print(line, flush=True)
    s, b = statistics.median(station_s), statistics.median(baseline_s)
    result = {
        "count": args.count,
        "station_s": round(s, 3), "station_ucis_per_s": round(args.count / s),
        "baseline_s": round(b, 3), "baseline_ucis_per_s": round(args.count / b),
        "time_ratio_station_over_baseline": round(s / b, 3),
        "peak_rss_mb": round(max(peaks), 1),
    }
    print(f"station generate: {result['station_ucis_per_s']:,} UCIs/s ({s:.2f} s median of {args.runs})")
    print(f"plain executemany baseline: {result['baseline_ucis_per_s']:,} UCIs/s ({b:.2f} s)")
    print(f"time ratio station/baseline: {result['time_ratio_station_over_baseline']} (target <= 1.5)")
    print(f"peak memory of a station run: {result['peak_rss_mb']} MB (target < 400)")
    if registry_s:
        r = statistics.median(registry_s)
        result.update(registry=args.registry, registry_s=round(r, 3), registry_over_empty=round(r / s, 3))
        print(f"into a registry of {args.registry:,} devices (cold): {r:.2f} s median, {r / s:.2f} times the empty "
              f"station's (target <= 1.3)")
    if postgres_s:
        p, c = statistics.median(postgres_s), statistics.median(copy_s)
        result.update(postgres_s=round(p, 3), postgres_ucis_per_s=round(args.count / p), copy_baseline_s=round(c, 3),
                      time_ratio_postgres_over_sqlite=round(p / s, 3), time_ratio_postgres_over_copy=round(p / c, 3),
                      postgres_peak_rss_mb=round(max(postgres_peaks), 1))
        print(f"station generate on PostgreSQL: {result['postgres_ucis_per_s']:,} UCIs/s ({p:.2f} s median of "
              f"{args.runs})")
        print(f"plain COPY baseline on the same server: {round(args.count / c):,} UCIs/s ({c:.2f} s); time ratio "
              f"postgres station/plain COPY: {result['time_ratio_postgres_over_copy']}")
        print(f"time ratio postgres/sqlite station: {result['time_ratio_postgres_over_sqlite']} (target <= 2)")
        print(f"peak memory of a postgres station run: {result['postgres_peak_rss_mb']} MB (target < 400)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
