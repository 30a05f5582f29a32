"""The simulated unit's ``openssl``, made with ``cryptography``: exactly the forms the rig sends, which the real
OpenSSL 3 accepts too, so that the rig's credentials step runs the same on both.

    openssl version
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out KEY      (P-384, P-521 too)
    openssl req -new -key KEY -subj /CN=UCI[/O=...] -out CSR                       (SHA-256)
    openssl pkey -in KEY -pubout [-out PUB]
    openssl x509 -in CERT -noout -pubkey

Private keys are written owner-only (0600), as OpenSSL's ``bio_open_owner`` creates them; other files get the
umask. Faults: a CSR made for another key than the one on the unit (``csr-mismatch``), and a CSR whose
signature does not verify (``csr-bad-signature``).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .fs import FsError, MemoryFS

Result = tuple[bytes, bytes, int]

CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "prime256v1": ec.SECP256R1,
                                             "P-384": ec.SECP384R1, "secp384r1": ec.SECP384R1,
                                             "P-521": ec.SECP521R1, "secp521r1": ec.SECP521R1}
ATTRIBUTES = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
              "C": NameOID.COUNTRY_NAME, "serialNumber": NameOID.SERIAL_NUMBER}
OWNER_ONLY = 0o600


class _Refused(Exception):
    """What openssl prints on stderr before exiting with status 1."""


def _options(args: list[str], flags: set[str], values: set[str]) -> dict[str, str | list[str]]:
    """``-name value`` and ``-flag`` options; ``-pkeyopt`` may repeat. Anything else is refused as openssl does."""
    found: dict[str, str | list[str]] = {}
    i = 0
    while i < len(args):
        name = args[i].lstrip("-")
        if not args[i].startswith("-") or name not in flags | values:
            raise _Refused(f"Unknown option or parameter: {args[i]}")
        if name in flags:
            found[name] = ""
            i += 1
            continue
        if i + 1 >= len(args):
            raise _Refused(f"Option -{name} needs a value")
        if name == "pkeyopt":
            opts = found.setdefault(name, [])
            assert isinstance(opts, list)
            opts.append(args[i + 1])
        else:
            found[name] = args[i + 1]
        i += 2
    return found


def _subject(text: str) -> x509.Name:
    """``/CN=.../O=...`` as OpenSSL's ``-subj`` reads it (``\\/`` is a slash inside a value)."""
    if not text.startswith("/"):
        raise _Refused(f"name is expected to be in the format /type0=value0/type1=value1/type2=... where characters "
                       f"may be escaped by \\. This name is not in that format: '{text}'")
    parts, current, i = [], "", 1
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current += text[i + 1]
            i += 2
            continue
        if text[i] == "/":
            parts.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    parts.append(current)
    names = []
    for part in filter(None, parts):
        kind, sep, value = part.partition("=")
        if not sep or kind not in ATTRIBUTES:
            raise _Refused(f"Subject Attribute {kind} has no known NID, skipped")
        names.append(x509.NameAttribute(ATTRIBUTES[kind], value))
    return x509.Name(names)


class OpenSSL:
    """The ``openssl`` command of one unit, on its file system."""

    def __init__(self, fs: MemoryFS, fault: Callable[[str], bool] = lambda name: False) -> None:
        self.fs = fs
        self.fault = fault

    def __call__(self, args: list[str], stdin: bytes) -> Result:
        commands = {"version": self._version, "genpkey": self._genpkey, "req": self._req, "pkey": self._pkey,
                    "x509": self._x509}
        if not args or args[0] not in commands:
            name = args[0] if args else ""
            return b"", f"Invalid command '{name}'; type \"help\" for a list.\n".encode(), 1
        try:
            return commands[args[0]](args[1:])
        except _Refused as exc:
            return b"", f"{args[0]}: {exc}\n".encode(), 1

    def _read(self, path: str, what: str) -> bytes:
        try:
            return self.fs.read(path)
        except FsError as exc:
            raise _Refused(f"Could not open file or uri for loading {what} from {path}: {exc}") from None

    def _output(self, data: bytes, path: str | list[str] | None, private: bool = False) -> Result:
        if not path:
            return data, b"", 0
        assert isinstance(path, str)
        try:
            self.fs.write(path, data, mode=OWNER_ONLY if private else 0o666)
        except FsError as exc:
            raise _Refused(f"Could not open file or uri for writing {path}: {exc}") from None
        return b"", b"", 0

    def _key(self, path: str) -> ec.EllipticCurvePrivateKey:
        data = self._read(path, "private key")
        try:
            key = serialization.load_pem_private_key(data, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise _Refused(f"Could not read private key from {path}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise _Refused(f"{path}: the simulator makes and reads EC keys only")
        return key

    def _version(self, args: list[str]) -> Result:
        return b"OpenSSL 3.0.0 7 sep 2021 (simulated with cryptography)\n", b"", 0

    def _genpkey(self, args: list[str]) -> Result:
        opts = _options(args, set(), {"algorithm", "pkeyopt", "out"})
        if opts.get("algorithm") != "EC":
            raise _Refused(f"Algorithm {opts.get('algorithm')} not found (the simulator makes EC keys)")
        curve = None
        for opt in opts.get("pkeyopt", []):
            name, _, value = opt.partition(":")
            if name == "ec_paramgen_curve":
                curve = CURVES.get(value)
                if curve is None:
                    raise _Refused(f"Error setting ec_paramgen_curve:{value} parameter")
            else:
                raise _Refused(f"Error setting {opt} parameter")
        if curve is None:
            raise _Refused("Error generating EC key: no curve given (-pkeyopt ec_paramgen_curve:P-256)")
        key = ec.generate_private_key(curve())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        return self._output(pem, opts.get("out"), private=True)

    def _req(self, args: list[str]) -> Result:
        opts = _options(args, {"new"}, {"key", "subj", "out"})
        if "new" not in opts or "key" not in opts or "subj" not in opts:
            raise _Refused("the simulator makes requests only as: req -new -key KEY -subj /CN=... -out CSR")
        assert isinstance(opts["key"], str) and isinstance(opts["subj"], str)
        key = self._key(opts["key"])
        if self.fault("csr-mismatch"):  # a CSR for a key that is not the one on the unit
            key = ec.generate_private_key(key.curve)
        csr = x509.CertificateSigningRequestBuilder().subject_name(_subject(opts["subj"])).sign(key, hashes.SHA256())
        if self.fault("csr-bad-signature"):  # the last byte of the signature changed: it no longer verifies
            der = bytearray(csr.public_bytes(serialization.Encoding.DER))
            der[-1] ^= 0x01
            csr = x509.load_der_x509_csr(bytes(der))
        return self._output(csr.public_bytes(serialization.Encoding.PEM), opts.get("out"))

    def _pkey(self, args: list[str]) -> Result:
        opts = _options(args, {"pubout"}, {"in", "out"})
        if "pubout" not in opts or "in" not in opts:
            raise _Refused("the simulator reads keys only as: pkey -in KEY -pubout")
        assert isinstance(opts["in"], str)
        public = self._key(opts["in"]).public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return self._output(pem, opts.get("out"))

    def _x509(self, args: list[str]) -> Result:
        opts = _options(args, {"noout", "pubkey"}, {"in"})
        if "pubkey" not in opts or "noout" not in opts or "in" not in opts:
            raise _Refused("the simulator reads certificates only as: x509 -in CERT -noout -pubkey")
        assert isinstance(opts["in"], str)
        data = self._read(opts["in"], "certificate")
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise _Refused(f"Could not read certificate from {opts['in']}") from None
        pem = certificate.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        return pem, b"", 0
