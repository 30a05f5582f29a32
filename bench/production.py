"""The production view's queries on a registry of 10 million devices and 50 million events, against the same
queries on the same data with no index beyond the primary keys, measured in the same run; and the line's own
issue latency with and without the view refreshing beside it.

    python bench/production.py [--devices 10000000] [--events 50000000] [--db DIR] [--runs 5]
                               [--baseline-runs 3] [--slots 8] [--latency 10] [--explain]

The registry is generated once into --db (default: the temporary folder, under a name with both sizes and the
schema version) and reused by later runs. The station's schema is made by Store.open (its migrations); the
rows are then written with plain executemany, a million per transaction, with the journal and synchronous
off (for the generation only), and the indexes of devices and events dropped while loading and made again
from their own SQL afterwards, so the indexed copy holds exactly the station's schema. The baseline is a
copy of the file taken before the indexes were made again, with every other index beyond the primary keys
dropped too.

The events are those a line writes (station/line/cycle.py and the rig): per unit the issue (with its slot),
the label, the flash steps, the unit's own registration and the verdict (line-pass, or line-fail with the
step and the reason); a Pareto of failing steps and reasons; some failed units retested minutes later,
perhaps on another slot. They span 30 days, with more in the last 7 days, more again today and the most in
the current shift. The devices beyond the line's units are older batches, issued before the 30 days.

Views: production.report(store, span, slot) for today, the current shift and the last 7 days (times.spans at
the moment the data was generated, so that a rerun on another day sees the same spans), for the station and
for one slot; the median of --runs runs on the indexed copy, of --baseline-runs on the baseline, and their
ratio. Goal: every view under 200 ms. --explain prints each statement a view runs, its time alone on both
copies and its query plan on the indexed one.

Latency: store.issue in a loop on a connection of its own (a thread, as a request thread of station serve)
for --latency seconds alone, then again while another thread refreshes the view (all three spans, station
and slot) in a loop; medians and p99, and their ratio. These issues go to a product of their own, after the
generated spans, so they change no view's figures in later runs.

No figure passes or fails: they are printed, as every benchmark here does.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import heapq
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from station import config as station_config
from station import times
from station.core import uci
from station.core.errors import StationError
from station.core.lifecycle import Kind
from station.store import SCHEMA_VERSION, IssueRequest, Store

PRODUCT = "01H4R15D3478JD26YDYK408XE6"
LATENCY_PRODUCT = "01H4R15D3478JD26YDYKBENCH1"  # the latency loop's issues: a product no view of the data counts
DAYS = 30
BATCH = 100_000  # devices per older batch
CHUNK = 1_000_000  # rows per transaction while generating
HOUR_MS = 3_600_000
GOAL_MS = 200.0
OPERATORS = ("anna", "ben", "chiara", "dmitri")
DETAILS = json.JSONEncoder(sort_keys=True)  # as db/events.py stores details
# Why units fail, a Pareto as lines see it: (weight, step, event kind, reason).
FAILURES = (
    (34, "register", Kind.REGISTRATION_TIMEOUT, "no registration from the unit within 60 s; check its network cable "
                                                "and api.builder"),
    (19, "login", Kind.FLASH_FAILED, "the unit did not show a login prompt within 60 s: check its power and console "
                                     "cable"),
    (13, "write", Kind.FLASH_FAILED, "/etc/ioto/device.json5 read back differs from the unit's SHA-256 of it; try "
                                     "again"),
    (9, "trigger", Kind.TRIGGER_FAILED, "`systemctl start ioto` exited with status 1"),
    (7, "label", Kind.PRINT_FAILED, "printer zebra-line is offline (CUPS: the printer is not responding)"),
    (6, "connect", Kind.FLASH_FAILED, "serial port {port} of slot {slot} is busy: another program holds it"),
    (5, "finalize", Kind.FINALIZE_FAILED, "/var/lib/ioto/db is still on the unit after `rm -rf`"),
    (4, "register", Kind.REGISTRATION_REFUSED, "the station refused the unit's registration: its product is "
                                               "disabled"),
    (3, "credentials", Kind.FLASH_FAILED, "the unit has no openssl, so it cannot make its own key: install "
                                          "openssl on the unit's image"),
)
FIRST_PASS = 0.93  # share of units that pass their first cycle
RETEST = 0.75  # share of failed units tested again
LABELED = 0.9  # share of units whose cycle prints a label
# Where the units are, by time: (weight per hour, from how many hours before the generation's moment).
# Older hours weigh 1; the spans of the view are the busiest, so that they hold the most rows to count.
RECENT = {"7d": 1.6, "today": 2.4, "shift": 3.2}


# --- generation -----------------------------------------------------------------------------------------


class Line:
    """The events of units on the line: their cycles, retests and verdicts, as the station records them."""

    def __init__(self, rng: random.Random, slots: int) -> None:
        self.rng = rng
        self.slots = [chr(ord("A") + n) if n < 26 else f"S{n}" for n in range(slots)]
        self.ports = {slot: f"/dev/ttyUSB{n}" for n, slot in enumerate(self.slots)}
        self.weights = [w for w, *_ in FAILURES]
        self.serial = 0

    def unit(self, start: int, code: str) -> tuple[list[tuple[int, str, str, str]], str, int]:
        """One unit from its issue at ``start`` (ms): its events ``(ms, kind, actor, details)``, its final state
        and the time of its last change."""
        rng = self.rng
        slot = rng.choice(self.slots)
        actor = rng.choice(OPERATORS)
        self.serial += 1
        events: list[tuple[int, str, str, str]] = [(start, Kind.ISSUED, actor, f'{{"serial": "SN{self.serial:09d}", "slot": "{slot}"}}')]
        state, t, labeled = "issued", start, False
        passed = rng.random() < FIRST_PASS
        for attempt in range(3):
            t, state, labeled = self.cycle(events, t, code, slot, actor, state, labeled, passed)
            if passed or rng.random() > (RETEST if attempt == 0 else 0.3):
                break
            t += _between(rng, 120_000, 1_800_000)  # a retest minutes later, perhaps on another slot
            slot = rng.choice(self.slots) if rng.random() < 0.4 else slot
            passed = rng.random() < 0.85
        return events, state, t

    def cycle(self, events: list[tuple[int, str, str, str]], t: int, code: str, slot: str, actor: str, state: str,
              labeled: bool, passed: bool) -> tuple[int, str, bool]:
        """One cycle (label, flash, registration, verdict) appended to ``events``; the time, state and label after."""
        rng = self.rng
        port = self.ports[slot]
        where = f'"port": "{port}", "slot": "{slot}"'
        failure = None if passed else rng.choices(FAILURES, self.weights)[0]
        if not labeled and (rng.random() < LABELED or (failure and failure[1] == "label")):
            t += _between(rng, 600, 2500)
            if failure and failure[1] == "label":
                events.append((t, Kind.PRINT_FAILED, actor, DETAILS.encode(
                    {"error": failure[3], "format": "zpl", "layout": "default", "printer": "zebra-line"})))
                return self.verdict(events, t, actor, slot, failure, code), state, labeled
            events.append((t, Kind.PRINTED, actor, '{"format": "zpl", "layout": "default", "printer": "zebra-line", '
                                                   '"where": "CUPS queue zebra-line"}'))
            state, labeled = "labeled", True
        elif failure and failure[1] == "label":
            failure = FAILURES[0]  # the label was printed before: this unit fails further on
        began = t = t + _between(rng, 200, 900)
        events.append((t, Kind.FLASH_STARTED, "rig", f'{{"path": "/etc/ioto/device.json5", {where}}}'))
        steps = ("connect", "login", "write", "credentials", "trigger", "register", "finalize")
        reached = steps.index(failure[1]) if failure else len(steps)
        if failure and reached <= 3:
            t += _between(rng, 1000, 60_000)
            return self.fail(events, t, actor, slot, where, failure, code), state, labeled
        t += _between(rng, 12_000, 30_000)
        events.append((t, Kind.FLASHED, "rig", f'{{"bytes": 214, "chunk_retries": 0, "chunks": 1, "credentials": {{}}, '
                                               f'"path": "/etc/ioto/device.json5", {where}, "readback_retries": 0, '
                                               f'"sha256": "{rng.getrandbits(256):064x}"}}'))
        state = "flashed"
        t += _between(rng, 100, 400)
        events.append((t, Kind.BOOT_TRIGGERED, "rig", f'{{"command": "systemctl start ioto", {where}}}'))
        if failure and failure[1] == "trigger":
            return self.fail(events, t + _between(rng, 100, 2000), actor, slot, where, failure, code), state, labeled
        if failure and failure[1] == "register":
            return self.fail(events, t + 60_000, actor, slot, where, failure, code), state, labeled
        t += _between(rng, 4000, 20_000)
        events.append((t, Kind.REGISTERED, "device", f'{{"remote": "10.20.0.{_between(rng, 10, 250)}"}}'))
        state = "registered"
        t += _between(rng, 100, 600)
        seconds = (t - began) / 1000
        events.append((t, Kind.REGISTRATION_CONFIRMED, "rig", f'{{"event": 0, {where}, "seconds": {seconds}}}'))
        if failure:  # finalize
            return self.fail(events, t + _between(rng, 2000, 8000), actor, slot, where, failure, code), state, labeled
        t += _between(rng, 5, 40)
        events.append((t, Kind.LINE_PASS, actor, f'{{"reason": "{code[:4]}-{code[4:8]}-{code[8:12]}-{code[12:]} '
                                                 f'flashed, verified and registered in {seconds:.1f} s", "slot": "{slot}", '
                                                 f'"step": null}}'))
        return t, state, labeled

    def fail(self, events: list[tuple[int, str, str, str]], t: int, actor: str, slot: str, where: str,
             failure: tuple[Any, ...], code: str) -> int:
        reason = failure[3].format(port=self.ports[slot], slot=slot)
        events.append((t, failure[2], "rig", f'{{{where}, "reason": {json.dumps(reason)}, "step": "{failure[1]}"}}'))
        return self.verdict(events, t, actor, slot, failure, code)

    def verdict(self, events: list[tuple[int, str, str, str]], t: int, actor: str, slot: str,
                failure: tuple[Any, ...], code: str) -> int:
        reason = failure[3].format(port=self.ports[slot], slot=slot)
        if failure[1] == "label":
            reason = f"the label did not print: {reason}"
        t += _between(self.rng, 5, 40)
        events.append((t, Kind.LINE_FAIL, actor, DETAILS.encode({"reason": reason, "slot": slot, "step": failure[1]})))
        return t


def _between(rng: random.Random, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``: randint's, at a fraction of its cost (millions of calls)."""
    return low + int(rng.random() * (high - low + 1))


