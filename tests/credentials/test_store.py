"""Credentials as recorded, on real SQLite files: secret hashes made, regenerated and revoked with their events;
certificates superseded and revoked; the CRL's list; no secret text in the database file."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.core.errors import Conflict, Invalid, NotFound
from station.credentials import secret
from station.store import Store, is_url
from tests.conftest import PRODUCT, dump


def certificate(cn: str, serial: int | None = None) -> bytes:
    """A certificate with subject CN ``cn`` (self-signed: the store reads certificates, it does not judge
    their issuer)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial or x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def kinds(store: Store, code: str) -> list[str]:
    return [e.kind for e in store.events(code) if e.kind.startswith(("secret", "certificate"))]


def test_a_secret_made_then_regenerated_then_revoked(store: Store) -> None:
    unit, _ = store.issue(PRODUCT)
    first, second = secret.new_secret(), secret.new_secret()
    assert store.set_secret(unit.uci, unit.uci, secret.password_hash(first), "rig") == "secret-made"
    assert store.credentials_of(unit.uci)["secret"]["username"] == unit.uci
    assert "hash" not in store.credentials_of(unit.uci)["secret"]
    [(name, hashed)] = store.secret_lines()
    assert name == unit.uci and secret.verify(hashed, first)
    assert store.set_secret(unit.uci, unit.uci, secret.password_hash(second), "rig") == "secret-regenerated"
    [(_, hashed)] = store.secret_lines()
    assert secret.verify(hashed, second) and not secret.verify(hashed, first)
    assert store.revoke_secret(unit.uci, "unit returned", "cli") is True
    assert store.secret_lines() == [] and store.credentials_of(unit.uci)["secret"] is None
    assert store.revoke_secret(unit.uci, "again", "cli") is False
    assert kinds(store, unit.uci) == ["secret-made", "secret-regenerated", "secret-revoked"]
    revoked = [e for e in store.events(unit.uci) if e.kind == "secret-revoked"][0]
    assert revoked.details == {"username": unit.uci, "reason": "unit returned"} and revoked.actor == "cli"


def test_a_secret_is_refused_unless_it_is_a_hash(store: Store) -> None:
    unit, _ = store.issue(PRODUCT)
    plain = secret.new_secret()
    for bad in (plain, "$6$abc$def", "$7$101$salt$hash with space"):
        with pytest.raises(Invalid, match=r"only as its Mosquitto sha512-pbkdf2 hash"):
            store.set_secret(unit.uci, unit.uci, bad, "rig")
    with pytest.raises(NotFound, match="no device has claim ID"):
        store.set_secret("0" * 16, "x", secret.password_hash(plain), "rig")
    assert store.secret_lines() == []


def test_a_username_belongs_to_one_unit_and_void_units_get_none(store: Store) -> None:
    one, _ = store.issue(PRODUCT)
    two, _ = store.issue(PRODUCT)
    store.set_secret(one.uci, "shared", secret.password_hash("a"), "rig")
    with pytest.raises(Conflict, match="already belongs to device .* username rule with \\{uci\\}"):
        store.set_secret(two.uci, "shared", secret.password_hash("b"), "rig")
    store.set_secret(two.uci, two.uci, secret.password_hash("b"), "rig")
    assert [name for name, _ in store.secret_lines()] == sorted(["shared", two.uci])
    store.void(two.uci, "broken", "cli")
    assert [name for name, _ in store.secret_lines()] == ["shared"]  # a void unit leaves the broker's file
    with pytest.raises(Conflict, match="is void"):
        store.set_secret(two.uci, two.uci, secret.password_hash("c"), "rig")


def test_certificates_are_superseded_then_revoked_and_listed_for_the_crl(store: Store) -> None:
    unit, _ = store.issue(PRODUCT)
    first = store.add_certificate(unit.uci, certificate(unit.uci, 0xABCDEF), "device", "rig")
    assert first["serial"] == "ABCDEF" and first["state"] == "active" and len(first["fingerprint"]) == 64
    assert first["not_before"] == "2026-01-01T00:00:00.000Z" and first["not_after"] == "2026-01-31T00:00:00.000Z"
    second = store.add_certificate(unit.uci, certificate(unit.uci, 0x0102), "station", "rig")
    assert second["serial"] == "0102"
    states = {c["serial"]: c["state"] for c in store.credentials_of(unit.uci)["certificates"]}
    assert states == {"ABCDEF": "superseded", "0102": "active"}
    assert [(c["serial"], c["reason"]) for c in store.revoked_certificates()] == [("ABCDEF", "superseded")]
    issued = [e for e in store.events(unit.uci) if e.kind == "certificate-issued"]
    assert issued[1].details == {"serial": "0102", "fingerprint": second["fingerprint"], "key_origin": "station",
                                 "not_after": second["not_after"], "superseded": ["ABCDEF"]}
    assert store.revoke_certificates(unit.uci, "key leaked", "cli") == 2
    assert store.revoke_certificates(unit.uci, "again", "cli") == 0
    assert {c["state"] for c in store.credentials_of(unit.uci)["certificates"]} == {"revoked"}
    assert {(c["serial"], c["reason"]) for c in store.revoked_certificates()} == {("ABCDEF", "key leaked"),
                                                                                  ("0102", "key leaked")}
    assert kinds(store, unit.uci) == ["certificate-issued", "certificate-issued", "certificate-revoked"]
    assert all(c["revoked"] for c in store.revoked_certificates())


