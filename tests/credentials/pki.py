"""What the credentials' tests make as a unit or another company would: keys and CSRs (with cryptography, as
the simulator's ``openssl`` does), certificates of another CA, and the real ``openssl`` to judge them."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl") or pytest.fail("openssl is not installed: run .ci/setup-mosquitto")

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def openssl(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def key_pem(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def csr(cn: str | None, key: Key | None = None) -> tuple[Key, bytes]:
    """A unit's key and its CSR (subject CN ``cn``, none when None)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else
                     [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no CN")])
    request = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return key, request.public_bytes(serialization.Encoding.PEM)


def _tlv(der: bytes, at: int) -> tuple[int, int]:
    """Where the DER element at ``at`` ends, and where its content starts."""
    length, head = der[at + 1], at + 2
    if length & 0x80:
        size = length & 0x7F
        length, head = int.from_bytes(der[head:head + size], "big"), head + size
    return head + length, head


def spliced_csr(cn: str) -> bytes:
    """A CSR whose key does not match its signature: the request (with its key) of one CSR, the signature of
    another made with a different key over the same subject."""
    _, first = csr(cn)
    _, second = csr(cn)
    one = x509.load_pem_x509_csr(first).public_bytes(serialization.Encoding.DER)
    two = x509.load_pem_x509_csr(second).public_bytes(serialization.Encoding.DER)
    _, body_one = _tlv(one, 0)
    _, body_two = _tlv(two, 0)
    tbs_end_one, _ = _tlv(one, body_one)
    tbs_end_two, _ = _tlv(two, body_two)
    content = two[body_two:tbs_end_two] + one[tbs_end_one:]
    size = len(content)
    header = b"\x30" + (bytes([size]) if size < 128 else bytes([0x80 | ((size.bit_length() + 7) // 8)])
                        + size.to_bytes((size.bit_length() + 7) // 8, "big"))
    return x509.load_der_x509_csr(header + content).public_bytes(serialization.Encoding.PEM)


def other_ca(folder: Path, cn: str = "Another company's CA", days: int = 365,
             start: datetime.datetime | None = None) -> tuple[Path, Path, x509.Certificate, Key]:
    """A CA of someone else, as files (certificate, unencrypted key): for imports, parents, and refusals."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = start or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "other-ca.crt", folder / "other-ca.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key_pem(key))
    return cert_path, key_path, cert, key


def leaf(issuer: x509.Certificate, issuer_key: Key, cn: str, *, server: bool = False,
         ip: str | None = None) -> tuple[Key, bytes]:
    """A key and an end-entity certificate signed by ``issuer``: another CA's device, or a broker's server."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return key, builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
