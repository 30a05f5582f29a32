"""The OpenAPI 3 document of the station's whole HTTP surface, served at /api/openapi.json.

A test runs schemathesis against the live app with it, so that the document stays true to the code.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ..core import credentials, fields, lifecycle, uci
from ..db.claims import ACCOUNT_MAX
from ..db.devices import LIST_SORTS
from ..production import PARTS
from .access import RULES
from .api import MAX_PAGE
from .bodies import MAX_BODY
from .production import FORMATS, SLOT_MAX
from .production import SPANS as PRODUCTION_SPANS

bp = Blueprint("openapi", __name__)

_ERRORS = {
    400: "Malformed body, wrong type or a value the station refuses; the message says which.",
    401: "No credentials, or unknown ones.",
    403: "Not allowed from this address, the product does not match, or the token lacks the scope (the role) this needs.",
    404: "No such product, batch, device or endpoint.",
    409: "Clashes with what is stored (a used ID or serial, a disabled product, a void device).",
    413: f"The body is larger than {MAX_BODY // 1024} KiB.",
    429: "Too many failures (wrong passwords, claim codes that name no unit) from this address, for this name, "
         "account or token: wait the seconds of Retry-After and try again.",
    503: "The database is locked by another program or the disk is full; nothing was stored: try again.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(summary: str, ok: dict[int, tuple[str, str]], errors: tuple[int, ...], *, body: str | None = None,
               params: list[dict[str, Any]] | None = None, open_: bool = False, action: str | None = None) -> dict[str, Any]:
    """One operation: its replies (status -> schema name, description) and the error statuses it can give;
    ``action`` (of access.RULES) names the token scope and the roles it needs."""
    errors = tuple(sorted({*errors, 503, *(() if open_ else (401,)), *((400, 413) if body else ()), *((403,) if action else ())}))
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            **{str(status): _json(_ref(schema), text) for status, (schema, text) in ok.items()},
            **{str(status): _json(_ref("Error"), _ERRORS[status]) for status in errors},
        },
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        operation["parameters"] = params
    if open_:
        operation["security"] = []
    if action:
        rule = RULES[action]
        operation["description"] = (f"A token needs the scope `{rule.scope}`; a session, the role "
                                    f"{' or '.join(sorted(rule.roles))}. Others get 403.")
    return operation


def _param(name: str, where: str, description: str, *, required: bool = False, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "description": description,
            "schema": schema or {"type": "string"}}


_TEXT = {"type": "string"}
_REQUIRED_TEXT = {"type": "string", "minLength": 1, "pattern": r"\S"}
# Limits and patterns are the code's own (core/fields.py, core/uci.py): the document states them, it never decides them.
_ID_TEXT = {"type": "string", "minLength": 1, "maxLength": fields.PRODUCT_ID_MAX, "pattern": r"\S"}
_UCI_PATTERN = f"^[{uci.ALPHABET}]+$"
_NULLABLE_TEXT = {"type": "string", "nullable": True}
_IDEMPOTENCY = _param("Idempotency-Key", "header", "The client's name for this request: a retry with the same key gets the same UCI.",
                      schema={"type": "string", "maxLength": fields.IDEMPOTENCY_MAX})

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": _TEXT}},
    "DeviceObject": {
        "type": "object", "required": ["product"], "additionalProperties": True,
        "description": "The device object of device.json5, as the Ioto agent sends it; firmware may add fields "
                       "(serial, mac or hwid identify the unit, see hardware_keys).",
        "properties": {"product": _ID_TEXT, "name": _TEXT, "description": _TEXT, "model": _TEXT},
        "example": {"product": "01H4R15D3478JD26YDYK408XE6", "name": "Blank", "description": "Blank slate app", "model": "Blank-01"},
    },
    "Serialized": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "pattern": _UCI_PATTERN}}},
    "Registration": {
        "type": "object", "required": ["product", "id"], "additionalProperties": True,
        "properties": {"product": _ID_TEXT, "id": {**_ID_TEXT, "description": "The device's UCI."}, "name": _TEXT,
                       "description": _TEXT, "model": _TEXT, "created": _TEXT},
    },
    "Registered": {
        "type": "object", "required": ["registered", "id", "product", "state"],
        "properties": {"registered": {"type": "boolean"}, "id": _TEXT, "product": _TEXT, "state": _TEXT},
    },
    "NewProduct": {
        "type": "object", "required": ["id", "name", "model"], "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": f"^{fields.PRODUCT_ID_PATTERN}{{1,{fields.PRODUCT_ID_MAX}}}$"},
            "name": {**_REQUIRED_TEXT, "maxLength": fields.NAME_MAX}, "model": {**_REQUIRED_TEXT, "maxLength": fields.NAME_MAX},
            "description": {**_TEXT, "maxLength": fields.DESCRIPTION_MAX},
            "bits": {"type": "integer", "minimum": uci.MIN_BITS, "maximum": uci.MAX_BITS, "multipleOf": uci.SYMBOL_BITS},
            "check_symbol": {"type": "boolean"}, "claim_url": {**_TEXT, "maxLength": fields.NAME_MAX},
            "layout": {**_TEXT, "maxLength": fields.NAME_MAX},
        },
    },
    "Product": {
        "type": "object", "required": ["id", "name", "model", "description", "bits", "check_symbol", "claim_url", "layout", "enabled", "created"],
        "properties": {
            "id": _TEXT, "name": _TEXT, "model": _TEXT, "description": _TEXT, "bits": {"type": "integer"},
            "check_symbol": {"type": "boolean"}, "claim_url": _NULLABLE_TEXT, "layout": _NULLABLE_TEXT,
            "enabled": {"type": "boolean"}, "created": _TEXT,
            "claim_before_registration": {"type": "boolean"}, "account": _NULLABLE_TEXT, "cloud": _NULLABLE_TEXT,
            "credentials": {"type": "object", "description": "What credentials its units get, and where the rig writes them.",
                            "properties": {"kinds": {"type": "array", "items": {"type": "string",
                                                                                "enum": list(credentials.KINDS)}},
                                           "keys": {"type": "string", "enum": list(credentials.KEY_ORIGINS)}}},
        },
    },
    "Products": {"type": "object", "required": ["products"], "properties": {"products": {"type": "array", "items": _ref("Product")}}},
    "Batch": {
        "type": "object", "required": ["id", "name", "product", "count", "created", "actor"],
        "properties": {"id": {"type": "integer"}, "name": _TEXT, "product": _TEXT, "count": {"type": "integer"},
                       "created": _TEXT, "actor": _TEXT,
                       "account": {**_NULLABLE_TEXT, "description": "Pre-claimed batch: the Ioto account ID its "
                                   "device files carry (over the product's)."},
                       "cloud": {**_NULLABLE_TEXT, "description": "Pre-claimed batch: the Ioto cloud ID."},
                       "station": {**_NULLABLE_TEXT, "description": "The station that made it (null: before names)."},
                       "complete": {"type": "boolean", "description": "False until every claim ID is stored; "
                                    "an incomplete batch's devices cannot be used yet."},
                       "issued": {"type": "integer", "description": "Claim IDs stored so far (count once complete)."}},
    },
    "Batches": {"type": "object", "required": ["batches"], "properties": {"batches": {"type": "array", "items": _ref("Batch")}}},
    "Device": {
        "type": "object", "required": ["uci", "product", "state", "created", "updated", "batch", "serial", "hwkey", "display",
                                       "provisioning"],
        "properties": {
            "uci": _TEXT, "product": _TEXT, "state": {"type": "string", "enum": list(lifecycle.ALL_STATES)},
            "created": _TEXT, "updated": _NULLABLE_TEXT, "batch": _NULLABLE_TEXT, "serial": _NULLABLE_TEXT,
            "hwkey": _NULLABLE_TEXT, "display": _TEXT,
            "provisioning": {"type": "string", "nullable": True,
                             "enum": [credentials.DEFINED, credentials.ACTIVATED, credentials.ASSOCIATED, None],
                             "description": "Xively's provisioning state, derived (null for a void unit)."},
            "station": {**_NULLABLE_TEXT, "description": "The station that issued it (a batch's device: its batch's)."},
        },
    },
    "Event": {
        "type": "object", "required": ["id", "time", "uci", "batch", "kind", "actor", "details"],
        "properties": {"id": {"type": "integer"}, "time": _TEXT, "uci": _NULLABLE_TEXT, "batch": {"type": "integer", "nullable": True},
                       "kind": _TEXT, "actor": _TEXT, "details": {"type": "object"}},
    },
    "DeviceDetail": {"allOf": [_ref("Device"), {"type": "object", "required": ["events"],
                                                "properties": {"events": {"type": "array", "items": _ref("Event")}}}]},
    "Devices": {
        "type": "object", "required": ["devices", "limit", "offset", "next"],
        "properties": {"devices": {"type": "array", "items": _ref("Device")}, "limit": {"type": "integer"},
                       "offset": {"type": "integer"}, "next": {"type": "integer", "nullable": True}},
    },
    "Issue": {
        "type": "object", "required": ["product"], "additionalProperties": False,
        "properties": {"product": _ID_TEXT, "serial": {"type": "string", "maxLength": fields.KEY_MAX,
                                                          "description": "The manufacturer's serial of the unit."}},
    },
    "NewClaim": {
        "type": "object", "required": ["code", "account"], "additionalProperties": False,
        "properties": {"code": {**_REQUIRED_TEXT, "maxLength": fields.NAME_MAX,
                                "description": "The claim code as the end user typed or scanned it."},
                       "account": {**_REQUIRED_TEXT, "maxLength": ACCOUNT_MAX,
                                   "description": "The end user's account in the maker's cloud."},
                       "product": {**_ID_TEXT, "description": "Only a unit of this product is claimed."}},
    },
    "Claim": {
        "type": "object", "required": ["uci", "display", "product", "state", "account", "claimed"],
        "properties": {"uci": _TEXT, "display": _TEXT, "product": _TEXT,
                       "state": {"type": "string", "enum": list(lifecycle.ALL_STATES)},
                       "account": _NULLABLE_TEXT, "claimed": _NULLABLE_TEXT},
    },
    "Void": {"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {"reason": _REQUIRED_TEXT}},
    "Stats": {
        "type": "object", "required": ["stats"],
        "properties": {"stats": {"type": "array", "items": {
            "type": "object", "required": ["product", "batch", "state", "devices"],
            "properties": {"product": _TEXT, "batch": _NULLABLE_TEXT, "state": _TEXT, "devices": {"type": "integer"}},
        }}},
    },
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
    "Tile": {
        "type": "object", "required": ["slot", "status", "uci", "display", "steps", "reason"],
        "properties": {"slot": _TEXT, "status": {"type": "string", "enum": ["idle", "busy", "pass", "fail", "void"]},
                       "uci": _NULLABLE_TEXT, "display": _NULLABLE_TEXT, "product": _NULLABLE_TEXT, "serial": _NULLABLE_TEXT,
                       "printer": _NULLABLE_TEXT, "step": _NULLABLE_TEXT, "message": _TEXT, "reason": _TEXT,
                       "steps": {"type": "array", "items": {"type": "object"}}, "recent": {"type": "array", "items": {"type": "object"}}},
    },
    "BatchRun": {
        "type": "object", "required": ["id", "what", "total", "batch", "done", "state", "error", "url"],
        "properties": {"id": _TEXT, "what": {"type": "string", "enum": ["generate", "resume", "void"]},
                       "total": {"type": "integer"}, "batch": _NULLABLE_TEXT, "done": {"type": "integer"},
                       "state": {"type": "string", "enum": ["running", "done", "failed"]}, "error": _TEXT,
                       "url": {**_NULLABLE_TEXT, "description": "The batch's page, once the run is done."}},
    },
    "LineState": {
        "type": "object", "required": ["tiles", "today"],
        "properties": {"tiles": {"type": "array", "items": _ref("Tile")},
                       "today": {"type": "object", "description": "Passes and fails today by slot; the key \"\" is the station."}},
    },
    "Scan": {
        "type": "object", "required": ["product", "printer", "slot"],
        "properties": {"product": _TEXT, "printer": _TEXT, "slot": _TEXT, "serial": _TEXT},
    },
    "Reason": {"type": "object", "required": ["reason"], "properties": {"reason": _TEXT}},
    "SerializedUnits": {
        "type": "object", "required": ["units", "addresses"],
        "properties": {
            "units": {"type": "array", "description": "Units that serialized themselves, newest first.", "items": {
                "type": "object",
                "required": ["uci", "display", "product", "product_name", "remote", "time", "state", "printed", "reason",
                             "may_print", "printer"],
                "properties": {"uci": _TEXT, "display": _TEXT, "product": _TEXT, "product_name": _TEXT,
                               "remote": _NULLABLE_TEXT, "time": _TEXT,
                               "state": {"type": "string", "enum": list(lifecycle.ALL_STATES)},
                               "printed": {"type": "boolean"}, "reason": _TEXT, "may_print": {"type": "boolean"},
                               "printer": {**_NULLABLE_TEXT, "description": "The unit's factory printer, if one applies."}},
            }},
            "addresses": {"type": "array", "description": "Per unit address, today's IDs and those not registered.",
                          "items": {"type": "object", "required": ["remote", "issued", "unregistered"],
                                    "properties": {"remote": _NULLABLE_TEXT, "issued": {"type": "integer"},
                                                   "unregistered": {"type": "integer"}}}},
        },
    },
    "Printer": {"type": "object", "required": ["printer"], "properties": {"printer": _TEXT}},
    "Printed": {"type": "object", "required": ["printer", "where"], "properties": {"printer": _TEXT, "where": _TEXT}},
    "ProductionFigures": {
        "type": "object", "required": ["slot", "tested", "passed", "units_per_hour", "first_units", "first_passed",
                                       "first_pass_yield", "retests", "verdicts"],
        "properties": {"slot": {**_NULLABLE_TEXT, "description": "null: the station (or the slot asked for)."},
                       "tested": {"type": "integer"}, "passed": {"type": "integer"}, "units_per_hour": {"type": "number"},
                       "first_units": {"type": "integer"}, "first_passed": {"type": "integer"},
                       "first_pass_yield": {"type": "number", "nullable": True}, "retests": {"type": "integer"},
                       "verdicts": {"type": "integer"}},
    },
    "Production": {
        "type": "object", "required": ["span", "slot", "figures", "slots", "hours", "failures", "definitions"],
        "description": "The production view's figures (station/production.py says what each means; so does definitions).",
        "properties": {
            "span": {"type": "object", "required": ["name", "label", "start", "end"],
                     "properties": {"name": {"type": "string", "enum": list(PRODUCTION_SPANS)}, "label": _TEXT,
                                    "start": _TEXT, "end": _TEXT}},
            "slot": _NULLABLE_TEXT,
            "figures": _ref("ProductionFigures"),
            "slots": {"type": "array", "items": _ref("ProductionFigures")},
            "hours": {"type": "array", "items": {"type": "object", "required": ["start", "label", "passed"],
                                                 "properties": {"start": _TEXT, "label": _TEXT,
                                                                "passed": {"type": "integer"}}}},
            "failures": {"type": "array", "items": {
                "type": "object", "required": ["step", "reason", "failures", "share", "cumulative"],
                "properties": {"step": _TEXT, "reason": _TEXT, "failures": {"type": "integer"}, "share": {"type": "number"},
                               "cumulative": {"type": "number"}}}},
            "definitions": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}

# The operator pages: HTML for people signed in with a session cookie; their scripts call the line's JSON
# endpoints with the session and its CSRF token (header X-CSRF-Token, or the form field csrf_token).
_SESSION: list[dict[str, list[str]]] = [{"session": []}]


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


_REDIRECT = {"description": "Not signed in (to the sign-in page), or done (to the next page).",
             "headers": {"Location": {"schema": {"type": "string"}}}}


def _page(summary: str, *, ok: tuple[int, ...] = (200,), errors: tuple[int, ...] = (400, 403, 404, 409, 503),
          form: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An HTML page or form post of the operator pages; its errors are pages too."""
    operation: dict[str, Any] = {
        "summary": summary, "security": _SESSION,
        "responses": {**{str(status): _html("The page.") for status in ok}, "302": _REDIRECT,
                      **{str(status): _html(_ERRORS[status]) for status in errors}},
    }
    if form:
        operation["requestBody"] = {"content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": {**form, "csrf_token": _TEXT}}}}}
    if params:
        operation["parameters"] = params
    return operation


