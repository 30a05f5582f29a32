"""No secret anywhere (DESIGN.md section 4a): secrets and station-made keys are made, recorded as the rig records
them, regenerated and revoked; then everything is exported and shown (password file, certificate manifests, the
CA's chain and CRL, device exports and batch manifests, `credentials show`, the API, the device page of a live
`station serve`), and the database file with its WAL, every event, the logs and every export are searched for
each secret, each key and the CA passphrase: none is found. The unit's claim ID is found in them, so the search
sees what is there."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests

from station import accounts
from station.credentials import secret
from station.credentials.authority import Authority
from station.store import Store
from tests.conftest import PRODUCT
from tests.credentials.pki import csr, key_pem
from tests.credentials.run import PASS, station
from tests.web.conftest import Server
from tests.web.test_hostile_access import Person

OPERATOR, PASSWORD = "olga", "line-password-1"


def needles(secrets: list[str], keys: list[bytes]) -> dict[str, list[bytes]]:
    """What would betray each secret or key: its text, its raw bytes, and for keys every line of the PEM body."""
    found: dict[str, list[bytes]] = {}
    for value in secrets:
        found[f"secret {value[:6]}"] = [value.encode(), base64.urlsafe_b64decode(value + "=")]
    for pem in keys:
        body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
        found[f"key {body[0][:12].decode()}"] = [b"".join(body), *[line for line in body if len(line) >= 16]]
    return found


def signed_in(server: Server) -> requests.Session:
    person = Person(server)
    assert person.sign_in(OPERATOR, PASSWORD).status_code == 302
    return person.http


def test_no_secret_or_key_reaches_the_database_events_logs_or_any_export(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    outputs: list[str] = []

    def run(*args: str) -> None:
        result = station(data, *args, passphrase=PASS)
        outputs.extend((result.stdout, result.stderr))

    run("product", "add", "--id", PRODUCT, "--name", "Blank", "--model", "Blank-01")
    run("product", "credentials", PRODUCT, "--kinds", "secret,x509", "--keys", "station")
    run("ca", "init", "--cn", "No secrets CA")
    made: list[str] = []
    keys: list[bytes] = []
    with Store.open(data / "station.db") as store:
        accounts.add_user(store, OPERATOR, "operator", PASSWORD)
        ca = Authority.load(data, PASS.encode())
        product = store.product(PRODUCT)
        units = [store.issue(PRODUCT)[0] for _ in range(4)]
        for unit in units:  # as the rig records them, once the unit read them back
            for _ in range(2):  # made, then regenerated
                made.append(secret.new_secret())
                store.set_secret(unit.uci, unit.uci, secret.password_hash(made[-1]), "rig")
            key, cert = ca.make_key(unit.uci, product)
            keys.append(key)
            store.add_certificate(unit.uci, cert, "station", "rig")
        on_device, request = csr(units[0].uci)
        keys.append(key_pem(on_device))  # a unit's own key: it never even reaches the station
        store.add_certificate(units[0].uci, ca.sign(request, units[0].uci, product), "device", "rig")
        store.advance(units[1].uci, "flashed", "flashed", "rig")
    run("credentials", "revoke", units[2].uci, "--reason", "returned")
    run("credentials", "export", "--format", "mosquitto", "--out", str(out / "passwd"))
    run("credentials", "export", "--format", "pem", "--out", str(out / "certs.pem"))
    run("credentials", "export", "--format", "csv", "--out", str(out / "certs.csv"))
    run("credentials", "export", "--format", "csv", "--state", "revoked", "--out", str(out / "revoked.csv"))
    run("ca", "export", "--out", str(out / "chain.pem"))
    run("ca", "crl", "--out", str(out / "crl.pem"))
    run("ca", "show")
    run("export", "--format", "csv", "--out", str(out / "devices.csv"))
    run("export", "--format", "json", "--out", str(out / "devices.json"))
    run("generate", "--product", PRODUCT, "--count", "3", "--batch", "b1", "--csv", str(out / "batch.csv"),
        "--json", str(out / "batch.json"), "--device-json", str(out / "device-files"))
    run("generate", "--product", PRODUCT, "--count", "1", "--batch", "b2")  # no device files: no secret yet
    for unit in units:
        run("credentials", "show", unit.uci)
        run("show", unit.uci)

    monkeypatch.setenv("STATION_CA_PASSPHRASE", PASS)  # the service has it in its environment, as on a line
    server = Server(data)
    try:
        token = station(data, "token", "create", "--name", "t", "--scope", "read").stdout.strip()
        api = f"http://127.0.0.1:{server.port}/api/v1"
        for unit in units:
            reply = requests.get(f"{api}/devices/{unit.uci}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert reply.status_code == 200
            outputs.append(reply.text)
        assert reply.json()["provisioning"] == "activated"
        auth = {"Authorization": f"Bearer {token}"}
        with_files = requests.get(f"{api}/devices?batch=b1", headers=auth, timeout=30).json()["devices"]
        assert {d["provisioning"] for d in with_files} == {"activated"}  # their device files carry their secrets
        fresh = requests.get(f"{api}/devices?batch=b2", headers=auth, timeout=30).json()["devices"][0]["uci"]
        assert requests.get(f"{api}/devices/{fresh}", headers=auth, timeout=30).json()["provisioning"] == "defined"
        page = signed_in(server).get(f"http://127.0.0.1:{server.port}/devices/{units[0].uci}", timeout=30).text
        outputs.append(page)
        # while the service holds the database open, its WAL is there (the last connection's close removes it)
        places = {f"{path.relative_to(tmp_path)} (live)": path.read_bytes() for path in data.glob("station.db*")}
    finally:
        assert server.stop() == 0
    serial = store_serials(data)[units[0].uci]
    assert serial in page and "Credentials" in page and "activated" in page

    with Store.open(data / "station.db") as store:
        events = [row[0] for row in store.conn.execute("SELECT details FROM events")]
    places.update({"events": "\n".join(events).encode(), "outputs": "\n".join(outputs).encode()})
    for path in [*data.rglob("*"), *out.rglob("*")]:
        if path.is_file() and path.name != "ca.key":  # the CA key file holds the CA key, encrypted
            places[str(path.relative_to(tmp_path))] = path.read_bytes()
    assert {"data/station.db-wal (live)", "data/web.log", "data/serve.stderr"} <= set(places), sorted(places)
    assert units[0].uci.encode() in places["events"] and units[0].uci.encode() in places["out/passwd"]
    assert places["out/passwd"].count(b"$7$") == 3  # hashes only, the revoked unit left out
    leaks = [(what, place) for what, forms in needles(made, keys).items() for place, blob in places.items()
             if any(form in blob for form in forms)]
    leaks += [("the CA passphrase", place) for place, blob in places.items() if PASS.encode() in blob]
    assert leaks == []


def store_serials(data: Path) -> dict[str, str]:
    with Store.open(data / "station.db") as store:
        return {row["uci"]: row["serial"] for row in store.certificates(state="active")}
