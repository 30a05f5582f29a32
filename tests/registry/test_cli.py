"""The CLI on a shared registry: the same commands as on the embedded file, and one line that says what failed and
what to do when the registry cannot be reached (never its password)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.postgres_servers import drop_database, free_port, fresh_database
from tests.web.conftest import STATION


def station(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STATION, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_commands_work_on_a_registry_and_say_what_to_do_when_it_is_down(tmp_path: Path) -> None:
    url = fresh_database()
    try:
        (tmp_path / "station.json5").write_text(json.dumps({"database": url, "name": "line-4"}))
        refused = station(tmp_path, "stats")
        assert refused.returncode != 0 and "run `station db migrate` once" in refused.stderr.strip().splitlines()[-1]
        assert station(tmp_path, "db", "migrate").returncode == 0
        added = station(tmp_path, "product", "add", "--id", "01H4R15D3478JD26YDYK408XE6", "--name", "Blank", "--model", "B-1")
        assert added.returncode == 0, added.stderr
        made = station(tmp_path, "generate", "--product", "01H4R15D3478JD26YDYK408XE6", "--count", "500", "--batch", "b1")
        assert made.returncode == 0, made.stderr
        stats = station(tmp_path, "stats")
        assert stats.returncode == 0 and "b1" in stats.stdout and "500" in stats.stdout
        assert not (tmp_path / "station.db").exists()  # a registry's station keeps no database file of its own
    finally:
        drop_database(url)
    down = f"postgresql://station:pw-not-shown@127.0.0.1:{free_port()}/station"
    (tmp_path / "station.json5").write_text(json.dumps({"database": down}))
    done = station(tmp_path, "stats")
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert f"the registry postgresql://station@127.0.0.1:{down.rsplit(':', 1)[1].split('/')[0]}/station cannot be " \
           f"reached" in lines[0] and "reconnects by itself" in lines[0] and "pw-not-shown" not in done.stderr
