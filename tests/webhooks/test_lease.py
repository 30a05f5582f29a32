"""One deliverer per endpoint, on both engines: the station holding an endpoint's lease moves its cursor, the others
are refused it until the holder gives it up or its lease runs out, and then take over from the stored cursor."""

from __future__ import annotations

from station.core.webhooks import Endpoint
from station.store import Store
from tests.conftest import PRODUCT

LEASE = 30.0  # seconds: longer than the test
ERP = Endpoint("erp", "http://127.0.0.1:9/in", ("issued",), "secret-of-the-lease-tests-42", 5.0, "start", 1)


def test_one_holder_at_a_time_moves_the_cursor(store: Store) -> None:
    store.webhook_start("erp", True)
    for _ in range(3):
        store.issue(PRODUCT)
    assert store.webhook_hold("erp", "line-1 #a", LEASE) == (0, frozenset())
    assert store.webhook_hold("erp", "line-2 #b", LEASE) is None  # refused while line-1's lease runs
    assert store.webhook_hold("erp", "line-1 #a", LEASE) == (0, frozenset())  # renewed
    assert store.webhook_delivered("erp", "line-1 #a", 2, True, [3])
    assert not store.webhook_delivered("erp", "line-2 #b", 3, True)  # not the holder: nothing stored
    store.webhook_failed("erp", "line-2 #b", "HTTP 500", "2026-12-04T00:00:00.000Z")
    (state,) = store.webhook_states([ERP])
    assert (state.cursor, state.holder, state.attempts, state.last_error) == (2, "line-1 #a", 0, None)
    store.webhook_release("erp", "line-2 #b")  # only the holder gives it up
    assert store.webhook_hold("erp", "line-2 #b", LEASE) is None
    store.webhook_release("erp", "line-1 #a")
    assert store.webhook_states([ERP])[0].holder is None
    assert store.webhook_hold("erp", "line-2 #b", LEASE) == (2, frozenset({3}))  # where line-1 left it


def test_a_lease_that_ran_out_is_taken_over(store: Store) -> None:
    store.webhook_start("erp", True)
    assert store.webhook_hold("erp", "line-1 #a", -1.0) is not None  # (already run out: a station killed)
    assert store.webhook_states([ERP])[0].holder is None
    assert store.webhook_hold("erp", "line-2 #b", LEASE) == (0, frozenset())
    assert not store.webhook_delivered("erp", "line-1 #a", 1, True)  # the old holder, back: refused
    assert store.webhook_hold("erp", "line-1 #a", LEASE) is None
    assert store.webhook_states([ERP])[0].holder == "line-2 #b"

