"""`station db check` and `station db migrate`: whether the station's database is fit to serve a line (there,
a station's, at this station's schema, in WAL, writable, owner-only, with room on its disk, whole), each finding
with what to do; and an explicit migration, which SQLite otherwise runs when the station first opens it."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass

from . import config as config_mod
from .config import Config
from .db.connection import inspect
from .store import SCHEMA_VERSION, Store

MIN_FREE = 256 * 2**20  # bytes free on the data directory's disk below which a check fails: a big batch needs more


@dataclass(frozen=True)
class Finding:
    """One check: ``ok``, and what was found (or what to do)."""

    check: str
    ok: bool
    detail: str


def check(config: Config, *, integrity: bool = False) -> list[Finding]:
    """Every check of the station's database; each failed one says what to do."""
    path = config.db_path
    if not path.is_file():
        return [Finding("database", False, f"there is no database at {path}: point --data-dir at the station's data "
                                           f"directory (any station command makes a new one there)")]
    found = inspect(path, timeout=min(config.database_timeout, 5.0), integrity=integrity)
    findings = [Finding("database", found.station, f"{path}" if found.station else
                        f"{path} is a SQLite database of another program: point --data-dir at a station's data directory")]
    if not found.station:
        return findings
    if found.version > SCHEMA_VERSION:
        findings.append(Finding("schema", False, f"version {found.version}, newer than this station's {SCHEMA_VERSION}: "
                                                 f"upgrade station"))
    elif found.version < SCHEMA_VERSION:
        findings.append(Finding("schema", True, f"version {found.version}: migrated to {SCHEMA_VERSION} when the station "
                                                f"next opens it (or now: station db migrate)"))
    else:
        findings.append(Finding("schema", True, f"version {found.version}, this station's"))
    findings.append(Finding("journal", found.journal == "wal" or found.version == 0,
                            "WAL" if found.journal == "wal" else
                            f"{found.journal}, not WAL: the station sets WAL when it next opens the database"))
    findings.append(Finding("write lock", found.writable is None, "taken and let go" if found.writable is None
                            else found.writable))
    findings.append(_permissions(config))
    findings.append(_disk(config))
    if found.integrity is not None:
        findings.append(Finding("integrity", found.integrity == "ok", "every page checked" if found.integrity == "ok"
                                else f"{found.integrity}: restore the last backup, or ask SQLite's .recover"))
    return findings


def _permissions(config: Config) -> Finding:
    """The database and its companions owner-only: they hold password and token hashes."""
    if os.name == "nt":
        return Finding("permissions", True, "left to the folder's access list (Windows)")
    open_to_others = []
    for name in (config_mod.DB_NAME, *config_mod.PRIVATE_FILES):
        for path in config.data_dir.glob(name):
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                open_to_others.append(f"{path.name} ({stat.filemode(mode)})")
    if open_to_others:
        return Finding("permissions", False, f"others may read {', '.join(open_to_others)}: run any station command "
                                             f"as the station's user to make them owner-only, or chmod 600 them")
    return Finding("permissions", True, "owner-only")


def _disk(config: Config) -> Finding:
    free = shutil.disk_usage(config.data_dir).free
    shown = f"{free / 2**30:,.1f} GiB free" if free >= 2**30 else f"{free / 2**20:,.0f} MiB free"
    if free < MIN_FREE:
        return Finding("disk", False, f"only {shown} on the data directory's disk: free some space (a full disk "
                                      f"stops every write, and a batch of a million needs about 150 MiB)")
    return Finding("disk", True, shown)


def migrate(config: Config) -> tuple[int, int]:
    """Bring the database to this station's schema now: its version before and after."""
    before = inspect(config.db_path, timeout=config.database_timeout).version if config.db_path.is_file() else 0
    with Store.configured(config):
        pass
    return before, SCHEMA_VERSION
