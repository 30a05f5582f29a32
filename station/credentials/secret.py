"""Per-unit MQTT secrets, and their hash in the exact form Mosquitto's password file holds (sha512-pbkdf2).

The hash matches ``mosquitto_passwd`` of Mosquitto 2.0 byte for byte: ``$7$<iterations>$<salt>$<hash>``,
a 12-byte salt, PBKDF2-HMAC-SHA512 giving 64 bytes, both in standard base64 with padding (OpenSSL's BIO
base64 without newlines). Mosquitto 2.1 writes 64-byte salts and reads both sizes, so 12 bytes work on both.

A secret is 256 random bits: nobody can guess it, so the hash needs no slowness to protect it, and the
default of 101 iterations (Mosquitto 2.0's) keeps the broker's check of every connection cheap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from ..core.errors import Invalid

ITERATIONS = 101  # Mosquitto 2.0's default (PW_DEFAULT_ITERATIONS); config key secret_iterations
MAX_ITERATIONS = 1_000_000
SALT_BYTES = 12  # Mosquitto 2.0's SALT_LEN
HASH_BYTES = 64  # SHA-512's output (EVP_MAX_MD_SIZE)
_TYPE = 7  # Mosquitto's pw_sha512_pbkdf2
_SALT_SIZES = (12, 64)  # what Mosquitto 2.1 accepts when it reads a file
_USERNAME = re.compile(r"[!-9;-~]+")  # printable ASCII without space or ':'


def new_secret() -> str:
    """256 bits from the OS CSPRNG, as 43 URL-safe characters: safe in a file, a shell word and a password line."""
    return secrets.token_urlsafe(32)


def check_iterations(iterations: object) -> int:
    """The PBKDF2 iteration count, as the station's ``secret_iterations`` allows it."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= MAX_ITERATIONS:
        raise Invalid(f"secret_iterations must be a whole number from 1 to {MAX_ITERATIONS:,} "
                      f"(default {ITERATIONS}, Mosquitto's own), not {iterations!r}")
    return iterations


def password_hash(secret: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """What ``mosquitto_passwd`` writes after ``user:`` for ``secret`` (a fresh random salt unless given)."""
    check_iterations(iterations)
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) not in _SALT_SIZES:
        raise Invalid(f"a Mosquitto salt is 12 or 64 bytes, not {len(salt)}")
    digest = _pbkdf2(secret, salt, iterations)
    return f"${_TYPE}${iterations}${_b64(salt)}${_b64(digest)}"


def verify(hash: str, secret: str) -> bool:
    """Whether ``secret`` is the one ``hash`` was made from, as the broker checks it; False for a hash that
    is not a sha512-pbkdf2 line at all."""
    parts = hash.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != str(_TYPE) or not parts[2].isdigit():
        return False
    try:
        salt, digest = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4], validate=True)
    except (binascii.Error, ValueError):
        return False
    iterations = int(parts[2])
    if len(salt) not in _SALT_SIZES or len(digest) != HASH_BYTES or not 1 <= iterations <= MAX_ITERATIONS:
        return False
    return hmac.compare_digest(_pbkdf2(secret, salt, iterations), digest)


def password_line(username: str, hash: str) -> str:
    """One line of a Mosquitto password file. Mosquitto splits a line at its first ``:``, so a username
    holding one (or a space, or a line break) would name another user: refused."""
    if not _USERNAME.fullmatch(username):
        raise Invalid(f"MQTT username {username!r} cannot go into a Mosquitto password file: use printable "
                      f"ASCII without ':' or spaces (the product's username rule, `station product credentials`)")
    return f"{username}:{hash}\n"


def _pbkdf2(secret: str, salt: bytes, iterations: int) -> bytes:
    # Mosquitto hashes strlen(password): the text up to a NUL. A secret never has one (new_secret is URL-safe).
    return hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8").split(b"\0")[0], salt, iterations, HASH_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
