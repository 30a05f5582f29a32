"""End-user claims and releases in the store, on a real SQLite file: every typed form of a code claims, a
mistyped one never does, and a refusal never tells which units exist."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from station.core import uci
from station.core.errors import Conflict, Invalid, StationError
from station.core.lifecycle import Kind, TransitionRefused
from station.core.uci import MistypedError
from station.store import ClaimedElsewhere, Device, NoSuchUnit, Store
from tests.conftest import PRODUCT, dump

OTHER = "01OTHERPRODUCT000000000001"


def registered(store: Store) -> Device:
    unit, _ = store.issue(PRODUCT)
    return store.advance(unit.uci, "registered", Kind.REGISTERED, "device")


def typed_forms(device: Device) -> list[str]:
    """How people type or scan a code: the label's form, without dashes, lower case, with spaces, 0 as O and
    1 as I or L, and the bare claim ID."""
    shown = device.display
    forms = [shown, shown.replace("-", ""), shown.lower(), shown.replace("-", " "), f"  {shown}\t", device.uci,
             device.uci.lower()]
    forms += [shown.replace("0", "O"), shown.replace("1", "I"), shown.replace("1", "l")]
    return forms


def test_every_typed_form_of_a_real_code_claims_it_once(store: Store) -> None:
    unit = registered(store)
    claimed, created = store.claim(typed_forms(unit)[0], "acct-1", "api:cloud")
    assert created and claimed.state == "claimed" and claimed.uci == unit.uci
    for form in typed_forms(unit)[1:]:
        assert store.claim(form, "acct-1", "api:cloud") == (claimed, False), form  # the same account: idempotent
    assert store.claim_of(unit.uci)["account"] == "acct-1"
    events = [(e.kind, e.details.get("account")) for e in store.events(unit.uci)]
    assert events[-1] == ("claimed", "acct-1") and [k for k, _ in events].count("claimed") == 1


def mistypings(shown: str) -> list[str]:
    """Every single-symbol substitution and every adjacent transposition of a displayed code."""
    symbols = [i for i, c in enumerate(shown) if c != "-"]
    out = []
    for i in symbols:
        alphabet = uci.CHECK_ALPHABET if i == symbols[-1] else uci.ALPHABET
        out += [shown[:i] + c + shown[i + 1:] for c in alphabet if c != shown[i]]
    for a, b in zip(symbols, symbols[1:-1], strict=False):  # within the claim ID (the check symbol is not one of them)
        if shown[a] != shown[b]:
            chars = list(shown)
            chars[a], chars[b] = chars[b], chars[a]
            out.append("".join(chars))
    return out


def test_every_substitution_and_transposition_is_refused_as_mistyped(store: Store) -> None:
    unit = registered(store)
    wrong = mistypings(unit.display)
    assert len(wrong) > 16 * 30
    for typed in wrong:
        with pytest.raises(MistypedError, match="mistyped"):
            store.claim(typed, "acct-1", "api:cloud")
    assert store.device(unit.uci).state == "registered" and store.claim_of(unit.uci) is None


def test_unknown_other_product_and_void_codes_are_refused_alike(store: Store) -> None:
    store.add_product(OTHER, "Other", "O-1")
    other, _ = store.issue(OTHER)
    store.advance(other.uci, "registered", Kind.REGISTERED, "device")
    gone = registered(store)
    store.void(gone.uci, "label damaged", "cli")
    unknown = uci.display(uci.generate())
    refusals = []
    for typed, product in ((unknown, PRODUCT), (other.display, PRODUCT), (gone.display, PRODUCT), (gone.display, None)):
        with pytest.raises(NoSuchUnit) as refused:
            store.claim(typed, "acct-1", "api:cloud", product)
        refusals.append((type(refused.value), refused.value.status, str(refused.value)))
    assert len(set(refusals)) == 1 and refusals[0][1] == 404
    assert store.device(other.uci).state == "registered"
    assert "claimed" not in [e.kind for e in store.events(gone.uci)]
    refused = store.conn.execute("SELECT uci, details FROM events WHERE kind = 'refused'").fetchall()
    assert len(refused) == 4 and {row[0] for row in refused} == {None}  # alike in the history too
    assert store.claim(other.display, "acct-2", "api:cloud", OTHER)[1]  # its own product claims it


def test_another_account_is_refused_and_a_release_frees_the_unit(store: Store) -> None:
    unit = registered(store)
    store.claim(unit.display, "acct-1", "api:cloud")
    with pytest.raises(ClaimedElsewhere) as refused:
        store.claim(unit.display, "acct-2", "api:cloud")
    assert refused.value.status == 409 and "acct-1" not in str(refused.value)
    with pytest.raises(Invalid, match="needs a reason"):
        store.release(unit.display, " ", "cli")
    released = store.release(unit.display, "resold by the shop", "cli")
    assert released.state == "registered" and store.claim_of(unit.uci) is None
    event = store.events(unit.uci)[-1]
    assert event.kind == "released" and event.details == {"reason": "resold by the shop", "account": "acct-1",
                                                           "from": "claimed", "to": "registered"}
    with pytest.raises(TransitionRefused, match="only a claimed unit"):
        store.release(unit.display, "again", "cli")
    assert store.claim(unit.display, "acct-2", "api:cloud")[1]


def test_a_unit_in_the_factory_is_claimed_only_where_its_product_allows(store: Store) -> None:
    unit, _ = store.issue(PRODUCT)
    with pytest.raises(Conflict, match="not registered yet"):
        store.claim(unit.display, "acct-1", "api:cloud")
    assert store.device(unit.uci).state == "issued"
    store.set_product_claiming(PRODUCT, True)
    assert store.claim(unit.display, "acct-1", "api:cloud")[0].state == "claimed"  # pre-claimed before it leaves


@pytest.mark.parametrize("owner", ["", "a" * 201, "acct\x1b[2J", "acct\u202e"])
def test_a_bad_account_is_refused_and_changes_nothing(store: Store, data_dir: Path, owner: str) -> None:
    unit = registered(store)
    before = dump(store.location)
    with pytest.raises(Invalid, match="the account"):
        store.claim(unit.display, owner, "api:cloud")
    assert dump(store.location) == before


def test_two_accounts_racing_for_one_code_one_wins(store: Store, data_dir: Path) -> None:
    unit = registered(store)
    start = threading.Barrier(8)
    outcomes: list[object] = []

    def racer(n: int) -> None:
        with Store.open(store.location, timeout=30) as own:
            start.wait()
            try:
                outcomes.append(own.claim(unit.display, f"acct-{n}", "api:cloud")[1])
            except StationError as exc:
                outcomes.append(type(exc))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count(True) == 1 and outcomes.count(ClaimedElsewhere) == 7
    assert store.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 1
