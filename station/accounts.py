"""Operator and admin accounts and their sessions: passwords stored only as scrypt hashes; a session is a row
keyed by the SHA-256 of the cookie's random token, so that signing out, a new password or a disabled account
ends it at once. What each role may do is decided in station/web/access.py."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import Conflict, Forbidden, Invalid
from .store import Store, now

ROLES = ("operator", "admin")
MIN_PASSWORD = 8
# scrypt cost: about 50 ms a check here, slow for a guesser, quick for a person signing in.
_N, _R, _P = 2**14, 8, 1
SESSION_FOR = timedelta(hours=12)  # a shift: a session ends after this even if nobody signs out


@dataclass(frozen=True)
class User:
    name: str
    role: str
    enabled: bool = True

    @property
    def actor(self) -> str:
        """How the user's actions are named in events."""
        return f"operator:{self.name}"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024)
    return "$".join(("scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison against a stored hash; a malformed hash never verifies."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def _dummy_hash() -> str:
    """Checked for unknown names too, so that a sign-in takes as long whether or not the name exists."""
    return hash_password(secrets.token_urlsafe(16))


def add_user(store: Store, name: str, role: str, password: str, actor: str = "cli") -> User:
    name = (name or "").strip()
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(name) > 64:
        raise Invalid(f"user name {name!r} must be letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters")
    hashed = hash_password(password)
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise Conflict(f"user {name} already exists; `station user passwd {name}` changes the password")
        conn.execute("INSERT INTO users(name, role, password_hash, created) VALUES (?, ?, ?, ?)", (name, role, hashed, now()))
        store._event(conn, "user-added", actor, {"user": name, "role": role})
    return User(name, role)


def set_password(store: Store, name: str, password: str, actor: str = "cli") -> None:
    """A new password; it ends the user's sessions (whoever knew the old one is signed out)."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters")
    hashed = hash_password(password)
    with store.transaction() as conn:
        if conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (hashed, name)).rowcount != 1:
            raise Invalid(f"no user {name!r}; `station user list` shows the users")
        ended = conn.execute("DELETE FROM sessions WHERE user = ?", (name,)).rowcount
        store._event(conn, "password-changed", actor, {"user": name, "sessions_ended": ended})


def set_enabled(store: Store, name: str, enabled: bool, actor: str = "cli") -> None:
    """Disable (ending the user's sessions; signing in is refused) or enable an account; its history stays."""
    with store.transaction() as conn:
        if conn.execute("UPDATE users SET enabled = ? WHERE name = ?", (int(enabled), name)).rowcount != 1:
            raise Invalid(f"no user {name!r}; `station user list` shows the users")
        ended = 0 if enabled else conn.execute("DELETE FROM sessions WHERE user = ?", (name,)).rowcount
        store._event(conn, "user-enabled" if enabled else "user-disabled", actor, {"user": name, "sessions_ended": ended})


def users(store: Store) -> list[User]:
    """Every user, enabled or not."""
    return [User(r["name"], r["role"], bool(r["enabled"])) for r in store.db.query("SELECT name, role, enabled FROM users ORDER BY name")]


def exists(store: Store, name: str) -> bool:
    """Whether a user of that name exists (so that only names of accounts are ever recorded)."""
    return store.db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None


def authenticate(store: Store, name: str, password: str) -> User | None:
    """The user if the password is right, else None (the caller records the failed attempt); a disabled
    account is refused, but only to someone who knows its password."""
    row = next(iter(store.db.query("SELECT name, role, password_hash, enabled FROM users WHERE name = ?", (name,))), None)
    if row is None:
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, row["password_hash"]):
        return None
    if not row["enabled"]:
        raise Forbidden(f"the account {name} is disabled; ask an admin (`station user enable {name}`)")
    return User(row["name"], row["role"])


# --- sessions --------------------------------------------------------------------------------------------

def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _stamp(moment: datetime) -> str:
    """A time in the store's format (``now()``), so that stored times compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_session(store: Store, name: str) -> str:
    """A new session of an enabled user; the random token goes into the cookie, only its hash into the store.
    Expired sessions are swept here, so the table holds only live ones."""
    token = secrets.token_urlsafe(32)
    started = datetime.now(UTC)
    with store.transaction() as conn:
        conn.execute("DELETE FROM sessions WHERE expires <= ?", (_stamp(started),))
        if not conn.execute("SELECT 1 FROM users WHERE name = ? AND enabled = 1", (name,)).fetchone():
            raise Forbidden(f"the account {name} is disabled or gone; ask an admin")
        conn.execute("INSERT INTO sessions(id, user, created, expires) VALUES (?, ?, ?, ?)",
                     (_session_id(token), name, _stamp(started), _stamp(started + SESSION_FOR)))
    return token


def session_user(store: Store, token: str) -> User | None:
    """The user of a live session (not signed out, not expired, the account enabled), else None."""
    row = store.db.execute(
        "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user "
        "WHERE s.id = ? AND s.expires > ? AND u.enabled = 1", (_session_id(token), now())).fetchone()
    return User(row[0], row[1]) if row else None


def end_session(store: Store, token: str) -> None:
    """Sign out: the session's row goes, and its cookie opens nothing from now on."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM sessions WHERE id = ?", (_session_id(token),))
