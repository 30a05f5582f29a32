"""Secrets and their hashes, against Debian's real ``mosquitto_passwd``: the same salt gives the same line."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from station.core.errors import Invalid
from station.credentials import secret

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or pytest.fail(
    "mosquitto_passwd is not installed: run .ci/setup-mosquitto (apt-get install -y mosquitto)")


def mosquitto_line(tmp_path: Path, username: str, password: str, *options: str) -> str:
    """What the real tool writes for ``username`` (after ``user:``)."""
    path = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, *options, "-c", "-b", str(path), username, password], check=True,
                   capture_output=True, timeout=30)
    name, _, hashed = path.read_text().strip().partition(":")
    assert name == username
    return hashed


@pytest.mark.parametrize("options", [(), ("-I", "1000"), ("-I", "1")])
def test_hash_is_byte_for_byte_what_mosquitto_passwd_writes(tmp_path: Path, options: tuple[str, ...]) -> None:
    made = secret.new_secret()
    theirs = mosquitto_line(tmp_path, "7QJ4X9TN2KVBM0RA", made, *options)
    _, kind, iterations, salt, _ = theirs.split("$")
    assert kind == "7" and int(iterations) == (int(options[1]) if options else secret.ITERATIONS)
    assert secret.password_hash(made, int(iterations), base64.b64decode(salt)) == theirs
    assert secret.verify(theirs, made)
    assert not secret.verify(theirs, made[:-1] + ("A" if made[-1] != "A" else "B"))


def test_our_hash_has_mosquitto_s_shape_and_verifies() -> None:
    made = secret.new_secret()
    hashed = secret.password_hash(made)
    _, kind, iterations, salt, digest = hashed.split("$")
    assert (kind, iterations) == ("7", "101")
    assert len(base64.b64decode(salt, validate=True)) == 12 and len(base64.b64decode(digest, validate=True)) == 64
    assert secret.verify(hashed, made) and not secret.verify(hashed, secret.new_secret())
    assert secret.password_hash(made) != hashed  # a fresh salt each time


def test_a_mosquitto_2_1_hash_with_a_64_byte_salt_verifies() -> None:
    made, salt = secret.new_secret(), bytes(range(64))
    assert secret.verify(secret.password_hash(made, 1000, salt), made)


def test_secrets_are_256_random_bits_safe_in_a_shell_word() -> None:
    made = {secret.new_secret() for _ in range(1000)}
    assert len(made) == 1000
    for value in made:
        assert len(base64.urlsafe_b64decode(value + "=")) == 32
        assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("bad", ["", "$6$abc$def", "$7$x$AAAA$AAAA", "$7$101$!!$AAAA", "$7$101$AAAAAAAAAAAAAAAA$AAAA",
                                 "$7$0$AAAAAAAAAAAAAAAA$" + "A" * 86 + "==", "plain"])
def test_verify_says_no_to_what_is_not_a_pbkdf2_line(bad: str) -> None:
    assert not secret.verify(bad, "anything")


@pytest.mark.parametrize("iterations", [0, -1, 1_000_001, True, 1.5, "101"])
def test_iterations_out_of_range_are_refused_naming_the_setting(iterations: object) -> None:
    with pytest.raises(Invalid, match="secret_iterations must be a whole number from 1 to 1,000,000"):
        secret.password_hash("x", iterations)  # type: ignore[arg-type]


def test_password_line_refuses_a_username_mosquitto_would_split() -> None:
    assert secret.password_line("unit-1", "$7$h") == "unit-1:$7$h\n"
    for bad in ("a:b", "a b", "", "a\nb"):
        with pytest.raises(Invalid, match="cannot go into a Mosquitto password file"):
            secret.password_line(bad, "$7$h")
