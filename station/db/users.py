"""Users and their sessions: rows of accounts (only password hashes) and of live sessions (only token hashes).
The rules (names, roles, hashing, how long a session lasts) are station/accounts.py's."""

from __future__ import annotations

from typing import Any

from ..core.errors import Conflict, Forbidden, Invalid
from ..core.lifecycle import Kind
from ..core.models import now
from .events import EventsTable

NO_SUCH_USER = "no user {name!r}; `station user list` shows the users"


class UsersTable(EventsTable):
    def add_user(self, name: str, role: str, password_hash: str, actor: str) -> None:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"user {name} already exists; `station user passwd {name}` changes the password")
            conn.execute("INSERT INTO users(name, role, password_hash, created) VALUES (?, ?, ?, ?)",
                         (name, role, password_hash, now()))
            self._event(conn, Kind.USER_ADDED, actor, {"user": name, "role": role})

    def set_password_hash(self, name: str, password_hash: str, actor: str) -> None:
        """The new hash, and every session of the user ended, in one transaction with its event."""
        with self.transaction() as conn:
            if conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)).rowcount != 1:
                raise Invalid(NO_SUCH_USER.format(name=name))
            ended = conn.execute("DELETE FROM sessions WHERE \"user\" = ?", (name,)).rowcount
            self._event(conn, Kind.PASSWORD_CHANGED, actor, {"user": name, "sessions_ended": ended})

    def set_user_enabled(self, name: str, enabled: bool, actor: str) -> None:
        """Enable the account, or disable it and end its sessions; one transaction with its event."""
        with self.transaction() as conn:
            if conn.execute("UPDATE users SET enabled = ? WHERE name = ?", (int(enabled), name)).rowcount != 1:
                raise Invalid(NO_SUCH_USER.format(name=name))
            ended = 0 if enabled else conn.execute("DELETE FROM sessions WHERE \"user\" = ?", (name,)).rowcount
            self._event(conn, Kind.USER_ENABLED if enabled else Kind.USER_DISABLED, actor, {"user": name, "sessions_ended": ended})

    def user_rows(self) -> list[dict[str, Any]]:
        return list(self._query("SELECT name, role, enabled FROM users ORDER BY name"))

    def user_row(self, name: str) -> dict[str, Any] | None:
        """A user's row with its password hash, for checking a password; None when there is no such user."""
        return next(self._query("SELECT name, role, password_hash, enabled FROM users WHERE name = ?", (name,)), None)

    def add_session(self, session_id: str, name: str, created: str, expires: str) -> None:
        """A session of an enabled user; the expired ones are swept first, so the table holds only live ones."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE expires <= ?", (created,))
            if not conn.execute("SELECT 1 FROM users WHERE name = ? AND enabled = 1", (name,)).fetchone():
                raise Forbidden(f"the account {name} is disabled or gone; ask an admin")
            conn.execute("INSERT INTO sessions(id, \"user\", created, expires) VALUES (?, ?, ?, ?)",
                         (session_id, name, created, expires))

    def session_row(self, session_id: str) -> dict[str, Any] | None:
        """The user (name, role) of a live session: not signed out, not expired, the account enabled."""
        return next(self._query(
            "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.\"user\" "
            "WHERE s.id = ? AND s.expires > ? AND u.enabled = 1", (session_id, now())), None)

    def end_session(self, session_id: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
