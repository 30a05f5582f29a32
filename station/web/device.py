"""The endpoints Ioto agents call (DESIGN.md sections 2 and 3): factory serialization and first-boot
registration. Agents send no credentials; the client networks, when configured, decide who may call.

They take the production line's load, so they are plain WSGI in front of the Flask app: Flask's request
machinery costs about as much CPU as the rest of a serialization together (bench/serialize.py), and these
two endpoints need none of it. Everything else goes on to Flask.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..core import fields
from ..core.errors import Forbidden, Invalid, NotFound, StationError
from ..core.lifecycle import Kind
from ..core.uci import MAX_BITS, agent_id
from ..store import Device, IssueRequest, Store
from . import replies
from .access import Unauthorized, bearer
from .bodies import MAX_BODY, content_length, field, idempotency_key, parse_object
from .requestlog import log_request
from .runtime import Runtime
from .upstream import Relayed, UpstreamFailed, relay, shown

log = logging.getLogger("station.web")

RAW_BODY = "station.body"  # the request's bytes, in the environ: a relayed registration sends them on unchanged
DEVICE_TEXT = ("name", "description", "model")  # fields of the device object that must be strings when present
def serialize(rt: Runtime, body: dict[str, Any], environ: dict[str, Any]) -> dict[str, Any]:
    """Issue the unit's UCI, committed before the reply; a unit that says who it is gets the same UCI again."""
    product = field(body, "product", str, required=True, max_len=64)
    for key in DEVICE_TEXT:
        field(body, key, str, max_len=MAX_BODY)
    hwkey = rt.hardware_key(body)
    remote = environ.get("REMOTE_ADDR") or ""
    code, created = rt.writer.issue(IssueRequest(
        fields.product_id(product), hwkey=hwkey and fields.hardware_key(hwkey), remote=remote,
        idempotency_key=idempotency_key(environ.get("HTTP_IDEMPOTENCY_KEY")), actor="device",
        details={"remote": remote}, **rt.config.issue_windows,
    ))
    # A repeat (hardware key, Idempotency-Key) has its label already; a product without a factory_printer wants
    # none, and its units cost the print thread nothing.
    if created and rt.config.for_product(product, "factory_printer") is not None:
        rt.factory_labels.submit(code, remote)
    return {"id": code}


