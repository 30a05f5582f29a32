"""API tokens: only their SHA-256 is stored, with the scopes they were given."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from ..core.errors import Conflict, Invalid, NotFound
from ..core.lifecycle import Kind
from ..core.models import now
from .events import EventsTable

TOKEN_SCOPES = ("read", "issue", "claim", "admin")  # what an API token may do; station/web/access.py maps actions to them
DEFAULT_SCOPES = ("read",)  # a token made without --scope: least privilege


class TokensTable(EventsTable):


    @staticmethod
    def _token_hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def create_token(self, name: str, scopes: tuple[str, ...] = DEFAULT_SCOPES, actor: str = "cli") -> str:
        """A new API token, returned once: only its SHA-256 is stored, so the database alone grants no access.
        ``scopes`` (of TOKEN_SCOPES) say what it may do; least privilege by default: read only."""
        name = (name or "").strip()
        if not name or len(name) > 64 or not name.isprintable():
            raise Invalid(f"a token needs a name of 1 to 64 printable characters (who or what uses it), not {name!r}")
        unknown = [scope for scope in scopes if scope not in TOKEN_SCOPES]
        if unknown or not scopes:
            raise Invalid(f"a token's scopes are {', '.join(TOKEN_SCOPES)} (one or more), not {', '.join(unknown) or 'none'}")
        granted = " ".join(scope for scope in TOKEN_SCOPES if scope in scopes)
        token = "stn_" + secrets.token_urlsafe(32)
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"a token named {name!r} exists; revoke it with `station token revoke {name}` or choose another name")
            conn.execute("INSERT INTO tokens(name, hash, created, scopes) VALUES (?, ?, ?, ?)",
                         (name, self._token_hash(token), now(), granted))
            self._event(conn, Kind.TOKEN_CREATED, actor, {"name": name, "scopes": granted})
        return token

    def token_grant(self, token: str) -> tuple[str, frozenset[str]] | None:
        """The name and scopes of the stored token that matches, or None."""
        for row in self._query("SELECT name, scopes FROM tokens WHERE hash = ?", (self._token_hash(token),)):
            return row["name"], frozenset(row["scopes"].split())
        return None

    def touch_token(self, name: str) -> None:
        """Note when a token was last used, so that unused tokens can be found and revoked."""
        with self.transaction() as conn:
            conn.execute("UPDATE tokens SET last_used = ? WHERE name = ?", (now(), name))

    def tokens(self) -> list[dict[str, Any]]:
        """The tokens' names, scopes and dates (never their hashes)."""
        return list(self._query("SELECT name, scopes, created, last_used FROM tokens ORDER BY name"))

    def revoke_token(self, name: str, actor: str = "cli") -> None:
        """Delete a token: requests that carry it are refused from now on."""
        with self.transaction() as conn:
            if not conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount:
                raise NotFound(f"no token is named {name!r}: `station token list` shows them")
            self._event(conn, Kind.TOKEN_REVOKED, actor, {"name": name})
