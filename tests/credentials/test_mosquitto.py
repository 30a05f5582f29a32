"""The credentials against a real Mosquitto broker (Debian's), started by the tests on 127.0.0.1: the password
file from `station credentials export` lets units in by their secret, and stops a wrong one, a regenerated one's
predecessor and a revoked one; the TLS listener takes the station's CA chain and CRL (from `station ca export`
and `station ca crl`) and lets in units' certificates (on-device keys and station-made keys), never a revoked,
superseded or foreign one."""

from __future__ import annotations

from pathlib import Path

from station import config
from station.core import credentials
from station.credentials import secret
from station.credentials.authority import Authority
from station.store import Store
from tests.conftest import PRODUCT
from tests.credentials.broker import CONNECTED, Broker, connect, handshake, running
from tests.credentials.pki import csr, key_pem, leaf, other_ca
from tests.credentials.run import PASS, station


def record_secret(store: Store, uci: str, value: str, iterations: int) -> str:
    """What the rig records once the unit read its secret back: the broker hash, under the product's username."""
    settings = store.product(PRODUCT).credentials
    username = settings.mqtt_username(uci, PRODUCT)
    store.set_secret(uci, username, secret.password_hash(value, iterations), "rig")
    return username


def test_units_connect_by_their_secret_and_old_or_revoked_ones_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    station(data, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    station(data, "product", "credentials", PRODUCT, "--kinds", "secret", "--username", "{product}/{uci}")
    iterations = config.load(data).get("secret_iterations")
    values: dict[str, str] = {}
    with Store.open(data / "station.db") as store:
        kept, renewed, revoked = (store.issue(PRODUCT)[0].uci for _ in range(3))
        names = {}
        for uci in (kept, renewed, revoked):
            values[uci] = secret.new_secret()
            names[uci] = record_secret(store, uci, values[uci], iterations)
    assert names[kept] == f"{PRODUCT}/{kept}"
    password_file = tmp_path / "broker" / "passwd"
    password_file.parent.mkdir()
    station(data, "credentials", "export", "--format", "mosquitto", "--out", str(password_file))
    with running(Broker(password_file.parent, password_file)) as broker:
        for uci in (kept, renewed, revoked):
            assert connect(broker.port, names[uci], values[uci]) == CONNECTED
        assert connect(broker.port, names[kept], values[renewed]) == "refused: Not authorized"
        assert connect(broker.port, names[kept], values[kept][:-1]) == "refused: Not authorized"
        assert connect(broker.port, "someone", values[kept]) == "refused: Not authorized"
        assert connect(broker.port) == "refused: Not authorized"  # no username at all

        old = values[renewed]
        with Store.open(data / "station.db") as store:  # what `credentials regenerate` records after the unit's readback
            values[renewed] = secret.new_secret()
            record_secret(store, renewed, values[renewed], iterations)
        station(data, "credentials", "revoke", revoked, "--reason", "unit returned")
        assert connect(broker.port, names[renewed], old) == CONNECTED  # until the broker loads a new export
        station(data, "credentials", "export", "--format", "mosquitto", "--out", str(password_file))
        broker.reload()
        assert connect(broker.port, names[renewed], old) == "refused: Not authorized"
        assert connect(broker.port, names[renewed], values[renewed]) == CONNECTED
        assert connect(broker.port, names[revoked], values[revoked]) == "refused: Not authorized"
        assert connect(broker.port, names[kept], values[kept]) == CONNECTED


def write_unit(folder: Path, name: str, key: bytes, cert: bytes) -> tuple[Path, Path]:
    """A unit's key and certificate files, as the rig leaves them on the unit."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.key").write_bytes(key)
    (folder / f"{name}.crt").write_bytes(cert)
    return folder / f"{name}.key", folder / f"{name}.crt"


def test_units_connect_by_their_certificate_and_revoked_or_foreign_ones_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    station(data, "product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    station(data, "ca", "init", passphrase=PASS)
    units = tmp_path / "units"
    with Store.open(data / "station.db") as store:
        store.set_product_credentials(PRODUCT, credentials.settings({"kinds": "x509"}))
        product = store.product(PRODUCT)
        ca = Authority.load(data, PASS.encode())
        on_device, station_made, revoked, reflashed = (store.issue(PRODUCT)[0].uci for _ in range(4))
        files: dict[str, tuple[Path, Path]] = {}
        for uci in (on_device, revoked):  # the unit makes its key and CSR; only the CSR leaves it
            key, request = csr(uci)
            cert = ca.sign(request, uci, product)
            store.add_certificate(uci, cert, "device", "rig")
            files[uci] = write_unit(units, uci, key_pem(key), cert)
        key_bytes, cert = ca.make_key(station_made, product)
        store.add_certificate(station_made, cert, "station", "rig")
        files[station_made] = write_unit(units, station_made, key_bytes, cert)
        first = ca.make_key(reflashed, product)
        store.add_certificate(reflashed, first[1], "station", "rig")
        files["superseded"] = write_unit(units, "superseded", *first)
        second = ca.make_key(reflashed, product)
        store.add_certificate(reflashed, second[1], "station", "rig")
        files[reflashed] = write_unit(units, reflashed, *second)
        server_key, server_cert = leaf(ca.certificate, ca.key, "127.0.0.1", server=True, ip="127.0.0.1")
    _, _, foreign_ca, foreign_key = other_ca(tmp_path / "foreign")
    foreign = leaf(foreign_ca, foreign_key, on_device)  # another CA's certificate for the same claim ID
    files["foreign"] = write_unit(units, "foreign", key_pem(foreign[0]), foreign[1])
    station(data, "credentials", "revoke", revoked, "--reason", "key leaked")

    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    station(data, "ca", "export", "--out", str(broker_dir / "ca.pem"))
    station(data, "ca", "crl", "--out", str(broker_dir / "crl.pem"), passphrase=PASS)
    server = write_unit(broker_dir, "server", key_pem(server_key), server_cert)
    broker = Broker(broker_dir, cafile=broker_dir / "ca.pem", certfile=server[1], keyfile=server[0],
                    crlfile=broker_dir / "crl.pem")
    with running(broker):
        def attempt(name: str) -> str:
            key, cert = files[name]
            return connect(broker.tls_port, cafile=broker_dir / "ca.pem", certfile=cert, keyfile=key)

        for uci in (on_device, station_made, reflashed):
            assert attempt(uci) == CONNECTED, broker.log.read_text()
            assert f"u'{uci}'" in broker.log.read_text()  # the certificate's CN is the MQTT username
        for uci in (on_device, station_made, reflashed):
            assert attempt(uci) == CONNECTED, broker.log.read_text()
            assert f"u'{uci}'" in broker.log.read_text()  # the certificate's CN is the MQTT username
            assert handshake(broker.tls_port, broker_dir / "ca.pem", files[uci][1], files[uci][0]) == "ok"
        # refused, and for the reason that matters: the CRL names them, or the CA is not the station's
        for name, alert in ((revoked, "CERTIFICATE_REVOKED"), ("superseded", "CERTIFICATE_REVOKED"),
                            ("foreign", "UNKNOWN_CA")):
            assert attempt(name) != CONNECTED, name
            assert handshake(broker.tls_port, broker_dir / "ca.pem", files[name][1], files[name][0]).endswith(alert)
        assert connect(broker.tls_port, cafile=broker_dir / "ca.pem") != CONNECTED  # no client certificate
        assert handshake(broker.tls_port, broker_dir / "ca.pem") != "ok"
