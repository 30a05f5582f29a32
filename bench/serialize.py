"""Throughput and latency of POST /ioto/serialize against a minimal baseline, measured in the same run.

Starts `station serve` on a free port in a fresh data directory (with the Blank product), loads it with the
Ioto body from wrk (a separate C process, light enough to share 2 cores with the server) at concurrency 16,
then loads the baseline the same way: a few-line Flask app on the same server settings (Granian, one process
of 16 threads) that inserts and
commits one row per request on the same SQLite settings (WAL, synchronous=FULL). Prints requests/s, p50 and
p99 latency and errors for both, the ratio, and checks that every 200 left one stored device. --ceiling adds
a Flask app that answers without a database: what Flask on Granian alone reaches on this machine now.

    python bench/serialize.py [--duration 10] [--runs 3] [--concurrency 16] [--keep-alive] [--ceiling]
                              [--registry N] [--database URL]

--registry N also loads a station that already holds N devices (bench/registry.py: built once with plain SQL,
reused), started for each run on a fresh copy dropped from the page cache (cold, as after a reboot), and prints
its requests/s against the near-empty station's: a registry that grows for years must not slow the line.

--database URL (a PostgreSQL server and a role that may CREATE DATABASE, such as
postgresql://station_test:station_test@127.0.0.1:5432/station_test) also loads stations on a shared registry: a
fresh database of that server for this run (bench/pgregistry.py, dropped at the end), migrated once, which two
data directories name in their station.json5. First one `station serve` on it, as the SQLite station was loaded;
then both stations' servers at once, each by its own wrk at the same concurrency (two lines on one registry),
their requests/s summed. Both are printed against the SQLite station of the same run (postgres/sqlite; target
>= 0.8 for the one station): what a station gives up by sharing its registry, where every transaction takes
the registry's write lock and stores a commit token over the network.

Each server takes --runs loads in a row; the figures are the medians of the runs. The CPU time the virtual
machine lost to its host (steal) and spent waiting for the disk (iowait) are printed for each run: on a shared
machine they explain outlying runs.

Needs wrk (Debian: apt-get install -y wrk). Without --keep-alive each request opens a new connection, as
an Ioto agent does; wrk's latency counts from the request's first byte, so connect time is not in it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pgregistry  # noqa: E402  (bench/pgregistry.py, beside this file)
import registry  # noqa: E402  (bench/registry.py, beside this file)

BODY = '{"product":"01H4R15D3478JD26YDYK408XE6","name":"Blank","description":"Blank slate app","model":"Blank-01"}'
PRODUCT = "01H4R15D3478JD26YDYK408XE6"
START_TIMEOUT = 30.0
STATION = [sys.executable, "-c", "from station.cli import main; main()"]  # the `station` command of this Python

LUA = """
wrk.method = "POST"
wrk.body = '%(body)s'
wrk.headers["Content-Type"] = "application/json"
%(close)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%%d,"seconds":%%f,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,"p50_ms":%%f,"p99_ms":%%f,"max_ms":%%f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def reference_server(kind: str, db_path: str, threads: int) -> None:
    """The baseline (one row inserted and committed per request, on the station's SQLite settings), or the
    ceiling (the same app without the database), on the station's server settings: Granian, one process."""
    import functools
    import socket

    from granian.constants import Interfaces
    from granian.server import MPServer

    with socket.socket() as probe:  # a free port, for the benchmark only
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = MPServer(kind, address="127.0.0.1", port=port, interface=Interfaces.WSGI, workers=1,
                      blocking_threads=threads, log_enabled=False)
    print(f"serving http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.serve(target_loader=functools.partial(_reference_app, kind, db_path), wrap_loader=False)


def _reference_app(kind: str, db_path: str) -> Any:
    from flask import Flask, jsonify, request

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS devices(id INTEGER PRIMARY KEY, uci TEXT UNIQUE, body TEXT)")
    lock = threading.Lock()
    app = Flask(kind)

    @app.post("/ioto/serialize")
    def serialize():  # type: ignore[no-untyped-def]
        code = secrets.token_hex(10)
        if kind == "baseline":
            with lock:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO devices(uci, body) VALUES (?, ?)", (code, request.get_data()))
                conn.execute("COMMIT")
        return jsonify(id=code)

    return app


def serve(data_dir: Path) -> list[str]:
    """The `station serve` command of a station of ``data_dir``, on a free port."""
    return [*STATION, "--data-dir", str(data_dir), "serve", "--port", "0"]


@contextlib.contextmanager
def serving(commands: list[list[str]], logs: Path) -> Iterator[list[str]]:
    """The servers of ``commands``, started one after the other and all running: their URLs. Each logs to
    ``logs`` with its number; all are stopped when the block ends."""
    with contextlib.ExitStack() as servers:
        urls = []
        for n, command in enumerate(commands, 1):
            proc, url = start(command, logs.with_name(f"{logs.name}-{n}.log"))
            servers.callback(stop, proc)
            urls.append(url)
        yield urls


def start(command: list[str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server whose stderr names its URL; wait (bounded) until it does."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"http://127\.0\.0\.1:\d+", log.read_text(errors="replace"))
        if found and _accepts(found.group(0)):
            return proc, found.group(0)
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"server did not start: {' '.join(command)}\n{log.read_text(errors='replace')[-2000:]}")


def _accepts(url: str) -> bool:
    """Whether the server named in its log takes connections yet (Granian names its port before it listens)."""
    import socket

    host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def cpu_times() -> list[int]:
    """The machine's CPU time counters (user nice system idle iowait irq softirq steal), from /proc/stat."""
    return [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def load(urls: list[str], args: argparse.Namespace, work: Path) -> dict[str, float]:
    """One wrk run against each of ``urls`` (/ioto/serialize), all at the same time; their figures (requests/s,
    requests and errors summed, latencies the worst of them), with the shares of CPU time stolen and spent
    waiting for the disk meanwhile."""
    before = cpu_times()
    script = work / "post.lua"
    script.write_text(LUA % {"body": BODY, "close": "" if args.keep_alive else 'wrk.headers["Connection"] = "close"'})
    wrks = [subprocess.Popen(["wrk", f"-t{args.wrk_threads}", f"-c{args.concurrency}", f"-d{args.duration}s",
                              "--timeout", "10s", "-s", str(script), f"{url}/ioto/serialize"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for url in urls]
    each = []
    for wrk in wrks:
        out, err = wrk.communicate()
        if wrk.returncode:
            raise subprocess.CalledProcessError(wrk.returncode, wrk.args, out, err)
        figures = json.loads(out.split("RESULT ", 1)[1])
        figures["rps"] = figures["requests"] / figures["seconds"]
        each.append(figures)
    result = {key: sum(f[key] for f in each) for key in ("rps", "requests")}
    result.update({key: max(f[key] for f in each) for key in ("p50_ms", "p99_ms", "max_ms")})
    result["errors"] = sum(int(f[k]) for f in each for k in ("connect", "read", "write", "status", "timeout"))
    spent = [b - a for a, b in zip(before, cpu_times(), strict=True)]
    result["steal"] = 100 * spent[7] / max(1, sum(spent))
    result["iowait"] = 100 * spent[4] / max(1, sum(spent))
    return result


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def row(label: str, f: dict[str, float]) -> str:
    """One line of the table: a run's figures, or the medians of a server's runs."""
    return (f"{label:14s}{f['rps']:12.0f}{f['p50_ms']:9.2f}{f['p99_ms']:9.2f}{f['max_ms']:9.1f}{f['errors']:8d}"
            f"{f['requests']:10d}{f['steal']:9.1f}{f['iowait']:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server [10]")
    parser.add_argument("--runs", type=int, default=3, help="loads of each server; the medians are printed [3]")
    parser.add_argument("--concurrency", type=int, default=16, help="connections at once [16]")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads [1: leaves the cores to the server]")
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections (Ioto agents do not)")
    parser.add_argument("--ceiling", action="store_true", help="also load a Flask app that answers without a database")
    parser.add_argument("--registry", type=int, default=0, metavar="N",
                        help="also load a station holding N devices, cold for each run")
    parser.add_argument("--database", metavar="URL",
                        help="also load one, then two stations on a fresh database of this PostgreSQL server")
    parser.add_argument("--reference-server", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    from station.config import DATABASE_ENV
    from station.serve.server import THREADS
    from station.store import Store

    if args.reference_server:
        reference_server(*args.reference_server, THREADS)
        return
    if not shutil.which("wrk"):
        sys.exit("bench/serialize.py needs wrk: apt-get install -y wrk")
    os.environ.pop(DATABASE_ENV, None)  # each data directory's station.json5 says where its station's database is

    shared = pgregistry.fresh(args.database) if args.database else contextlib.nullcontext(None)
    with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp, shared as url:
        work = Path(tmp)
        # Each database and the servers whose 200s should each have left one device in it.
        databases: dict[str | Path, list[str]] = {work / "data" / "station.db": ["station"]}
        servers = {
            "station": [serve(work / "data")],
            "baseline": [[sys.executable, __file__, "--reference-server", "baseline", str(work / "baseline.db")]],
        }
        if args.ceiling:
            servers["ceiling"] = [[sys.executable, __file__, "--reference-server", "ceiling", str(work / "ceiling.db")]]
        if url:
            databases[url] = ["postgres", "postgres-x2"]
            servers["postgres"] = [serve(pgregistry.point(work / "postgres-1", url))]
            servers["postgres-x2"] = [*servers["postgres"], serve(pgregistry.point(work / "postgres-2", url))]
        (work / "data").mkdir()
        for database in databases:
            with Store.open(database, migrate=True) as store:  # a registry's schema is made here, once
                store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        runs: dict[str, list[dict[str, float]]] = {}
        for name, commands in servers.items():
            with serving(commands, work / name) as urls:
                runs[name] = [load(urls, args, work) for _ in range(args.runs)]
        if args.registry:
            template = registry.template(args.registry)
            runs["registry"] = []
            for _ in range(args.runs):  # a fresh cold copy for each run, so that every run starts cold
                shutil.rmtree(work / "registry", ignore_errors=True)
                registry.cold_copy(template, work / "registry")
                with serving([serve(work / "registry")], work / "registry") as urls:
                    runs["registry"].append(load(urls, args, work))
        stored = {}
        for database in databases:
            with Store.open(database) as store:
                stored[database] = sum(row["devices"] for row in store.stats())

    mode = "keep-alive" if args.keep_alive else "a new connection per request"
    print(f"POST /ioto/serialize, concurrency {args.concurrency}, {args.runs} runs of {args.duration} s each, {mode}, "
          f"Granian, one server process of {THREADS} threads, synchronous=FULL")
    columns = f"{'':14s}{'requests/s':>12s}{'p50 ms':>9s}{'p99 ms':>9s}{'max ms':>9s}{'errors':>8s}{'requests':>10s}{'steal %':>9s}{'iowait %':>10s}"
    print(columns)
    figures = {}
    for name, results in runs.items():
        for n, f in enumerate(results, 1):
            print(row(f"{name} {n}", f))
        figures[name] = {key: statistics.median(f[key] for f in results) for key in ("rps", "p50_ms", "p99_ms", "max_ms", "steal", "iowait")}
        figures[name]["errors"] = sum(f["errors"] for f in results)
        figures[name]["requests"] = sum(f["requests"] for f in results)
    print("medians:")
    print(columns)
    for name, f in figures.items():
        print(row(name, f))
    print(f"ratio station/baseline requests/s (medians): {figures['station']['rps'] / figures['baseline']['rps']:.2f}")
    if args.registry:
        print(f"ratio station holding {args.registry:,} devices (cold) / near-empty station, requests/s (medians): "
              f"{figures['registry']['rps'] / figures['station']['rps']:.2f} (goal >= 0.9)")
    if args.database:
        for name, goal in (("postgres", " (target >= 0.8)"), ("postgres-x2", ", two stations at once, summed")):
            print(f"ratio {name}/station (SQLite) requests/s (medians): "
                  f"{figures[name]['rps'] / figures['station']['rps']:.2f}{goal}")
    for database, names in databases.items():
        answered = sum(figures[name]["requests"] - figures[name]["errors"] for name in names)
        print(f"{' and '.join(names)}: devices stored {stored[database]} (answered with 200: {answered}; a stored "
              f"device may be unanswered when the load stops mid-request, never the other way)")


if __name__ == "__main__":
    main()
