"""Batch pre-generation speed: one million UCIs through `station generate`, against plain sqlite3 executemany.

Each station run is a fresh process calling the real CLI command (manifest off) on a fresh data directory;
its peak memory is that process's VmHWM. The baseline inserts the very rows the station
stored into a table of the same columns and indexes (DDL copied from the station's database), with the same
pragmas, through one plain `executemany` and commit. Prints medians of several runs.

--registry N also times the same batch into a station that already holds N devices (bench/registry.py: built
once with plain SQL and reused, copied cold for each run), in the same runs, and prints its time against the
batch into the empty station: a line that serializes for years must not slow down.

    python bench/generate.py [--count 1000000] [--runs 3] [--registry 9000000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def station_run(count: int, workdir: Path, template: Path | None = None) -> tuple[float, float, Path]:
    """Seconds and peak MB of one `station generate` in a child process, and its database: a fresh station, or
    a cold copy of the registry ``template``."""
    data = workdir / "data"
    if template:
        registry.cold_copy(template, data)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--registry", type=int, default=0, metavar="N",
                        help="also time the batch into a station that already holds N devices")
    args = parser.parse_args()
    template = registry.template(args.registry) if args.registry else None
    station_s, baseline_s, peaks, registry_s = [], [], [], []
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
    print(json.dumps(result))


if __name__ == "__main__":
    main()
