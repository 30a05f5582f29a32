"""Stored text on an operator's terminal: the CLI runs on a real pseudo-terminal, and a name, a serial or an
event detail holding ESC sequences, a carriage return or a bidi override comes out escaped, never run by
the terminal. Data sent to a pipe (an export) stays exact.

The hostile rows are written into the SQLite file directly, as a station of before the field rules (which
refuse such text now) stored them.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from station import terminal
from station.store import IssueRequest, Store
from tests.conftest import PRODUCT
from tests.test_cli import STATION, run, run_on_terminal

NAME = "Blank\x1b]0;owned\x07\x1b[2J"  # sets the window title, clears the screen
SERIAL = "SN\x1b[31m-RED\r\u202eFAKE\x9b"  # colour, carriage return, right-to-left override, C1 CSI


def on_terminal(data_dir: Path, *args: str) -> bytes:
    """What a command writes to a real terminal (its standard output is a pseudo-terminal)."""
    status, seen, err = run_on_terminal([STATION, "--data-dir", str(data_dir), *args])
    assert status == 0, err
    return seen


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, str]:
    data_dir = tmp_path / "data"
    run(data_dir, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    with Store.open(data_dir / "station.db") as store:
        device, _ = store.issue(IssueRequest(PRODUCT, serial="SN-1", actor="test"))
    conn = sqlite3.connect(data_dir / "station.db")
    with conn:
        conn.execute("UPDATE devices SET serial = ? WHERE uci = ?", (SERIAL, device.uci))
        conn.execute("UPDATE products SET name = ? WHERE id = ?", (NAME, PRODUCT))
    conn.close()
    return data_dir, device.uci


def _no_control(seen: bytes) -> str:
    text = seen.decode("utf-8")
    assert not {c for c in text if c not in "\r\n" and (ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c == "\u202e")}, text
    return text


def test_show_on_a_terminal_escapes_stored_control_characters(hostile) -> None:
    data_dir, uci = hostile
    text = _no_control(on_terminal(data_dir, "show", uci))
    assert "serial:  SN\\x1b[31m-RED\\x0d\\u202eFAKE\\x9b" in text


def test_product_list_on_a_terminal_escapes_a_stored_name(hostile) -> None:
    data_dir, _ = hostile
    text = _no_control(on_terminal(data_dir, "product", "list"))
    assert "Blank\\x1b]0;owned\\x07\\x1b[2J" in text


def test_export_escapes_on_a_terminal_and_stays_exact_in_a_pipe(hostile) -> None:
    data_dir, uci = hostile
    for fmt in ("csv", "json"):
        text = _no_control(on_terminal(data_dir, "export", "--format", fmt))
        assert uci in text
    assert "SN\\x1b[31m-RED\\x0d\\u202eFAKE\\x9b" in _no_control(on_terminal(data_dir, "export", "--format", "csv"))
    piped = subprocess.run([STATION, "--data-dir", str(data_dir), "export", "--format", "csv"], capture_output=True,
                           timeout=60, check=True).stdout.decode("utf-8")
    assert SERIAL in piped  # a file or a pipe gets the stored text exactly (quoted: it holds a CR)


def test_escape_shows_every_kind_of_control_and_keeps_plain_text() -> None:
    assert terminal.escape("Zoë 株式会社 -_=+ ok") == "Zoë 株式会社 -_=+ ok"
    assert terminal.escape("a\x00b\x1bc\x7fd\x85e\u200ef\u2066g\u2028h\ti\nj") == (
        "a\\x00b\\x1bc\\x7fd\\x85e\\u200ef\\u2066g\\u2028h\\x09i\\x0aj")
    assert terminal.escape("row\r\nnext\nlast\rx", lines=True) == "row\r\nnext\nlast\\x0dx"
