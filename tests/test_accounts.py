"""Accounts: hashed passwords, roles, and the `station user` commands."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from station import accounts
from station.core.errors import Conflict, Forbidden, Invalid
from station.store import Store
from station.web import access


def test_passwords_are_stored_only_as_hashes(store: Store) -> None:
    accounts.add_user(store, "ann", "operator", "correct horse")
    stored = store.conn.execute("SELECT password_hash FROM users WHERE name = 'ann'").fetchone()[0]
    assert "correct horse" not in stored and stored.startswith("scrypt$")
    assert accounts.authenticate(store, "ann", "correct horse") == accounts.User("ann", "operator")
    assert accounts.authenticate(store, "ann", "correct horsE") is None
    assert accounts.authenticate(store, "nobody", "correct horse") is None
    assert not accounts.verify_password("x", "not-a-hash")
    details = store.conn.execute("SELECT details FROM events WHERE kind = 'user-added'").fetchone()[0]
    assert "correct horse" not in details


def test_roles_and_bad_input(store: Store) -> None:
    admin = accounts.add_user(store, "root-admin", "admin", "long enough")
    operator = accounts.add_user(store, "op", "operator", "long enough")
    access.require(access.Caller.person(admin), "manage")
    with pytest.raises(Forbidden, match="ask an admin"):
        access.require(access.Caller.person(operator), "manage")
    with pytest.raises(Conflict, match="already exists"):
        accounts.add_user(store, "op", "operator", "long enough")
    with pytest.raises(Invalid, match="role"):
        accounts.add_user(store, "x", "boss", "long enough")
    with pytest.raises(Invalid, match="8 characters"):
        accounts.add_user(store, "x", "operator", "short")
    with pytest.raises(Invalid, match="user name"):
        accounts.add_user(store, "bad name", "operator", "long enough")
    accounts.set_password(store, "op", "another one")
    assert accounts.authenticate(store, "op", "another one") == operator
    assert [u.name for u in accounts.users(store)] == ["op", "root-admin"]


def test_user_commands(tmp_path: Path) -> None:
    station = shutil.which("station")
    assert station
    data = str(tmp_path / "data")
    added = subprocess.run([station, "--data-dir", data, "user", "add", "ann", "--role", "admin", "--password-stdin"],
                           input="a good password\n", capture_output=True, text=True, timeout=60)
    assert added.returncode == 0 and "added admin ann" in added.stdout
    listed = subprocess.run([station, "--data-dir", data, "user", "list"], capture_output=True, text=True, timeout=60)
    assert "ann   admin" in listed.stdout
    with Store.open(Path(data) / "station.db") as store:
        assert accounts.authenticate(store, "ann", "a good password") is not None


def test_sessions_are_rows_that_end(store: Store) -> None:
    accounts.add_user(store, "eve", "operator", "long enough")
    token = accounts.open_session(store, "eve")
    assert accounts.session_user(store, token) == accounts.User("eve", "operator")
    assert accounts.session_user(store, token + "x") is None
    stored = store.conn.execute("SELECT id, expires FROM sessions WHERE \"user\" = 'eve'").fetchall()
    assert len(stored) == 1 and token not in stored[0][0]  # only its hash is kept
    store.conn.execute("UPDATE sessions SET expires = '2000-01-01T00:00:00.000Z'")  # a shift long past
    assert accounts.session_user(store, token) is None
    again = accounts.open_session(store, "eve")  # a new sign-in sweeps expired rows
    assert store.conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    accounts.set_enabled(store, "eve", False)
    assert accounts.session_user(store, again) is None and store.conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    with pytest.raises(Forbidden, match="disabled"):
        accounts.authenticate(store, "eve", "long enough")
    with pytest.raises(Forbidden, match="disabled"):
        accounts.open_session(store, "eve")
    assert accounts.authenticate(store, "eve", "wrong password") is None  # a disabled account tells nothing to guessers
    accounts.set_enabled(store, "eve", True)
    token = accounts.open_session(store, "eve")
    accounts.end_session(store, token)
    assert accounts.session_user(store, token) is None
