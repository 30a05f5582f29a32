"""bench/production.py at a very small size: it generates its registry, prints its figures, and a rerun reuses it.

Timings are printed, never asserted; what is checked is that the benchmark runs and measures what it says: the
station's schema on one copy, primary keys only on the other, the same rows in both, and the line's events.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from station import production, times
from station.config import Config
from station.store import Store

BENCH = Path(__file__).resolve().parent.parent / "bench" / "production.py"
VIEWS = ("today station", "today slot A", "shift station", "shift slot A", "7d station", "7d slot A")


def run(db: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--devices", "2000", "--events", "10000", "--db", str(db), "--runs", "1",
         "--baseline-runs", "1", "--latency", "0.5"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def test_bench_generates_measures_and_reuses(tmp_path: Path) -> None:
    db = tmp_path / "registry"
    out = run(db)
    assert "generating 2,000 devices" in out
    table = out.split("baseline/indexed", 1)[1]
    for view in VIEWS:
        assert f"\n{view} " in table
    assert "ratio beside/alone: p50 " in out

    fresh = tmp_path / "fresh.db"
    Store.open(fresh).close()
    assert indexes(db / "station.db") == indexes(fresh)  # the station's own schema, every index made again
    assert indexes(db / "baseline.db") == set()  # primary keys only
    with Store.open(db / "station.db") as indexed, Store.open(db / "baseline.db") as baseline:
        assert indexed.conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 2000 + int(
            indexed.conn.execute("SELECT count(*) FROM devices WHERE product = '01H4R15D3478JD26YDYKBENCH1'").fetchone()[0])
        verdicts = [json.loads(row[0]) for row in indexed.conn.execute(
            "SELECT details FROM events WHERE kind = 'line-fail'")]
        assert verdicts and all(set(details) == {"slot", "step", "reason"} and details["step"] for details in verdicts)
        retested = indexed.conn.execute("SELECT count(*) FROM (SELECT uci FROM events WHERE kind IN ('line-pass', "
                                        "'line-fail') GROUP BY uci HAVING count(*) > 1)").fetchone()[0]
        assert retested > 0
        made = json.loads((db / "made.json").read_text())
        config = Config(db, {})
        for span in times.spans(config.get("shifts"), config.zone, datetime.fromisoformat(made["at"])).values():
            both = [production.report(store, span).to_json() for store in (indexed, baseline)]
            assert both[0] == both[1]  # the same rows: the copies differ only in their indexes
            if span.name == "7d":  # today and the shift may have just begun
                assert both[0]["figures"]["verdicts"] > 0

    again = run(db)
    assert "reusing the registry" in again and "generating" not in again
