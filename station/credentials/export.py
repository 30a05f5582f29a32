"""What the station hands to brokers and clouds: the Mosquitto password file (hashes only), the manifest of
device certificates for bulk registration (a PEM bundle, or CSV), and the durable write they all go through."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .. import files
from ..db.credentials import CredentialsTable
from ..manifest import csv_cell
from .secret import password_line

FORMATS = ("mosquitto", "pem", "csv")
CSV_FIELDS = ("uci", "product", "serial", "fingerprint", "key_origin", "not_before", "not_after", "state", "certificate")


def password_file(store: CredentialsTable) -> bytes:
    """Mosquitto's password file: one ``username:$7$...`` line per unit with a secret (void units left out)."""
    return "".join(password_line(name, hashed) for name, hashed in store.secret_lines()).encode("ascii")


def pem_bundle(store: CredentialsTable, product: str | None = None, state: str | None = "active") -> bytes:
    """The device certificates, PEM one after another (each preceded by a comment line naming its unit)."""
    return "".join(f"# {row['uci']} {row['serial']}\n{row['pem']}" for row in store.certificates(product, state)).encode()


def csv_manifest(store: CredentialsTable, product: str | None = None, state: str | None = "active") -> bytes:
    """The device certificates as CSV (RFC 4180, CRLF), one row each, the certificate as base64 DER on one line
    (PEM without its armour: the armour's leading ``-`` would start a spreadsheet formula), every cell through
    the one CSV rule (manifest.csv_cell)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for row in store.certificates(product, state):
        row["certificate"] = "".join(row["pem"].splitlines()[1:-1])
        writer.writerow([csv_cell(row[name]) for name in CSV_FIELDS])
    return out.getvalue().encode()


def write(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` whole or not at all, on the disk before the name does (temporary file, fsync,
    rename, fsync of the folder): a broker reloading its password file never reads half of one."""
    with files.replacing(path, binary=True) as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    if os.name != "nt":
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
