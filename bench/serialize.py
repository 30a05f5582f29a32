"""Throughput and latency of POST /ioto/serialize against a minimal baseline, measured in the same run.

Starts `station serve` on a free port in a fresh data directory (with the Blank product), loads it with the
Ioto body from wrk (a separate C process, light enough to share 2 cores with the server) at concurrency 16,
then loads the baseline the same way: a few-line Flask app on the same waitress settings that inserts and
commits one row per request on the same SQLite settings (WAL, synchronous=FULL). Prints requests/s, p50 and
p99 latency and errors for both, the ratio, and checks that every 200 left one stored device. --ceiling adds
a Flask app that answers without a database: what Flask on waitress alone reaches on this machine now.

    python bench/serialize.py [--duration 10] [--concurrency 16] [--keep-alive] [--ceiling]

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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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
    ceiling (the same app without the database)."""
    from flask import Flask, jsonify, request
    from waitress.server import create_server

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

    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    print(f"serving http://127.0.0.1:{server.effective_port}", file=sys.stderr, flush=True)
    server.run()


def start(command: list[str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server whose stderr names its URL; wait (bounded) until it does."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"http://127\.0\.0\.1:\d+", log.read_text(errors="replace"))
        if found:
            return proc, found.group(0)
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"server did not start: {' '.join(command)}\n{log.read_text(errors='replace')[-2000:]}")


def load(url: str, args: argparse.Namespace, work: Path) -> dict[str, float]:
    """One wrk run against ``url``/ioto/serialize; its figures."""
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
    return result


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server [10]")
    parser.add_argument("--concurrency", type=int, default=16, help="connections at once [16]")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads [1: leaves the cores to the server]")
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections (Ioto agents do not)")
    parser.add_argument("--ceiling", action="store_true", help="also load a Flask app that answers without a database")
    parser.add_argument("--reference-server", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    from station.store import Store
    from station.web.server import THREADS

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
        figures = {}
        servers = {
            "station": [*STATION, "--data-dir", str(work / "data"), "serve", "--port", "0"],
            "baseline": [sys.executable, __file__, "--reference-server", "baseline", str(work / "baseline.db")],
        }
        if args.ceiling:
            servers["ceiling"] = [sys.executable, __file__, "--reference-server", "ceiling", str(work / "ceiling.db")]
        for name, command in servers.items():
            proc, url = start(command, work / f"{name}.log")
            try:
                figures[name] = load(url, args, work)
            finally:
                stop(proc)
        with Store.open(work / "data" / "station.db") as store:
            stored = sum(row["devices"] for row in store.stats())

    mode = "keep-alive" if args.keep_alive else "a new connection per request"
    print(f"POST /ioto/serialize, concurrency {args.concurrency}, {args.duration} s each, {mode}, "
          f"waitress threads {THREADS}, synchronous=FULL")
    print(f"{'':10s}{'requests/s':>12s}{'p50 ms':>9s}{'p99 ms':>9s}{'max ms':>9s}{'errors':>8s}{'requests':>10s}")
    for name, f in figures.items():
        print(f"{name:10s}{f['rps']:12.0f}{f['p50_ms']:9.2f}{f['p99_ms']:9.2f}{f['max_ms']:9.1f}{f['errors']:8d}{f['requests']:10d}")
    print(f"ratio station/baseline requests/s: {figures['station']['rps'] / figures['baseline']['rps']:.2f}")
    station = figures["station"]
    answered = station["requests"] - station["errors"]
    print(f"station devices stored: {stored} (answered with 200: {answered}; a stored device may be unanswered "
          f"when the load stops mid-request, never the other way)")


if __name__ == "__main__":
    main()