def register(rt: Runtime, body: dict[str, Any], environ: dict[str, Any]) -> dict[str, Any] | Relayed:
    """Move the unit to ``registered`` and answer so that its agent stores the reply and stops registering: the
    station's own answer, or the upstream Builder's reply relayed unchanged where the product has one."""
    product = field(body, "product", str, required=True, max_len=64)
    code = field(body, "id", str, required=True, max_len=MAX_BITS // 5)
    claimed = bearer(environ.get("HTTP_AUTHORIZATION"))
    details: dict[str, Any] = {"remote": environ.get("REMOTE_ADDR")}
    for key in ("account", "cloud"):  # a pre-claimed unit's Ioto account and cloud, from its device.json5
        value = field(body, key, str, max_len=fields.PRODUCT_ID_MAX)
        if value is not None:
            details[key] = fields.product_id(value, f"the device's {key}")
    agent_ids = bool(rt.config.for_product(product, "agent_ids"))
    upstream: str | None = rt.config.for_product(product, "registration_upstream")
    if upstream is None:
        device = rt.writer.call(_register, code, product, claimed, details, agent_ids)
        return {"registered": True, "id": device.uci}  # never api or token: DESIGN.md section 3
    known = rt.writer.call(_admit, code, product, claimed, details, agent_ids)
    details["upstream"] = shown(upstream)
    try:
        relayed = relay(upstream, environ[RAW_BODY], environ["HTTP_AUTHORIZATION"], code,
                        rt.config.for_product(product, "registration_timeout"))
    except UpstreamFailed as exc:
        rt.writer.call(Store.record, code, Kind.REFUSED, "device",
                       {**details, "attempted": "registered", "reason": str(exc)})
        log.warning("upstream registration failed", extra={"uci": code, "product": product, "error": str(exc)})
        raise
    rt.writer.call(_relayed, code, product, details, known, relayed.claimed)
    return relayed


def _admit(store: Store, code: str, product: str, claimed: str | None, details: dict[str, Any],
           agent_ids: bool) -> bool:
    """On the writer thread: refuse (with an event) a unit whose product does not match, or an ID the station
    never issued where the product does not take agent-made IDs; whether the station holds the ID."""
    refusal: StationError | None = None
    known = True
    if claimed is None:
        refusal = Unauthorized("registration needs `Authorization: bearer <product id>`, as the Ioto agent sends it")
    elif claimed != product:
        # The header's value is not repeated: a tool that sent a secret there must not find it in the events.
        refusal = Forbidden(f"the Authorization header names another product than the body's {product!r}; "
                            f"send `Authorization: bearer <product id>` with the product of device.json5")
    else:
        try:
            owner = store.device(code).product
        except NotFound:
            owner, known = product, False
            refusal = _unknown(store, code, product, agent_ids)
        if owner != product:
            refusal = Forbidden(f"device {code} belongs to product {owner}, not {product}; check the unit's device.json5")
    if refusal is not None:
        store.record(code, Kind.REFUSED, "device", {**details, "attempted": "registered", "reason": str(refusal)})
        raise refusal
    return known


def _unknown(store: Store, code: str, product: str, agent_ids: bool) -> StationError | None:
    """Why an ID the station never issued is refused, or None where the product takes agent-made IDs."""
    if not agent_ids:
        return NotFound(f"no device has claim ID {code}; a unit that made its own ID (services.serialize \"auto\") "
                        f"is recorded only where its product allows agent_ids in station.json5")
    try:
        if agent_id(code) != code:  # the agent compares the reply's id with its own: it must be stored as sent
            return Invalid(f"{code!r} is not an ID an Ioto agent makes: agents write upper-case Crockford symbols")
        store.product(product)
    except StationError as exc:
        return exc
    return None


def _register(store: Store, code: str, product: str, claimed: str | None, details: dict[str, Any],
              agent_ids: bool) -> Device:
    """On the writer thread: admit the registration, then advance the unit (or record the agent-made ID)."""
    known = _admit(store, code, product, claimed, details, agent_ids)
    return _accept(store, code, product, details, known)


def _accept(store: Store, code: str, product: str, details: dict[str, Any], known: bool) -> Device:
    if known:
        return store.advance(code, "registered", Kind.REGISTERED, "device", details)
    return store.adopt(code, product, "device", details, registered=True)


def _relayed(store: Store, code: str, product: str, details: dict[str, Any], known: bool, claimed: bool) -> Device:
    """On the writer thread: the upstream registered the unit; record it, and its claim when the Builder sent
    the unit to its provisioning (a pre-claimed unit: its account, from its device.json5)."""
    device = _accept(store, code, product, {**details, "claimed": claimed}, known)
    if claimed and details.get("account"):
        device, _ = store.claim(code, details["account"], "upstream", product)
    return device


ENDPOINTS: dict[str, Callable[[Runtime, dict[str, Any], dict[str, Any]], dict[str, Any] | Relayed]] = {
    "/ioto/serialize": serialize,
    "/api/device/register": register,
}


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, refused above MAX_BODY before it is read."""
    return environ["wsgi.input"].read(content_length(environ))


class DeviceEndpoints:
    """WSGI middleware: answers the device endpoints itself (POST only) and passes every other path on."""

    def __init__(self, runtime: Runtime, app: replies.WSGIApp) -> None:
        self.runtime = runtime
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: replies.StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        endpoint = ENDPOINTS.get(path)
        if endpoint is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        method, remote = environ.get("REQUEST_METHOD", ""), environ.get("REMOTE_ADDR")
        headers: list[tuple[str, str]] = []
        try:
            if method != "POST":
                headers.append(("Allow", "POST"))
                raise _MethodNotAllowed(f"{path} takes POST, not {method}; /api/openapi.json lists the methods")
            self.runtime.access.check_device(remote)
            environ[RAW_BODY] = read_body(environ)
            reply, status = endpoint(self.runtime, parse_object(environ[RAW_BODY]), environ), 200
        except StationError as exc:
            reply, status = {"error": str(exc)}, exc.status
            headers += replies.error_headers(status)
        except Exception:  # a bug answers 500 and is logged; the agent retries
            log.exception("unexpected error", extra={"method": method, "path": path})
            reply, status = {"error": "internal error of the station; its log has the details"}, 500
        if isinstance(reply, Relayed):  # the Builder's own bytes, unchanged
            answered = replies.send(start_response, status, reply.body, reply.content_type)
        else:
            answered = replies.answer(start_response, status, reply, headers)
        log_request(method, path, status, started, remote, None)
        return answered


class _MethodNotAllowed(StationError):
    status = 405
