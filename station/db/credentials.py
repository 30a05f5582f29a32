"""Credentials as recorded (DESIGN.md section 4a): each unit's secret as its broker's hash only, and its
certificates, which are public, with their states. The rig records one only after the unit read it back.

A certificate that a newer one replaced is ``superseded``: it is listed in the CRL (reason superseded) like a
revoked one, since its key may still exist somewhere, and so are the certificates of void units. A void unit's
secret leaves the broker's password file at the next export.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..core import credentials, fields
from ..core.errors import Conflict, Invalid
from ..core.lifecycle import VOID, Kind
from ..core.models import Device, now, stored
from .devices import DevicesTable

if TYPE_CHECKING:
    from cryptography import x509

ACTIVE, REVOKED, SUPERSEDED = "active", "revoked", "superseded"
CERTIFICATE_STATES = (ACTIVE, REVOKED, SUPERSEDED)
VOID_REASON = "the unit's claim ID was voided"
# What a stored secret hash must look like: Mosquitto's sha512-pbkdf2 line, never anything a secret could be.
_HASH = re.compile(r"\$7\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")
_LISTED = "serial, uci, fingerprint, key_origin, not_before, not_after, state, revoked, reason, created"


def serial_text(number: int) -> str:
    """A certificate serial as stored and shown: upper-case hex, whole bytes (as ``openssl x509 -serial``)."""
    text = f"{number:X}"
    return text.rjust(len(text) + len(text) % 2, "0")


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate in lower-case hex: what AWS IoT calls the certificate's ID."""
    from cryptography.hazmat.primitives import hashes

    return certificate.fingerprint(hashes.SHA256()).hex()


