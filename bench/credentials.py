"""Credentials speed: device certificates signed from CSRs, secrets hashed, password files exported.

- Certificates: the same EC P-256 CSRs (made before the clock starts) signed by the station's CA through
  `Authority.sign` (its checks: CSR signature, subject, key; its extensions) against plain `cryptography` in the
  same run: load the CSR, check its self-signature (as `openssl x509 -req` and any CA do), build and sign a
  certificate with the same extensions. Also printed: plain signing that skips the self-signature check, to show
  what that check costs (a CA must not skip it).
- Secrets: `new_secret` and `password_hash` (sha512-pbkdf2 at the station's 101 iterations) against plain
  `hashlib.pbkdf2_hmac` with the same parameters.
- Password file: `credentials.export.password_file` and its durable write (temporary file, fsync, rename) for N
  units recorded through the store, against a plain sqlite3 query joined and written the same durable way.

Medians of several runs, each run timing every part once; nothing is asserted.

    python bench/credentials.py [--csrs 2000] [--secrets 2000] [--units 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from station.core.models import Product
from station.credentials import export, secret
from station.credentials.authority import Authority
from station.store import Store

PRODUCT = "01H4R15D3478JD26YDYK408XE6"


def csrs(count: int) -> list[tuple[str, bytes]]:
    """(UCI-like name, CSR PEM) pairs, each with its own P-256 key, as units send them."""
    made = []
    for n in range(count):
        name = f"{n:016d}"
        key = ec.generate_private_key(ec.SECP256R1())
        request = (x509.CertificateSigningRequestBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(key, hashes.SHA256()))
        made.append((name, request.public_bytes(serialization.Encoding.PEM)))
    return made


def plain_signer(ca: Authority, check: bool) -> Callable[[bytes], bytes]:
    """A CA in a few lines of plain cryptography, with the station's extensions."""
    key, issuer = ca.key, ca.certificate.subject
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())  # type: ignore[arg-type]
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)

    def sign(pem: bytes) -> bytes:
        request = x509.load_pem_x509_csr(pem)
        if check and not request.is_signature_valid:
            raise ValueError("bad CSR")
        now = datetime.datetime.now(datetime.UTC)
        public = request.public_key()
        cert = (x509.CertificateBuilder().subject_name(request.subject).issuer_name(issuer).public_key(public)
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(usage, critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)  # type: ignore[arg-type]
                .add_extension(aki, critical=False)
                .sign(key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)

    return sign


def rate(count: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return count / (time.perf_counter() - start)


def durable_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csrs", type=int, default=2000)
    parser.add_argument("--secrets", type=int, default=2000)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="station-bench-") as tmp:
        folder = Path(tmp)
        store = Store.open(folder / "station.db")
        store.add_product(PRODUCT, "Blank", "Blank-01")
        product: Product = store.product(PRODUCT)
        ca = Authority.init(folder)
        requests = csrs(args.csrs)
        batch = store.generate_batch(PRODUCT, args.units, name="bench")
        for device in store.devices(batch=batch.name, limit=args.units):
            store.set_secret(device.uci, device.uci, secret.password_hash(secret.new_secret()), "bench")
        checked, bare = plain_signer(ca, True), plain_signer(ca, False)
        figures: dict[str, list[float]] = {k: [] for k in ("sign", "plain", "bare", "hash", "pbkdf2", "export", "sql")}
        for run in range(args.runs):
            figures["sign"].append(rate(len(requests), lambda: [ca.sign(pem, name, product) for name, pem in requests]))
            figures["plain"].append(rate(len(requests), lambda: [checked(pem) for _, pem in requests]))
            figures["bare"].append(rate(len(requests), lambda: [bare(pem) for _, pem in requests]))
            figures["hash"].append(rate(args.secrets, lambda: [secret.password_hash(secret.new_secret())
                                                               for _ in range(args.secrets)]))
            figures["pbkdf2"].append(rate(args.secrets, lambda: [
                hashlib.pbkdf2_hmac("sha512", secrets.token_urlsafe(32).encode(), os.urandom(12), secret.ITERATIONS, 64)
                for _ in range(args.secrets)]))
            figures["export"].append(rate(args.units, lambda: export.write(folder / "passwd",
                                                                           export.password_file(store))))

            def plain_export() -> None:
                conn = sqlite3.connect(folder / "station.db")
                rows = conn.execute("SELECT username, hash FROM secrets ORDER BY username").fetchall()
                conn.close()
                durable_write(folder / "passwd-plain", "".join(f"{u}:{h}\n" for u, h in rows).encode())

            figures["sql"].append(rate(args.units, plain_export))
            print(f"run {run + 1}: sign {figures['sign'][-1]:,.0f}/s, plain {figures['plain'][-1]:,.0f}/s, "
                  f"hash {figures['hash'][-1]:,.0f}/s, pbkdf2 {figures['pbkdf2'][-1]:,.0f}/s, "
                  f"export {figures['export'][-1]:,.0f} lines/s, plain {figures['sql'][-1]:,.0f} lines/s", flush=True)
        store.close()
    m = {k: statistics.median(v) for k, v in figures.items()}
    result = {
        "certificates_per_s": round(m["sign"]), "plain_certificates_per_s": round(m["plain"]),
        "sign_ratio": round(m["sign"] / m["plain"], 3), "unchecked_certificates_per_s": round(m["bare"]),
        "secrets_hashed_per_s": round(m["hash"]), "plain_pbkdf2_per_s": round(m["pbkdf2"]),
        "hash_ratio": round(m["hash"] / m["pbkdf2"], 3),
        "password_lines_exported_per_s": round(m["export"]), "plain_lines_per_s": round(m["sql"]),
        "export_ratio": round(m["export"] / m["sql"], 3), "units": args.units, "runs": args.runs,
    }
    print(f"Authority.sign: {result['certificates_per_s']:,} certificates/s from EC P-256 CSRs (goal >= 1,000/s)")
    print(f"plain cryptography, same checks of the CSR's self-signature: {result['plain_certificates_per_s']:,}/s; "
          f"ratio {result['sign_ratio']} (goal >= 0.8)")
    print(f"plain cryptography without checking the CSR at all: {result['unchecked_certificates_per_s']:,}/s "
          f"(what the self-signature check costs; a CA must not skip it)")
    print(f"secrets made and hashed ({secret.ITERATIONS} iterations): {result['secrets_hashed_per_s']:,}/s; plain "
          f"pbkdf2_hmac {result['plain_pbkdf2_per_s']:,}/s; ratio {result['hash_ratio']}")
    print(f"password file of {args.units:,} units exported: {result['password_lines_exported_per_s']:,} lines/s; plain "
          f"query and write {result['plain_lines_per_s']:,} lines/s; ratio {result['export_ratio']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
