"""The `station` command as a user runs it: a real process, real files, one-line errors and exit codes."""

from __future__ import annotations

import csv
import json
import os
import pty
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from station.core import uci
from tests.conftest import PRODUCT, dump

STATION = shutil.which("station") or pytest.fail("the station command is not installed: pip install -e '.[test]'")


def run_on_terminal(command: list[str], stream: str = "stdout") -> tuple[int, bytes, str]:
    """Run ``command`` with its ``stream`` (stdout or stderr) on a real pseudo-terminal: its exit status, what
    reached the terminal, and the other stream's text."""
    leader, follower = pty.openpty()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: follower}
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, **streams)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    out, err = process.communicate(timeout=60)
    return process.returncode, seen, (err if stream == "stdout" else out).decode(errors="replace")


def run(data_dir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([STATION, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def fails(data_dir: Path, *args: str, message: str) -> None:
    """The command fails with exit status 1 and exactly one line on stderr that contains ``message``."""
    result = run(data_dir, *args, ok=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr



@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    run(path, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01",
        "--description", "Blank slate app")
    return path


def test_data_dir_is_created_on_first_use_and_env_works(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "data"
    env = {**os.environ, "STATION_DATA_DIR": str(target)}
    result = subprocess.run([STATION, "product", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and "(none)" in result.stdout
    assert (target / "station.db").exists()


def test_generate_writes_manifests_and_device_files(station_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = run(station_dir, "generate", "--product", PRODUCT, "--count", "25", "--batch", "line-1",
                 "--csv", str(out / "m.csv"), "--json", str(out / "m.json"), "--device-json", str(out / "devices"))
    assert "issued 25 claim IDs" in result.stdout
    rows = list(csv.DictReader((out / "m.csv").open()))
    assert len(rows) == 25 and len({r["uci"] for r in rows}) == 25
    assert rows[0].keys() >= {"uci", "display", "product", "batch", "created"}
    for row in rows:
        assert row["display"] == uci.display(row["uci"]) and row["batch"] == "line-1" and row["product"] == PRODUCT
    assert [r["uci"] for r in json.loads((out / "m.json").read_text())] == [r["uci"] for r in rows]
    files = sorted((out / "devices").iterdir())
    assert len(files) == 25
    device = json.loads(files[0].read_text())
    assert device == {"product": PRODUCT, "name": "Blank", "description": "Blank slate app", "model": "Blank-01",
                      "id": files[0].stem}
    stored = {line.split(",")[0] for line in run(station_dir, "export", "--batch", "line-1").stdout.splitlines()[1:]}
    assert stored == {r["uci"] for r in rows}


def test_show_void_export_and_stats(station_dir: Path) -> None:
    run(station_dir, "generate", "--product", PRODUCT, "--count", "3", "--batch", "b1")
    code = json.loads(run(station_dir, "export", "--format", "json").stdout)[0]["uci"]
    typed = uci.display(code).lower().replace("-", " ")
    shown = run(station_dir, "show", typed).stdout
    assert f"uci:     {code}" in shown and "batch-issued" in shown
    assert "voided" in run(station_dir, "void", code, "--reason", "dropped on the floor").stdout
    shown = run(station_dir, "show", code).stdout
    assert "state:   void" in shown and "reason=dropped on the floor" in shown
    voids = json.loads(run(station_dir, "export", "--state", "void", "--format", "json").stdout)
    assert [d["uci"] for d in voids] == [code]
    stats = run(station_dir, "stats").stdout
    assert "b1     issued  2" in stats and "b1     void    1" in stats


def test_bad_input_is_one_line_and_changes_nothing(station_dir: Path) -> None:
    run(station_dir, "generate", "--product", PRODUCT, "--count", "2", "--batch", "b1")
    code = json.loads(run(station_dir, "export", "--format", "json").stdout)[0]["uci"]
    before = dump(station_dir / "station.db")
    wrong = next(c for c in uci.ALPHABET if c != uci.check_symbol(code))
    fails(station_dir, "generate", "--product", "NOPE", "--count", "5", message="unknown product 'NOPE'")
    fails(station_dir, "generate", "--product", PRODUCT, "--count", "0", message="at least 1")
    fails(station_dir, "generate", "--product", PRODUCT, "--count", "-3", message="at least 1")
    fails(station_dir, "generate", "--product", PRODUCT, "--count", "2", "--batch", "b1", message="already used")
    fails(station_dir, "product", "add", "--id", "P2", "--name", "x", "--model", "y", "--bits", "64", message="multiple of 5")
    fails(station_dir, "show", code + wrong, message="mistyped")
    fails(station_dir, "show", code[:-1] + "!", message="'!' at symbol 16")
    fails(station_dir, "void", code + wrong, "--reason", "x", message="mistyped")
    fails(station_dir, "export", "--batch", "nope", message="unknown batch")
    assert dump(station_dir / "station.db") == before


def test_locked_database_is_a_clear_error(station_dir: Path) -> None:
    (station_dir / "station.json5").write_text("{database_timeout: 0.2}\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(30)", str(station_dir / "station.db")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        fails(station_dir, "generate", "--product", PRODUCT, "--count", "5", message="locked by another process")
    finally:
        holder.kill()
        holder.wait()
    assert "(none)" not in run(station_dir, "product", "list").stdout
    assert run(station_dir, "export").stdout.strip().count("\n") == 0


def test_not_a_station_database(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    conn = sqlite3.connect(other / "station.db")
    conn.execute("CREATE TABLE photos(id, path)")
    conn.close()
    fails(other, "product", "list", message="another program")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "station.db").write_bytes(b"\x00not sqlite" * 512)
    fails(garbage, "stats", message="not a station database")
    assert (garbage / "station.db").read_bytes() == b"\x00not sqlite" * 512


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.mkdir()
    (path / "station.json5").write_text("{printers: [oops")
    fails(path, "stats", message="not valid JSON5")
    assert not (path / "station.db").exists()  # nothing was opened or created on a configuration it cannot read


def test_progress_bar_on_a_terminal(station_dir: Path) -> None:
    status, seen, _ = run_on_terminal([STATION, "--data-dir", str(station_dir), "generate", "--product", PRODUCT,
                                   "--count", "120000"], stream="stderr")
    assert status == 0
    assert b"issuing" in seen and b"100%" in seen


def test_export_with_an_unknown_filter_writes_nothing(station_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    fails(station_dir, "export", "--product", "NOPE", "--out", str(target), message="unknown product 'NOPE'")
    assert not target.exists() and not (tmp_path / "out.csv.part").exists()
    result = run(station_dir, "export", "--product", "NOPE", ok=False)
    assert result.returncode == 1 and result.stdout == ""


def test_a_disabled_product_issues_nothing_until_enabled(station_dir: Path) -> None:
    assert "disabled" in run(station_dir, "product", "disable", PRODUCT).stdout
    fails(station_dir, "generate", "--product", PRODUCT, "--count", "2", message=f"station product enable {PRODUCT}")
    run(station_dir, "product", "enable", PRODUCT)
    assert "issued 2 claim IDs" in run(station_dir, "generate", "--product", PRODUCT, "--count", "2").stdout
    fails(station_dir, "product", "enable", "NOPE", message="unknown product 'NOPE'")


def test_claim_and_release_from_the_command_line(station_dir: Path) -> None:
    run(station_dir, "generate", "--product", PRODUCT, "--count", "1", "--batch", "claims")
    shown = run(station_dir, "export", "--batch", "claims").stdout.splitlines()[1].split(",")[1]
    fails(station_dir, "claim", shown, "--account", "acct-1", message="not registered yet")
    assert "once registered" in run(station_dir, "product", "claiming", PRODUCT, "--after-registration").stdout
    run(station_dir, "product", "claiming", PRODUCT, "--before-registration")
    assert run(station_dir, "claim", shown.lower(), "--account", "acct-1").stdout.strip() == f"{shown} claimed for acct-1"
    assert "already claimed" in run(station_dir, "claim", shown, "--account", "acct-1").stdout
    fails(station_dir, "claim", shown, "--account", "acct-2", message="claimed by another account")
    fails(station_dir, "claim", shown[:-1] + ("0" if shown[-1] != "0" else "1"), "--account", "acct-2", message="mistyped")
    fails(station_dir, "release", shown, "--reason", "", message="needs a reason")
    assert run(station_dir, "release", shown, "--reason", "returned").stdout.strip() == f"released {shown}: registered"
