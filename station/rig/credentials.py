"""The flash cycle's credentials step (DESIGN.md section 4a): after device.json5 is in place and before the unit
counts as flashed, the unit gets what its product's ``credentials`` name, each written with the checked
transfer and proven on the unit before the store records it.

- ``secret``: 256 random bits written owner-only to ``secret_path`` (the bare secret, no newline); the station
  records only its Mosquitto hash, after the readback matched.
- ``x509`` with keys made on the unit (``device``): ``openssl genpkey`` makes an EC P-256 key (owner-only) and
  ``openssl req`` its CSR, which alone leaves the unit (read back with its SHA-256); the station's CA signs it;
  the certificate and the CA chain are written back, and the unit's key is proven to match the certificate
  (``openssl pkey -pubout`` against the certificate's public key, on the unit and as signed).
- ``x509`` with keys made by the station (``station``): for units without openssl; the key is written once,
  owner-only, never stored or logged.

Every failure is a ``StepFailed`` at step ``credentials`` that says what to do; a secret or a private key
appears in no log line, report, event or failure (their transfers are ``secret``).

``regenerate`` runs only the secret part on a unit in a slot (``station credentials regenerate``).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..config import Config
from ..core.credentials import KEYS_ON_DEVICE, CredentialSettings
from ..core.errors import Invalid, StationError
from ..core.lifecycle import VOID, Kind
from ..core.models import Product
from ..credentials.authority import Authority, passphrase
from ..credentials.secret import ITERATIONS, new_secret, password_hash
from ..store import Store
from .console import Connect
from .errors import StepFailed
from .port import serial_console
from .settings import RigSettings, SlotSettings
from .shell import Reply, Shell
from .transfer import Transfer

STEP = "credentials"
NEW = ".station-new"  # the suffix of a file being made on the unit, as the transfer names its temporary files
KEYGEN = "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {key}"
_PUBLIC = re.compile(r"-----BEGIN PUBLIC KEY-----\n.*?\n-----END PUBLIC KEY-----", re.S)

# step, message, done, total (as flash.Cycle._report takes them)
Report = Callable[[str, str, "int | None", "int | None"], None]


@dataclass(frozen=True)
class Issuing:
    """What the step needs of the station: the data directory holding its CA, and the PBKDF2 iterations of a
    secret's hash (station.json5 ``secret_iterations``)."""

    data_dir: Path
    iterations: int = ITERATIONS

    @classmethod
    def of(cls, config: Config) -> Issuing:
        return cls(config.data_dir, int(config.get("secret_iterations")))


