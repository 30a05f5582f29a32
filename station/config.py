"""Where the station keeps its data and how it is configured.

The data directory (``--data-dir``, ``STATION_DATA_DIR``, default ``./station-data``) holds the database
and ``station.json5``, the configuration file that production engineers edit. Sections are read by the
parts that own them (printers by the label printers, slots by the rig, networks by the web service).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypedDict

import json5

from . import files, times
from .core import fields
from .core.errors import Invalid
from .core.models import IDEMPOTENCY_WINDOW, REPEAT_WINDOW
from .core.webhooks import endpoints
from .db.location import shown

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_DATA_DIR = "station-data"
CONFIG_NAME = "station.json5"
DB_NAME = "station.db"
# The station's own files in the data directory, tightened to owner-only when an older station left them open.
PRIVATE_FILES = (f"{DB_NAME}-wal", f"{DB_NAME}-shm", "web.log", "web.log.*", "secret_key")

@dataclass(frozen=True)
class Key:
    """One setting of station.json5: its default, what it is for, and the check that turns what the file says
    into what the station uses (or refuses it with a message naming the key and what to write)."""

    default: Any
    about: str
    check: Callable[[str, Any], Any]


def _seconds(default: float, high: float, unit: str, about: str) -> Key:
    def check(where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise Invalid(f"{where} must be a number of {unit} from 0 to {high} (default {default:g}), not {value!r}")
        return float(value)
    return Key(default, about, check)


def _whole(low: int, high: int) -> Callable[[str, Any], int]:
    def check(where: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"{where} must be a whole number from {low:,} to {high:,}, not {value!r}")
        return value
    return check


def _names(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(key, str) and key for key in value):
        raise Invalid(f"{where} must be a list of device object field names such as \"serial\", not {value!r}")
    return tuple(value)


def _networks(where: str, value: Any) -> tuple[Network, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Invalid(f"{where} must be a list of CIDR blocks such as \"10.20.0.0/16\", not {value!r}")
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=True) for item in value)
    except ValueError as exc:
        raise Invalid(f"{where}: {exc}; write blocks such as \"10.20.0.0/16\"") from exc


def _name_or_none(where: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise Invalid(f"{where} must be a name (text), not {value!r}")
    return value


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{where} must be true or false, not {value!r}")
    return value


def _url_or_none(where: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise Invalid(f"{where} must be an http:// or https:// URL such as \"https://api.admin.embedthis.com/api\" "
                      f"(the agent's api.builder), not {value!r}")
    return value.rstrip("/")


DATABASE_ENV = "STATION_DATABASE_URL"  # the registry's URL from the environment, over station.json5's ``database``


def _database_url(where: str, value: Any) -> str | None:
    """A shared registry's URL; None for the embedded SQLite file of the data directory."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"postgres(ql)?://[^\s/?#]*(/[^\s?#]*)?(\?\S*)?", value):
        raise Invalid(f"{where} must be a PostgreSQL URL such as \"postgresql://station@registry.example/station\" "
                      f"(or null for the embedded SQLite file), not {shown(value) if isinstance(value, str) else value!r}")
    return value


def _printer_by_network(where: str, value: Any) -> str | tuple[tuple[Network, str], ...] | None:
    """A printer name, or CIDR blocks to printer names (one fixture per address range), first match wins."""
    if value is None or isinstance(value, str):
        return _name_or_none(where, value)
    if not isinstance(value, dict) or not all(isinstance(name, str) and name.strip() for name in value.values()):
        raise Invalid(f"{where} must be a printer name, or CIDR blocks to printer names such as "
                      f"{{\"10.20.1.0/24\": \"fixture-1\"}}, not {value!r}")
    blocks = _networks(where, list(value)) or ()
    return tuple(zip(blocks, value.values(), strict=True))


def _finalize(where: str, value: Any) -> dict[str, Any] | None:
    """``{write: {unit path: station file}, remove: [unit paths]}``: what makes a unit ship-ready (rig/finalize.py)."""
    if value is None:
        return None
    example = '{write: {"/etc/ioto/ioto.json5": "production/ioto.json5"}, remove: ["/var/lib/ioto/provision.json5"]}'
    if not isinstance(value, dict) or set(value) - {"write", "remove"}:
        raise Invalid(f"{where} must be an object such as {example}, not {value!r}")
    write, remove = value.get("write", {}), value.get("remove", [])
    paths = list(write) + list(remove) if isinstance(write, dict) and isinstance(remove, list) else None
    if paths is None or not all(isinstance(path, str) and path.startswith("/") for path in paths) \
            or not all(isinstance(source, str) and source for source in write.values()):
        raise Invalid(f"{where}: write maps absolute paths on the unit to files of the data directory, remove lists "
                      f"absolute paths on the unit, as in {example}; not {value!r}")
    if not paths:
        raise Invalid(f"{where} names nothing to write or remove; leave finalize out instead")
    return {"write": dict(write), "remove": tuple(remove)}


