"""The station's CA: made (root or intermediate) or imported, loaded, signing units' CSRs and making keys, its
CRL; every certificate judged by the real ``openssl``; every refusal a StationError saying what to do."""

from __future__ import annotations

import datetime
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from station.core import credentials
from station.core.errors import Conflict, Invalid, StationError
from station.core.models import Product
from station.credentials import authority
from station.credentials.authority import Authority
from station.credentials.errors import AuthorityUnusable, CsrRefused, NoAuthority, WrongPassphrase
from station.store import Store
from tests.conftest import PRODUCT
from tests.credentials.pki import csr, key_pem, openssl, other_ca, spliced_csr

PASS = b"correct horse battery staple"


@pytest.fixture
def ca(data_dir: Path) -> Authority:
    return Authority.init(data_dir, PASS)


@pytest.fixture
def product(store: Store) -> Product:
    return store.product(PRODUCT)


def verify(tmp_path: Path, chain: bytes, cert: bytes, *extra: str) -> str:
    """``openssl verify`` of ``cert`` against ``chain``; its output (it fails the test when openssl says no)."""
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "cert.pem").write_bytes(cert)
    return openssl("verify", "-CAfile", str(tmp_path / "chain.pem"), *extra, str(tmp_path / "cert.pem")).stdout


def text_of(tmp_path: Path, cert: bytes) -> str:
    (tmp_path / "shown.pem").write_bytes(cert)
    return openssl("x509", "-in", str(tmp_path / "shown.pem"), "-text", "-noout").stdout


def test_init_keeps_the_key_owner_only_pkcs8_and_encrypted(data_dir: Path, ca: Authority) -> None:
    folder = data_dir / "ca"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "ca.key").stat().st_mode) == 0o600
    key = (folder / "ca.key").read_bytes()
    assert key.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # openssl reads it with the passphrase, and not without
    openssl("pkey", "-in", str(folder / "ca.key"), "-passin", f"pass:{PASS.decode()}", "-noout")
    assert openssl("pkey", "-in", str(folder / "ca.key"), "-passin", "pass:wrong", "-noout", ok=False).returncode
    shown = authority.show(data_dir)
    assert shown["key"] == "EC P-256" and shown["chain"] == 1 and shown["root"] and shown["encrypted"]
    assert shown["subject"] == "CN=Station device CA" and len(shown["fingerprint"]) == 64
    assert "PRIVATE" not in repr(shown)
    assert Authority.load(data_dir, PASS).summary()["fingerprint"] == shown["fingerprint"]


def test_init_without_a_passphrase_writes_a_plain_key_and_refuses_a_second_ca(data_dir: Path) -> None:
    Authority.init(data_dir, cn="Line 3 CA", days=30, key="p384")
    assert (data_dir / "ca" / "ca.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert authority.show(data_dir)["key"] == "EC P-384" and not authority.show(data_dir)["encrypted"]
    with pytest.raises(Conflict, match="already has a CA .*`station ca show`"):
        Authority.init(data_dir)
    with pytest.raises(WrongPassphrase, match="not encrypted, yet a passphrase was given"):
        Authority.load(data_dir, PASS)
    Authority.load(data_dir)


def test_init_checks_its_settings(data_dir: Path) -> None:
    with pytest.raises(Invalid, match="a CA key is one of p256, p384, rsa3072"):
        Authority.init(data_dir, key="dsa")
    with pytest.raises(Invalid, match="validity is 1 to 36500 days"):
        Authority.init(data_dir, days=0)
    with pytest.raises(Invalid, match="common name"):
        Authority.init(data_dir, cn="x" * 65)
    with pytest.raises(Invalid, match="needs both the parent's certificate and its key"):
        Authority.init(data_dir, parent_cert=b"x")
    assert not authority.exists(data_dir)


def test_signed_certificates_pass_openssl_verify_and_show_the_fields(tmp_path: Path, store: Store, ca: Authority,
                                                                    product: Product) -> None:
    unit, _ = store.issue(PRODUCT)
    for key in (ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()),
                rsa.generate_private_key(65537, 2048)):
        _, request = csr(unit.uci, key)
        cert = ca.sign(request, unit.uci, product)
        assert verify(tmp_path, ca.chain_pem(), cert, "-purpose", "sslclient").strip().endswith("OK")
        shown = text_of(tmp_path, cert)
        assert f"Subject: CN = {unit.uci}, O = {PRODUCT}" in shown
        assert "Issuer: CN = Station device CA" in shown
        assert re.search(r"X509v3 Extended Key Usage: *\n *TLS Web Client Authentication\n", shown)
        assert re.search(r"X509v3 Basic Constraints: critical\n *CA:FALSE", shown)
        assert re.search(r"X509v3 Key Usage: critical\n *Digital Signature\n", shown)
        serial = re.search(r"Serial Number:\s*\n\s*([0-9a-f:]+)", shown)
        assert serial and len(serial.group(1).split(":")) == 16  # 128 bits
        row = store.add_certificate(unit.uci, cert, "device", "rig")
        assert len(row["serial"]) == 32
        assert openssl("x509", "-in", str(tmp_path / "shown.pem"), "-noout", "-serial").stdout.strip() \
            == f"serial={row['serial']}"


