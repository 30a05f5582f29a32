"""The station's certificate authority: made here (a root, or an intermediate under a parent the company
holds) or imported, kept in ``<data dir>/ca/``, and signing device certificates from units' CSRs.

``ca/ca.crt`` is the CA's certificate, ``ca/chain.crt`` its parents (none for a root), ``ca/ca.key`` its
private key: PKCS#8, owner-only, encrypted with the passphrase when there is one (``STATION_CA_PASSPHRASE``,
or a prompt). The key is read once per ``load`` and never logged, stored elsewhere or put in a message.
"""

from __future__ import annotations

import datetime
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .. import files
from ..core.errors import Conflict, Invalid
from ..core.models import Product, stored
from ..db.credentials import CredentialsTable, fingerprint, serial_text
from .errors import AuthorityUnusable, CsrRefused, NoAuthority, WrongPassphrase
from .export import write

PASSPHRASE_VARIABLE = "STATION_CA_PASSPHRASE"
FOLDER = "ca"
CERT_FILE, KEY_FILE, CHAIN_FILE = "ca.crt", "ca.key", "chain.crt"
CA_DAYS = 3650
CRL_DAYS = 30  # a CRL's next update: a broker refuses every client once it has passed, so re-export before
BACKDATE = datetime.timedelta(hours=1)  # a device certificate's start, before now: clocks of brokers differ
CA_KEYS = {"p256": "EC P-256", "p384": "EC P-384", "rsa3072": "RSA 3072"}
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}  # device keys the CA signs
RSA_MIN = 2048
REPLACE = (f"make a new CA: move {FOLDER}/ out of the data directory, then `station ca init` or `station ca import`")

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def passphrase() -> bytes | None:
    """The CA key's passphrase from ``STATION_CA_PASSPHRASE``; None when unset or empty."""
    value = os.environ.get(PASSPHRASE_VARIABLE)
    return value.encode("utf-8") if value else None


def folder(data_dir: Path) -> Path:
    return data_dir / FOLDER


def exists(data_dir: Path) -> bool:
    return (folder(data_dir) / CERT_FILE).is_file()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def key_type(key: Any) -> str:
    """A key as people name it: ``EC P-256``, ``RSA 2048``, or its class for anything else."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return f"EC {_CURVES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"RSA {key.key_size}"
    return type(key).__name__.lstrip("_")


def _digest(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The hash that matches the CA key's strength (P-384 signs with SHA-384)."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384() if key.curve.key_size <= 384 else hashes.SHA512()
    return hashes.SHA256()


def _new_key(kind: str) -> PrivateKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "rsa3072":
        return rsa.generate_private_key(65537, 3072)
    raise Invalid(f"a CA key is one of {', '.join(CA_KEYS)} (default p256), not {kind!r}")


def _read_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise Invalid(f"{what} holds no PEM certificate; give the CA's certificate in PEM "
                      f"(-----BEGIN CERTIFICATE-----)") from exc
    return found


def _read_key(data: bytes, secret: bytes | None, what: str) -> PrivateKey:
    """A private key from PEM, naming what went wrong (never the passphrase)."""
    try:
        key = serialization.load_pem_private_key(data, secret)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        if secret is None:
            raise WrongPassphrase(f"{what} is encrypted: set {PASSPHRASE_VARIABLE} (or type it when asked)") from exc
        raise WrongPassphrase(f"{what} is not encrypted, yet a passphrase was given: unset {PASSPHRASE_VARIABLE}") from exc
    except ValueError as exc:
        if secret is not None and b"ENCRYPTED" in data:
            raise WrongPassphrase(f"wrong passphrase for {what}: check {PASSPHRASE_VARIABLE}") from exc
        raise Invalid(f"{what} is not a PEM private key") from exc
    except UnsupportedAlgorithm as exc:
        raise Invalid(f"{what} uses an algorithm this station cannot read; use an EC or RSA key") from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise Invalid(f"{what} is a {key_type(key)} key: a CA key must be EC (P-256 or larger) or RSA")
    return key


def _check_ca(cert: x509.Certificate, what: str, when: datetime.datetime | None = None) -> None:
    """A certificate that may sign others, and may now: basicConstraints CA, keyCertSign, within its validity."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise AuthorityUnusable(f"{what} is not a CA certificate (basicConstraints CA:TRUE is missing): "
                                f"give the certificate of a CA, not of a device or server")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not (usage.key_cert_sign and usage.crl_sign):
        raise AuthorityUnusable(f"{what} may not sign certificates and CRLs (keyUsage lacks keyCertSign, cRLSign)")
    when = when or _now()
    if cert.not_valid_after_utc <= when:
        raise AuthorityUnusable(f"{what} expired on {stored(cert.not_valid_after_utc)}; {REPLACE}")
    if cert.not_valid_before_utc > when:
        raise AuthorityUnusable(f"{what} is not valid before {stored(cert.not_valid_before_utc)}; check the clock")