def _section(where: str, value: Any) -> dict[str, Any]:
    """A section whose entries its owner checks (printers by labels/printers.py, rig and slots by rig/settings.py)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{where} must be an object of settings, not {value!r}")
    return value


# Every key station.json5 may hold: the one list (the README's Configuration section describes each). A key
# not here is refused at load, with the nearest known key, so that a typo never goes unnoticed.
KEYS: dict[str, Key] = {
    "hardware_keys": Key(["serial", "mac", "hwid"], "fields of the device object that identify a unit, so that a "
                         "repeated /ioto/serialize gets its UCI back", _names),
    "client_networks": Key(None, "CIDR blocks that may call the device endpoints (null: any address)", _networks),
    "database_timeout": _seconds(5.0, 600, "seconds", "seconds a command waits for another process's write"),
    "repeat_window": _seconds(REPEAT_WINDOW, 366 * 24 * 3600, "seconds (a year at most: a unit asking again after "
                              "that is not still in the factory)", "seconds after its issue that a unit still in the "
                              "factory gets its UCI back by its hardware key"),
    "idempotency_window": _seconds(IDEMPOTENCY_WINDOW, 366 * 24 * 3600, "seconds (a year at most)",
                                   "seconds an Idempotency-Key names its request (of one client address and product)"),
    "secret_iterations": Key(101, "PBKDF2 iterations of a device secret's broker hash (Mosquitto's default)",
                             _whole(1, 1_000_000)),
    "label_printer": Key(None, "the printer labels go to when none is named", _name_or_none),
    "label_layout": Key(None, "the layout labels use when neither the printer nor the product names one",
                        _name_or_none),
    "label_layouts": Key(None, "another folder of label layouts (relative to the data directory)", _name_or_none),
    "printers": Key({}, "the label printers by name", _section),
    "rig": Key({}, "what every rig slot shares", _section),
    "slots": Key({}, "the rig's fixtures by name", _section),
    "factory_printer": Key(None, "the printer that prints the label of a unit that serialized itself over "
                           "/ioto/serialize, or CIDR blocks of the units' addresses to printers (null: no label)",
                           _printer_by_network),
    "registration_upstream": Key(None, "the Builder URL each registration is relayed to, whose reply the unit gets "
                                 "(null: the station answers registrations itself)", _url_or_none),
    "registration_timeout": _seconds(15.0, 120, "seconds", "seconds the station waits for the upstream Builder"),
    "agent_ids": Key(False, "whether a registration may bring a claim ID the agent made itself (services.serialize "
                     "\"auto\"), recorded as a new device", _flag),
    "finalize": Key(None, "what the rig writes onto and removes from a unit once it registered, to ship it ready "
                    "(write: {unit path: data directory file}, remove: [unit paths])", _finalize),
    "products": Key({}, "per product ID, its own values of the keys above (factory_printer to finalize)",
                    lambda where, value: _products(where, value)),
    "timezone": Key(None, "the IANA time zone times are shown and days counted in, such as \"Europe/Berlin\" "
                    "(null: the machine's own)", times.check_zone),
    "shifts": Key(times.check_shifts("shifts", times.DEFAULT_SHIFTS), "the shifts of the line's day: name and "
                  "local start time each, each until the next one's start", times.check_shifts),
    "webhooks": Key((), "endpoints that get signed events of the kinds they list (name, url, kinds, secret, "
                    "timeout, from, concurrency)", endpoints),
    "database": Key(None, "the shared registry's PostgreSQL URL (null: the embedded SQLite file of the data "
                    f"directory); {DATABASE_ENV} overrides it", _database_url),
    "name": Key(fields.host_station(), "this station's name, recorded in every event it writes (default: the host "
                "name)", fields.station_name),
}


# The keys a product may set for itself in ``products``; the station-level key is its default.
PRODUCT_KEYS = ("factory_printer", "registration_upstream", "registration_timeout", "agent_ids", "finalize")


def _products(where: str, value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(entry, dict) for entry in value.values()):
        raise Invalid(f"{where} must map product IDs to their settings, such as "
                      f"{{\"01H4R15D3478JD26YDYK408XE6\": {{agent_ids: true}}}}, not {value!r}")
    checked: dict[str, dict[str, Any]] = {}
    for product, entry in value.items():
        product = fields.product_id(product, f"a product ID in {where}")
        for key in entry:
            if key not in PRODUCT_KEYS:
                raise Invalid(f"{key!r} of product {product} in {where} is not a product setting; "
                              f"product settings: {', '.join(PRODUCT_KEYS)}")
        checked[product] = {key: KEYS[key].check(f"{key} of product {product} in {where}", item)
                            for key, item in entry.items()}
    return checked


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory from the flag, else the environment, else the default."""
    return Path(data_dir or os.environ.get("STATION_DATA_DIR") or DEFAULT_DATA_DIR)