def _stamp(ms: int) -> str:
    """A time in ms since the epoch in the store's format (core.models.stored), without a datetime per event."""
    hour, rest = divmod(ms, HOUR_MS)
    prefix = _HOURS.get(hour)
    if prefix is None:
        prefix = _HOURS[hour] = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:")
    minute, rest = divmod(rest, 60_000)
    return prefix + _MINUTES[minute] + _SECONDS[rest]


_HOURS: dict[int, str] = {}
_MINUTES = [f"{minute:02d}:" for minute in range(60)]
_SECONDS = [f"{ms // 1000:02d}.{ms % 1000:03d}Z" for ms in range(60_000)]


def _weights(spans: dict[str, times.Span], start: int, end: int) -> list[float]:
    """Each hour's weight from ``start`` to ``end`` (ms): 1, or the weight of the most recent span it lies in."""
    begins = {name: int(times.moment(span.start).timestamp() * 1000) for name, span in spans.items()}
    weights = []
    for hour in range(start, end, HOUR_MS):
        weights.append(max([1.0] + [w for name, w in RECENT.items() if hour >= begins[name]]))
    return weights


def generate(folder: Path, devices: int, events: int, slots: int, at: datetime, seed: int, digest: str) -> dict[str, Any]:
    """The registry in ``folder``: station.db (the station's schema and indexes, ``digest``) and baseline.db
    (primary keys only), with the same rows; what was made."""
    started = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    indexed, baseline = folder / "station.db", folder / "baseline.db"
    config = station_config.Config(folder, {})
    spans = times.spans(config.get("shifts"), config.zone, at)
    with Store.open(indexed) as store:
        store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        store.add_product(LATENCY_PRODUCT, "Bench latency", "Bench-01", description="bench/production.py's issues")
    conn = sqlite3.connect(indexed, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-2000000")
    rebuilt = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                           "AND tbl_name IN ('devices', 'events')").fetchall()
    for name, _ in rebuilt:
        conn.execute(f"DROP INDEX {name}")

    rng = random.Random(seed)
    line = Line(rng, slots)
    sample = [len(line.unit(0, "0" * 16)[0]) for _ in range(20_000)]
    per_unit = statistics.fmean(sample)
    end = int(at.timestamp() * 1000)
    first = end - DAYS * 24 * HOUR_MS
    units = min(devices, round(events / per_unit))
    batched = devices - units
    writer = _Writer(conn)
    # The older batches, before the 30 days: one batch-issued event each, their devices issued and unlabelled.
    for n in range(-(-batched // BATCH)):
        count = min(BATCH, batched - n * BATCH)
        issued = _stamp(first - (n + 1) * 24 * HOUR_MS)
        batch = conn.execute("INSERT INTO batches(name, product, count, created, actor, complete, issued) "
                             "VALUES (?, ?, ?, ?, 'cli', 1, ?)", (f"batch-{n + 1:04d}", PRODUCT, count, issued, count)
                             ).lastrowid
        writer.event((issued, None, batch, Kind.BATCH_ISSUED, "cli", DETAILS.encode({"count": count, "batch": f"batch-{n + 1:04d}"})))
        for code in sorted(uci.generate_many(count)):
            writer.device((code, PRODUCT, batch, "issued", None, None, None, None))
    # The line's units, hour by hour in proportion to each hour's weight; their events written in time order.
    weights = _weights(spans, first, end)
    share = units / sum(weights)
    pending: list[tuple[int, int, str, str, str, str]] = []  # (ms, order, uci, kind, actor, details), a heap
    order = made_units = 0
    owed = 0.0
    for n, weight in enumerate(weights):
        hour = first + n * HOUR_MS
        owed += share * weight
        count = min(int(owed), units - made_units) if n < len(weights) - 1 else units - made_units
        owed -= count
        for start, code in zip(sorted(hour + int(rng.random() * HOUR_MS) for _ in range(count)),
                               uci.generate_many(count), strict=True):
            unit_events, state, last = line.unit(start, code)
            unit_events = [e for e in unit_events if e[0] < end]  # nothing after the generation's moment
            writer.device((code, PRODUCT, None, state, f"SN{line.serial:09d}", None, _stamp(start),
                           _stamp(max(e[0] for e in unit_events)) if state != "issued" else None))
            for ms, kind, actor, details in unit_events:
                heapq.heappush(pending, (ms, order, code, kind, actor, details))
                order += 1
        made_units += count
        while pending and pending[0][0] < hour + HOUR_MS:  # every event of this hour is known: write them in order
            ms, _, code, kind, actor, details = heapq.heappop(pending)
            writer.event((_stamp(ms), code, None, kind, actor, details))
    while pending:
        ms, _, code, kind, actor, details = heapq.heappop(pending)
        writer.event((_stamp(ms), code, None, kind, actor, details))
    writer.flush()
    loaded = time.perf_counter()
    conn.close()
    shutil.copyfile(indexed, baseline)
    with sqlite3.connect(baseline, isolation_level=None) as base:
        for (name,) in base.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall():
            base.execute(f"DROP INDEX {name}")
        base.execute("PRAGMA journal_mode=WAL")
    base.close()
    conn = sqlite3.connect(indexed, isolation_level=None)
    conn.execute("PRAGMA cache_size=-2000000")
    for _, sql in rebuilt:
        conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")
    counts = {table: conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] for table in ("devices", "events")}
    conn.close()
    made = {"asked": [devices, events, slots, seed, digest], "at": at.isoformat(), "devices": counts["devices"],
            "events": counts["events"], "units": units, "batched": batched, "slots": slots, "seed": seed, "load_s": round(loaded - started, 1),
            "seconds": round(time.perf_counter() - started, 1), "mb": round(indexed.stat().st_size / 2**20)}
    (folder / "made.json").write_text(json.dumps(made, indent=1))
    return made


class _Writer:
    """Rows of devices and events, written with executemany, a million per transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.devices: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []

    def device(self, row: tuple[Any, ...]) -> None:
        self.devices.append(row)
        if len(self.devices) >= CHUNK:
            self.flush()

    def event(self, row: tuple[Any, ...]) -> None:
        self.events.append(row)
        if len(self.events) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO devices(uci, product, batch, state, serial, hwkey, created, updated) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.devices)
        self.conn.executemany("INSERT INTO events(time, uci, batch, kind, actor, details) VALUES (?, ?, ?, ?, ?, ?)",
                              self.events)
        self.conn.execute("COMMIT")
        self.devices.clear()
        self.events.clear()


def schema() -> str:
    """A digest of the station's schema as Store.open makes it now: a cached registry of another one is made again."""
    with tempfile.TemporaryDirectory(prefix="station-bench-schema-") as tmp:
        with Store.open(Path(tmp) / "station.db") as store:
            text = "\n".join(row[0] for row in store.conn.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"))
    return f"v{SCHEMA_VERSION}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def registry(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The cached registry of ``args``' sizes and the station's schema, generated on first use."""
    digest = schema()
    folder = Path(args.db) if args.db else (Path(tempfile.gettempdir()) /
                                            f"station-bench-production-{args.devices}-{args.events}-{digest}")
    made = folder / "made.json"
    if made.exists():
        info = json.loads(made.read_text())
        if info["asked"] == [args.devices, args.events, args.slots, args.seed, digest]:
            print(f"reusing the registry in {folder} (generated {info['at']} in {info['seconds']:.0f} s)", flush=True)
            return folder, info
    print(f"generating {args.devices:,} devices and about {args.events:,} events in {folder} (once)", flush=True)
    info = generate(folder, args.devices, args.events, args.slots, datetime.now(UTC).replace(microsecond=0), args.seed,
                    digest)
    print(f"generated in {info['seconds']:.0f} s (rows {info['load_s']:.0f} s, the rest the copy and the indexes), "
          f"{info['mb']:,} MB", flush=True)
    return folder, info


# --- measuring ------------------------------------------------------------------------------------------


def timed(call: Callable[[], Any], runs: int, store: Store | None = None, limit: float = 0) -> list[float]:
    """``runs`` timings of ``call``, in ms. With ``store`` and ``limit`` (s), a call still running after ``limit``
    is interrupted on ``store``'s connection, counted as ``limit`` (a lower bound), and no further run is made."""
    result = []
    for _ in range(runs):
        timer = threading.Timer(limit, store.conn.interrupt) if store and limit else None
        if timer:
            timer.start()
        began = time.perf_counter()
        try:
            call()
        except (StationError, sqlite3.OperationalError) as exc:
            if "interrupt" not in str(exc):
                raise
            result.append(limit * 1000)
            break
        finally:
            if timer:
                timer.cancel()
        result.append((time.perf_counter() - began) * 1000)
    return result


def statements(store: Store, call: Callable[[], Any]) -> list[str]:
    """The SQL statements ``call`` runs on ``store``'s connection, with their values bound."""
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        store.conn.set_trace_callback(None)
    return [sql for sql in seen if sql.lstrip().upper().startswith(("SELECT", "WITH"))]


def explain(indexed: Store, baseline: Store, sql: str, limit: float) -> None:
    """One statement: its time alone on both copies and its query plan on the indexed one."""
    fast = statistics.median(timed(lambda: indexed.conn.execute(sql).fetchall(), 3))
    slow = statistics.median(timed(lambda: baseline.conn.execute(sql).fetchall(), 1, baseline, limit))
    stopped = ">" if slow >= limit * 1000 else ""
    print(f"  {fast:9.1f} ms indexed {stopped + f'{slow:.1f}':>10s} ms baseline  {' '.join(sql.split())}")
    for row in indexed.conn.execute("EXPLAIN QUERY PLAN " + sql):
        print(f"      plan: {row[3]}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def issue_latency(path: Path, seconds: float, refresh: Sequence[Callable[[Store], Any]] | None) -> tuple[list[float], int]:
    """store.issue latencies (ms) in a loop for ``seconds`` on a connection of its own; while it runs, another
    thread calls each of ``refresh`` on another connection, round and round. The latencies and the calls made."""
    stop = threading.Event()
    refreshes = 0

    def refresher() -> None:
        nonlocal refreshes
        with Store.open(path) as store:
            while not stop.is_set():
                for view in refresh or ():
                    view(store)
                    refreshes += 1
                    if stop.is_set():
                        break

    beside = threading.Thread(target=refresher, daemon=True) if refresh else None
    if beside:
        beside.start()
        time.sleep(0.2)
    latencies = []
    with Store.open(path) as store:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.perf_counter()
            store.issue(IssueRequest(LATENCY_PRODUCT, actor="bench", details={"slot": "bench"}))
            latencies.append((time.perf_counter() - began) * 1000)
    stop.set()
    if beside:
        beside.join(600)
    return latencies, refreshes


def views(spans: dict[str, times.Span], slot: str) -> Iterator[tuple[str, times.Span, str | None]]:
    for span in spans.values():
        for which in (None, slot):
            yield f"{span.name} {'station' if which is None else 'slot ' + which}", span, which


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000_000, help="devices in the registry [10,000,000]")
    parser.add_argument("--events", type=int, default=50_000_000, help="events, about [50,000,000]")
    parser.add_argument("--db", help="the folder that keeps the generated registry [a temporary folder named by the sizes]")
    parser.add_argument("--slots", type=int, default=8, help="slots of the line [8]")
    parser.add_argument("--seed", type=int, default=18, help="the generator's seed [18]")
    parser.add_argument("--runs", type=int, default=5, help="runs of each view on the indexed copy; medians [5]")
    parser.add_argument("--baseline-runs", type=int, default=3, help="runs of each view on the baseline [3]")
    parser.add_argument("--baseline-limit", type=float, default=60.0,
                        help="seconds after which a view on the baseline is stopped and counted as that long [60]")
    parser.add_argument("--latency", type=float, default=10.0, help="seconds of issuing, alone and beside the view [10]")
    parser.add_argument("--explain", action="store_true", help="each statement of the views: times and query plan")
    args = parser.parse_args()

    folder, info = registry(args)
    try:
        from station import production
    except ImportError as exc:
        sys.exit(f"station/production.py is not there yet ({exc}): the registry is ready in {folder}")
    at = datetime.fromisoformat(info["at"])
    config = station_config.Config(folder, {})
    spans = times.spans(config.get("shifts"), config.zone, at)
    slot = "A"
    with Store.open(folder / "station.db") as indexed, Store.open(folder / "baseline.db") as baseline:
        devices = indexed.conn.execute("SELECT count(*) FROM devices").fetchone()[0]
        stored = indexed.conn.execute("SELECT max(id) FROM events").fetchone()[0]
        print(f"registry: {devices:,} devices ({info['units']:,} through the line in {DAYS} days, the rest in older "
              f"batches), {stored:,} events, {info['slots']} slots; spans as at {at:%Y-%m-%d %H:%M} UTC, "
              f"zone {config.zone}")
        for span in spans.values():
            verdicts = indexed.conn.execute("SELECT count(*) FROM events WHERE kind IN (?, ?) AND time >= ? AND time < ?",
                                            (Kind.LINE_PASS, Kind.LINE_FAIL, span.start, span.end)).fetchone()[0]
            print(f"  {span.name:6s} {span.label}: {verdicts:,} verdicts")
        figures = []
        for name, span, which in views(spans, slot):
            def view(store: Store, span: times.Span = span, which: str | None = which) -> Any:
                return production.report(store, span, slot=which)
            fast = timed(lambda: view(indexed), args.runs)
            slow = timed(lambda: view(baseline), args.baseline_runs, baseline, args.baseline_limit)
            figures.append((name, fast, slow))
            print(f"  {name}: {statistics.median(fast):.1f} ms indexed, {statistics.median(slow):.1f} ms baseline",
                  flush=True)
            if args.explain:
                for sql in statements(indexed, lambda: view(indexed)):
                    explain(indexed, baseline, sql, args.baseline_limit)

    refresh = [functools.partial(production.report, span=span, slot=which) for _, span, which in views(spans, slot)]
    alone, _ = issue_latency(folder / "station.db", args.latency, None)
    beside, refreshes = issue_latency(folder / "station.db", args.latency, refresh)

    print(f"\nproduction.report on {devices:,} devices and {stored:,} events; medians of {args.runs} runs (indexed) "
          f"and {args.baseline_runs} (baseline: primary keys only), goal < {GOAL_MS:.0f} ms")
    print(f"{'view':18s}{'indexed ms':>12s}{'first ms':>10s}{'max ms':>9s}{'baseline ms':>13s}{'baseline/indexed':>18s}")
    for name, fast, slow in figures:
        median, base = statistics.median(fast), statistics.median(slow)
        stopped = ">" if max(slow) >= args.baseline_limit * 1000 else ""  # interrupted: a lower bound
        print(f"{name:18s}{median:12.1f}{fast[0]:10.1f}{max(fast):9.1f}{stopped + f'{base:.1f}':>13s}"
              f"{stopped + f'{base / median:.1f}':>18s}{'' if median < GOAL_MS else '   over the goal'}")
    print(f"(>: the baseline view was stopped after {args.baseline_limit:g} s)")
    print(f"\nstore.issue on its own connection, {args.latency:g} s alone and {args.latency:g} s beside the view "
          f"refreshing ({refreshes} views, one after another: {refreshes / args.latency:.1f} views/s)")
    print(f"{'':22s}{'issues':>8s}{'p50 ms':>9s}{'p99 ms':>9s}{'max ms':>9s}")
    for name, values in (("alone", alone), ("beside the view", beside)):
        print(f"{name:22s}{len(values):8d}{statistics.median(values):9.2f}{percentile(values, 0.99):9.2f}{max(values):9.1f}")
    print(f"ratio beside/alone: p50 {statistics.median(beside) / statistics.median(alone):.2f}, "
          f"p99 {percentile(beside, 0.99) / percentile(alone, 0.99):.2f}")


if __name__ == "__main__":
    main()
