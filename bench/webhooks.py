"""Webhooks under the serialize load: events delivered per second to a local receiver while wrk issues UCIs
(does the backlog stay bounded?), and /ioto/serialize requests/s with a webhook configured against the same
station without one, measured in turn in the same run.

Each run starts a fresh `station serve` without webhooks and one with an endpoint for `issued` events (the
kind every request makes), pointed at a receiver in this process (asyncio, keep-alive, checking every
signature), and loads each as bench/serialize.py does (wrk, concurrency 16, a new connection per request).
During the webhook station's load the backlog (issued events not yet received) is sampled twice a second;
after it, the time until the receiver has the last one. Prints every run, the medians, and the ratio.

    python bench/webhooks.py [--duration 10] [--runs 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serialize  # noqa: E402  (bench/serialize.py, beside this file: its server start, wrk load and table)

SECRET = "bench-secret-0123456789abcdef"
DRAIN_LIMIT = 120.0  # seconds the receiver may take to catch up after the load: a bound


class Receiver:
    """Counts verified deliveries and keeps the last event id received: an asyncio server on its own thread,
    reading HTTP/1.1 requests with a Content-Length (what the station sends) over kept-alive connections. The
    receiver shares the two cores with the station in this bench, so it is lean (about a third of http.server's
    CPU per request), that its load, which a real receiver puts on another machine, weighs little in the ratio."""

    def __init__(self) -> None:
        self.count = 0
        self.bad = 0
        self.last = 0
        self.lock = threading.Lock()
        self.cpu = 0.0  # seconds of CPU the receiver's thread has used
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait()
        # "localhost": serialize.start reads the station's URL as the first http://127.0.0.1:<port> of its log
        self.url = f"http://localhost:{self.port}/in"

    def _serve(self, ready: threading.Event) -> None:
        from station.webhooks import signing

        receiver = self

        class Connection(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport
                self.buffer = b""

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                    lines = self.buffer[:end].decode("latin-1").split("\r\n")[1:]
                    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
                    size = int(headers["content-length"])
                    if len(self.buffer) < end + 4 + size:
                        return
                    raw, self.buffer = self.buffer[end + 4 : end + 4 + size], self.buffer[end + 4 + size :]
                    try:
                        signing.verify(SECRET, raw, headers[signing.HEADER.lower()])
                        ok = True
                    except signing.BadSignature:
                        ok = False
                    event = json.loads(raw)["event"]["id"]
                    with receiver.lock:
                        receiver.count += 1
                        receiver.bad += not ok
                        receiver.last = max(receiver.last, event)
                        receiver.cpu = time.thread_time()
                    self.transport.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")  # type: ignore[attr-defined]

        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(self._loop.create_server(Connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def last_issued(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT coalesce(max(id), 0) FROM events WHERE kind = 'issued'").fetchone()[0]
    finally:
        conn.close()


def backlog(db: Path, after: int) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM events WHERE kind = 'issued' AND id > ?", (after,)).fetchone()[0]
    finally:
        conn.close()


def fresh(work: Path, name: str, hook: str | None) -> Path:
    from station.store import Store

    data = work / name
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    with Store.open(data / "station.db") as store:
        store.add_product(serialize.PRODUCT, "Blank", "Blank-01", description="Blank slate app")
    if hook:
        (data / "station.json5").write_text(json.dumps({"webhooks": [
            {"name": "bench", "url": hook, "kinds": ["issued"], "secret": SECRET, "timeout": 10}]}))
    return data


def run_with_hook(work: Path, args: argparse.Namespace, receiver: Receiver) -> dict[str, float]:
    """One load of a station with the webhook: wrk's figures, deliveries per second, backlog, drain time."""
    data = fresh(work, "hook", receiver.url)
    proc, url = serialize.start([*serialize.STATION, "--data-dir", str(data), "serve", "--port", "0"], work / "hook.log")
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            with receiver.lock:
                got = receiver.last
            samples.append(backlog(data / "station.db", got))

    try:
        with receiver.lock:
            start_count, start_cpu = receiver.count, receiver.cpu
            receiver.last = 0  # event ids start again in each fresh station
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deliverers_cpu = cpu_seconds(proc.pid)  # `station serve` itself runs only the deliverers
        figures = serialize.load(url, args, work)
        deliverers_cpu = cpu_seconds(proc.pid) - deliverers_cpu
        done.set()
        sampler.join()
        with receiver.lock:
            during = receiver.count - start_count
            receiver_cpu = receiver.cpu - start_cpu
        stopped = time.monotonic()
        target = last_issued(data / "station.db")
        while receiver.last < target and time.monotonic() - stopped < DRAIN_LIMIT:
            time.sleep(0.02)
        figures["drain_s"] = time.monotonic() - stopped if receiver.last >= target else float("inf")
    finally:
        serialize.stop(proc)
    figures["delivered_per_s"] = during / figures["seconds"]
    figures["deliverer_us"] = deliverers_cpu / max(during, 1) * 1e6
    figures["receiver_us"] = receiver_cpu / max(during, 1) * 1e6
    figures["backlog_max"] = max(samples, default=0)
    figures["backlog_end"] = samples[-1] if samples else 0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server [10]")
    parser.add_argument("--runs", type=int, default=3, help="loads of each station, in turn; medians printed [3]")
    parser.add_argument("--concurrency", type=int, default=16, help="connections at once [16]")
    args = parser.parse_args()
    args.wrk_threads, args.keep_alive = 1, False
    if not shutil.which("wrk"):
        sys.exit("bench/webhooks.py needs wrk: apt-get install -y wrk")
    receiver = Receiver()
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "webhook": []}
    with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
        work = Path(tmp)
        for _ in range(args.runs):
            data = fresh(work, "plain", None)
            proc, url = serialize.start([*serialize.STATION, "--data-dir", str(data), "serve", "--port", "0"],
                                        work / "plain.log")
            try:
                runs["plain"].append(serialize.load(url, args, work))
            finally:
                serialize.stop(proc)
            runs["webhook"].append(run_with_hook(work, args, receiver))

    print(f"POST /ioto/serialize, concurrency {args.concurrency}, {args.runs} runs of {args.duration} s each in turn, "
          f"a new connection per request; webhook: kinds [issued] to a local receiver (keep-alive, signatures checked)")
    columns = (f"{'':10s}{'requests/s':>12s}{'p50 ms':>9s}{'p99 ms':>9s}{'max ms':>9s}{'errors':>8s}{'requests':>10s}"
               f"{'steal %':>9s}{'iowait %':>10s}")
    print(columns)
    for name, results in runs.items():
        for n, f in enumerate(results, 1):
            print(serialize.row(f"{name} {n}", f))
    print(f"{'':10s}{'delivered/s':>12s}{'backlog max':>12s}{'backlog end':>12s}{'drain s':>9s}"
          f"{'station CPU us/event':>22s}{'receiver CPU us/event':>23s}")
    for n, f in enumerate(runs["webhook"], 1):
        print(f"{'webhook ' + str(n):10s}{f['delivered_per_s']:12.0f}{f['backlog_max']:12.0f}{f['backlog_end']:12.0f}"
              f"{f['drain_s']:9.2f}{f['deliverer_us']:22.0f}{f['receiver_us']:23.0f}")
    med = {name: {key: statistics.median(f[key] for f in results) for key in results[0]}
           for name, results in runs.items()}
    print("medians:")
    print(columns)
    for name, f in med.items():
        print(serialize.row(name, {**f, "errors": int(f["errors"]), "requests": int(f["requests"])}))
    w = med["webhook"]
    print(f"webhook deliveries (medians): {w['delivered_per_s']:.0f} events/s during the load against "
          f"{w['rps']:.0f} issued/s; backlog max {w['backlog_max']:.0f}, at the end {w['backlog_end']:.0f}, "
          f"drained {w['drain_s']:.2f} s after the load; {receiver.bad} bad signatures of {receiver.count}; "
          f"CPU per event: the station's deliverers {w['deliverer_us']:.0f} us, the receiver {w['receiver_us']:.0f} us")
    print(f"ratio with webhook / without, requests/s (medians): {w['rps'] / med['plain']['rps']:.2f} (goal >= 0.90)")


if __name__ == "__main__":
    main()