class CredentialsTable(DevicesTable):

    def _credential_unit(self, code: str) -> Device:
        device = self.device(code)
        if device.state == VOID:
            raise Conflict(f"device {code} is void: it gets no credential; flash the unit again for a new claim ID")
        return device

    def set_secret(self, uci: str, username: str, hash: str, actor: str) -> str:
        """Record a unit's secret by its broker hash, replacing the one before; the event kind (made, or
        regenerated when a hash was there)."""
        return self.set_secrets([(uci, username, hash)], actor)[0]

    def set_secrets(self, secrets: list[tuple[str, str, str]], actor: str) -> list[str]:
        """``set_secret`` for many units (``(uci, username, hash)`` each) in one transaction: a batch's device
        files. All or none."""
        rows = []
        for uci, username, hash in secrets:
            if not _HASH.fullmatch(hash):
                raise Invalid("a unit's secret is recorded only as its Mosquitto sha512-pbkdf2 hash ($7$...), "
                              "made by station.credentials.secret.password_hash")
            rows.append((self._credential_unit(uci).uci, fields.text(username, "an MQTT username", fields.NAME_MAX), hash))
        kinds = []
        with self.transaction() as conn:
            for uci, username, hash in rows:
                taken = conn.execute("SELECT uci FROM secrets WHERE username = ? AND uci != ?", (username, uci)).fetchone()
                if taken:
                    raise Conflict(f"MQTT username {username!r} already belongs to device {taken[0]}; give the product "
                                   f"a username rule with {{uci}} in it (`station product credentials`)")
                before = conn.execute("SELECT 1 FROM secrets WHERE uci = ?", (uci,)).fetchone()
                conn.execute("INSERT INTO secrets(uci, username, hash, created) VALUES (?, ?, ?, ?) ON CONFLICT (uci) DO UPDATE "
                             "SET username = excluded.username, hash = excluded.hash, created = excluded.created",
                             (uci, username, hash, now()))
                kind = Kind.SECRET_REGENERATED if before else Kind.SECRET_MADE
                self._event(conn, kind, actor, {"username": username}, code=uci)
                kinds.append(str(kind))
        return kinds

    def revoke_secret(self, uci: str, reason: str, actor: str) -> bool:
        """Delete a unit's secret hash (it stops working at the next export); whether it had one."""
        reason = fields.reason(reason, "revoking a secret")
        self.device(uci)
        with self.transaction() as conn:
            row = conn.execute("SELECT username FROM secrets WHERE uci = ?", (uci,)).fetchone()
            if not row:
                return False
            conn.execute("DELETE FROM secrets WHERE uci = ?", (uci,))
            self._event(conn, Kind.SECRET_REVOKED, actor, {"username": row[0], "reason": reason}, code=uci)
        return True

    def add_certificate(self, uci: str, pem: bytes, key_origin: str, actor: str) -> dict[str, Any]:
        """Record a unit's new certificate (serial, fingerprint and validity read from it); the unit's earlier
        active ones become superseded. The stored row, without its PEM."""
        if key_origin not in credentials.KEY_ORIGINS:
            raise Invalid(f"a key's origin is {' or '.join(credentials.KEY_ORIGINS)}, not {key_origin!r}")
        from cryptography import x509  # on use: every station process imports the store, few read certificates
        from cryptography.x509.oid import NameOID

        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise Invalid(f"not a PEM certificate ({exc}); record what Authority.sign or make_key returned") from exc
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [uci]:
            raise Invalid(f"the certificate's subject CN is not {uci}: it belongs to another unit")
        self._credential_unit(uci)
        created = now()
        row = {"serial": serial_text(certificate.serial_number), "uci": uci, "fingerprint": fingerprint(certificate),
               "key_origin": key_origin, "not_before": stored(certificate.not_valid_before_utc),
               "not_after": stored(certificate.not_valid_after_utc), "state": ACTIVE, "revoked": None,
               "reason": None, "created": created}
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM certificates WHERE serial = ?", (row["serial"],)).fetchone():
                raise Conflict(f"a certificate with serial {row['serial']} is already recorded")
            superseded = [r[0] for r in conn.execute(
                "SELECT serial FROM certificates WHERE uci = ? AND state = ? ORDER BY created", (uci, ACTIVE))]
            conn.execute("UPDATE certificates SET state = ?, revoked = ?, reason = ? WHERE uci = ? AND state = ?",
                         (SUPERSEDED, created, "superseded", uci, ACTIVE))
            conn.execute(
                "INSERT INTO certificates(serial, uci, fingerprint, key_origin, not_before, not_after, pem, state, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["serial"], uci, row["fingerprint"], key_origin, row["not_before"], row["not_after"],
                 pem.decode("ascii"), ACTIVE, created))
            details = {k: row[k] for k in ("serial", "fingerprint", "key_origin", "not_after")}
            self._event(conn, Kind.CERTIFICATE_ISSUED, actor, {**details, "superseded": superseded}, code=uci)
        return row

    def revoke_certificates(self, uci: str, reason: str, actor: str) -> int:
        """Revoke every certificate of the unit not revoked yet (active or superseded); how many."""
        reason = fields.reason(reason, "revoking a certificate")
        self.device(uci)
        with self.transaction() as conn:
            serials = [r[0] for r in conn.execute(
                "SELECT serial FROM certificates WHERE uci = ? AND state != ? ORDER BY created", (uci, REVOKED))]
            if serials:
                conn.execute("UPDATE certificates SET state = ?, revoked = ?, reason = ? WHERE uci = ? AND state != ?",
                             (REVOKED, now(), reason, uci, REVOKED))
                self._event(conn, Kind.CERTIFICATE_REVOKED, actor, {"serials": serials, "reason": reason}, code=uci)
        return len(serials)

    def credentials_of(self, uci: str) -> dict[str, Any]:
        """What a unit has: its secret's username and time (never the hash) or None, and its certificates
        (newest first, without PEM)."""
        self.device(uci)
        secret = next(self._query("SELECT username, created FROM secrets WHERE uci = ?", (uci,)), None)
        certificates = list(self._query(
            f"SELECT {_LISTED} FROM certificates WHERE uci = ? ORDER BY created DESC, serial", (uci,)))
        return {"secret": secret, "certificates": certificates}

    def secret_lines(self) -> list[tuple[str, str]]:
        """(username, hash) of every unit's secret, void units left out, by username: the password file (rows as
        tuples: a dict per row would cost the export half its speed)."""
        try:
            return self.conn.execute(
                "SELECT s.username, s.hash FROM secrets s JOIN devices d ON d.uci = s.uci WHERE d.state != ? "
                "ORDER BY s.username", (VOID,)).fetchall()
        except self.engine.error as exc:
            raise self.engine.translate(exc) from exc

    def revoked_certificates(self) -> list[dict[str, Any]]:
        """What the CRL lists: revoked and superseded certificates, and those of void units (revoked at the
        time the unit was voided); serial, revoked (time), reason, state."""
        return list(self._query(
            "SELECT c.serial, CASE WHEN c.state = ? THEN coalesce(d.updated, c.created) ELSE c.revoked END AS revoked, "
            "CASE WHEN c.state = ? THEN ? ELSE c.reason END AS reason, "
            "CASE WHEN c.state = ? THEN ? ELSE c.state END AS state "
            "FROM certificates c JOIN devices d ON d.uci = c.uci WHERE c.state != ? OR d.state = ? ORDER BY revoked, c.serial",
            (ACTIVE, ACTIVE, VOID_REASON, ACTIVE, REVOKED, ACTIVE, VOID)))

    def certificates(self, product: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Certificates with their PEM and their unit's product, oldest first: the manifest for bulk
        registration (AWS IoT, Azure DPS). ``state`` is active, revoked or superseded."""
        if state is not None and state not in CERTIFICATE_STATES:
            raise Invalid(f"a certificate's state is one of {', '.join(CERTIFICATE_STATES)}, not {state!r}")
        if product is not None:
            self.product(product)
        sql = (f"SELECT c.{_LISTED.replace(', ', ', c.')}, c.pem, d.product FROM certificates c "
               f"JOIN devices d ON d.uci = c.uci WHERE (CAST(? AS TEXT) IS NULL OR d.product = ?) AND (CAST(? AS TEXT) IS NULL OR c.state = ?) "
               f"ORDER BY c.created, c.serial")
        return list(self._query(sql, (product, product, state, state)))
