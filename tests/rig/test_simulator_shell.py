"""The simulated unit's shell, file system and openssl: the command forms the rig sends behave as on a real sh
with the real OpenSSL 3 (which reads what the simulated one writes)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.rig.checksum import cksum
from station.rig.port import Link, open_port
from station.rig.shell import Shell as RigShell
from station.simulator import Faults, Unit
from station.simulator.fs import MemoryFS
from station.simulator.openssl import OpenSSL
from station.simulator.sh import Incomplete, Shell
from tests.rig.conftest import slot_for


@pytest.fixture
def sh() -> tuple[Shell, list[bytes]]:
    out: list[bytes] = []
    return Shell(MemoryFS(), out.append), out


def run(shell: tuple[Shell, list[bytes]], line: str) -> str:
    shell[1].clear()
    shell[0].execute(line)
    return b"".join(shell[1]).decode()


def test_markers_status_and_lists(sh) -> None:
    assert run(sh, "echo ab''cd;false;echo ab''cd $?") == "abcd\nabcd 1\n"
    assert run(sh, "nothing-here; echo $?") == "sh: nothing-here: not found\n127\n"
    assert run(sh, "false && echo no || echo yes $?") == "yes 1\n"
    assert run(sh, 'echo "a $? b" \'$?\' c\\ d "" e') == "a 0 b $? c d  e\n"


def test_the_transfer_commands(sh) -> None:
    data = b'{"id": "7QJ4X9TN2KVBM0RA"}\n'
    encoded = base64.b64encode(data).decode()
    assert run(sh, "rm -rf /tmp/p&&mkdir -p /tmp/p") == ""
    assert run(sh, f"echo {encoded[:20]}|base64 -d>/tmp/p/0001&&cksum</tmp/p/0001") == \
        f"{cksum(base64.b64decode(encoded[:20]))} 15\n"
    run(sh, f"echo {encoded[20:]}|base64 -d>/tmp/p/0002")
    assert run(sh, "cat /tmp/p/*>/etc/ioto/device.json5.new&&rm -rf /tmp/p") == ""
    assert run(sh, "mv -f /etc/ioto/device.json5.new /etc/ioto/device.json5&&sync&&sha256sum /etc/ioto/device.json5") == \
        f"{hashlib.sha256(data).hexdigest()}  /etc/ioto/device.json5\n"
    assert sh[0].fs.files == {"/etc/ioto/device.json5": data}


def test_errors_look_like_coreutils(sh) -> None:
    assert run(sh, "echo %%%|base64 -d; echo $?") == "base64: invalid input\n1\n"
    assert run(sh, "cat /etc/nothing; echo $?") == "cat: /etc/nothing: No such file or directory\n1\n"
    assert run(sh, "echo x>/nowhere/file; echo $?") == "sh: can't create /nowhere/file: No such file or directory\n1\n"
    assert run(sh, "sha256sum </etc/nothing; echo $?").endswith("No such file or directory\n1\n")
    assert run(sh, "echo a | ; echo never") == "sh: syntax error: unexpected ';'\n"  # nothing of the line runs
    assert sh[0].status == 2


def test_an_open_quote_asks_for_another_line(sh) -> None:
    with pytest.raises(Incomplete):
        sh[0].execute("echo 'half")
    assert run(sh, "echo 'half\nline'") == "half\nline\n"


def test_file_modes_follow_the_umask_and_chmod(sh) -> None:
    assert run(sh, "echo x>/tmp/f&&stat -c %a /tmp/f") == "644\n"
    assert run(sh, "chmod 600 /tmp/f&&stat -c '%a %n' /tmp/f") == "600 /tmp/f\n"
    assert run(sh, "mv -f /tmp/f /etc/f&&stat -c %a /etc/f") == "600\n"  # a rename keeps the mode
    assert run(sh, ">/etc/f&&stat -c %a /etc/f") == "600\n"  # truncating an existing file keeps it too
    assert run(sh, "umask 077&&echo y>/tmp/g&&mkdir /tmp/d&&stat -c %a /tmp/g /tmp/d&&umask") == "600\n700\n0077\n"
    assert run(sh, "chmod u+x /tmp/g; echo $?") == "chmod: invalid mode: 'u+x' (the simulator takes octal modes)\n1\n"
    assert run(sh, "stat -c %a /tmp/none; echo $?") == "stat: cannot statx '/tmp/none': No such file or directory\n1\n"


def _openssl(shell: tuple[Shell, list[bytes]], line: str) -> str:
    out = run(shell, line + "; echo status $?")
    assert out.endswith("status 0\n"), out
    return out.removesuffix("status 0\n")


def test_openssl_makes_an_owner_only_key_and_a_csr_for_it(sh) -> None:
    _openssl(sh, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out /etc/k")
    assert run(sh, "stat -c %a /etc/k") == "600\n"
    key = serialization.load_pem_private_key(sh[0].fs.files["/etc/k"], None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    _openssl(sh, "openssl req -new -key /etc/k -subj /CN=7QJ4X9TN2KVBM0RA/O=Blank -out /etc/r")
    csr = x509.load_pem_x509_csr(sh[0].fs.files["/etc/r"])
    assert csr.is_signature_valid and csr.subject.rfc4514_string() == "O=Blank,CN=7QJ4X9TN2KVBM0RA"
    assert csr.public_key() == key.public_key()
    public = _openssl(sh, "openssl pkey -in /etc/k -pubout")
    assert public.encode() == key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    sh[0].fs.write("/etc/c", _certificate(csr))
    assert _openssl(sh, "openssl x509 -in /etc/c -noout -pubkey") == public


def test_the_real_openssl_takes_what_the_simulated_one_makes(sh, tmp_path: Path) -> None:
    _openssl(sh, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out /etc/k")
    _openssl(sh, "openssl req -new -key /etc/k -subj /CN=7QJ4X9TN2KVBM0RA -out /etc/r")
    (tmp_path / "k").write_bytes(sh[0].fs.files["/etc/k"])
    (tmp_path / "r").write_bytes(sh[0].fs.files["/etc/r"])
    checked = subprocess.run(["openssl", "req", "-verify", "-noout", "-in", tmp_path / "r"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    real = subprocess.run(["openssl", "pkey", "-in", tmp_path / "k", "-pubout"], capture_output=True, text=True, check=True)
    assert real.stdout == _openssl(sh, "openssl pkey -in /etc/k -pubout")


def test_openssl_refuses_what_it_does_not_know(sh) -> None:
    assert run(sh, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-999 -out /etc/k; echo $?") == \
        "genpkey: Error setting ec_paramgen_curve:P-999 parameter\n1\n"
    assert run(sh, "openssl req -new -key /etc/none -subj /CN=x -out /etc/r; echo $?").endswith(
        "private key from /etc/none: No such file or directory\n1\n")
    assert run(sh, "openssl frobnicate; echo $?") == "Invalid command 'frobnicate'; type \"help\" for a list.\n1\n"
    assert "/etc/r" not in sh[0].fs.files


@pytest.mark.parametrize("fault", ["csr-mismatch", "csr-bad-signature"])
def test_csr_faults(fault: str) -> None:
    fs = MemoryFS()
    out: list[bytes] = []
    shell = Shell(fs, out.append, {"openssl": OpenSSL(fs, Faults([fault]).take)})
    shell.execute("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out /etc/k")
    shell.execute("openssl req -new -key /etc/k -subj /CN=7QJ4X9TN2KVBM0RA -out /etc/r")
    assert shell.status == 0, out
    key = serialization.load_pem_private_key(fs.files["/etc/k"], None)
    csr = x509.load_pem_x509_csr(fs.files["/etc/r"])
    if fault == "csr-mismatch":
        assert csr.is_signature_valid and csr.public_key() != key.public_key()
    else:
        assert not csr.is_signature_valid and csr.public_key() == key.public_key()
    shell.execute("openssl req -new -key /etc/k -subj /CN=7QJ4X9TN2KVBM0RA -out /etc/r")  # the fault struck once
    csr = x509.load_pem_x509_csr(fs.files["/etc/r"])
    assert csr.is_signature_valid and csr.public_key() == key.public_key()


def test_a_corrupting_unit_stores_certificates_changed() -> None:
    unit = Unit(faults=["cert-corrupt"])
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "u")])).sign(key, hashes.SHA256())
    pem = _certificate(csr)
    unit.fs.write("/etc/ioto/device.crt", pem)
    assert unit.fs.files["/etc/ioto/device.crt"] != pem and len(unit.fs.files["/etc/ioto/device.crt"]) == len(pem)
    unit.fs.write("/etc/ioto/device.crt", pem)  # one file struck
    assert unit.fs.files["/etc/ioto/device.crt"] == pem


def test_a_unit_without_openssl(make_unit) -> None:
    unit = make_unit(faults=["no-openssl"])
    _, slot = slot_for(unit)
    with Link(open_port(slot), slot.name) as link:
        shell = RigShell(link, slot)
        shell.login()
        reply = shell.run("openssl version", "credentials")
    assert reply.status == 127 and reply.lines == ["sh: openssl: not found"]


def _certificate(csr: x509.CertificateSigningRequest) -> bytes:
    """A certificate for the CSR's key, signed by a throw-away CA."""
    ca = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])).public_key(csr.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1)).sign(ca, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_a_full_disk(sh) -> None:
    sh[0].fs.capacity = 10
    assert run(sh, "echo 0123456789ab>/tmp/x; echo $?") == "echo: write error: No space left on device\n1\n"
    assert run(sh, "echo 01234567>/tmp/x; echo $?") == "0\n"
