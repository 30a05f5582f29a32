"""Signing people in to the operator pages: server-side sessions, CSRF tokens, a limit on sign-in attempts.

The session cookie is signed with a key kept in the data directory (made on first use, readable by its
owner only), HttpOnly and SameSite. It carries a random session token whose SHA-256 is a row of the store's
``sessions`` table (accounts.py): every request checks that row, so signing out, a new password or a disabled
account ends the session at once, even for a copied cookie. Every state-changing request of a signed-in user
carries the session's CSRF token: pages' forms in the field ``csrf_token`` (or the header), calls to the JSON
API in the header ``X-CSRF-Token`` only, so that the API reads its body whole.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from flask import Flask, Request, request, session

from .. import accounts
from ..accounts import User
from ..config import Config
from ..core.errors import Forbidden
from ..store import Store
from .access import Caller
from .limits import FailureLimiter
from .runtime import runtime

SECRET_FILE = "secret_key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def secret_key(data_dir: Path) -> bytes:
    """The key that signs session cookies: created once, kept across restarts so sessions survive them."""
    path = data_dir / SECRET_FILE
    if path.exists() and path.stat().st_size >= 32:
        return path.read_bytes()
    # Missing, or cut short (an interrupted first start): a new key, written whole under another name, then
    # renamed into place, so that two processes starting at once both end up reading one key.
    # The temporary name is made exclusively (a planted file or link there is refused, never written through).
    tmp = data_dir / f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
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
        PERMANENT_SESSION_LIFETIME=accounts.SESSION_FOR,
    )


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok(req: Request, *, header_only: bool = False) -> bool:
    """Whether a request carries this session's CSRF token (``header_only``: not from a form field, which
    would make Flask read and keep the body)."""
    if req.method in SAFE_METHODS:
        return True
    sent = req.headers.get("X-CSRF-Token") or ("" if header_only else req.form.get("csrf_token", ""))
    expected = session.get("csrf", "")
    return bool(expected) and hmac.compare_digest(sent, expected)


def check_csrf() -> None:
    """Refuse a state-changing request without this session's token (a forged or stale form)."""
    if not csrf_ok(request):
        raise Forbidden("this form is stale or did not come from the station's own page: reload the page and try again")


def sign_in(user: User) -> None:
    """A new session for ``user`` (a new row and a new cookie: nothing of an earlier session carries over, and
    the earlier session of this browser ends, so a copy of its cookie opens nothing)."""
    earlier = session.get("sid")

    def swap(store: Store) -> str:
        if isinstance(earlier, str):
            accounts.end_session(store, earlier)
        return accounts.open_session(store, user.name)

    token = runtime().writer.call(swap)
    session.clear()
    session.permanent = True
    session["sid"] = token
    csrf_token()


def sign_out() -> None:
    """End the session: its row goes, so a copy of the cookie opens nothing either."""
    token = session.get("sid")
    if isinstance(token, str):
        runtime().writer.call(accounts.end_session, token)
    session.clear()


def current_user() -> User | None:
    """The signed-in user: the cookie's session must be a live row of an enabled account."""
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    return accounts.session_user(runtime().reader(), token)


def session_way_in(req: Request) -> Caller | None:
    """A way into the JSON API for the operator pages' own calls: the session, with its CSRF token in the
    ``X-CSRF-Token`` header."""
    user = current_user()
    if user is None or not csrf_ok(req, header_only=True):
        return None
    return Caller.person(user)


def sign_in_limiter(per_name: int = 5, per_address: int = 20, window: float = 300.0) -> FailureLimiter:
    """Wrong passwords allowed in ``window`` seconds: few per user name (a guesser of one account), more per
    address (operators of one line share a PC, and one person's typos must not lock the others out)."""
    return FailureLimiter({"user": per_name, "addr": per_address}, window,
                          "too many wrong passwords; wait {wait} seconds and try again, or ask an admin")