def test_validity_is_the_product_s_and_never_beyond_the_ca(data_dir: Path, store: Store) -> None:
    store.set_product_credentials(PRODUCT, credentials.settings({"kinds": "x509", "validity_days": 30}))
    product = store.product(PRODUCT)
    ca = Authority.init(data_dir, days=100)
    cert = x509.load_pem_x509_certificate(ca.sign(csr("7QJ4X9TN2KVBM0RA")[1], "7QJ4X9TN2KVBM0RA", product))
    life = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29, hours=23) < life <= datetime.timedelta(days=30)
    store.set_product_credentials(PRODUCT, credentials.settings({"kinds": "x509", "validity_days": 3650}))
    cert = x509.load_pem_x509_certificate(ca.sign(csr("7QJ4X9TN2KVBM0RA")[1], "7QJ4X9TN2KVBM0RA",
                                                  store.product(PRODUCT)))
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_station_made_keys_match_their_certificates(tmp_path: Path, ca: Authority, product: Product) -> None:
    key, cert = ca.make_key("7QJ4X9TN2KVBM0RA", product)
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
    verify(tmp_path, ca.chain_pem(), cert, "-purpose", "sslclient")
    (tmp_path / "unit.key").write_bytes(key)
    from_key = openssl("pkey", "-in", str(tmp_path / "unit.key"), "-pubout").stdout
    from_cert = openssl("x509", "-in", str(tmp_path / "cert.pem"), "-noout", "-pubkey").stdout
    assert from_key == from_cert
    other, _ = ca.make_key("7QJ4X9TN2KVBM0RA", product)
    assert other != key


@pytest.mark.parametrize(("make", "message"), [
    (lambda: spliced_csr("7QJ4X9TN2KVBM0RA"), "signature does not verify with its own key"),
    (lambda: csr("0000000000000000")[1], "subject CN is 0000000000000000, not the unit's claim ID 7QJ4X9TN2KVBM0RA"),
    (lambda: csr(None)[1], "subject CN is missing"),
    (lambda: csr("7QJ4X9TN2KVBM0RA", rsa.generate_private_key(65537, 1024))[1], "RSA 1024, too weak: use RSA 2048"),
    (lambda: csr("7QJ4X9TN2KVBM0RA", ec.generate_private_key(ec.SECP192R1()))[1], "EC secp192r1, too weak"),
    (lambda: csr("7QJ4X9TN2KVBM0RA", ec.generate_private_key(ec.SECP256K1()))[1], "EC secp256k1, too weak"),
    (lambda: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "not a PEM certificate"),
    (lambda: b"garbage", "not a PEM certificate signing request"),
])
def test_bad_csrs_are_refused_naming_what_is_wrong(ca: Authority, product: Product, make: object, message: str) -> None:
    with pytest.raises(CsrRefused, match=re.escape(message)) as refused:
        ca.sign(make(), "7QJ4X9TN2KVBM0RA", product)  # type: ignore[operator]
    assert isinstance(refused.value, Invalid)