class Windows(TypedDict):
    repeat_window: float
    idempotency_window: float


@dataclass
class Config:
    """The station's configuration: defaults, overlaid by the data directory's station.json5."""

    data_dir: Path
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def database(self) -> str | Path:
        """Where the station's registry is: a PostgreSQL URL (``database``, or the environment's), else the
        embedded SQLite file of the data directory."""
        url = _database_url(DATABASE_ENV, os.environ.get(DATABASE_ENV) or None) or self.get("database")
        return url or self.db_path

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_NAME

    def get(self, key: str) -> Any:
        """A setting as ``load`` checked it, else its default; a key outside ``KEYS`` is a programming error."""
        return self.values[key] if key in self.values else KEYS[key].default

    def for_product(self, product: str, key: str) -> Any:
        """A product setting: the product's own value in ``products``, else the station's."""
        if key not in PRODUCT_KEYS:
            raise KeyError(key)
        own = self.get("products").get(product, {})
        return own[key] if key in own else self.get(key)

    @property
    def zone(self) -> tzinfo:
        """The time zone of every time shown, exported or counted by day (``timezone``)."""
        return times.zone(self.get("timezone"))

    @property
    def station(self) -> str:
        """This station's name (``name``), recorded in every event it writes."""
        return str(self.get("name"))

    @property
    def database_timeout(self) -> float:
        """Seconds every connection of this station waits for another's write."""
        return float(self.get("database_timeout"))

    @property
    def issue_windows(self) -> Windows:
        """An IssueRequest's ``repeat_window`` and ``idempotency_window``, as configured."""
        return Windows(repeat_window=self.get("repeat_window"), idempotency_window=self.get("idempotency_window"))


def secure_files(path: Path, *, database: bool = True) -> None:
    """The station's files in the data directory owner-only (0600): the database holds password and token
    hashes. The database is created here, empty, so that SQLite gives its -wal and -shm files the same mode;
    the log and the session key are made owner-only where they are written, and tightened here when a
    station of before left them open. A station whose registry is a server (``database`` False) makes no file."""
    if database:
        files.private_file(path / DB_NAME)
    for name in PRIVATE_FILES:
        for found in path.glob(name):
            files.tighten(found)


def check(loaded: dict[str, Any], source: Path) -> dict[str, Any]:
    """The settings of a station.json5 as the station uses them; an unknown key or a bad value is refused."""
    values = {}
    for key, value in loaded.items():
        if key not in KEYS:
            near = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known keys: {', '.join(KEYS)}"
            raise Invalid(f"{key!r} in {source} is not a station setting; {hint}")
        values[key] = KEYS[key].check(f"{key} in {source}", value)
    return values


def load(data_dir: str | os.PathLike[str] | None = None, create: bool = True) -> Config:
    """Read the configuration, creating the data directory on first use."""
    path = resolve_data_dir(data_dir)
    if create:
        try:
            files.private_dir(path)  # 0700 when made here; a directory that existed keeps its mode (the user's choice)
        except OSError as exc:
            raise Invalid(f"cannot create the data directory {path}: {exc.strerror}; choose another with --data-dir") from exc
    values: dict[str, Any] = {}
    config_file = path / CONFIG_NAME
    if config_file.exists():
        try:
            loaded = json5.loads(config_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise Invalid(f"{config_file} is not valid JSON5 ({exc}); fix the file or move it away") from exc
        if not isinstance(loaded, dict):
            raise Invalid(f"{config_file} must hold an object of settings")
        values = check(loaded, config_file)
    if create:  # only on a configuration that reads: a refused one leaves nothing behind
        try:
            secure_files(path, database=isinstance(Config(path, values).database, Path))
        except OSError as exc:
            raise Invalid(f"cannot create the station database in {path}: {exc.strerror}; check the data directory's "
                          f"permissions or choose another with --data-dir") from exc
    return Config(path, values)
