"""The data directory holds password and token hashes: it is made owner-only (0700), and the station's files in
it (the database and its -wal and -shm, the log and its rotated files, the session key) are 0600, whatever the
umask. A directory the user made and shares keeps its mode; only the station's own files in it are tightened.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

import pytest

from station import files, logs
from tests.conftest import PRODUCT
from tests.test_cli import STATION
from tests.web.conftest import Server


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def station(data_dir: Path, *args: str, umask: int = 0o022) -> None:
    """A `station` command in a process of its own, under ``umask`` (0 would leave every file open to all)."""
    done = subprocess.run([STATION, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: os.umask(umask))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277], ids=lambda m: f"umask-{m:03o}")
def test_product_add_makes_an_owner_only_data_directory(tmp_path: Path, umask: int) -> None:
    data_dir = tmp_path / "data"
    station(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01", umask=umask)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "station.db") == 0o600
    assert not [p for p in data_dir.iterdir() if mode(p) & 0o077]


def test_serve_keeps_every_file_of_the_station_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    station(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01", umask=0)
    old = os.umask(0)  # the server inherits it: every file it makes would be 0666 by the umask alone
    try:
        server = Server(data_dir)
    finally:
        os.umask(old)
    try:
        assert server.serialize().status == 200  # a write: the WAL holds it
        names = {"station.db", "station.db-wal", "station.db-shm", "web.log", "secret_key"}
        assert names <= {p.name for p in data_dir.iterdir()}
        assert {name: mode(data_dir / name) for name in names} == dict.fromkeys(names, 0o600)
        assert mode(data_dir) == 0o700
    finally:
        assert server.stop() == 0


def test_a_directory_the_user_chose_keeps_its_mode_and_old_files_are_tightened(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    station(shared, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    assert mode(shared) == 0o755
    # As a station of before left them: readable by everyone.
    for name in ("station.db", "web.log", "web.log.1", "secret_key"):
        (shared / name).touch()
        os.chmod(shared / name, 0o644)
    (shared / "station.json5").write_text("{}")
    os.chmod(shared / "station.json5", 0o644)
    station(shared, "product", "list")
    assert {name: mode(shared / name) for name in ("station.db", "web.log", "web.log.1", "secret_key")} == dict.fromkeys(
        ("station.db", "web.log", "web.log.1", "secret_key"), 0o600)
    assert mode(shared / "station.json5") == 0o644  # the user's own file: left alone


def test_rotated_logs_stay_owner_only(tmp_path: Path) -> None:
    old = os.umask(0)
    handler = logs.PrivateRotatingFileHandler(tmp_path / "web.log", maxBytes=200, backupCount=2, encoding="utf-8")
    try:
        logger = logging.getLogger("station.test-rotation")
        logger.addHandler(handler)
        for n in range(20):
            logger.warning("line %d of a log that rotates", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
        os.umask(old)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["web.log", "web.log.1", "web.log.2"]
    assert {name: mode(tmp_path / name) for name in files} == dict.fromkeys(files, 0o600)


def test_the_stations_files_are_never_opened_or_tightened_through_a_planted_link(tmp_path: Path) -> None:
    """A data directory the user chose may hold links planted by another account: neither the log's append nor
    the tightening of old files may reach the file a link points at."""
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("someone else's\n")
    os.chmod(elsewhere, 0o644)
    link = tmp_path / "web.log"
    link.symlink_to(elsewhere)
    with pytest.raises(OSError):
        files.open_private(link)
    files.tighten(link)
    assert elsewhere.read_text() == "someone else's\n" and stat.S_IMODE(elsewhere.stat().st_mode) == 0o644
