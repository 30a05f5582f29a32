"""The JSON API under /api/v1/ for operators' tools: products, batches, devices, issuance, voiding, stats.

Every call needs a caller (see access.py), who becomes the actor of the events it writes, and each endpoint
names its action (``needs``), which access.RULES allows by the caller's role or token scopes. Reads use the
request thread's connection; writes go through the writer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from ..core import fields
from ..core.errors import Unavailable
from ..db.claims import ACCOUNT_MAX
from ..store import Device, IssueRequest, Store
from .access import require
from .bodies import field, idempotency_key, only_fields, parse_object, query_int
from .runtime import runtime

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

PAGE = 100  # devices per page unless ``limit`` says otherwise
MAX_PAGE = 1000
PRODUCT_FIELDS = ("id", "name", "model", "description", "bits", "check_symbol", "claim_url", "layout")


View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


@bp.before_request
def who_calls() -> None:
    g.who = runtime().access.caller(request)
    g.caller = g.who.actor  # the actor of the events the call writes


def needs(action: str) -> Callable[[View], View]:
    """The action of an endpoint (a key of access.RULES): a caller who may not do it gets 403."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            require(g.who, action)
            return view(*args, **kwargs)

        inner.action = action  # type: ignore[attr-defined]
        return inner  # type: ignore[return-value]

    return wrap


@bp.get("/products")
@needs("read")
def products() -> ResponseReturnValue:
    return jsonify(products=[asdict(p) for p in runtime().reader().products()])


@bp.post("/products")
@needs("manage")
def add_product() -> ResponseReturnValue:
    body = json_object()
    only_fields(body, PRODUCT_FIELDS)
    args: dict[str, Any] = {
        "description": field(body, "description", str) or "",
        "check_symbol": field(body, "check_symbol", bool),
        "bits": field(body, "bits", int),
        "claim_url": field(body, "claim_url", str),
        "layout": field(body, "layout", str),
    }
    product_id = field(body, "id", str, required=True, max_len=fields.PRODUCT_ID_MAX)
    name, model = field(body, "name", str, required=True), field(body, "model", str, required=True)
    args = {key: value for key, value in args.items() if value is not None}
    caller = g.caller
    product = runtime().writer.call(Store.add_product, product_id, name, model, actor=caller, **args)
    return jsonify(asdict(product)), 201


@bp.get("/products/<product_id>")
@needs("read")
def product(product_id: str) -> ResponseReturnValue:
    return jsonify(asdict(runtime().reader().product(product_id)))


@bp.get("/batches")
@needs("read")
def batches() -> ResponseReturnValue:
    return jsonify(batches=[asdict(b) for b in runtime().reader().batches(request.args.get("product") or None)])


@bp.get("/batches/<name>")
@needs("read")
def batch(name: str) -> ResponseReturnValue:
    return jsonify(asdict(runtime().reader().batch(name)))


@bp.get("/devices")
@needs("read")
def devices() -> ResponseReturnValue:
    limit = query_int(request.args, "limit", PAGE, 1, MAX_PAGE)
    offset = query_int(request.args, "offset", 0, 0, 10**9)
    filters = {key: request.args.get(key) or None for key in ("product", "batch", "state", "serial", "station")}
    page = [d.to_dict() for d in runtime().reader().devices(**filters, limit=limit, offset=offset)]
    return jsonify(devices=page, limit=limit, offset=offset, next=offset + limit if len(page) == limit else None)


@bp.post("/devices")
@needs("issue")
def issue() -> ResponseReturnValue:
    """The operator's path: one UCI for a product, optionally for a manufacturer serial."""
    body = json_object()
    only_fields(body, ("product", "serial"))
    product_id = fields.product_id(field(body, "product", str, required=True))
    serial = field(body, "serial", str)
    key = idempotency_key(request.headers.get("Idempotency-Key"))
    rt = runtime()
    code, created = rt.writer.issue(IssueRequest(product_id, serial=fields.serial(serial) if serial else None,
                                                 idempotency_key=key, remote=request.remote_addr or "", actor=g.caller,
                                                 **rt.config.issue_windows))
    return _detail(rt.reader().device(code)), 201 if created else 200


@bp.get("/devices/<code>")
@needs("read")
def device(code: str) -> ResponseReturnValue:
    return _detail(runtime().reader().device(code))


@bp.get("/lookup")
@needs("read")
def lookup() -> ResponseReturnValue:
    """A device by any typed or scanned form of its claim code (spaces, dashes, check symbol, O/0, I/L/1)."""
    code = field(request.args, "code", str, required=True, max_len=200)
    return _detail(runtime().reader().find(code))


@bp.post("/devices/<code>/void")
@needs("void")
def void(code: str) -> ResponseReturnValue:
    return _detail(runtime().writer.call(Store.void, code, _reason(), g.caller))


def _reason() -> str:
    """The body ``{"reason": ...}`` of a call that must say why (void, release)."""
    body = json_object()
    only_fields(body, ("reason",))
    return field(body, "reason", str, required=True)


@bp.get("/stats")
@needs("read")
def stats() -> ResponseReturnValue:
    return jsonify(stats=runtime().reader().stats(request.args.get("station") or None))


def json_object() -> dict[str, Any]:
    """The request's body as a JSON object (Flask answers 413 above MAX_CONTENT_LENGTH)."""
    return parse_object(request.get_data(cache=False))


def _detail(device: Device) -> Response:
    """A device with its history."""
    return jsonify({**device.to_dict(), "events": [asdict(e) for e in runtime().reader().events(device.uci)]})


def _claim(device: Device, claim: dict[str, Any] | None) -> dict[str, Any]:
    return {"uci": device.uci, "display": device.display, "product": device.product, "state": device.state,
            "account": claim["account"] if claim else None, "claimed": claim["created"] if claim else None}


@bp.post("/claims")
@needs("claim")
def claim() -> ResponseReturnValue:
    """An end user's claim through the maker's cloud: the code as they typed it, bound to their account once.
    Codes that name no claimable unit count against the caller's token, the account and the address."""
    body = json_object()
    only_fields(body, ("code", "product", "account"))
    code = field(body, "code", str, required=True, max_len=fields.NAME_MAX)
    owner = field(body, "account", str, required=True, max_len=ACCOUNT_MAX)
    product = field(body, "product", str)
    rt = runtime()
    keys = {"token": g.caller, "account": owner, "addr": request.remote_addr}
    attempt = rt.claim_failures.begin(**keys)
    try:
        device, created = rt.writer.call(Store.claim, code, owner, g.caller,
                                         fields.product_id(product) if product is not None else None)
    except Unavailable:
        rt.claim_failures.succeeded(attempt, **keys)  # the station's trouble, not a wrong code
        raise
    rt.claim_failures.succeeded(attempt, **keys)
    return jsonify(_claim(device, rt.reader().claim_of(device.uci))), 201 if created else 200


@bp.delete("/claims/<code>")
@needs("release")
def release(code: str) -> ResponseReturnValue:
    """Return a claimed unit to registered, for resale or a support case; the reason stays in its history."""
    return jsonify(_claim(runtime().writer.call(Store.release, code, _reason(), g.caller), None))
