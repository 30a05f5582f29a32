"""The batches pages."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from ..core import lifecycle
from .pages import signed_in
from .runtime import runtime

bp = Blueprint("batches", __name__)


@bp.get("/batches")
@signed_in()
def listing() -> ResponseReturnValue:
    store = runtime().reader()
    counts: dict[str | None, dict[str, int]] = {}
    for row in store.stats():
        counts.setdefault(row["batch"], {})[row["state"]] = row["devices"]
    return render_template("batches.html", batches=store.batches(), counts=counts, states=lifecycle.ALL_STATES)