def _public_pem(certificate_pem: bytes) -> str:
    """The certificate's public key as ``openssl pkey -pubout`` prints it."""
    key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class CredentialStep:
    """The credentials of one unit, on a shell where its device file is already written."""

    def __init__(self, store: Store, shell: Shell, rig: RigSettings, product: Product, uci: str, *,
                 issuing: Issuing, actor: str, report: Report, authority: Authority | None = None) -> None:
        """``authority``: the station's CA when the caller loaded it already (``load_authority``)."""
        self.store = store
        self.shell = shell
        self.rig = rig
        self.product = product
        self.settings: CredentialSettings = product.credentials
        self.uci = uci
        self.issuing = issuing
        self.actor = actor
        self.report = report
        self.retries = rig.retries
        self.doing = ""
        self._authority = authority

    def run(self) -> dict[str, object]:
        """Write, prove and record the unit's credentials; what was made, for the ``flashed`` event."""
        made: dict[str, object] = {}
        if self.settings.secret:
            made["secret"] = self.run_secret()
        if self.settings.x509:
            made["certificate"] = self._step(self.certificate)
        return made

    def run_secret(self) -> str:
        """Only the secret: written, proven and recorded; the event kind."""
        return self._step(self.secret)

    def _step(self, part: Callable[[], str]) -> str:
        """One part of the step, its failures at step ``credentials``."""
        try:
            return part()
        except StepFailed as exc:
            if exc.step == STEP:
                raise
            # A failure inside a transfer or a command: the same kind (a lost port stays PortLost), at this step.
            raise type(exc)(STEP, f"{self.doing}: {exc.step}: {exc.reason}") from None
        except StationError as exc:  # the CA, the store: their messages say what to do
            raise StepFailed(STEP, f"{self.doing}: {exc}") from None

    def _say(self, message: str) -> None:
        self.report(STEP, message, None, None)

    def _write(self, what: str, path: str, data: bytes, *, mode: int | None = None, secret: bool = False) -> None:
        """One file with the checked transfer, its progress reported at this step."""
        def relay(step: str, message: str, done: int | None = None, total: int | None = None) -> None:
            self.report(STEP, f"{what}: {message}", done, total)

        self.doing = f"writing {what} to {path}"
        rig = self.rig
        Transfer(self.shell, chunk=rig.chunk, retries=rig.retries, tmp_dir=rig.tmp_dir, report=relay).write(
            path, data, mode=mode, secret=secret)

    # --- the secret ---------------------------------------------------------------------------------------

    def secret(self) -> str:
        """A new secret on the unit, then its hash in the store; the event kind (made or regenerated)."""
        settings = self.settings
        secret = new_secret()
        self._write("the secret", settings.secret_path, secret.encode("ascii"), mode=settings.mode, secret=True)
        self.doing = "recording the secret's hash"
        username = settings.mqtt_username(self.uci, self.product.id)
        kind = self.store.set_secret(self.uci, username, password_hash(secret, self.issuing.iterations), self.actor)
        self._say(f"secret for MQTT user {username} in place, mode {settings.mode:o}; its hash recorded")
        return kind

    # --- the certificate ----------------------------------------------------------------------------------

    def authority(self) -> Authority:
        """The station's CA, loaded once per cycle."""
        if self._authority is None:
            self._authority = load_authority(self.issuing)
        return self._authority

    def certificate(self) -> str:
        """A certificate on the unit for a key made there or by the station; its serial once recorded."""
        authority = self.authority()
        settings = self.settings
        if settings.keys == KEYS_ON_DEVICE:
            pem = self._on_device_key(authority)
        else:
            self.doing = "making the unit's key"
            key, pem = authority.make_key(self.uci, self.product)
            self._write("the key", settings.key_path, key, mode=settings.mode, secret=True)
            self._write("the certificate", settings.cert_path, pem)
            self._write("the CA chain", settings.chain_path, authority.chain_pem())
        self.doing = "recording the certificate"
        record = self.store.add_certificate(self.uci, pem, settings.keys, self.actor)
        self._say(f"certificate {record['serial']} in place ({settings.keys} key), recorded")
        return str(record["serial"])

    def _on_device_key(self, authority: Authority) -> bytes:
        settings, shell = self.settings, self.shell
        key, csr = shlex.quote(settings.key_path + NEW), shlex.quote(settings.csr_path + NEW)
        self.doing = "making the key on the unit"
        reply = shell.run("openssl version", STEP)
        if reply.status == 127:
            raise StepFailed(STEP, "the unit has no openssl, so it cannot make its own key: install openssl on the "
                                   "unit's image, or set the product's keys to \"station\" (keys made by the station)")
        self._say("making an EC P-256 key on the unit")
        self._check(f"rm -f {key}&&{KEYGEN.format(key=key)}&&chmod {settings.mode:o} {key}", "openssl genpkey")
        self._mode(settings.key_path + NEW)
        self.doing = "making the CSR on the unit"
        self._check(f"openssl req -new -key {key} -subj {shlex.quote('/CN=' + self.uci)} -out {csr}", "openssl req")
        request = self._read_back(settings.csr_path + NEW)
        self.doing = "signing the unit's CSR"
        self._say(f"CSR read back ({len(request)} bytes); signing it")
        pem = authority.sign(request, self.uci, self.product)
        self._write("the certificate", settings.cert_path, pem)
        self._write("the CA chain", settings.chain_path, authority.chain_pem())
        self.doing = "installing the key"
        self._check(f"mv -f {key} {shlex.quote(settings.key_path)}&&mv -f {csr} {shlex.quote(settings.csr_path)}&&sync",
                    "mv")
        self._mode(settings.key_path)
        self.doing = "proving the unit's key matches its certificate"
        reply = self._check(f"openssl pkey -in {shlex.quote(settings.key_path)} -pubout&&"
                            f"openssl x509 -in {shlex.quote(settings.cert_path)} -noout -pubkey", "openssl pkey, x509")
        want = _public_pem(pem).strip()
        found = _PUBLIC.findall(reply.output)
        if found[:1] != [want]:
            raise StepFailed(STEP, f"the key on the unit ({settings.key_path}) does not match the certificate the CA "
                                   f"signed for its CSR: the unit's openssl made the CSR for another key; flash it again, "
                                   f"and if it fails again check the unit's openssl")
        if found[1:] != [want]:
            raise StepFailed(STEP, f"the certificate on the unit ({settings.cert_path}) does not hold the public key "
                                   f"that was signed; flash the unit again")
        self._say("the unit's key matches its certificate")
        return pem

    def _check(self, command: str, name: str) -> Reply:
        """Run a command of the step; a failure names it (``name``) with the unit's last line."""
        try:
            return self.shell.check(command, STEP, name=name)
        except StepFailed as exc:
            raise type(exc)(STEP, f"{self.doing}: {exc.reason}") from None

    def _mode(self, path: str) -> None:
        reply = self.shell.check(f"stat -c %a {shlex.quote(path)}", STEP)
        lines = reply.lines
        if not lines or lines[-1].strip() != f"{self.settings.mode:o}":
            raise StepFailed(STEP, f"{path} has mode {lines[-1].strip() if lines else 'unknown'} on the unit, "
                                   f"{self.settings.mode:o} wanted: check that the unit's file system keeps modes")

    def _read_back(self, path: str) -> bytes:
        """A file of the unit as text (a CSR), checked against its SHA-256 there; read again when they differ."""
        quoted = shlex.quote(path)
        problem = ""
        for _ in range(self.retries + 1):
            reply = self.shell.check(f"sha256sum {quoted}&&cat {quoted}", STEP)
            first, _, text = reply.output.partition("\n")
            want = first.split(" ", 1)[0]
            data = text.encode()
            if hashlib.sha256(data).hexdigest() == want:
                return data
            problem = "what the unit printed differs from its SHA-256 there"
            self._say(f"readback of {path}: {problem}; reading again")
        raise StepFailed(STEP, f"readback of {path} failed {self.retries + 1} times; last: {problem}")