def _matches(key: PrivateKey, cert: x509.Certificate) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(serialization.Encoding.DER, fmt)
                == cert.public_key().public_bytes(serialization.Encoding.DER, fmt))


def _check_chain(chain: list[x509.Certificate]) -> None:
    """Each certificate is issued by the next (the CA first, its parents after it)."""
    for child, parent in zip(chain, chain[1:], strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise Invalid(f"the chain is broken: {child.subject.rfc4514_string()} was not issued by "
                          f"{parent.subject.rfc4514_string()}; give the parents in order, nearest first") from exc


def _key_pem(key: PrivateKey, secret: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _absent(data_dir: Path) -> None:
    if exists(data_dir):
        raise Conflict(f"this station already has a CA ({folder(data_dir) / CERT_FILE}); `station ca show` describes "
                       f"it. To replace it, move {FOLDER}/ out of the data directory first")


def _save(data_dir: Path, key: PrivateKey, secret: bytes | None, cert: x509.Certificate,
          parents: list[x509.Certificate]) -> None:
    """The CA's three files, the certificate last: it is what says a CA is there."""
    where = folder(data_dir)
    _absent(data_dir)
    files.private_dir(where)
    write(where / KEY_FILE, _key_pem(key, secret))
    write(where / CHAIN_FILE, b"".join(_pem(c) for c in parents))
    write(where / CERT_FILE, _pem(cert))


def _ca_extensions(builder: x509.CertificateBuilder, key: PrivateKey, issuer_key: PrivateKey) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))


