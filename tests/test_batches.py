"""Batches committed in short transactions: all or nothing for their users, resumable or voidable when a
`station generate` dies mid-way (SIGKILL of a real process), and their UCIs as uniform as single draws."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station.core.errors import Conflict
from station.store import CHUNK, Store
from tests.conftest import PRODUCT
from tests.test_uci import CRITICAL_31_DOF, SAMPLE, chi_square_by_position

STATION = [sys.executable, "-c", "from station.cli import main; main()"]
COUNT = 600_000  # a batch of many transactions at the short lock hold below, so that a kill lands mid-way
WAIT = 120.0  # seconds, at most, for the batch's first transactions to be committed


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STATION, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=300,
                          check=False)


def interrupted(data_dir: Path, name: str) -> int:
    """A `station generate` killed with SIGKILL after its first transactions: how many UCIs its batch holds."""
    # A short busy timeout makes short transactions (a third of it each), so the kill comes long before the end.
    (data_dir / "station.json5").write_text("{database_timeout: 0.3}")
    with Store.open(data_dir / "station.db") as store:
        if not store.products():
            store.add_product(PRODUCT, "Blank", "Blank-01")
    proc = subprocess.Popen([*STATION, "--data-dir", str(data_dir), "generate", "--product", PRODUCT,
                             "--count", str(COUNT), "--batch", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    issued = 0
    deadline = time.monotonic() + WAIT
    with Store.open(data_dir / "station.db") as store:
        while issued < CHUNK and proc.poll() is None and time.monotonic() < deadline:
            row = store.conn.execute("SELECT issued FROM batches WHERE name = ?", (name,)).fetchone()
            issued = row[0] if row else 0
            time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the batch finished before the kill: make it larger"
    with Store.open(data_dir / "station.db") as store:
        batch = store.batch(name)
        stored = store.conn.execute("SELECT count(*) FROM devices WHERE batch = ?", (batch.id,)).fetchone()[0]
    assert not batch.complete and 0 < batch.issued == stored < COUNT
    return stored


def test_an_interrupted_batch_is_reported_refused_and_resumed_to_its_count(data_dir: Path) -> None:
    stored = interrupted(data_dir, "killed")
    stats = run(data_dir, "stats")
    assert stats.returncode == 0 and f"batch 'killed' is incomplete ({stored:,} of {COUNT:,}" in stats.stdout
    assert "station batch resume killed" in stats.stdout
    # Not usable: no manifest or export by batch, no labels, and its devices are in no listing.
    for args in (["export", "--batch", "killed"], ["labels", "--batch", "killed", "--out", str(data_dir / "l.pdf")]):
        refused = run(data_dir, *args)
        assert refused.returncode == 1 and "is incomplete" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert not (data_dir / "l.pdf").exists()
    assert json.loads(run(data_dir, "export", "--format", "json").stdout or "[]") == []
    with Store.open(data_dir / "station.db") as store:
        code = store.conn.execute("SELECT uci FROM devices LIMIT 1").fetchone()[0]
        with pytest.raises(Conflict, match="is incomplete"):
            store.advance(code, "flashed", "flashed", "rig")
        assert store.device(code).state == "issued"
        assert store.events(code)[-1].kind == "refused"

    resumed = run(data_dir, "batch", "resume", "killed")
    assert resumed.returncode == 0, resumed.stderr
    with Store.open(data_dir / "station.db") as store:
        batch = store.batch("killed")
        assert batch.complete and batch.issued == batch.count == COUNT
        codes = [d.uci for d in store.devices(batch="killed")]
        assert len(codes) == len(set(codes)) == COUNT
        issued = store.conn.execute("SELECT count(*) FROM events WHERE kind = 'batch-issued' AND batch = ?", (batch.id,))
        assert issued.fetchone()[0] == 1
        assert store.advance(codes[0], "labeled", "printed", "cli").state == "labeled"
    assert "incomplete" not in run(data_dir, "stats").stdout
    again = run(data_dir, "batch", "resume", "killed")
    assert again.returncode == 1 and "nothing to resume" in again.stderr


def test_an_interrupted_batch_can_be_voided_with_a_reason(data_dir: Path) -> None:
    stored = interrupted(data_dir, "given-up")
    refused = run(data_dir, "batch", "void", "given-up", "--reason", " ")
    assert refused.returncode == 1 and "needs a reason" in refused.stderr
    voided = run(data_dir, "batch", "void", "given-up", "--reason", "generation killed")
    assert voided.returncode == 0 and f"its {stored} devices are void" in voided.stdout, voided.stderr
    with Store.open(data_dir / "station.db") as store:
        states = dict(store.conn.execute("SELECT state, count(*) FROM devices GROUP BY state").fetchall())
        assert states == {"void": stored}
        code = next(store.devices(batch="given-up")).uci
        event = store.events(code)[-1]
        assert (event.kind, event.details["reason"], event.details["devices"]) == ("batch-voided", "generation killed", stored)
        # Its UCIs stay stored, so they are never issued again; the product issues new ones.
        assert store.generate_batch(PRODUCT, 10, name="next").complete
    assert "incomplete" not in run(data_dir, "stats").stdout
    for args in (["batch", "resume", "given-up"], ["batch", "void", "given-up", "--reason", "again"]):
        assert run(data_dir, *args).returncode == 1


def test_two_commands_resuming_one_batch_stop_at_its_count(data_dir: Path) -> None:
    interrupted(data_dir, "twice")
    procs = [subprocess.Popen([*STATION, "--data-dir", str(data_dir), "batch", "resume", "twice"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(proc.wait(300), proc.communicate()[1]) for proc in procs]
    assert 0 in [code for code, _ in results]
    assert all(code == 0 or "by another command meanwhile" in err for code, err in results), results
    with Store.open(data_dir / "station.db") as store:
        batch = store.batch("twice")
        held = store.conn.execute("SELECT count(*) FROM devices WHERE batch = ?", (batch.id,)).fetchone()[0]
        assert batch.complete and held == batch.issued == COUNT
        assert store.conn.execute("SELECT count(*) FROM events WHERE kind = 'batch-issued'").fetchone()[0] == 1


def test_a_batch_is_incomplete_until_its_last_transaction(store: Store) -> None:
    seen: list[tuple[bool, int]] = []

    def progress(stored: int) -> None:  # called after each transaction's commit
        batch = store.batch("watched")
        seen.append((batch.complete, batch.issued))

    store.timeout = 0.0  # the shortest lock hold: one insert (one range of UCIs) per transaction
    batch = store.generate_batch(PRODUCT, 2 * CHUNK + 7, name="watched", progress=progress)
    assert len(seen) > 2 and seen[-1] == (True, batch.count) and not any(done for done, _ in seen[:-1])
    assert [issued for _, issued in seen] == sorted({issued for _, issued in seen})
    assert batch.complete and batch.issued == batch.count == 2 * CHUNK + 7
    events = [e for e in store.events(next(store.devices(batch="watched")).uci) if e.kind == "batch-issued"]
    assert len(events) == 1 and events[0].details["count"] == batch.count


@pytest.mark.parametrize("bits", [80, 50])
def test_a_batch_draws_every_symbol_at_every_position_uniformly(store: Store, bits: int) -> None:
    # Drawn range by range (how many start with each symbol, then the rest): the same as single draws.
    store.add_product("01BITS" + str(bits), "Sized", "Sized-01", bits=bits)
    store.generate_batch("01BITS" + str(bits), SAMPLE, name=f"uniform-{bits}")
    codes = [d.uci for d in store.devices(batch=f"uniform-{bits}")]
    assert len(set(codes)) == SAMPLE and codes == sorted(codes)  # stored in key order
    stats = chi_square_by_position(codes)
    assert len(stats) == bits // 5 and max(stats) < CRITICAL_31_DOF, stats


class _Stop(Exception):
    """Ends a batch after its first transaction, as a crash would."""


def test_a_device_of_an_incomplete_batch_gets_no_label_and_reaches_no_unit(data_dir: Path) -> None:
    (data_dir / "station.json5").write_text("{database_timeout: 0.3}")  # short transactions: the batch stops mid-way

    def stop(stored: int) -> None:
        raise _Stop

    with Store.open(data_dir / "station.db", timeout=0.3) as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
        with pytest.raises(_Stop):
            store.generate_batch(PRODUCT, 3 * CHUNK, name="cut", progress=stop)
        assert not store.batch("cut").complete
        code = store.conn.execute("SELECT uci FROM devices WHERE batch = ? LIMIT 1", (store.batch("cut").id,)).fetchone()[0]
    label = data_dir / "label.png"
    printed = run(data_dir, "label", code, "--out", str(label))
    assert printed.returncode == 1 and "incomplete" in printed.stderr and "batch resume cut" in printed.stderr
    assert not label.exists()
    # The refusal comes before the port is opened: a port that does not exist would be the other error.
    flashed = run(data_dir, "rig", "flash", code, "--port", str(data_dir / "no-such-port"))
    assert flashed.returncode == 1 and "incomplete" in flashed.stdout + flashed.stderr
    with Store.open(data_dir / "station.db") as store:
        kinds = [event.kind for event in store.events(code)]
    assert "flash-started" not in kinds and "labeled" not in kinds
