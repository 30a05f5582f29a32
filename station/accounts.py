"""Operator and admin accounts: passwords stored only as scrypt hashes, roles checked in one place."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .errors import Conflict, Forbidden, Invalid
from .store import Store, now

ROLES = ("operator", "admin")
MIN_PASSWORD = 8
# scrypt cost: about 50 ms a check here, slow for a guesser, quick for a person signing in.
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require(self, role: str) -> None:
        """Refuse what the user's role does not allow, saying who may."""
        if role == "admin" and not self.is_admin:
            raise Forbidden(f"{self.name} is an operator; ask an admin to do this")


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
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters")
    hashed = hash_password(password)
    with store.transaction() as conn:
        if conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (hashed, name)).rowcount != 1:
            raise Invalid(f"no user {name!r}; `station user list` shows the users")
        store._event(conn, "password-changed", actor, {"user": name})


def users(store: Store) -> list[User]:
    return [User(r["name"], r["role"]) for r in store.db.query("SELECT name, role FROM users ORDER BY name")]


def authenticate(store: Store, name: str, password: str) -> User | None:
    """The user if the password is right, else None (the caller records the failed attempt)."""
    row = next(iter(store.db.query("SELECT name, role, password_hash FROM users WHERE name = ?", (name,))), None)
    if row is None:
        verify_password(password, _dummy_hash())
        return None
    return User(row["name"], row["role"]) if verify_password(password, row["password_hash"]) else None
