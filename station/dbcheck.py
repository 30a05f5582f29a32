"""`station db check` and `station db migrate`: whether the station's database is fit to serve a line (there,
a station's, at this station's schema, in WAL, writable, owner-only, with room on its disk, whole; for a shared
registry: reachable, a station's, at this station's schema, its write lock and the role's rights), each finding
with what to do; and an explicit migration, which SQLite otherwise runs when the station first opens it and a
registry needs once per upgrade (every station on it must run the same version)."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass

from . import config as config_mod
from .config import Config
from .core.errors import NotFound, StationError
from .db.location import is_url, shown
from .db.sqlite import inspect
from .store import SCHEMA_VERSION, Store

MIN_FREE = 256 * 2**20  # bytes free on the data directory's disk below which a check fails: a big batch needs more


@dataclass(frozen=True)
class Finding:
    """One check: ``ok``, and what was found (or what to do)."""

    check: str
    ok: bool
    detail: str


def check(config: Config, *, integrity: bool = False) -> list[Finding]:
    """Every check of the station's database; each failed one says what to do. Nothing is created, migrated or
    changed: the write lock is taken for a moment and a write in it undone."""
    if is_url(config.database):
        return _registry(config)
    path = config.db_path
    if not path.is_file():
        return [Finding("database", False, f"there is no database at {path}: point --data-dir at the station's data "
                                           f"directory (any other station command makes a new one there)")]
    around = [_permissions(config), _disk(config)]  # first: they tell why the database itself may not open
    try:
        found = inspect(path, timeout=min(config.database_timeout, 5.0), integrity=integrity)
    except StationError as exc:
        return [Finding("database", False, str(exc)), *around]
    if not found.station:
        return [Finding("database", False, f"{path} is a SQLite database of another program: point --data-dir at a "
                                           f"station's data directory"), *around]
    findings = [Finding("database", True, str(path))]
    findings.append(_schema(found.version, Finding("schema", True, f"version {found.version}: migrated to "
                                                   f"{SCHEMA_VERSION} when the station next opens it (or now: station db "
                                                   f"migrate)")))
    findings.append(Finding("journal", True, "WAL" if found.journal == "wal" else
                            f"{found.journal}: the station sets WAL when it next opens the database"))
    findings.append(Finding("write lock", found.writable is None, "taken, and a write undone" if found.writable is None
                            else found.writable))
    findings += around
    if found.integrity is not None:
        findings.append(Finding("integrity", found.integrity == "ok", "every page checked" if found.integrity == "ok"
                                else f"{found.integrity}: restore the last backup, or ask SQLite's .recover"))
    return findings


def _schema(version: int, older: Finding) -> Finding:
    """The schema's finding: this station's, newer (upgrade), or older (``older`` says what happens to it)."""
    if version > SCHEMA_VERSION:
        return Finding("schema", False, f"version {version}, newer than this station's {SCHEMA_VERSION}: upgrade station")
    if version < SCHEMA_VERSION:
        return older
    return Finding("schema", True, f"version {version}, this station's")


def _registry(config: Config) -> list[Finding]:
    """The checks of a shared registry; the data directory's own files still hold the session key and the logs."""
    from .db import postgres  # psycopg is loaded only by stations that use a registry

    url = str(config.database)
    location = shown(url)
    around = [_permissions(config), _disk(config)]
    try:
        found = postgres.inspect(url, timeout=min(config.database_timeout, 5.0))
    except StationError as exc:
        return [Finding("database", False, str(exc)), *around]
    if not found.station:
        return [Finding("database", False, f"{location} holds another program's tables: give the station a database "
                                           f"of its own (CREATE DATABASE)"), *around]
    findings = [Finding("database", True, f"{location} (PostgreSQL {found.server})")]
    if found.version is None:
        return [*findings, Finding("schema", False, "none yet: run `station db migrate` once"), *around]
    findings.append(_schema(found.version, Finding("schema", False, f"version {found.version}, older than this "
                                                   f"station's {SCHEMA_VERSION}: run `station db migrate` (once, for "
                                                   f"every station on the registry)")))
    findings.append(Finding("write lock", found.writable is None, "taken, and a write undone" if found.writable is None
                            else found.writable))
    findings.append(Finding("rights", not found.missing, f"the role may {postgres.RIGHTS} on every table"
                            if not found.missing else f"the role lacks {', '.join(found.missing[:6])}: GRANT "
                            f"{postgres.RIGHTS} ON ALL TABLES IN SCHEMA public TO it (the README's Shared registry)"))
    return findings + around


def _permissions(config: Config) -> Finding:
    """The database and its companions owner-only: they hold password and token hashes."""
    if os.name == "nt":
        return Finding("permissions", True, "left to the folder's access list (Windows)")
    open_to_others = []
    for name in (config_mod.DB_NAME, *config_mod.PRIVATE_FILES):
        for path in config.data_dir.glob(name):
            try:
                mode = path.lstat().st_mode
            except OSError as exc:
                open_to_others.append(f"{path.name} (cannot be read: {exc.strerror})")
                continue
            if stat.S_ISLNK(mode):
                open_to_others.append(f"{path.name} (a link: the station never writes through one)")
            elif mode & (stat.S_IRWXG | stat.S_IRWXO):
                open_to_others.append(f"{path.name} ({stat.filemode(mode)})")
    if open_to_others:
        return Finding("permissions", False, f"not owner-only: {', '.join(open_to_others)}; run any other station "
                                             f"command as the station's user to tighten them, or chmod 600 them")
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
    if not is_url(config.database) and not config.db_path.is_file():
        raise NotFound(f"there is no database at {config.db_path}: point --data-dir at the station's data directory")
    with Store.configured(config, migrate=True) as store:
        return (SCHEMA_VERSION if store.migrated_from is None else store.migrated_from), SCHEMA_VERSION