def _download(summary: str, types: tuple[str, ...], *, form: dict[str, Any] | None = None,
              params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A file of a batch page (an attachment); its refusals are the batch's page with the message."""
    operation = _page(summary, form=form, params=params)
    operation["responses"]["200"] = {"description": "The file, as an attachment.", "content": {
        kind: {"schema": {"type": "string", "format": "binary"}} for kind in types}}
    return operation


def _action(summary: str, form: dict[str, Any]) -> dict[str, Any]:
    """An action of a device's page: done, it sees the device's page again (303)."""
    operation = _page(summary, ok=(), form=form, params=[_UCI])
    operation["responses"]["303"] = {**_REDIRECT, "description": "Done: to the device's page, naming the action."}
    return operation


def _line(summary: str, ok: dict[int, tuple[str, str]], *, body: str | None = None,
          params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A JSON endpoint of the line page, for the page's own script."""
    operation = _operation(summary, ok, (401, 403, 404, 409), body=body, params=params)
    operation["security"] = _SESSION
    return operation


_SLOT = _param("slot", "path", "The rig slot's name.")
_PRODUCTION_PARAMS = [
    _param("span", "query", "today, shift (the current one) or 7d (the last 7 days); default today.",
           schema={"type": "string", "enum": list(PRODUCTION_SPANS)}),
    _param("slot", "query", "Only this rig slot; default the station.", schema={"type": "string", "maxLength": SLOT_MAX}),
    _param("format", "query", "json (default) or csv.", schema={"type": "string", "enum": list(FORMATS)}),
    _param("part", "query", "The CSV's table: figures (default), hours or failures.",
           schema={"type": "string", "enum": list(PARTS)}),
]


def _production(operation: dict[str, Any]) -> dict[str, Any]:
    """The production report's 200: JSON, or with format=csv one table as CSV."""
    operation["responses"]["200"] = {"description": "The report: JSON, or one table as CSV.", "content": {
        "application/json": {"schema": _ref("Production")}, "text/csv": {"schema": {"type": "string"}}}}
    return operation
_UCI = _param("uci", "path", "The canonical UCI.")
_PRODUCT_ID = _param("product_id", "path", "The Ioto product token.")
_CODE = _param("code", "path", "The canonical UCI.")
_BATCH = _param("name", "path", "The batch's name.")
_RUN = _param("run_id", "path", "The batch run, as its page names it.")

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Station",
        "version": "1",
        "description": "Claim IDs (UCIs) for a production line: the Ioto factory serialization and registration "
                       "endpoints, and a JSON API for operators' tools. Errors are {\"error\": message}.",
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer", "description": "An API token from `station token create --name NAME [--scope read|issue|admin ...]` (default: read)."},
            "session": {"type": "apiKey", "in": "cookie", "name": "station_session",
                        "description": "The operator pages' signed session cookie, from signing in."},
        },
    },
    "security": [{"token": []}],
    "paths": {
        "/ioto/serialize": {"post": _operation(
            "Issue a UCI to a unit (Ioto factory serialization); the same unit gets the same UCI again",
            {200: ("Serialized", "The UCI, committed to the database before this reply.")}, (403, 404, 409),
            body="DeviceObject", params=[_IDEMPOTENCY], open_=True)},
        "/api/device/register": {"post": _operation(
            "First-boot registration of a unit (the Ioto builder's shape); Authorization: bearer <product id>",
            {200: ("Registered", "The device is registered; the agent stores this reply.")}, (401, 403, 404, 409),
            body="Registration", open_=True)},
        "/api/openapi.json": {"get": _operation("This document", {200: ("OpenAPI", "The OpenAPI document.")}, (), open_=True)},
        "/api/v1/products": {
            "get": _operation("List the products", {200: ("Products", "The products.")}, (), action="read"),
            "post": _operation("Add a product", {201: ("Product", "The new product.")}, (409,), body="NewProduct", action="manage"),
        },
        "/api/v1/products/{product_id}": {
            "get": _operation("One product", {200: ("Product", "The product.")}, (404,), params=[_PRODUCT_ID], action="read"),
        },
        "/api/v1/batches": {
            "get": _operation("List the batches", {200: ("Batches", "The batches.")}, (),
                              params=[_param("product", "query", "Only this product's batches.")], action="read"),
        },
        "/api/v1/batches/{name}": {
            "get": _operation("One batch", {200: ("Batch", "The batch.")}, (404,), params=[_param("name", "path", "The batch name.")], action="read"),
        },
        "/api/v1/devices": {
            "get": _operation("List devices in issue order, filtered, a page at a time", {200: ("Devices", "A page of devices.")},
                              (400, 404), params=[
                                  _param("product", "query", "Product ID."),
                                  _param("batch", "query", "Batch name."),
                                  _param("state", "query", "Life-cycle state.", schema={"type": "string", "enum": list(lifecycle.ALL_STATES)}),
                                  _param("serial", "query", "Manufacturer serial."),
                                  _param("station", "query", "Only devices this station issued (name in station.json5)."),
                                  _param("limit", "query", "Page size.", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
                                  _param("offset", "query", "Devices to skip.", schema={"type": "integer", "minimum": 0}),
                              ], action="read"),
            "post": _operation("Issue a UCI (operator path), optionally for a manufacturer serial",
                               {201: ("DeviceDetail", "A new device."), 200: ("DeviceDetail", "The device this Idempotency-Key already has.")},
                               (404, 409), body="Issue", params=[_IDEMPOTENCY], action="issue"),
        },
        "/api/v1/devices/{code}": {
            "get": _operation("One device with its events", {200: ("DeviceDetail", "The device.")}, (404,), params=[_CODE], action="read"),
        },
        "/api/v1/devices/{code}/void": {
            "post": _operation("Void a device, with a reason; its UCI is never used again",
                               {200: ("DeviceDetail", "The void device.")}, (404, 409), body="Void", params=[_CODE], action="void"),
        },
        "/api/v1/lookup": {
            "get": _operation("A device by any typed or scanned form of its claim code", {200: ("DeviceDetail", "The device.")},
                              (400, 404, 409), params=[_param("code", "query", "The code as typed or scanned.", required=True)], action="read"),
        },
        "/api/v1/claims": {
            "post": _operation("Claim a unit for an end user's account",
                               {201: ("Claim", "The unit is claimed for the account."),
                                200: ("Claim", "The account had claimed this unit already.")},
                               (404, 409, 429), body="NewClaim", action="claim"),
        },
        "/api/v1/claims/{code}": {
            "delete": _operation("Release a claimed unit back to registered (resale, support)",
                                 {200: ("Claim", "The unit, registered again.")}, (404, 409), body="Void",
                                 params=[_CODE], action="release"),
        },
        "/api/v1/stats": {"get": _operation("Device counts by product, batch and state", {200: ("Stats", "The counts.")}, (400,),
                                            params=[_param("station", "query", "Only devices this station issued.")],
                                            action="read")},
        "/": {"get": _page("The line: scan units, follow each slot's cycle")},
        "/signin": {
            "get": {**_page("The sign-in form", params=[_param("next", "query", "The page to go to after signing in.")]),
                    "security": []},
            "post": {**_page("Sign in", ok=(), errors=(401, 403, 429),
                             form={"name": _TEXT, "password": _TEXT},
                             params=[_param("next", "query", "The page to go to after signing in.")]), "security": []},
        },
        "/signout": {"post": {**_page("Sign out", ok=(), errors=(403,)), "security": []}},
        "/devices": {"get": _page("Find devices by any typed form of a claim code or a serial, or list them", params=[
            _param("q", "query", "A claim code as typed or scanned, or a manufacturer serial."),
            _param("product", "query", "Product ID."), _param("batch", "query", "Batch name."),
            _param("state", "query", "Life-cycle state."), _param("page", "query", "Page number, from 1."),
            _param("sort", "query", "The column to sort by.", schema={"type": "string", "enum": list(LIST_SORTS)}),
            _param("order", "query", "asc or desc.", schema={"type": "string", "enum": ["asc", "desc"]})])},
        "/devices/{uci}": {"get": _page("A device with its history, its label and its actions", params=[
            _UCI, _param("done", "query", "The action just done, named on the page.")])},
        "/devices/{uci}/reprint": {"post": _action("Print the device's label again on a printer, with a reason",
                                                   {"printer": _TEXT, "reason": _TEXT})},
        "/devices/{uci}/void": {"post": _action("Void the device, with a reason", {"reason": _TEXT})},
        "/devices/{uci}/reflash": {"post": _action("Flash the device again on a slot of the line (no new claim ID, "
                                                   "no label)", {"slot": _TEXT})},
        "/devices/{uci}/label.png": {"get": {
            **_line("The device's label as the printer gets it, for a screen (nothing is printed)", {}, params=[_UCI]),
            "responses": {"200": {"description": "The label.", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                          **{str(s): _json(_ref("Error"), _ERRORS[s]) for s in (400, 401, 403, 404, 503)}}}},
        "/batches": {"get": _page("The batches with their devices' states"),
                     "post": {**_page("Make a batch in the background (admins): a count, or one claim ID per serial of "
                                      "an uploaded list; to the run's page"),
                              "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
                                  "product": _TEXT, "name": _TEXT, "count": _TEXT, "column": _TEXT, "account": _TEXT,
                                  "cloud": _TEXT, "csrf_token": _TEXT, "serials": {"type": "string", "format": "binary"}}}}}}}},
        "/batches/runs/{run_id}": {"get": _page("A batch run's progress, then its batch", params=[_RUN])},
        "/batches/runs/{run_id}.json": {"get": _line("A batch run's progress, for its page's script",
                                                     {200: ("BatchRun", "The run now.")}, params=[_RUN])},
        "/batches/{name}": {"get": _page("A batch: its counts by state, downloads, printing; resume or void when "
                                         "interrupted", params=[_BATCH])},
        "/batches/{name}/manifest.{fmt}": {"get": _download(
            "The batch's manifest (csv or json), times in the station's zone", ("text/csv", "application/json"),
            params=[_BATCH, _param("fmt", "path", "csv or json.")])},
        "/batches/{name}/device-files": {"post": _download(
            "A zip of the batch's <UCI>.json5 device files (admins); with secrets, each download makes new ones",
            ("application/zip",), params=[_BATCH])},
        "/batches/{name}/labels": {"post": _download(
            "The batch's labels as PDF sheets from a start position, or ZPL (admins); recorded as printed",
            ("application/pdf", "application/octet-stream"), params=[_BATCH],
            form={"format": _TEXT, "layout": _TEXT, "start_at": _TEXT, "reason": _TEXT})},
        "/batches/{name}/print": {"post": _page("Print the batch's labels on a configured printer (admins)",
                                                params=[_BATCH], form={"printer": _TEXT, "layout": _TEXT, "reason": _TEXT})},
        "/batches/{name}/resume": {"post": _page("Finish an interrupted batch in the background (admins)", params=[_BATCH])},
        "/batches/{name}/void": {"post": _page("Give up an interrupted batch, with a reason (admins)", params=[_BATCH],
                                               form={"reason": _TEXT})},
        "/products": {
            "get": _page("The products"),
            "post": _page("Add a product (admins)", form={"id": _TEXT, "name": _TEXT, "model": _TEXT, "description": _TEXT,
                                                          "bits": _TEXT, "claim_url": _TEXT, "layout": _TEXT,
                                                          "no_check_symbol": _TEXT}),
        },
        "/settings": {"get": _page("Printers, rig slots and users (admins)")},
        "/line/state": {"get": _line("Every slot's tile and today's counts", {200: ("LineState", "The line now.")})},
        "/line/events": {"get": {
            **_line("Server-sent events: every tile, then each change (event `tile`, data a Tile)", {}),
            "responses": {"200": {"description": "The event stream; it ends after a few minutes and the browser reconnects.",
                                  "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                          **{str(s): _json(_ref("Error"), _ERRORS[s]) for s in (401, 403, 503)}}}},
        "/line/units": {"post": _line("Issue a claim ID for the unit just scanned and start its cycle on a slot",
                                      {202: ("Tile", "The slot's tile, busy with the new unit.")}, body="Scan")},
        "/line/slots/{slot}/retry": {"post": _line("Run a failed unit's cycle again", {202: ("Tile", "The slot's tile.")},
                                                   params=[_SLOT])},
        "/line/slots/{slot}/reprint": {"post": _line("Print a failed unit's label again, with a reason",
                                                     {200: ("Tile", "The slot's tile.")}, body="Reason", params=[_SLOT])},
        "/line/slots/{slot}/void": {"post": _line("Void a failed unit, with a reason", {200: ("Tile", "The slot's tile.")},
                                                  body="Reason", params=[_SLOT])},
        "/line/serialized": {"get": _line("Units that serialized themselves, and today's IDs without registration "
                                          "per unit address", {200: ("SerializedUnits", "The last units.")})},
        "/line/serialized/{uci}/print": {"post": _line("Print the label of a unit that serialized itself, on a printer",
                                                       {200: ("Printed", "The label was printed.")}, body="Printer",
                                                       params=[_UCI])},
        "/api/v1/production": {"get": _production(_operation(
            "The production view: units per hour, first-pass yield, retests and failures, for the station or a slot",
            {200: ("Production", "The report as JSON.")}, (400,), params=_PRODUCTION_PARAMS, action="watch"))},
        "/production": {"get": _page("The production view (display=1, or a display account: large tiles, no actions)",
                                     params=[*_PRODUCTION_PARAMS[:2], _param("display", "query", "1: the display mode.")])},
        "/production/export": {"get": _production({
            **_operation("The production report for the page's downloads (the session)", {}, (400,),
                         params=_PRODUCTION_PARAMS, action="watch"), "security": _SESSION})},
        "/static/{filename}": {"get": {
            "summary": "The pages' stylesheet and script", "security": [], "parameters": [_param("filename", "path", "File name.")],
            "responses": {"200": {"description": "The file.", "content": {"text/css": {"schema": {"type": "string"}},
                                                                         "text/javascript": {"schema": {"type": "string"}}}},
                          "404": _json(_ref("Error"), _ERRORS[404])}}},
    },
}


@bp.get("/api/openapi.json")
def document() -> ResponseReturnValue:
    return jsonify(DOCUMENT)
