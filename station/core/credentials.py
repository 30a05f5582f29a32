"""What credentials a product's units get, and where the rig puts them (DESIGN.md section 4a): the one owner
of those settings, and of the provisioning states that Xively names, derived from what the store holds.

A product's settings are stored as JSON in its row (``products.credentials``); ``{}`` is a product whose
units get no credential, as every product had before credentials existed.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import asdict, dataclass
from typing import Any

from .errors import Invalid
from .lifecycle import VOID

SECRET = "secret"
X509 = "x509"
KINDS = (SECRET, X509)
# Where a unit's X.509 key is made: on the unit (only its CSR leaves it), or by the station for units without
# ``openssl`` (written once to the unit, never stored or logged).
KEYS_ON_DEVICE = "device"
KEYS_BY_STATION = "station"
KEY_ORIGINS = (KEYS_ON_DEVICE, KEYS_BY_STATION)
USERNAME_FIELDS = ("uci", "product")  # what an MQTT username rule may name, as {uci} and {product}
MODE = 0o600
VALIDITY_DAYS = 3650  # a device certificate's default life: about the unit's

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class CredentialSettings:
    """A product's credentials: which kinds its units get, where on the unit the rig writes them (each file
    ``mode``, owner-only by default), the MQTT username rule, where X.509 keys are made and how long
    certificates are valid."""

    kinds: tuple[str, ...] = ()
    secret_path: str = "/etc/ioto/mqtt.secret"
    key_path: str = "/etc/ioto/device.key"
    csr_path: str = "/etc/ioto/device.csr"
    cert_path: str = "/etc/ioto/device.crt"
    chain_path: str = "/etc/ioto/ca.crt"
    mode: int = MODE
    username: str = "{uci}"
    keys: str = KEYS_ON_DEVICE
    validity_days: int = VALIDITY_DAYS

    @property
    def secret(self) -> bool:
        return SECRET in self.kinds

    @property
    def x509(self) -> bool:
        return X509 in self.kinds

    def mqtt_username(self, uci: str, product: str) -> str:
        """The MQTT username of a unit, by the product's rule (default: the UCI itself)."""
        return self.username.format(uci=uci, product=product)

    def to_json(self) -> str:
        """The stored form: only what differs from the defaults, so that ``{}`` stays "no credentials"."""
        default = asdict(CredentialSettings())
        values = {k: v for k, v in asdict(self).items() if v != default[k]}
        if "kinds" in values:
            values["kinds"] = list(values["kinds"])
        return json.dumps(values, sort_keys=True)


def settings(values: dict[str, Any] | None = None, where: str = "the product's credentials") -> CredentialSettings:
    """Checked settings from a mapping (the stored JSON, the CLI's options): every rule of them is here."""
    values = dict(values or {})
    known = set(CredentialSettings.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise Invalid(f"{where}: {unknown[0]!r} is not a credential setting (known: {', '.join(sorted(known))})")
    kinds = values.get("kinds", ())
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip() and k.strip() != "none"]
    if not isinstance(kinds, (list, tuple)) or not all(k in KINDS for k in kinds):
        raise Invalid(f"{where}: kinds must be none, or one or both of {', '.join(KINDS)}, not {kinds!r}")
    values["kinds"] = tuple(k for k in KINDS if k in kinds)  # one order, no repeats
    for key in ("secret_path", "key_path", "csr_path", "cert_path", "chain_path"):
        if key in values:
            path = values[key]
            if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path \
                    or any(c.isspace() or not c.isprintable() for c in path):
                raise Invalid(f"{where}: {key} must be an absolute path on the unit without spaces, such as "
                              f"{getattr(CredentialSettings, key)!r}, not {path!r}")
    mode = values.get("mode", MODE)
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777 or mode & 0o077:
        raise Invalid(f"{where}: mode must be owner-only file permissions such as 0o600 (384), not {mode!r}")
    username = values.get("username", CredentialSettings.username)
    names = _PLACEHOLDER.findall(username) if isinstance(username, str) else None
    if not username or names is None or any(n not in USERNAME_FIELDS for n in names) \
            or not all(32 < ord(c) < 127 and c not in "{}" for c in _PLACEHOLDER.sub("", username)):
        raise Invalid(f"{where}: username must be printable ASCII naming only {{uci}} and {{product}} "
                      f"(default {{uci}}), not {username!r}")
    if values.get("keys", KEYS_ON_DEVICE) not in KEY_ORIGINS:
        raise Invalid(f"{where}: keys must be {' or '.join(KEY_ORIGINS)} (where a unit's X.509 key is made), "
                      f"not {values['keys']!r}")
    days = values.get("validity_days", VALIDITY_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
        raise Invalid(f"{where}: validity_days must be a whole number of days from 1 to 36500, not {days!r}")
    return CredentialSettings(**values)


def stored(text: str | None) -> CredentialSettings:
    """A product's settings as its row holds them."""
    return settings(json.loads(text or "{}"))


# Xively's provisioning states (DESIGN.md section 4): derived from the life cycle and the credentials, never stored.
DEFINED = "defined"
ACTIVATED = "activated"
ASSOCIATED = "associated"


def provisioning_state(state: str, credential_made: bool) -> str | None:
    """``associated`` once claimed, ``activated`` once a credential was first made, else ``defined``; None for a
    void unit, which is none of them."""
    if state == VOID:
        return None
    if state == "claimed":
        return ASSOCIATED
    return ACTIVATED if credential_made else DEFINED
