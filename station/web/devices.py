"""The devices pages: the list that answers questions (filters, sort and page in the URL) and each device's
page with its history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core import lifecycle
from ..core.errors import StationError
from .bodies import parse_int
from .pages import signed_in
from .runtime import runtime

PAGE = 50
MAX_PAGE = 10**6  # pages of the device list: far beyond any registry, within what SQLite's OFFSET takes

bp = Blueprint("devices", __name__)


@bp.get("/devices")
@signed_in()
def listing() -> ResponseReturnValue:
    """Search by any typed form of a claim code or a serial, or list by batch, state and product."""
    store = runtime().reader()
    q = request.args.get("q", "").strip()
    filters = {key: request.args.get(key) or None for key in ("product", "batch", "state")}
    page = parse_int(request.args.get("page"), "page", 1, MAX_PAGE, default=1)
    error = None
    found: list[Any] = []
    if q:
        try:
            return redirect(url_for("devices.device", uci=store.find(q).uci))
        except StationError as exc:
            found = list(store.devices(serial=q, limit=PAGE))
            if len(found) == 1:
                return redirect(url_for("devices.device", uci=found[0].uci))
            error = None if found else str(exc)
    else:
        found = list(store.devices(**filters, limit=PAGE + 1, offset=(page - 1) * PAGE))
    return render_template(
        "devices.html", devices=found[:PAGE], more=len(found) > PAGE, page=page, q=q, error=error, filters=filters,
        products=store.products(), batches=store.batches(), states=lifecycle.ALL_STATES,
    )


@bp.get("/devices/<uci>")
@signed_in()
def device(uci: str) -> ResponseReturnValue:
    store = runtime().reader()
    found = store.device(uci)
    held = store.credentials_of(uci)  # usernames, serials, fingerprints: never a secret or a key
    return render_template("device.html", device=found, product=store.product(found.product), events=store.events(uci),
                           credentials=held, provisioning=found.provisioning)