@dataclass(frozen=True)
class Authority:
    """A loaded CA: its certificate, its parents and its key, ready to sign."""

    certificate: x509.Certificate
    parents: tuple[x509.Certificate, ...]
    key: PrivateKey

    @classmethod
    def init(cls, data_dir: Path, secret: bytes | None = None, *, cn: str = "Station device CA", days: int = CA_DAYS,
             key: str = "p256", parent_cert: bytes | None = None, parent_key: bytes | None = None,
             parent_secret: bytes | None = None) -> Authority:
        """Make the station's CA: a root, or an intermediate signed by the parent CA given as PEM (whose
        certificate file may hold its own parents after it; the chain is kept)."""
        if not cn or len(cn) > 64 or not cn.isprintable():
            raise Invalid(f"a CA's common name is printable text of 1 to 64 characters, not {cn!r}")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
            raise Invalid(f"a CA's validity is 1 to 36500 days, not {days!r}")
        _absent(data_dir)
        if (parent_cert is None) != (parent_key is None):
            raise Invalid("an intermediate CA needs both the parent's certificate and its key (--parent-cert, --parent-key)")
        private = _new_key(key)
        start = _now()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        parents: list[x509.Certificate] = []
        signer, issuer = private, None
        end = start + datetime.timedelta(days=days)
        if parent_cert is not None and parent_key is not None:
            parents = _read_certificates(parent_cert, "the parent CA's certificate file")
            issuer = parents[0]
            _check_ca(issuer, "the parent CA's certificate")
            if issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0:
                raise Invalid("the parent CA may sign only device certificates (basicConstraints pathlen:0), not "
                              "another CA; give a parent whose path length allows an intermediate")
            _check_chain(parents)
            signer = _read_key(parent_key, parent_secret, "the parent CA's key")
            if not _matches(signer, issuer):
                raise Invalid("the parent CA's key does not belong to its certificate; give the key of that certificate")
            end = min(end, issuer.not_valid_after_utc)  # a CA outliving its parent would be useless after it
        builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start - BACKDATE).not_valid_after(end))
        builder = _ca_extensions(builder, private, signer)
        cert = builder.sign(signer, _digest(signer))
        _save(data_dir, private, secret, cert, parents)
        return cls(cert, tuple(parents), private)

    @classmethod
    def import_(cls, data_dir: Path, cert_pem: bytes, key_pem: bytes, secret: bytes | None, *,
                chain_pem: bytes | None = None, unencrypted: bool = False) -> Authority:
        """Take over a CA the company already has. Its key must be passphrase-protected (it is the one secret
        that signs every unit's identity, and a copy of the data directory must not be enough to use it)
        unless ``unencrypted`` says the company decided otherwise (a key held in a protected vault mount)."""
        certs = _read_certificates(cert_pem, "the CA certificate file")
        extra = _read_certificates(chain_pem, "the chain file") if chain_pem else []
        cert, parents = certs[0], [*certs[1:], *extra]
        _check_ca(cert, "the CA certificate")
        _check_chain([cert, *parents])
        encrypted = b"ENCRYPTED" in key_pem
        if not encrypted and not unencrypted:
            raise Invalid("the CA key is not passphrase-protected: encrypt it (openssl pkcs8 -topk8 -v2 aes-256-cbc) "
                          "and give its passphrase in STATION_CA_PASSPHRASE, or pass --no-passphrase to keep it plain")
        private = _read_key(key_pem, secret if encrypted else None, "the CA key")
        if not _matches(private, cert):
            raise Invalid("the CA key does not belong to the CA certificate; give the key of that certificate")
        _save(data_dir, private, secret if encrypted else None, cert, parents)
        return cls(cert, tuple(parents), private)

    @classmethod
    def load(cls, data_dir: Path, passphrase: bytes | None = None) -> Authority:
        """The station's CA, ready to sign; an error saying what to do when there is none, the passphrase is
        missing or wrong, or the CA expired."""
        where = folder(data_dir)
        cert, *parents = _certificates(data_dir)
        _check_ca(cert, "the station's CA")
        files.tighten(where / KEY_FILE)
        key = _read_key((where / KEY_FILE).read_bytes(), passphrase, "the CA key")
        if not _matches(key, cert):
            raise AuthorityUnusable(f"{where / KEY_FILE} does not belong to {where / CERT_FILE}; restore both from "
                                    f"the same backup")
        return cls(cert, tuple(parents), key)

    def chain_pem(self) -> bytes:
        """The CA's certificate and its parents: the unit's chain file, a broker's cafile, what AWS IoT (JITP,
        JITR) and Azure DPS are given to trust."""
        return b"".join(_pem(c) for c in (self.certificate, *self.parents))

    def sign(self, csr_pem: bytes, uci: str, product: Product) -> bytes:
        """A unit's certificate from its CSR, after checking the CSR's signature, subject and key."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise CsrRefused(f"what the unit sent is not a PEM certificate signing request; make its key and CSR "
                             f"again (openssl req -new -key {product.credentials.key_path} -subj /CN={uci})") from exc
        if not csr.is_signature_valid:
            raise CsrRefused("the CSR's signature does not verify with its own key (it was altered, or made with "
                             "another key); make the unit's key and CSR again")
        names = [n.value for n in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [uci]:
            shown = ", ".join(str(n) for n in names) or "missing"
            raise CsrRefused(f"the CSR's subject CN is {shown}, not the unit's claim ID {uci}; make the CSR with "
                             f"-subj /CN={uci}")
        try:
            public = csr.public_key()
        except UnsupportedAlgorithm as exc:
            raise CsrRefused("the CSR's key is of a kind this station cannot read; use EC P-256 or RSA 2048+") from exc
        return _pem(self._issue(_check_device_key(public), uci, product))

    def make_key(self, uci: str, product: Product) -> tuple[bytes, bytes]:
        """A station-made key (EC P-256, PKCS#8 PEM, unencrypted: for the unit only, never stored or logged) and
        its certificate, for units without ``openssl``."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        return pem, _pem(self._issue(key.public_key(), uci, product))

    def _issue(self, public: PublicKey, uci: str, product: Product) -> x509.Certificate:
        """CN = the UCI, O = the product's ID; a random 128-bit serial (top bit set: always 32 hex digits);
        client authentication only; valid for the product's days, never beyond the CA."""
        start = _now()
        end = min(start + datetime.timedelta(days=product.credentials.validity_days), self.certificate.not_valid_after_utc)
        if end <= start:
            raise AuthorityUnusable(f"the station's CA expired on {stored(self.certificate.not_valid_after_utc)}; {REPLACE}")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, uci),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, product.id)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.certificate.subject)
                   .public_key(public).serial_number(secrets.randbits(127) | 1 << 127)
                   .not_valid_before(start - BACKDATE).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=False, crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                   .add_extension(self._authority_key_id, critical=False))
        return builder.sign(self.key, _digest(self.key))

    @property
    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())

    def crl(self, store: CredentialsTable, days: int = CRL_DAYS) -> bytes:
        """The CRL of every certificate the store lists as revoked (revoked, superseded, of void units), signed
        by the CA, valid for ``days``; PEM, for a broker's crlfile."""
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise Invalid(f"a CRL's next update is 1 to 3650 days away, not {days!r}")
        start = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(start - datetime.timedelta(minutes=5)).next_update(start + datetime.timedelta(days=days))
                   .add_extension(x509.CRLNumber(int(start.timestamp() * 1000)), critical=False)
                   .add_extension(self._authority_key_id, critical=False))
        for row in store.revoked_certificates():
            reason = x509.ReasonFlags.superseded if row["state"] == "superseded" else x509.ReasonFlags.unspecified
            revoked = datetime.datetime.fromisoformat(row["revoked"].replace("Z", "+00:00"))
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(row["serial"], 16)).revocation_date(revoked)
                .add_extension(x509.CRLReason(reason), critical=False).build())
        return builder.sign(self.key, _digest(self.key)).public_bytes(serialization.Encoding.PEM)

    def summary(self) -> dict[str, Any]:
        return describe(self.certificate, self.parents)


