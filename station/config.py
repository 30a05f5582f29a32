"""Where the station keeps its data and how it is configured.

The data directory (``--data-dir``, ``STATION_DATA_DIR``, default ``./station-data``) holds the database
and ``station.json5``, the configuration file that production engineers edit. Sections are read by the
parts that own them (printers by the label printers, slots by the rig, networks by the web service).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from . import files
from .core.errors import Invalid
from .store import IDEMPOTENCY_WINDOW, REPEAT_WINDOW

DEFAULT_DATA_DIR = "station-data"
CONFIG_NAME = "station.json5"
DB_NAME = "station.db"
# The station's own files in the data directory, tightened to owner-only when an older station left them open.
PRIVATE_FILES = (f"{DB_NAME}-wal", f"{DB_NAME}-shm", "web.log", "web.log.*", "secret_key")

DEFAULTS: dict[str, Any] = {
    # Fields of the device object that identify a unit, so that a repeated /ioto/serialize gets its UCI back.
    "hardware_keys": ["serial", "mac", "hwid"],
    # Seconds a command waits for another process's write to the database before it gives up.
    "database_timeout": 5.0,
    # Seconds after its issue that a unit still in the factory gets its UCI back by its hardware key.
    "repeat_window": REPEAT_WINDOW,
    # Seconds an Idempotency-Key names its request (of one client address and product).
    "idempotency_window": IDEMPOTENCY_WINDOW,
}
# Settings in seconds, each checked at load: its key, the most it may be, and what it is for.
SECONDS = {
    "database_timeout": (600, "seconds"),
    "repeat_window": (366 * 24 * 3600, "seconds (a year at most: a unit asking again after that is not still in the factory)"),
    "idempotency_window": (366 * 24 * 3600, "seconds (a year at most)"),
}


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory from the flag, else the environment, else the default."""
    return Path(data_dir or os.environ.get("STATION_DATA_DIR") or DEFAULT_DATA_DIR)


@dataclass
class Config:
    """The station's configuration: defaults, overlaid by the data directory's station.json5."""

    data_dir: Path
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_NAME

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def database_timeout(self) -> float:
        """Seconds every connection of this station waits for another's write (``load`` checked the value)."""
        return float(self.values.get("database_timeout", DEFAULTS["database_timeout"]))

    @property
    def issue_windows(self) -> dict[str, float]:
        """Store.issue's ``repeat_window`` and ``idempotency_window`` (``load`` checked them)."""
        return {key: float(self.values.get(key, DEFAULTS[key])) for key in ("repeat_window", "idempotency_window")}


def secure_files(path: Path) -> None:
    """The station's files in the data directory owner-only (0600): the database holds password and token
    hashes. The database is created here, empty, so that SQLite gives its -wal and -shm files the same mode;
    the log and the session key are made owner-only where they are written, and tightened here when a
    station of before left them open."""
    files.private_file(path / DB_NAME)
    for name in PRIVATE_FILES:
        for found in path.glob(name):
            files.tighten(found)


def load(data_dir: str | os.PathLike[str] | None = None, create: bool = True) -> Config:
    """Read the configuration, creating the data directory on first use."""
    path = resolve_data_dir(data_dir)
    if create:
        try:
            files.private_dir(path)  # 0700 when made here; a directory that existed keeps its mode (the user's choice)
        except OSError as exc:
            raise Invalid(f"cannot create the data directory {path}: {exc.strerror}; choose another with --data-dir") from exc
    values = dict(DEFAULTS)
    config_file = path / CONFIG_NAME
    if config_file.exists():
        try:
            loaded = json5.loads(config_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise Invalid(f"{config_file} is not valid JSON5 ({exc}); fix the file or move it away") from exc
        if not isinstance(loaded, dict):
            raise Invalid(f"{config_file} must hold an object of settings")
        values.update(loaded)
    for key, (high, unit) in SECONDS.items():
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise Invalid(f"{key} in {config_file} must be a number of {unit} from 0 to {high} "
                          f"(default {DEFAULTS[key]:g}), not {value!r}")
    if create:  # only on a configuration that reads: a refused one leaves nothing behind
        try:
            secure_files(path)
        except OSError as exc:
            raise Invalid(f"cannot create the station database in {path}: {exc.strerror}; check the data directory's "
                          f"permissions or choose another with --data-dir") from exc
    return Config(path, values)
