"""The OpenAPI document stays true: it names every route, and schemathesis finds no 5xx and no reply that
breaks it on the live server (a bounded, derandomized number of generated requests per operation)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from station import config
from station.web.app import create_app
from station.web.device import ENDPOINTS
from station.web.openapi import DOCUMENT
from tests.web.conftest import Server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def test_the_document_names_every_route(tmp_path: Path) -> None:
    app = create_app(config.load(tmp_path))
    try:
        routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
                  for rule in app.url_map.iter_rules() if rule.endpoint != "static"
                  for method in rule.methods - {"HEAD", "OPTIONS"}}
    finally:
        app.extensions["station"].close()
    routes |= {(path, "post") for path in ENDPOINTS}  # the device endpoints, in front of Flask
    documented = {(path, method) for path, operations in DOCUMENT["paths"].items() for method in operations}
    assert routes == documented


@pytest.fixture(scope="module")
def api_schema(server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"http://127.0.0.1:{server.port}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_live_app_keeps_its_document(case: schemathesis.Case, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@pytest.mark.parametrize("schema_name,path,body,name", [
    ("Issue", "/api/v1/devices", {"product": "01H4R15D3478JD26YDYK408XE6"}, "serial"),
    ("NewProduct", "/api/v1/products", {"id": "01LIMITS", "name": "Limits", "model": "L-1"}, "description"),
    ("NewProduct", "/api/v1/products", {"id": "01LIMITS", "name": "Limits", "model": "L-1"}, "name"),
])
def test_the_documented_limits_are_the_ones_the_code_applies(server: Server, token: str, schema_name: str, path: str,
                                                             body: dict[str, str], name: str) -> None:
    """The document takes its limits from the code: one character past a documented maxLength is refused, the
    limit itself is not refused for its length."""
    limit = DOCUMENT["components"]["schemas"][schema_name]["properties"][name]["maxLength"]
    auth = {"Authorization": f"Bearer {token}"}
    too_long = server.call("POST", path, {**body, name: "X" * (limit + 1)}, auth)
    assert too_long.status == 400 and name in too_long.json["error"] and str(limit) in too_long.json["error"]
    at_limit = server.call("POST", path, {**body, "id": f"01LIMIT{name.upper()}", name: "X" * limit} if "id" in body
                           else {**body, name: "X" * limit}, auth)
    assert at_limit.status in (200, 201), at_limit.json