def test_load_says_what_to_do(data_dir: Path) -> None:
    with pytest.raises(NoAuthority, match="no CA yet: run `station ca init`"):
        Authority.load(data_dir)
    Authority.init(data_dir, PASS)
    with pytest.raises(WrongPassphrase, match="encrypted: set STATION_CA_PASSPHRASE"):
        Authority.load(data_dir)
    with pytest.raises(WrongPassphrase, match="wrong passphrase for the CA key") as wrong:
        Authority.load(data_dir, b"not it")
    assert b"not it".decode() not in str(wrong.value) and PASS.decode() not in str(wrong.value)
    (data_dir / "ca" / "ca.key").chmod(0o644)
    Authority.load(data_dir, PASS)
    assert stat.S_IMODE((data_dir / "ca" / "ca.key").stat().st_mode) == 0o600  # tightened on use


def test_an_expired_ca_is_refused(tmp_path: Path, data_dir: Path) -> None:
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    cert, key, _, _ = other_ca(tmp_path / "old", days=5, start=start)
    (data_dir / "ca").mkdir()
    (data_dir / "ca" / "ca.crt").write_bytes(cert.read_bytes())
    (data_dir / "ca" / "ca.key").write_bytes(key.read_bytes())
    with pytest.raises(AuthorityUnusable, match="expired on .*make a new CA"):
        Authority.load(data_dir)
    assert authority.show(data_dir)["expired"] is True
    with pytest.raises(AuthorityUnusable, match="expired"):
        Authority.import_(tmp_path / "fresh", cert.read_bytes(), key.read_bytes(), None, unencrypted=True)


def test_import_refuses_what_is_not_a_ca_and_plain_keys(tmp_path: Path, data_dir: Path, product: Product) -> None:
    cert, key, ca_cert, ca_key = other_ca(tmp_path / "company")
    with pytest.raises(Invalid, match="not passphrase-protected: encrypt it .* or pass --no-passphrase"):
        Authority.import_(data_dir, cert.read_bytes(), key.read_bytes(), None)
    encrypted = ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(PASS))
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        Authority.import_(data_dir, cert.read_bytes(), encrypted, b"nope")
    with pytest.raises(Invalid, match="does not belong to the CA certificate"):
        Authority.import_(data_dir, cert.read_bytes(), key_pem(ec.generate_private_key(ec.SECP256R1())), None,
                          unencrypted=True)
    device = Authority.init(tmp_path / "station-b").make_key("7QJ4X9TN2KVBM0RA", product)
    with pytest.raises(AuthorityUnusable, match="not a CA certificate .*basicConstraints CA:TRUE"):
        Authority.import_(data_dir, device[1], device[0], None, unencrypted=True)
    assert not authority.exists(data_dir)
    imported = Authority.import_(data_dir, cert.read_bytes(), encrypted, PASS)
    assert imported.certificate == ca_cert and authority.show(data_dir)["encrypted"]
    Authority.load(data_dir, PASS)


def test_an_intermediate_under_a_parent_made_by_openssl_keeps_its_chain(tmp_path: Path, data_dir: Path,
                                                                       product: Product) -> None:
    root_key, root_cert = tmp_path / "root.key", tmp_path / "root.crt"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            str(root_key), "-out", str(root_cert), "-days", "30", "-subj", "/CN=Company Root",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ca = Authority.init(data_dir, PASS, cn="Station intermediate", parent_cert=root_cert.read_bytes(),
                        parent_key=root_key.read_bytes())
    assert authority.show(data_dir)["chain"] == 2 and not authority.show(data_dir)["root"]
    assert ca.certificate.not_valid_after_utc <= x509.load_pem_x509_certificate(root_cert.read_bytes()).not_valid_after_utc
    cert = ca.sign(csr("7QJ4X9TN2KVBM0RA")[1], "7QJ4X9TN2KVBM0RA", product)
    assert verify(tmp_path, ca.chain_pem(), cert).strip().endswith("OK")
    (tmp_path / "intermediate.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    openssl("verify", "-CAfile", str(root_cert), "-untrusted", str(tmp_path / "intermediate.pem"),
            str(tmp_path / "cert.pem"))
    assert Authority.load(data_dir, PASS).chain_pem() == ca.chain_pem()


def test_a_parent_that_is_not_a_ca_or_not_its_key_is_refused(tmp_path: Path, data_dir: Path, product: Product) -> None:
    key, cert = Authority.init(tmp_path / "b").make_key("7QJ4X9TN2KVBM0RA", product)
    with pytest.raises(StationError, match="not a CA certificate"):
        Authority.init(data_dir, parent_cert=cert, parent_key=key)
    parent, _, _, _ = other_ca(tmp_path / "p")
    with pytest.raises(Invalid, match="parent CA's key does not belong to its certificate"):
        Authority.init(data_dir, parent_cert=parent.read_bytes(), parent_key=key)
    assert not authority.exists(data_dir)