def test_certificates_of_a_void_unit_are_listed_for_the_crl(store: Store) -> None:
    unit, _ = store.issue(PRODUCT)
    store.add_certificate(unit.uci, certificate(unit.uci, 0x77), "device", "rig")
    assert store.revoked_certificates() == []
    voided = store.void(unit.uci, "scrapped", "cli")
    [listed] = store.revoked_certificates()
    assert listed["serial"] == "77" and listed["state"] == "revoked" and listed["revoked"] == voided.updated
    assert "voided" in listed["reason"]


def test_a_certificate_must_name_its_unit_and_be_new(store: Store) -> None:
    unit, _ = store.issue(PRODUCT)
    other, _ = store.issue(PRODUCT)
    with pytest.raises(Invalid, match=f"subject CN is not {unit.uci}"):
        store.add_certificate(unit.uci, certificate(other.uci), "device", "rig")
    with pytest.raises(Invalid, match="not a PEM certificate"):
        store.add_certificate(unit.uci, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "device", "rig")
    with pytest.raises(Invalid, match="key's origin is device or station"):
        store.add_certificate(unit.uci, certificate(unit.uci), "elsewhere", "rig")
    store.add_certificate(unit.uci, certificate(unit.uci, 5), "device", "rig")
    with pytest.raises(Conflict, match="serial 05 is already recorded"):
        store.add_certificate(other.uci, certificate(other.uci, 5), "device", "rig")
    assert store.certificates(state="superseded") == []
    with pytest.raises(Invalid, match="state is one of active, revoked, superseded"):
        store.certificates(state="gone")


def test_certificates_list_by_product_and_state(store: Store) -> None:
    store.add_product("01H4R15D3478JD26YDYK408XE7", "Other", "O-1")
    mine, _ = store.issue(PRODUCT)
    theirs, _ = store.issue("01H4R15D3478JD26YDYK408XE7")
    pem = certificate(mine.uci)
    store.add_certificate(mine.uci, pem, "device", "rig")
    store.add_certificate(theirs.uci, certificate(theirs.uci), "station", "rig")
    [row] = store.certificates(product=PRODUCT)
    assert row["uci"] == mine.uci and row["pem"].encode() == pem and row["product"] == PRODUCT
    assert len(store.certificates(state="active")) == 2 and store.certificates(state="revoked") == []
    with pytest.raises(NotFound, match="unknown product"):
        store.certificates(product="NOPE")
    third, _ = store.issue(PRODUCT)
    assert [store.device(d.uci).provisioning for d in (mine, theirs, third)] == ["activated", "activated", "defined"]
    assert [d.provisioning for d in store.devices(product=PRODUCT)] == ["activated", "defined"]  # listings and exports too


def test_no_secret_text_reaches_the_database_file(store: Store, data_dir: Path) -> None:
    made = []
    for _ in range(20):
        unit, _ = store.issue(PRODUCT)
        value = secret.new_secret()
        made.append(value)
        store.set_secret(unit.uci, unit.uci, secret.password_hash(value), "rig")
    store.set_secret(unit.uci, unit.uci, secret.password_hash(secret.new_secret()), "rig")
    store.revoke_secret(unit.uci, "test", "cli")
    if is_url(store.location):  # every row of the registry, as the server gives them to anyone who may read it
        blob = "\n".join(dump(store.location)).encode()
    else:
        store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        files = [p for p in data_dir.iterdir() if p.name.startswith("station.db")]
        assert files and all(p.stat().st_size for p in files[:1])
        blob = b"".join(p.read_bytes() for p in files)
    assert unit.uci.encode() in blob  # the test can see what is there
    for value in made:
        assert value.encode() not in blob
