"""The flash cycle's credentials step against simulated units on real pseudo-terminals: a real store, a real CA
(``Authority.init`` in the test's data directory), the real `station serve` for the registrations, the real
``openssl verify`` for the certificates the units got; and the faults that must leave a unit not flashed."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from station import logs
from station.credentials.authority import Authority
from station.credentials.secret import verify
from station.rig.credentials import Issuing
from station.rig.flash import FlashResult, Progress, flash
from station.rig.settings import from_mapping
from station.simulator import Unit
from station.store import Store
from tests.rig.conftest import PASSWORD, QUICK, kinds, openssl_verifies, product_with, slot_for
from tests.rig.memory import MemoryUnit, registering

SECRET = "/etc/ioto/mqtt.secret"
KEY, CSR, CERT, CHAIN = "/etc/ioto/device.key", "/etc/ioto/device.csr", "/etc/ioto/device.crt", "/etc/ioto/ca.crt"


@pytest.fixture
def issuing(tmp_path: Path) -> Issuing:
    """A data directory with a fresh CA (no passphrase), and a secret iteration count of its own."""
    Authority.init(tmp_path / "ca-home")
    return Issuing(tmp_path / "ca-home", iterations=7)


def run(store: Store, unit: Unit, product: str, issuing: Issuing, **rig: Any) -> tuple[str, FlashResult, list[Progress]]:
    """Issue a unit of the product and flash it; its UCI, the result and the progress seen."""
    uci = store.issue(product)[0].uci
    settings, slot = slot_for(unit, **rig)
    steps: list[Progress] = []
    result = flash(store, settings, slot, uci, progress=steps.append, issuing=issuing)
    return uci, result, steps


def failure(store: Store, uci: str) -> dict[str, Any]:
    return next(e.details for e in reversed(store.events(uci)) if e.kind == "flash-failed")


def openssl_verify(tmp_path: Path, chain: bytes, certificate: bytes) -> None:
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "cert.pem").write_bytes(certificate)
    openssl_verifies(tmp_path / "chain.pem", tmp_path / "cert.pem")


def key_matches(key_pem: bytes, certificate_pem: bytes) -> bool:
    key = serialization.load_pem_private_key(key_pem, None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(serialization.Encoding.DER, spki) == \
        x509.load_pem_x509_certificate(certificate_pem).public_key().public_bytes(serialization.Encoding.DER, spki)


def stored_hash(store: Store, username: str) -> str:
    return dict(store.secret_lines())[username]


def test_a_secret(store, make_unit, issuing) -> None:
    unit = make_unit()
    uci, result, steps = run(store, unit, product_with(store, kinds=["secret"]), issuing)
    assert result.passed, result.summary()
    secret = unit.fs.files[SECRET].decode()
    assert len(secret) == 43 and unit.fs.mode(SECRET) == 0o600
    hashed = stored_hash(store, uci)
    assert hashed.startswith("$7$7$") and verify(hashed, secret) and not verify(hashed, secret[:-1] + "x")
    assert kinds(store, uci)[:4] == ["issued", "flash-started", "secret-made", "flashed"]
    assert "credentials" in [s.step for s in steps]
    flashed = next(e.details for e in store.events(uci) if e.kind == "flashed")
    assert flashed["credentials"] == {"secret": "secret-made"}
    assert [name for name in unit.fs.files if name.startswith("/tmp/")] == []


def test_x509_with_the_key_made_on_the_unit(store, make_unit, issuing, tmp_path) -> None:
    unit = make_unit()
    uci, result, _ = run(store, unit, product_with(store, kinds=["x509"]), issuing)
    assert result.passed, result.summary()
    files = unit.fs.files
    assert unit.fs.mode(KEY) == 0o600 and {KEY, CSR, CERT, CHAIN} <= set(files)
    assert not [name for name in files if name.endswith(".station-new")]
    assert key_matches(files[KEY], files[CERT])
    assert x509.load_pem_x509_csr(files[CSR]).subject.rfc4514_string() == f"CN={uci}"
    authority = Authority.load(issuing.data_dir)
    assert files[CHAIN] == authority.chain_pem()
    openssl_verify(tmp_path, files[CHAIN], files[CERT])
    certificate = x509.load_pem_x509_certificate(files[CERT])
    [record] = store.credentials_of(uci)["certificates"]
    assert record["key_origin"] == "device" and record["serial"] == f"{certificate.serial_number:X}"
    assert kinds(store, uci)[:4] == ["issued", "flash-started", "certificate-issued", "flashed"]


def test_x509_with_the_key_made_by_the_station(store, make_unit, issuing, tmp_path) -> None:
    unit = make_unit(faults=["no-openssl"])  # what station-made keys are for
    uci, result, _ = run(store, unit, product_with(store, kinds=["x509"], keys="station"), issuing)
    assert result.passed, result.summary()
    files = unit.fs.files
    assert unit.fs.mode(KEY) == 0o600 and CSR not in files
    assert key_matches(files[KEY], files[CERT])
    openssl_verify(tmp_path, files[CHAIN], files[CERT])
    [record] = store.credentials_of(uci)["certificates"]
    assert record["key_origin"] == "station"


def test_both_and_a_second_flash_regenerates(store, make_unit, issuing, tmp_path) -> None:
    unit = make_unit()
    product = product_with(store, kinds=["secret", "x509"], secret_path="/etc/ioto/other.secret", mode=0o400)
    uci, result, _ = run(store, unit, product, issuing)
    assert result.passed, result.summary()
    first = unit.fs.files["/etc/ioto/other.secret"]
    assert unit.fs.mode("/etc/ioto/other.secret") == 0o400 and unit.fs.mode(KEY) == 0o400
    openssl_verify(tmp_path, unit.fs.files[CHAIN], unit.fs.files[CERT])
    settings, slot = slot_for(unit)
    again = flash(store, settings, slot, uci, issuing=issuing)  # a retried flash: new credentials, old ones replaced
    assert again.passed, again.summary()
    second = unit.fs.files["/etc/ioto/other.secret"]
    assert second != first and verify(stored_hash(store, uci), second.decode())
    assert not verify(stored_hash(store, uci), first.decode())
    states = sorted(c["state"] for c in store.credentials_of(uci)["certificates"])
    assert states == ["active", "superseded"]
    assert "secret-regenerated" in kinds(store, uci)


@pytest.mark.parametrize("fault, words", [
    ("csr-mismatch", "does not match the certificate"),
    ("csr-bad-signature", "signature does not verify"),
])
def test_a_bad_csr_fails_the_step(store, make_unit, issuing, fault: str, words: str) -> None:
    unit = make_unit(faults=[fault])
    uci, result, _ = run(store, unit, product_with(store, kinds=["x509"]), issuing)
    assert not result.passed and result.step == "credentials" and words in result.reason, result.summary()
    assert store.device(uci).state == "issued" and "flashed" not in kinds(store, uci)
    assert failure(store, uci)["step"] == "credentials"
    if fault == "csr-bad-signature":  # refused before signing: nothing recorded
        assert store.credentials_of(uci)["certificates"] == []


def test_a_certificate_that_does_not_read_back(store, make_unit, issuing) -> None:
    unit = make_unit(faults=["cert-corrupt"])
    uci, result, _ = run(store, unit, product_with(store, kinds=["x509"]), issuing)
    assert not result.passed and result.step == "credentials", result.summary()
    assert result.reason.startswith(f"writing the certificate to {CERT}: verify: readback of {CERT}.station-new "
                                    f"failed 4 times"), result.reason
    assert store.device(uci).state == "issued" and store.credentials_of(uci)["certificates"] == []


def test_no_openssl_where_the_unit_must_make_its_key(store, make_unit, issuing) -> None:
    unit = make_unit(faults=["no-openssl"])
    uci, result, _ = run(store, unit, product_with(store, kinds=["x509"]), issuing)
    assert not result.passed and result.step == "credentials"
    assert "install openssl" in result.reason and 'keys to "station"' in result.reason
    assert store.device(uci).state == "issued"


def test_no_ca(store, make_unit, tmp_path) -> None:
    unit = make_unit()
    uci, result, _ = run(store, unit, product_with(store, kinds=["x509"]), Issuing(tmp_path / "no-ca"))
    assert not result.passed and result.step == "credentials" and "station ca init" in result.reason
    assert store.device(uci).state == "issued"
    assert unit.fs.files == {}  # found before the unit was touched


def test_port_lost_in_the_middle_of_the_secret(store, make_unit, issuing) -> None:
    unit = make_unit(faults=["disconnect"])  # strikes the second chunk line: with long lines, the secret's
    uci, result, _ = run(store, unit, product_with(store, kinds=["secret"]), issuing, chunk=3000)
    assert not result.passed and result.step == "credentials" and "went away" in result.reason, result.summary()
    assert store.credentials_of(uci)["secret"] is None and uci not in dict(store.secret_lines())
    assert store.device(uci).state == "issued"
    assert failure(store, uci)["step"] == "credentials"


def test_no_secret_or_key_is_recorded_or_logged(store, make_unit, issuing, station, tmp_path, caplog) -> None:
    handler = logs.PrivateRotatingFileHandler(tmp_path / "station.log", encoding="utf-8")
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("station")
    logger.addHandler(handler)
    caplog.set_level(logging.DEBUG, logger="station")
    try:
        unit = make_unit(faults=["no-stty", "flip=3"])  # echo stays on, and chunks are sent again
        secret_unit = make_unit()
        uci, result, steps = run(store, unit, product_with(store, kinds=["x509"], keys="station"), issuing)
        other, secret_result, secret_steps = run(store, secret_unit, product_with(store, kinds=["secret"]), issuing)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert result.passed and secret_result.passed, (result.summary(), secret_result.summary())
    key, secret = unit.fs.files[KEY], secret_unit.fs.files[SECRET]
    body = b"".join(key.splitlines()[1:-1])
    needles = [secret, body, *key.splitlines()[1:-1], *_chunks(secret), *_chunks(key)]
    haystacks = {
        "caplog": caplog.text.encode(),
        "the log file": (tmp_path / "station.log").read_bytes(),
        "the events": json.dumps([e.details for e in store.events(uci) + store.events(other)]).encode(),
        "the results": repr((result, secret_result, steps, secret_steps)).encode(),
        **{path.name: path.read_bytes() for path in station["data_dir"].iterdir() if path.is_file()},
    }
    assert "the log file" in haystacks and "station.db" in haystacks and "sent" in caplog.text  # the logs were on
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"a secret or key is in {where}"


def _chunks(data: bytes) -> list[bytes]:
    """The base64 lines a transfer sends of ``data`` (the chunk commands carry them)."""
    encoded = base64.b64encode(data)
    return [encoded[i : i + 76] for i in range(0, len(encoded), 76)]


def test_a_full_disk_fails_the_step_saying_so(store, make_unit, issuing) -> None:
    product = product_with(store, kinds=["x509"], keys="station")
    size = len(store.product(product).device_file("7QJ4X9TN2KVBM0RA"))
    room = 2 * size + 20  # the device file and its chunks fit; the key's chunks do not (a key is about 240 bytes)
    unit = make_unit(faults=[f"disk-full={room}"])
    uci, result, _ = run(store, unit, product, issuing)
    assert not result.passed and result.step == "credentials", result.summary()
    assert result.reason.startswith(f"writing the key to {KEY}: write: chunk ") and \
        result.reason.endswith("the unit answered status 1 (No space left on device)"), result.reason
    assert store.device(uci).state == "issued" and store.credentials_of(uci)["certificates"] == []


def test_a_wrong_ca_passphrase(store, make_unit, tmp_path, monkeypatch) -> None:
    Authority.init(tmp_path / "locked", b"the right one")
    monkeypatch.setenv("STATION_CA_PASSPHRASE", "a wrong one")
    unit = make_unit()
    uci, result, _ = run(store, unit, product_with(store, kinds=["x509"]), Issuing(tmp_path / "locked"))
    assert not result.passed and result.step == "credentials" and "passphrase" in result.reason, result.summary()
    assert "a wrong one" not in result.reason and "the right one" not in result.reason
    assert store.device(uci).state == "issued"


def test_every_console_write_carrying_a_secret_or_key_is_a_secret_write(data_dir) -> None:
    """On the in-memory console, which records each write with its secret flag: a chunk of the secret or of
    the station-made key goes out only flagged, so that no port logs it."""
    Authority.init(data_dir)
    unit = MemoryUnit(password=PASSWORD, on_boot=registering(data_dir / "station.db"))
    with Store.open(data_dir / "station.db") as db:
        product = product_with(db, kinds=["secret", "x509"], keys="station")
        uci = db.issue(product)[0].uci
        settings = from_mapping({"password": PASSWORD, **QUICK}, {"M": {"port": "memory://M"}})
        result = flash(db, settings, settings.slot("M"), uci, connect=unit.connect, issuing=Issuing(data_dir))
    assert result.passed, result.summary()
    pieces = [*_chunks(unit.fs.files[SECRET]), *_chunks(unit.fs.files[KEY])]
    flagged = [data for data, secret in unit.sent if secret]
    assert len(flagged) == 1 + len(pieces)  # the console password, then each chunk of the secret and the key
    for data, secret in unit.sent:
        assert secret or not any(piece in data for piece in pieces), data
