"""A big `station generate` beside a loaded `/ioto/serialize`: the batch commits in short transactions and
leaves the lock free between them, so no device request fails, and every UCI a device got is stored."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from pathlib import Path

from station.store import Store
from tests.conftest import PRODUCT
from tests.web.conftest import STATION, Server, prepare

COUNT = 3_000_000  # one transaction for all of them held the lock longer than the writer's 5 s (503s)
CLIENTS = 4
PER_CLIENT = 50_000  # bound on each client's requests; they stop when the batch is done


def test_a_big_batch_beside_a_loaded_line_fails_no_device_request(tmp_path: Path) -> None:
    prepare(tmp_path)
    server = Server(tmp_path)
    try:
        generate = subprocess.Popen([*STATION, "--data-dir", str(tmp_path), "generate", "--product", PRODUCT,
                                     "--count", str(COUNT), "--batch", "big"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        statuses: Counter[int] = Counter()
        answered: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            for _ in range(PER_CLIENT):
                if generate.poll() is not None:
                    return
                reply = server.serialize()
                with lock:
                    statuses[reply.status] += 1
                    if reply.status == 200:
                        answered.append(reply.json["id"])

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        _, errors = generate.communicate(timeout=900)
        for thread in threads:
            thread.join(120)
        assert generate.returncode == 0, errors
        assert set(statuses) == {200}, statuses  # no 503 while the batch held the lock
        assert len(answered) >= 100  # the line was served all along the batch, not only after it
        with Store.open(tmp_path / "station.db") as store:
            batch = store.batch("big")
            assert batch.complete and batch.issued == COUNT
            assert store.conn.execute("SELECT count(*) FROM devices WHERE batch = ?", (batch.id,)).fetchone()[0] == COUNT
            stored = 0
            for i in range(0, len(answered), 500):
                part = answered[i : i + 500]
                stored += store.conn.execute(f"SELECT count(*) FROM devices WHERE batch IS NULL AND uci IN "
                                             f"({','.join('?' * len(part))})", part).fetchone()[0]
            assert stored == len(answered) == len(set(answered))
    finally:
        assert server.stop() == 0
