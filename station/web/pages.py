"""The operator pages: sign-in, devices, batches, products and settings (the line is in line.py).

Pages render Jinja templates from the repository's ``templates/``; every form posts its CSRF token; every
write goes through the app's one writer, as the JSON API's do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import accounts, resources, times
from ..core import uci
from ..core.errors import StationError
from ..core.lifecycle import Kind
from ..labels import layout as layout_mod
from ..store import Store
from . import session as sessions
from .access import Caller, Unauthorized, allowed, require
from .bodies import parse_int
from .limits import TooManyAttempts
from .runtime import runtime

# create_app checks that both are there (resources.check) before any page is served.
bp = Blueprint("pages", __name__, template_folder=str(resources.location("templates")),
               static_folder=str(resources.location("static")), static_url_path="/static")
limiter = sessions.sign_in_limiter()

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


@bp.app_context_processor
def page_globals() -> dict[str, Any]:
    config = runtime().config
    return {"csrf_token": sessions.csrf_token, "user": g.get("user"), "may": may, "zone": config.zone,
            "station_name": config.station}


@bp.app_template_filter("localtime")
def localtime(stamp: str | None, seconds: bool = True) -> str:
    """A stored time in the station's zone, named (times.shown): the same on every page."""
    return times.shown(stamp, runtime().config.zone, seconds)


def may(action: str) -> bool:
    """Whether the signed-in user may do ``action`` (access.RULES): pages show only what the user may do."""
    user = g.get("user")
    return user is not None and allowed(Caller.person(user), action)


# The blueprints of pages people sign in to (the JSON API finds its caller through access.py).
PAGE_BLUEPRINTS = frozenset({"pages", "line", "devices", "batches", "production"})


@bp.before_app_request
def load_user() -> None:
    g.user = sessions.current_user() if request.blueprint in PAGE_BLUEPRINTS else None


def signed_in(action: str = "read", api: bool = False) -> Callable[[View], View]:
    """Send people who are not signed in to the sign-in page (``api``: a 401 for the page's scripts);
    refuse what the user's role may not do (``action`` of access.RULES); check the CSRF token of every
    state-changing request."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            user = g.get("user")
            if user is None and api:
                raise Unauthorized("you are signed out; sign in again on the station's page")
            if user is None:
                return redirect(url_for("pages.signin", next=request.full_path.rstrip("?")))
            require(Caller.person(user), action)
            sessions.check_csrf()
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


@bp.errorhandler(StationError)
def page_error(exc: StationError) -> ResponseReturnValue:
    return render_template("error.html", message=str(exc)), exc.status


def local_target(wanted: str | None) -> str:
    """Where to go after signing in: a path of this station only, never another site (an open redirect)."""
    parts = urlsplit(wanted or "")
    if (not wanted or parts.scheme or parts.netloc or not wanted.startswith("/") or wanted.startswith("//")
            or any(c.isspace() or ord(c) < 32 or c == "\\" for c in wanted)):
        return url_for("line.page")
    return wanted


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> ResponseReturnValue:
    target = local_target(request.args.get("next"))
    if request.method == "GET":
        return render_template("signin.html", next=target, no_users=not accounts.users(runtime().reader()))
    sessions.check_csrf()
    name = request.form.get("name", "").strip()
    keys = {"addr": request.remote_addr, "user": name.lower()}
    try:
        attempt = limiter.begin(**keys)
    except TooManyAttempts as exc:
        return render_template("signin.html", next=target, error=str(exc), name=name), exc.status
    try:
        user = accounts.authenticate(runtime().reader(), name, request.form.get("password", ""))
    except StationError as exc:  # a disabled account, with its right password
        _sign_in_refused(name, "disabled")
        return render_template("signin.html", next=target, error=str(exc), name=name), exc.status
    if user is None:
        _sign_in_refused(name if accounts.exists(runtime().reader(), name) else "unknown")
        return render_template("signin.html", next=target, error="wrong name or password", name=name), 401
    limiter.succeeded(attempt, forgive=("user",), **keys)
    sessions.sign_in(user)
    return redirect(target)


def _sign_in_refused(user: str, reason: str | None = None) -> None:
    """The refusal's event. Only names of accounts reach it ("unknown" for others): what was typed as a name
    may be a password in the wrong field, and events are kept for ever."""
    details = {"user": user, "remote": request.remote_addr, **({"reason": reason} if reason else {})}  # read here, not in the writer
    runtime().writer.call(Store.record, None, Kind.SIGN_IN_REFUSED, "operator", details)


@bp.post("/signout")
def signout() -> ResponseReturnValue:
    sessions.check_csrf()
    sessions.sign_out()
    return redirect(url_for("pages.signin"))


@bp.route("/products", methods=["GET", "POST"])
@signed_in()
def products() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        require(Caller.person(g.user), "manage")
        form = request.form
        actor = g.user.actor
        try:
            bits = parse_int(form.get("bits") or None, "size in bits", uci.MIN_BITS, uci.MAX_BITS, default=uci.DEFAULT_BITS)
            runtime().writer.call(
                Store.add_product, form.get("id", ""), form.get("name", ""), form.get("model", ""),
                description=form.get("description", ""), bits=bits, check_symbol=not form.get("no_check_symbol"),
                claim_url=form.get("claim_url") or None, layout=form.get("layout") or None, actor=actor)
            return redirect(url_for("pages.products"))
        except StationError as exc:
            error = str(exc)
    return render_template("products.html", products=runtime().reader().products(), error=error, form=request.form), (400 if error else 200)


@bp.get("/settings")
@signed_in("settings")
def settings() -> ResponseReturnValue:
    config = runtime().config
    folder = layout_mod.directory(config)
    try:
        layouts, layouts_problem = layout_mod.check_all(folder), None
    except StationError as exc:
        layouts, layouts_problem = [], str(exc)
    return render_template("settings.html", config_path=config.config_path, printers=config.get("printers"),
                           layouts=layouts, layouts_folder=folder, layouts_problem=layouts_problem,
                           slots=config.get("slots"), rig=config.get("rig"),
                           users=accounts.users(runtime().reader()),
                           webhooks=zip(config.get("webhooks"), runtime().reader().webhook_states(config.get("webhooks")),
                                        strict=True))
