"""End-user claims through the live JSON API: units serialized and registered over the Ioto endpoints, then
claimed with a token of scope `claim`, as the maker's cloud does for its users."""

from __future__ import annotations

from typing import Any

import pytest

from station.core import uci
from tests.web.conftest import IOTO_BODY, OTHER, PRODUCT, Server, station


def bearer(server: Server, name: str, *scopes: str) -> dict[str, str]:
    args = [arg for scope in scopes for arg in ("--scope", scope)]
    return {"Authorization": f"Bearer {station(server.data_dir, 'token', 'create', '--name', name, *args).stdout.strip()}"}


@pytest.fixture(scope="module")
def cloud(server: Server) -> dict[str, str]:
    return bearer(server, "cloud", "claim")


def unit(server: Server, product: str = PRODUCT, serial: str | None = None) -> str:
    """A unit that serialized itself and registered at first boot, as an Ioto agent does: its display code."""
    body = {**IOTO_BODY, "product": product, **({"serial": serial} if serial else {})}
    code = server.serialize(body).json["id"]
    assert server.register({**body, "id": code}).status == 200
    return uci.display(code)


def claim(server: Server, auth: dict[str, str], code: str, account: str, **more: Any) -> Any:
    return server.call("POST", "/api/v1/claims", {"code": code, "account": account, **more}, auth)


def test_a_token_with_the_claim_scope_claims_once(server: Server, cloud: dict[str, str]) -> None:
    code = unit(server, serial="SN-CLAIM-1")
    assert claim(server, bearer(server, "reader", "read", "issue", "admin"), code, "acct-1").status == 403
    first = claim(server, cloud, code.lower().replace("-", " "), "acct-1", product=PRODUCT)
    assert first.status == 201 and first.json["state"] == "claimed" and first.json["account"] == "acct-1"
    assert claim(server, cloud, code, "acct-1").json == first.json  # the same account again: 200, no change
    assert claim(server, cloud, code, "acct-1").status == 200
    other = claim(server, cloud, code, "acct-2")
    assert other.status == 409 and "acct-1" not in other.raw.decode()


def test_unknown_other_product_and_void_codes_answer_alike(server: Server, cloud: dict[str, str]) -> None:
    foreign = unit(server, product=OTHER)
    gone = unit(server, serial="SN-CLAIM-VOID")
    admin = bearer(server, "admin-void", "admin", "issue")
    canonical = uci.parse(gone)
    assert server.call("POST", f"/api/v1/devices/{canonical}/void", {"reason": "label torn"}, admin).status == 200
    replies = [claim(server, cloud, code, "acct-guess", product=PRODUCT)
               for code in (uci.display(uci.generate()), foreign, gone)]
    assert {(r.status, r.raw) for r in replies} == {(replies[0].status, replies[0].raw)} and replies[0].status == 404
    mistyped = claim(server, cloud, gone[:-1] + ("0" if gone[-1] != "0" else "1"), "acct-guess")
    assert mistyped.status == 400 and "mistyped" in mistyped.json["error"]


def test_a_burst_of_wrong_codes_is_slowed_down(server: Server, cloud: dict[str, str]) -> None:
    code = unit(server, serial="SN-CLAIM-BURST")
    statuses = [claim(server, cloud, uci.display(uci.generate()), "acct-burst").status for _ in range(10)]
    assert statuses == [404] * 10
    limited = claim(server, cloud, code, "acct-burst")  # even the right code waits: the account is slowed down
    assert limited.status == 429 and 0 < int(limited.headers["retry-after"]) <= 600
    assert "wait" in limited.json["error"]
    assert claim(server, cloud, code, "acct-patient").status == 201  # another account of the same cloud goes on


def test_release_needs_admin_and_a_reason(server: Server, cloud: dict[str, str]) -> None:
    code = unit(server, serial="SN-CLAIM-RELEASE")
    canonical = uci.parse(code)
    assert claim(server, cloud, code, "acct-3").status == 201
    admin = bearer(server, "support", "admin")
    assert server.call("DELETE", f"/api/v1/claims/{canonical}", {"reason": "resold"}, cloud).status == 403
    assert server.call("DELETE", f"/api/v1/claims/{canonical}", {"reason": " "}, admin).status == 400
    released = server.call("DELETE", f"/api/v1/claims/{canonical}", {"reason": "resold"}, admin)
    assert released.status == 200 and released.json["state"] == "registered" and released.json["account"] is None
    assert server.call("DELETE", f"/api/v1/claims/{canonical}", {"reason": "again"}, admin).status == 409
    assert claim(server, cloud, code, "acct-4").status == 201
    events = server.call("GET", f"/api/v1/devices/{canonical}", None, bearer(server, "look", "read")).json["events"]
    moves = [e for e in events if e["kind"] in ("claimed", "released")]
    assert [e["kind"] for e in moves] == ["claimed", "released", "claimed"]
    assert moves[1]["details"]["reason"] == "resold" and moves[1]["actor"] == "api:support"
    assert [e["details"]["attempted"] for e in events if e["kind"] == "refused"] == ["released"]  # the second release
