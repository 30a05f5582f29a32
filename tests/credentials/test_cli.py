"""``station ca``, ``station credentials`` and ``station product credentials`` as a user runs them: real
processes on a real data directory, one-line errors, exports written whole, no secret printed."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from station.credentials import secret
from station.credentials.authority import Authority
from station.store import Store
from tests.conftest import PRODUCT
from tests.credentials.pki import csr, openssl, other_ca
from tests.credentials.run import PASS, fails, station


@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    station(path, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    return path


def test_product_credentials_are_set_kept_and_checked(station_dir: Path) -> None:
    out = station(station_dir, "product", "credentials", PRODUCT, "--kinds", "secret,x509", "--keys", "station",
                  "--username", "{product}-{uci}", "--validity-days", "90").stdout
    assert "credentials secret, x509, username {product}-{uci}, keys made on the station, 90 days" in out
    out = station(station_dir, "product", "credentials", PRODUCT, "--kinds", "x509", "--mode", "0400").stdout
    assert "keys made on the station, 90 days" in out  # what was not given stays
    with Store.open(station_dir / "station.db") as store:
        settings = store.product(PRODUCT).credentials
        assert (settings.kinds, settings.mode, settings.username) == (("x509",), 0o400, "{product}-{uci}")
    fails(station_dir, "product", "credentials", PRODUCT, "--kinds", "password", message="kinds must be none")
    fails(station_dir, "product", "credentials", PRODUCT, "--kinds", "x509", "--mode", "0644", message="owner-only")
    fails(station_dir, "product", "credentials", PRODUCT, "--kinds", "x509", "--mode", "rw", message="--mode is octal")
    fails(station_dir, "product", "credentials", PRODUCT, "--kinds", "secret", "--cert-path", "rel/x",
          message="cert_path must be an absolute path")
    fails(station_dir, "product", "credentials", "NOPE", "--kinds", "none", message="unknown product 'NOPE'")
    fails(station_dir, "product", "credentials", PRODUCT, "--kinds", "secret", "--username", "unit:{uci}",
          message="cannot go into a Mosquitto password file")
    assert "credentials none" in station(station_dir, "product", "credentials", PRODUCT, "--kinds", "none").stdout


def test_ca_init_show_export_and_crl(tmp_path: Path, station_dir: Path) -> None:
    fails(station_dir, "ca", "show", message="no CA yet: run `station ca init`")
    fails(station_dir, "ca", "init", message="set STATION_CA_PASSPHRASE (or run this on a terminal")
    out = station(station_dir, "ca", "init", "--cn", "Line 1 CA", passphrase=PASS).stdout
    assert "subject:     CN=Line 1 CA" in out and "encrypted:   yes" in out and "key:         EC P-256" in out
    shown = station(station_dir, "ca", "show").stdout  # no passphrase needed to describe it
    assert shown == out and "PRIVATE" not in shown and PASS not in shown
    fails(station_dir, "ca", "init", passphrase=PASS, message="already has a CA")
    station(station_dir, "ca", "export", "--out", str(tmp_path / "chain.pem"))
    assert (tmp_path / "chain.pem").read_bytes() == (station_dir / "ca" / "ca.crt").read_bytes()
    fails(station_dir, "ca", "crl", "--out", str(tmp_path / "crl.pem"), message="encrypted: set STATION_CA_PASSPHRASE")
    fails(station_dir, "ca", "crl", "--out", str(tmp_path / "crl.pem"), passphrase="wrong",
          message="wrong passphrase for the CA key")
    station(station_dir, "ca", "crl", "--out", str(tmp_path / "crl.pem"), "--days", "3", passphrase=PASS)
    openssl("crl", "-in", str(tmp_path / "crl.pem"), "-CAfile", str(tmp_path / "chain.pem"), "-noout")
    with Store.open(station_dir / "station.db") as store:
        [event] = [e for e in store.conn.execute("SELECT kind, details FROM events WHERE kind LIKE 'ca-%'")]
        assert event[0] == "ca-created" and "Line 1 CA" in event[1] and PASS not in event[1]


def test_ca_import_with_its_passphrase_and_an_intermediate_under_a_parent(tmp_path: Path, station_dir: Path) -> None:
    cert, key, _, ca_key = other_ca(tmp_path / "company")
    fails(station_dir, "ca", "import", str(cert), str(key), message="not passphrase-protected")
    encrypted = tmp_path / "company" / "enc.key"
    encrypted.write_bytes(ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(PASS.encode())))
    fails(station_dir, "ca", "import", str(cert), str(encrypted), message="is encrypted: set STATION_CA_PASSPHRASE")
    out = station(station_dir, "ca", "import", str(cert), str(encrypted), passphrase=PASS).stdout
    assert "subject:     CN=Another company's CA" in out and "encrypted:   yes" in out
    other = tmp_path / "other"
    out = station(other, "ca", "init", "--parent-cert", str(cert), "--parent-key", str(key), "--no-passphrase").stdout
    assert "chain:       2" in out and "issuer:      CN=Another company's CA" in out and "encrypted:   no" in out


def test_credentials_show_revoke_and_export(tmp_path: Path, station_dir: Path) -> None:
    station(station_dir, "ca", "init", "--no-passphrase")
    made = {}
    with Store.open(station_dir / "station.db") as store:  # what the rig records once a unit read them back
        ca = Authority.load(station_dir)
        product = store.product(PRODUCT)
        units = [store.issue(PRODUCT)[0] for _ in range(3)]
        for unit in units:
            made[unit.uci] = secret.new_secret()
            store.set_secret(unit.uci, unit.uci, secret.password_hash(made[unit.uci]), "rig")
            store.add_certificate(unit.uci, ca.sign(csr(unit.uci)[1], unit.uci, product), "device", "rig")
        serial = store.credentials_of(units[0].uci)["certificates"][0]["serial"]
    shown = station(station_dir, "credentials", "show", units[0].display).stdout
    assert serial in shown and f"secret:       {units[0].uci} (made" in shown and "provisioning: activated" in shown
    assert "$7$" not in shown and made[units[0].uci] not in shown
    password_file = tmp_path / "broker" / "passwd"
    password_file.parent.mkdir()
    result = station(station_dir, "credentials", "export", "--format", "mosquitto", "--out", str(password_file))
    assert "wrote 3 password lines" in result.stderr
    lines = dict(line.split(":", 1) for line in password_file.read_text().splitlines())
    assert sorted(lines) == sorted(made) and all(secret.verify(lines[u], made[u]) for u in made)
    out = station(station_dir, "credentials", "revoke", units[0].uci, "--reason", "returned").stdout
    assert "revoked the secret and 1 certificate(s)" in out and "station ca crl" in out
    fails(station_dir, "credentials", "revoke", units[0].uci, "--reason", "again", message="no credential left")
    fails(station_dir, "credentials", "revoke", units[1].uci, "--reason", "", message="needs a reason")
    station(station_dir, "credentials", "export", "--format", "mosquitto", "--out", str(password_file))
    assert units[0].uci not in password_file.read_text() and len(password_file.read_text().splitlines()) == 2
    assert [p.name for p in password_file.parent.iterdir()] == ["passwd"]  # no temporary file left
    station(station_dir, "credentials", "export", "--format", "pem", "--out", str(tmp_path / "certs.pem"))
    bundle = x509.load_pem_x509_certificates((tmp_path / "certs.pem").read_bytes())
    assert sorted(c.subject.rfc4514_string() for c in bundle) == sorted(f"O={PRODUCT},CN={u.uci}" for u in units[1:])
    station(station_dir, "credentials", "export", "--format", "csv", "--state", "revoked", "--out", str(tmp_path / "c.csv"))
    [row] = list(csv.DictReader(io.StringIO((tmp_path / "c.csv").read_bytes().decode(), newline="")))
    assert row["uci"] == units[0].uci and row["serial"] == serial and row["state"] == "revoked"
    der = x509.load_der_x509_certificate(base64.b64decode(row["certificate"]))
    assert der.subject.rfc4514_string() == f"O={PRODUCT},CN={units[0].uci}"
    fails(station_dir, "credentials", "export", "--format", "pem", "--product", "NOPE", "--out", str(tmp_path / "x"),
          message="unknown product 'NOPE'")
    station(station_dir, "ca", "crl", "--out", str(tmp_path / "crl.pem"))
    assert serial in openssl("crl", "-in", str(tmp_path / "crl.pem"), "-noout", "-text").stdout
