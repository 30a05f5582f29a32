"""Signing people in to the operator pages: signed-cookie sessions, CSRF tokens, a limit on sign-in attempts.

The session cookie is signed with a key kept in the data directory (made on first use, readable by its
owner only), HttpOnly and SameSite. Every state-changing request of a signed-in user carries the session's
CSRF token, in the form field ``csrf_token`` or the header ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

from flask import Flask, Request, request, session

from ..accounts import User
from ..config import Config
from ..errors import Forbidden, StationError
from .runtime import runtime

SECRET_FILE = "secret_key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SHIFT = timedelta(hours=12)


class TooManyAttempts(StationError):
    """Sign-in refused for a while after repeated wrong passwords."""

    status = 429


def secret_key(data_dir: Path) -> bytes:
    """The key that signs session cookies: created once, kept across restarts so sessions survive them."""
    path = data_dir / SECRET_FILE
    if path.exists() and path.stat().st_size >= 32:
        return path.read_bytes()
    # Missing, or cut short (an interrupted first start): a new key, written whole under another name, then
    # renamed into place, so that two processes starting at once both end up reading one key.
    tmp = data_dir / f"{SECRET_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
    if path.exists() and path.stat().st_size >= 32:
        tmp.unlink()
    else:
        os.replace(tmp, path)
    return path.read_bytes()


def configure(app: Flask, config: Config) -> None:
    app.secret_key = secret_key(config.data_dir)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="station_session",
        PERMANENT_SESSION_LIFETIME=SHIFT,
    )


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok(req: Request) -> bool:
    if req.method in SAFE_METHODS:
        return True
    sent = req.form.get("csrf_token") or req.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf", "")
    return bool(expected) and hmac.compare_digest(sent, expected)


def check_csrf() -> None:
    """Refuse a state-changing request without this session's token (a forged or stale form)."""
    if not csrf_ok(request):
        raise Forbidden("this form is stale or did not come from the station's own page: reload the page and try again")


def sign_in(user: User) -> None:
    session.clear()
    session.permanent = True
    session["user"] = user.name
    csrf_token()


def sign_out() -> None:
    session.clear()


def current_user() -> User | None:
    """The signed-in user, checked against the store so that a removed account ends its sessions."""
    name = session.get("user")
    if not name:
        return None
    row = next(iter(runtime().reader().db.query("SELECT name, role FROM users WHERE name = ?", (name,))), None)
    return User(row["name"], row["role"]) if row else None


def session_way_in(req: Request) -> str | None:
    """A way into the JSON API for the operator pages' own calls: the session, with its CSRF token."""
    user = current_user()
    if user is None or not csrf_ok(req):
        return None
    return f"operator:{user.name}"


class SignInLimiter:
    """Wrong passwords allowed in ``window`` seconds: few per user name (a guesser of one account), more per
    address (operators of one line share a PC, and one person's typos must not lock the others out)."""

    def __init__(self, per_name: int = 5, per_address: int = 20, window: float = 300.0) -> None:
        self.limits = {"user": per_name, "addr": per_address}
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(address: str | None, name: str) -> tuple[str, str]:
        return f"addr:{address}", f"user:{name.lower()}"

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def begin(self, *keys: str) -> float:
        """Refuse when a key is over its limit, else count this attempt now (as wrong until it succeeds), in
        one step: parallel guesses cannot all pass the check before any of them is counted."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.limits[key.partition(":")[0]]:
                    wait = int(self.window - (now - times[0])) + 1
                    raise TooManyAttempts(f"too many wrong passwords; wait {wait} seconds and try again, or ask an admin")
            for key in keys:
                self._failures[key].append(now)
        return now

    def succeeded(self, attempt: float, *keys: str) -> None:
        """A right password: its name's count starts again, and the address no longer counts this attempt."""
        with self._lock:
            for key in keys:
                if key.startswith("user:"):
                    self._failures.pop(key, None)
                elif attempt in self._failures.get(key, ()):
                    self._failures[key].remove(attempt)