def _check_device_key(public: Any) -> PublicKey:
    """A device key the CA signs: EC P-256, P-384 or P-521, or RSA of 2048 bits or more."""
    if isinstance(public, ec.EllipticCurvePublicKey):
        if public.curve.name not in _CURVES:
            raise CsrRefused(f"the CSR's key is EC {public.curve.name}, too weak or unusual: use EC P-256 or larger "
                             f"(openssl ecparam -genkey -name prime256v1)")
        return public
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < RSA_MIN:
            raise CsrRefused(f"the CSR's key is RSA {public.key_size}, too weak: use RSA {RSA_MIN} or larger, or EC P-256")
        return public
    raise CsrRefused(f"the CSR's key is {key_type(public)}: use EC P-256 or larger, or RSA {RSA_MIN} or larger")


def describe(cert: x509.Certificate, parents: tuple[x509.Certificate, ...] = ()) -> dict[str, Any]:
    """A CA as ``station ca show`` prints it: never its key."""
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": serial_text(cert.serial_number), "fingerprint": fingerprint(cert),
            "not_before": stored(cert.not_valid_before_utc), "not_after": stored(cert.not_valid_after_utc),
            "key": key_type(cert.public_key()), "chain": 1 + len(parents),
            "root": cert.issuer == cert.subject}


def show(data_dir: Path) -> dict[str, Any]:
    """The station's CA described from its certificate files alone (no passphrase needed), and whether its
    key file is encrypted."""
    cert, *rest = _certificates(data_dir)
    parents = tuple(rest)
    key_file = folder(data_dir) / KEY_FILE
    encrypted = key_file.is_file() and b"ENCRYPTED" in key_file.read_bytes()[:64]
    return {**describe(cert, parents), "key_file": str(key_file), "encrypted": encrypted,
            "expired": cert.not_valid_after_utc <= _now()}


def _certificates(data_dir: Path) -> list[x509.Certificate]:
    """The CA's certificate and its parents, from its files (no key needed)."""
    where = folder(data_dir)
    if not exists(data_dir):
        raise NoAuthority(f"this station has no CA yet: run `station ca init` (or `station ca import` for the "
                          f"company's CA) with --data-dir {data_dir}")
    chain = where / CHAIN_FILE
    parents = _read_certificates(chain.read_bytes(), str(chain)) if chain.is_file() and chain.stat().st_size else []
    return [_read_certificates((where / CERT_FILE).read_bytes(), str(where / CERT_FILE))[0], *parents]


def chain_of(data_dir: Path) -> bytes:
    """The station's CA chain (``Authority.chain_pem``) without loading its key: for exports."""
    return b"".join(_pem(c) for c in _certificates(data_dir))
