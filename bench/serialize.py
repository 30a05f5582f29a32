"""Throughput and latency of POST /ioto/serialize against a minimal baseline, measured in the same run.

Starts `station serve` on a free port in a fresh data directory (with the Blank product), loads it with the
Ioto body from wrk (a separate C process, light enough to share 2 cores with the server) at concurrency 16,
then loads the baseline the same way: a few-line Flask app on the same server settings (Granian, one process
of 16 threads) that inserts and
commits one row per request on the same SQLite settings (WAL, synchronous=FULL). Prints requests/s, p50 and
p99 latency and errors for both, the ratio, and checks that every 200 left one stored device. --ceiling adds
a Flask app that answers without a database: what Flask on Granian alone reaches on this machine now.

    python bench/serialize.py [--duration 10] [--runs 3] [--concurrency 16] [--keep-alive] [--ceiling]
                              [--registry N]

--registry N also loads a station that already holds N devices (bench/registry.py: built once with plain SQL,
reused), started for each run on a fresh copy dropped from the page cache (cold, as after a reboot), and prints
its requests/s against the near-empty station's: a registry that grows for years must not slow the line.

Each server takes --runs loads in a row; the figures are the medians of the runs. The CPU time the virtual
machine lost to its host (steal) and spent waiting for the disk (iowait) are printed for each run: on a shared
machine they explain outlying runs.

Needs wrk (Debian: apt-get install -y wrk). Without --keep-alive each request opens a new connection, as
an Ioto agent does; wrk's latency counts from the request's first byte, so connect time is not in it.
"""

from __future__ import annotations

import argparse
import json
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def load(url: str, args: argparse.Namespace, work: Path) -> dict[str, float]:
    """One wrk run against ``url``/ioto/serialize; its figures, with the shares of CPU time stolen and spent waiting for the disk meanwhile."""
    before = cpu_times()
    script = work / "post.lua"
    script.write_text(LUA % {"body": BODY, "close": "" if args.keep_alive else 'wrk.headers["Connection"] = "close"'})
    out = subprocess.run(
        ["wrk", f"-t{args.wrk_threads}", f"-c{args.concurrency}", f"-d{args.duration}s", "--timeout", "10s",
         "-s", str(script), f"{url}/ioto/serialize"],
        capture_output=True, text=True, check=True,
    ).stdout
    result = json.loads(out.split("RESULT ", 1)[1])
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = sum(int(result[k]) for k in ("connect", "read", "write", "status", "timeout"))
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
    return (f"{label:10s}{f['rps']:12.0f}{f['p50_ms']:9.2f}{f['p99_ms']:9.2f}{f['max_ms']:9.1f}{f['errors']:8d}"
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
    parser.add_argument("--reference-server", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    from station.serve.server import THREADS
    from station.store import Store

    if args.reference_server:
        reference_server(*args.reference_server, THREADS)
        return
    if not shutil.which("wrk"):
        sys.exit("bench/serialize.py needs wrk: apt-get install -y wrk")

    with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        with Store.open(work / "data" / "station.db") as store:
            store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        runs: dict[str, list[dict[str, float]]] = {}
        servers = {
            "station": [*STATION, "--data-dir", str(work / "data"), "serve", "--port", "0"],
            "baseline": [sys.executable, __file__, "--reference-server", "baseline", str(work / "baseline.db")],
        }
        if args.ceiling:
            servers["ceiling"] = [sys.executable, __file__, "--reference-server", "ceiling", str(work / "ceiling.db")]
        for name, command in servers.items():
            proc, url = start(command, work / f"{name}.log")
            try:
                runs[name] = [load(url, args, work) for _ in range(args.runs)]
            finally:
                stop(proc)
        if args.registry:
            template = registry.template(args.registry)
            runs["registry"] = []
            for _ in range(args.runs):  # a fresh cold copy for each run, so that every run starts cold
                shutil.rmtree(work / "registry", ignore_errors=True)
                registry.cold_copy(template, work / "registry")
                proc, url = start([*servers["station"][:3], "--data-dir", str(work / "registry"), *servers["station"][5:]],
                                  work / "registry.log")
                try:
                    runs["registry"].append(load(url, args, work))
                finally:
                    stop(proc)
        with Store.open(work / "data" / "station.db") as store:
            stored = sum(row["devices"] for row in store.stats())

    mode = "keep-alive" if args.keep_alive else "a new connection per request"
    print(f"POST /ioto/serialize, concurrency {args.concurrency}, {args.runs} runs of {args.duration} s each, {mode}, "
          f"Granian, one server process of {THREADS} threads, synchronous=FULL")
    columns = f"{'':10s}{'requests/s':>12s}{'p50 ms':>9s}{'p99 ms':>9s}{'max ms':>9s}{'errors':>8s}{'requests':>10s}{'steal %':>9s}{'iowait %':>10s}"
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
    answered = figures["station"]["requests"] - figures["station"]["errors"]
    print(f"station devices stored: {stored} (answered with 200: {answered}; a stored device may be unanswered "
          f"when the load stops mid-request, never the other way)")


if __name__ == "__main__":
    main()
