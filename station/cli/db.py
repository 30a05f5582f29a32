"""``station db``: the database's checks and its explicit migration (dbcheck.py)."""

from __future__ import annotations

import click

from .. import config as config_mod
from .. import dbcheck
from ..core.errors import StationError
from ..db.location import shown
from .base import Station, pass_station


class ChecksFailed(StationError):
    """At least one check of the database failed (each said what to do)."""


@click.group()
def db() -> None:
    """The station's database: check it, migrate it."""


@db.command()
@click.option("--integrity", is_flag=True, help="Also read every page (SQLite's quick_check): minutes on a big registry.")
@pass_station
def check(station: Station, integrity: bool) -> None:
    """Whether the database is fit to serve the line; exit 1 when a check fails."""
    findings = dbcheck.check(config_mod.load(station.data_dir, create=False), integrity=integrity)
    for finding in findings:
        click.echo(f"{'ok' if finding.ok else 'FAILED':6s} {finding.check}: {finding.detail}")
    failed = [finding.check for finding in findings if not finding.ok]
    if failed:
        raise ChecksFailed(f"{len(failed)} check{'s' if len(failed) > 1 else ''} failed: {', '.join(failed)}")


@db.command()
@pass_station
def migrate(station: Station) -> None:
    """Bring the database to this station's schema now (SQLite is also migrated when the station first opens it; a
    shared registry only by this command)."""
    config = config_mod.load(station.data_dir, create=False)
    before, after = dbcheck.migrate(config)
    where = shown(config.database)
    click.echo(f"{where}: schema version {after}, already" if before == after else
               f"{where}: schema version {before} -> {after}")
