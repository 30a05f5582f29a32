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

from .core.errors import Forbidden, Invalid
from .core.models import stored
from .store import Store

ROLES = ("operator", "admin", "display")  # display: a read-only screen beside the line
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
    store.add_user(name, role, hash_password(password), actor)
    return User(name, role)


def set_password(store: Store, name: str, password: str, actor: str = "cli") -> None:
    """A new password; it ends the user's sessions (whoever knew the old one is signed out)."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters")
    store.set_password_hash(name, hash_password(password), actor)


def set_enabled(store: Store, name: str, enabled: bool, actor: str = "cli") -> None:
    """Disable (ending the user's sessions; signing in is refused) or enable an account; its history stays."""
    store.set_user_enabled(name, enabled, actor)


def users(store: Store) -> list[User]:
    """Every user, enabled or not."""
    return [User(r["name"], r["role"], bool(r["enabled"])) for r in store.user_rows()]


def exists(store: Store, name: str) -> bool:
    """Whether a user of that name exists (so that only names of accounts are ever recorded)."""
    return store.user_row(name) is not None


def authenticate(store: Store, name: str, password: str) -> User | None:
    """The user if the password is right, else None (the caller records the failed attempt); a disabled
    account is refused, but only to someone who knows its password."""
    row = store.user_row(name)
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


def open_session(store: Store, name: str) -> str:
    """A new session of an enabled user; the random token goes into the cookie, only its hash into the store.
    Expired sessions are swept here, so the table holds only live ones."""
    token = secrets.token_urlsafe(32)
    started = datetime.now(UTC)
    store.add_session(_session_id(token), name, stored(started), stored(started + SESSION_FOR))
    return token


def session_user(store: Store, token: str) -> User | None:
    """The user of a live session (not signed out, not expired, the account enabled), else None."""
    row = store.session_row(_session_id(token))
    return User(row["name"], row["role"]) if row else None


def end_session(store: Store, token: str) -> None:
    """Sign out: the session's row goes, and its cookie opens nothing from now on."""
    store.end_session(_session_id(token))
