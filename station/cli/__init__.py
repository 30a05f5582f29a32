"""The ``station`` command line: a thin layer over the library, mirroring its functions, one module per
command group. Every StationError becomes one line on stderr and exit status 1 (``base.StationGroup``)."""

from __future__ import annotations

import click

from . import (
    batches,
    ca,
    claims,
    credentials,
    db,
    devices,
    labels,
    products,
    rig,
    serve,
    simulate,
    tokens,
    users,
    webhooks,
)
from .base import Station, StationGroup


@click.group(cls=StationGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="STATION_DATA_DIR", type=click.Path(file_okay=False), default=None,
              help="Where the database and station.json5 live [env STATION_DATA_DIR; default ./station-data].")
@click.version_option(package_name="station")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None) -> None:
    """Station: claim IDs, labels and first-boot registration for a production line."""
    station = Station(data_dir)
    ctx.obj = station
    ctx.call_on_close(station.close)


for _command in (products.product, batches.generate, batches.import_ids, batches.batch, devices.show, devices.void, devices.export,
                 devices.stats, serve.serve, users.user, tokens.token, rig.rig, simulate.simulate, ca.ca,
                 credentials.credentials, claims.claim, claims.release, webhooks.webhooks, db.db, *labels.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="station")