def test_the_crl_lists_revoked_and_superseded_certificates(tmp_path: Path, store: Store, ca: Authority,
                                                           product: Product) -> None:
    kept, _ = store.issue(PRODUCT)
    gone, _ = store.issue(PRODUCT)
    good = ca.sign(csr(kept.uci)[1], kept.uci, product)
    store.add_certificate(kept.uci, good, "device", "rig")
    old = ca.make_key(gone.uci, product)[1]
    bad = ca.make_key(gone.uci, product)[1]
    store.add_certificate(gone.uci, old, "station", "rig")
    store.add_certificate(gone.uci, bad, "station", "rig")
    (tmp_path / "crl.pem").write_bytes(ca.crl(store, days=2))
    listed = openssl("crl", "-in", str(tmp_path / "crl.pem"), "-noout", "-text").stdout
    old_serial = f"{x509.load_pem_x509_certificate(old).serial_number:032X}"
    assert old_serial in listed and "Superseded" in listed and listed.count("Serial Number:") == 1
    store.revoke_certificates(gone.uci, "unit stolen", "cli")
    (tmp_path / "crl.pem").write_bytes(ca.crl(store))
    listed = openssl("crl", "-in", str(tmp_path / "crl.pem"), "-noout", "-text").stdout
    assert listed.count("Serial Number:") == 2
    (tmp_path / "ca.pem").write_bytes(ca.chain_pem())
    openssl("crl", "-in", str(tmp_path / "crl.pem"), "-CAfile", str(tmp_path / "ca.pem"), "-noout")  # signed by the CA
    verify(tmp_path, ca.chain_pem(), good, "-crl_check", "-CRLfile", str(tmp_path / "crl.pem"))
    (tmp_path / "bad.pem").write_bytes(bad)
    refused = openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), "-crl_check", "-CRLfile", str(tmp_path / "crl.pem"),
                      str(tmp_path / "bad.pem"), ok=False)
    assert refused.returncode and "certificate revoked" in refused.stdout + refused.stderr
    with pytest.raises(Invalid, match="next update is 1 to 3650 days"):
        ca.crl(store, days=0)


def test_the_passphrase_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATION_CA_PASSPHRASE", raising=False)
    assert authority.passphrase() is None
    monkeypatch.setenv("STATION_CA_PASSPHRASE", "")
    assert authority.passphrase() is None
    monkeypatch.setenv("STATION_CA_PASSPHRASE", "pässword")
    assert authority.passphrase() == "pässword".encode()


def test_a_certificate_of_another_ca_fails_openssl_verify(tmp_path: Path, ca: Authority) -> None:
    cert, key, other_cert, other_key = other_ca(tmp_path / "x")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "7QJ4X9TN2KVBM0RA")])
    now = datetime.datetime.now(datetime.UTC)
    foreign = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.certificate.subject)  # claims our CA
               .public_key(other_key.public_key()).serial_number(1).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=1)).sign(other_key, hashes.SHA256()))
    (tmp_path / "ca.pem").write_bytes(ca.chain_pem())
    (tmp_path / "f.pem").write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    assert openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "f.pem"), ok=False).returncode


def test_an_encrypted_parent_key_needs_its_passphrase(tmp_path: Path, data_dir: Path) -> None:
    cert, _, _, parent_key = other_ca(tmp_path / "parent")
    locked = parent_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"parent pass"))
    with pytest.raises(WrongPassphrase, match="the parent CA's key is encrypted"):
        Authority.init(data_dir, parent_cert=cert.read_bytes(), parent_key=locked)
    with pytest.raises(WrongPassphrase, match="wrong passphrase for the parent CA's key"):
        Authority.init(data_dir, parent_cert=cert.read_bytes(), parent_key=locked, parent_secret=b"nope")
    made = Authority.init(data_dir, PASS, parent_cert=cert.read_bytes(), parent_key=locked, parent_secret=b"parent pass")
    assert made.parents[0].subject.rfc4514_string() == "CN=Another company's CA"