def load_authority(issuing: Issuing) -> Authority:
    """The station's CA (its key's passphrase from STATION_CA_PASSPHRASE), or a FAIL at this step that says
    what to do: loaded before the cycle touches the unit, so a missing CA costs it nothing."""
    try:
        return Authority.load(issuing.data_dir, passphrase())
    except StationError as exc:
        raise StepFailed(STEP, f"loading the station's CA: {exc}") from None


def _quiet(step: str, message: str, done: int | None = None, total: int | None = None) -> None:
    """The report of a caller that does not watch progress."""


def regenerate(store: Store, settings: RigSettings, slot: SlotSettings, uci: str, *, issuing: Issuing,
               connect: Connect = serial_console, report: Report | None = None) -> str:
    """A new secret for the unit in ``slot``: logged in, written and verified, its hash replacing the old one
    (whose secret stops working at the broker's next export); the event kind. A failure is recorded as
    ``flash-failed`` at step ``credentials`` and raised as the ``StepFailed``."""
    device = store.device(uci)
    product = store.product(device.product)
    if device.state == VOID:
        raise Invalid(f"device {device.display} is void: it gets no credential")
    if not product.credentials.secret:
        raise Invalid(f"product {product.id} gives its units no secret; add it with `station product credentials "
                      f"{product.id} --kinds secret` (`--kinds secret,x509` where they get certificates too)")
    details = {"slot": slot.name, "port": slot.port, "action": "regenerate"}
    try:
        with connect(slot, threading.Event()) as console:
            shell = Shell(console, slot)
            shell.login(STEP)
            return CredentialStep(store, shell, settings, product, uci, issuing=issuing, actor=slot.actor,
                                  report=report or _quiet).run_secret()
    except StepFailed as exc:
        store.record(uci, Kind.FLASH_FAILED, slot.actor, {**details, "step": exc.step, "reason": exc.reason})
        raise
