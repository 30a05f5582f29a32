"""The rig's settings from station.json5: the ``rig`` section and the ``slots`` section, checked once, here.

``rig`` holds what every slot shares (the device file's path, the boot command, timeouts, chunk size, retries)
and defaults for the slots' line settings and login; each entry of ``slots`` names a fixture and overrides
those defaults (at least its ``port``). An unknown key is an error, so that a typo never goes unnoticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..config import Config
from ..core.errors import Invalid, NotFound

PARITIES = ("N", "E", "O", "M", "S")
MAX_CHUNK = 3000  # base64 characters per line; a line of the command must stay under the tty's 4095-byte limit


@dataclass(frozen=True)
class SlotSettings:
    """One fixture: its port, line settings and console login. The password never appears in a repr or a log."""

    name: str
    port: str
    baud: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    xonxoff: bool = False
    rtscts: bool = False
    user: str = "root"
    password: str | None = field(default=None, repr=False)
    prompt: str = r"[#$] ?$"
    login_prompt: str = r"login: ?$"
    password_prompt: str = r"[Pp]assword: ?$"
    login_timeout: float = 60.0
    command_timeout: float = 10.0
    wake_interval: float = 1.0

    @property
    def actor(self) -> str:
        """Who the events of this slot are recorded as."""
        return f"rig:{self.name}"


@dataclass(frozen=True)
class FinalizeSettings:
    """What makes a product's units ship-ready (``finalize`` in station.json5): unit paths written from station
    files (resolved in the data directory), and unit paths removed; ``key`` names the setting, for messages."""

    write: tuple[tuple[str, Path], ...]
    remove: tuple[str, ...]
    key: str


@dataclass(frozen=True)
class RigSettings:
    """What every slot shares, and the configured slots by name."""

    device_json_path: str = "/etc/ioto/device.json5"
    trigger: str = "systemctl restart ioto"
    stop: str = "systemctl stop ioto"  # before finalize: a running agent would write its files again
    trigger_wait: float = 5.0
    register_timeout: float = 60.0
    chunk: int = 76
    retries: int = 3
    tmp_dir: str = "/tmp"
    slot_defaults: dict[str, Any] = field(default_factory=dict, repr=False)
    slots: dict[str, SlotSettings] = field(default_factory=dict)
    finalize_default: FinalizeSettings | None = None
    finalize_products: dict[str, FinalizeSettings | None] = field(default_factory=dict)

    def finalize(self, product: str) -> FinalizeSettings | None:
        """The finalize steps of ``product``'s units: its own in station.json5's ``products``, else the station's."""
        return self.finalize_products.get(product, self.finalize_default)

    def slot(self, name: str | None = None, port: str | None = None, **overrides: Any) -> SlotSettings:
        """The slot to use: by name, else the one on ``port``, else an unnamed slot on ``port`` with the defaults."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        found: SlotSettings | None
        if name is not None:
            if name not in self.slots:
                known = ", ".join(sorted(self.slots)) or "none"
                raise NotFound(f"no rig slot {name!r} in station.json5 (slots: {known})")
            found = self.slots[name]
        else:
            found = next((s for s in self.slots.values() if port is not None and s.port == port), None)
            if found is None:
                if port is None:
                    raise Invalid("name a slot (--slot) or a serial port (--port)")
                found = _slot("cli", {**self.slot_defaults, "port": port}, "the command line")
        if port is not None:
            overrides["port"] = port
        return _slot(found.name, {**_values(found), **overrides}, "the command line") if overrides else found


_SLOT_KEYS = {f.name for f in fields(SlotSettings)} - {"name"}
_RIG_KEYS = {f.name for f in fields(RigSettings)} - {"slot_defaults", "slots", "finalize_default", "finalize_products"}


def _values(slot: SlotSettings) -> dict[str, Any]:
    return {key: getattr(slot, key) for key in _SLOT_KEYS}


def _number(where: str, key: str, value: Any, low: float, high: float, whole: bool = False) -> Any:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise Invalid(f"{where}: {key} must be {kind} from {low} to {high}, not {value!r}")
    return value


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value


def _slot(name: str, values: dict[str, Any], where: str) -> SlotSettings:
    unknown = sorted(set(values) - _SLOT_KEYS)
    if unknown:
        raise Invalid(f"{where}: {', '.join(unknown)} is not a slot setting (known: {', '.join(sorted(_SLOT_KEYS))})")
    if "port" not in values:
        raise Invalid(f"{where}: slot {name} needs a port, e.g. \"/dev/ttyUSB0\", \"COM3\" or \"socket://host:4000\"")
    checked = dict(values)
    _text(where, "port", values["port"])
    _text(where, "user", values.get("user", "root"))
    if values.get("password") is not None and not isinstance(values["password"], str):
        raise Invalid(f"{where}: password must be a string")
    _number(where, "baud", values.get("baud", 115200), 50, 16_000_000, whole=True)
    if values.get("bytesize", 8) not in (5, 6, 7, 8):
        raise Invalid(f"{where}: bytesize must be 5, 6, 7 or 8")
    parity = str(values.get("parity", "N")).upper()[:1]
    if parity not in PARITIES:
        raise Invalid(f"{where}: parity must be one of {', '.join(PARITIES)}")
    checked["parity"] = parity
    if values.get("stopbits", 1) not in (1, 1.5, 2):
        raise Invalid(f"{where}: stopbits must be 1, 1.5 or 2")
    for key in ("xonxoff", "rtscts"):
        if not isinstance(values.get(key, False), bool):
            raise Invalid(f"{where}: {key} must be true or false")
    for key in ("login_timeout", "command_timeout", "wake_interval"):
        if key in values:
            _number(where, key, values[key], 0.01, 3600)
    for key in ("prompt", "login_prompt", "password_prompt"):
        if key in values:
            try:
                re.compile(_text(where, key, values[key]))
            except re.error as exc:
                raise Invalid(f"{where}: {key} {values[key]!r} is not a regular expression ({exc})") from exc
    return SlotSettings(name=name, **checked)


def from_mapping(rig: dict[str, Any] | None, slots: dict[str, Any] | None) -> RigSettings:
    """Settings from the ``rig`` and ``slots`` sections (either may be missing)."""
    if not isinstance(rig or {}, dict) or not isinstance(slots or {}, dict):
        raise Invalid("station.json5: rig and slots must be objects")
    rig = dict(rig or {})
    allowed = _RIG_KEYS | (_SLOT_KEYS - {"port"})  # a port belongs to one slot, never to all
    unknown = sorted(set(rig) - allowed)
    if unknown:
        raise Invalid(f"station.json5: rig.{unknown[0]} is not a rig setting (known: {', '.join(sorted(allowed))})")
    shared = {k: rig.pop(k) for k in list(rig) if k in _SLOT_KEYS}
    where = "station.json5 rig"
    _text(where, "device_json_path", rig.get("device_json_path", "/x"))
    if not str(rig.get("device_json_path", "/")).startswith("/"):
        raise Invalid(f"{where}: device_json_path must be an absolute path on the unit")
    _text(where, "trigger", rig.get("trigger", "x"))
    _text(where, "stop", rig.get("stop", "x"))
    _text(where, "tmp_dir", rig.get("tmp_dir", "/tmp"))
    _number(where, "chunk", rig.get("chunk", 76), 4, MAX_CHUNK, whole=True)
    _number(where, "retries", rig.get("retries", 3), 0, 20, whole=True)
    for key in ("register_timeout", "trigger_wait"):
        if key in rig:
            _number(where, key, rig[key], 0.01, 86400)
    settings = RigSettings(**rig, slot_defaults=shared)
    built = {}
    for name, values in (slots or {}).items():
        if not isinstance(values, dict):
            raise Invalid(f"station.json5: slots.{name} must be an object with at least a port")
        built[name] = _slot(name, {**shared, **values}, f"station.json5 slots.{name}")
    ports: dict[str, str] = {}
    for slot in built.values():
        if slot.port in ports:
            raise Invalid(f"station.json5: slots {ports[slot.port]} and {slot.name} both name port {slot.port}; "
                          f"each fixture needs its own")
        ports[slot.port] = slot.name
    return replace(settings, slots=built)


def _finalize(value: dict[str, Any] | None, data_dir: Path, key: str) -> FinalizeSettings | None:
    """A finalize setting as config.py checked it, its station files resolved in the data directory."""
    if value is None:
        return None
    return FinalizeSettings(tuple((path, data_dir / source) for path, source in value["write"].items()),
                            tuple(value["remove"]), key)


def load(config: Config) -> RigSettings:
    """The rig's settings from the station's configuration, with each product's finalize steps."""
    products = config.get("products")
    own = {product: _finalize(config.for_product(product, "finalize"), config.data_dir,
                              f"products.{product}.finalize" if "finalize" in entry else "finalize")
           for product, entry in products.items()}
    return replace(from_mapping(config.get("rig"), config.get("slots")),
                   finalize_default=_finalize(config.get("finalize"), config.data_dir, "finalize"),
                   finalize_products=own)
