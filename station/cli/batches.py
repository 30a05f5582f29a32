"""``station generate`` and ``station batch``: claim IDs issued ahead, in batches."""

from __future__ import annotations

from collections.abc import Callable

import click

from .. import batchfiles, columns, manifest, terminal
from ..core.errors import Invalid
from ..store import Batch
from .base import Station, StationGroup, pass_station, progress_bar


def _outputs(function: Callable[..., None]) -> Callable[..., None]:
    """The manifests a new batch can write, shared by ``generate`` and ``import``."""
    for option in reversed((
        click.option("--batch", "batch_name", default=None, help="Batch name [default: product and time]."),
        click.option("--csv", "csv_file", type=click.Path(dir_okay=False), default=None, help="Write a CSV manifest."),
        click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None, help="Write a JSON manifest."),
        click.option("--device-json", type=click.Path(file_okay=False), default=None,
                     help="Write <UCI>.json5 device files into this folder."),
    )):
        function = option(function)
    return _owned(function)


def _owned(function: Callable[..., None]) -> Callable[..., None]:
    """A pre-claimed batch's options, for ``generate`` and ``import``."""
    function = click.option("--cloud", default=None, help="Pre-claimed batch: the Ioto cloud ID (with --account).")(function)
    return click.option("--account", default=None, help="Pre-claimed batch: the Ioto account ID its device files "
                        "carry (with --cloud; over the product's).")(function)


@click.command()
@click.option("--product", "product_id", required=True, help="Product ID.")
@click.option("--count", type=int, default=None, help="How many claim IDs to issue.")
@click.option("--serials", "serials_file", type=click.Path(dir_okay=False), default=None,
              help="One claim ID per manufacturer serial in this file (one a line, or a CSV column: --column).")
@click.option("--column", default=None, help="The column of --serials in a CSV file with a header row.")
@_outputs
@pass_station
def generate(station: Station, product_id: str, count: int | None, serials_file: str | None, column: str | None,
             batch_name: str | None, csv_file: str | None, json_file: str | None, device_json: str | None,
             account: str | None, cloud: str | None) -> None:
    """Issue COUNT claim IDs (or one per serial of --serials) in one batch, durably, and write the manifests.

    A counted batch is committed in short transactions beside a live line and is usable once complete; an
    interrupted one is named by `station stats` and finished by `station batch resume` or `station batch void`.
    A batch of serials is stored whole or not at all.
    """
    store = station.store
    if (count is None) == (serials_file is None):
        raise Invalid("give either --count or --serials")
    owner = batchfiles.owner(account, cloud)
    if serials_file is not None:
        batch = store.generate_for_serials(product_id, columns.read(serials_file, column), name=batch_name,
                                           actor="cli", source=serials_file, owner=owner)
    else:
        with progress_bar(count or 0, "issuing") as update:
            batch = store.generate_batch(product_id, count or 0, name=batch_name, actor="cli", progress=update,
                                         owner=owner)
    click.echo(f"issued {batch.count} claim IDs for {batch.product} in batch {batch.name}")
    _write_outputs(station, batch, csv_file, json_file, device_json)


@click.command("import")
@click.option("--product", "product_id", required=True, help="Product ID.")
@click.option("--csv", "list_file", required=True, type=click.Path(dir_okay=False),
              help="The claim IDs: one a line, or a CSV column (--column).")
@click.option("--column", default=None, help="The column of the IDs in a CSV file with a header row.")
@click.option("--batch", "batch_name", default=None, help="Batch name [default: product and time].")
@_owned
@pass_station
def import_ids(station: Station, product_id: str, list_file: str, column: str | None, batch_name: str | None,
               account: str | None, cloud: str | None) -> None:
    """Store claim IDs made elsewhere (by hand, or by a system being replaced) as one batch: all or nothing."""
    batch = station.store.import_batch(product_id, columns.read(list_file, column), name=batch_name, actor="cli",
                                       source=list_file, owner=batchfiles.owner(account, cloud))
    click.echo(f"imported {batch.count} claim IDs for {batch.product} in batch {batch.name}")


def _write_outputs(station: Station, batch: Batch, csv_file: str | None, json_file: str | None,
                   device_json: str | None) -> None:
    store = station.store
    # Manifests are written from the database once the batch is complete: only stored UCIs reach a file.
    for path, fmt in ((csv_file, "csv"), (json_file, "json")):
        if path:
            manifest.write_file(store.devices(batch=batch.name), path, fmt, station.config.zone)
            click.echo(f"wrote {path}")
    if device_json:
        _device_files(station, batch, device_json)


def _device_files(station: Station, batch: Batch, folder: str) -> None:
    batchfiles.write_device_files(station.store, station.config, batch, folder, "cli")
    click.echo(f"wrote {batch.count} device files into {folder}")


@click.group(cls=StationGroup)
def batch() -> None:
    """Batches whose generation was interrupted (`station stats` names them): finish them or give them up."""


@batch.command("files")
@click.argument("name")
@click.option("--device-json", "folder", required=True, type=click.Path(file_okay=False),
              help="Write <UCI>.json5 device files into this folder.")
@pass_station
def batch_files(station: Station, name: str, folder: str) -> None:
    """Write the batch's device files (again): for a product with secrets, every file gets a new one."""
    _device_files(station, station.store.batch(name), folder)


@batch.command("resume")
@click.argument("name")
@pass_station
def batch_resume(station: Station, name: str) -> None:
    """Issue the claim IDs the batch NAME still lacks and mark it complete."""
    store = station.store
    lacking = store.batch(name)
    with progress_bar(lacking.count - lacking.issued, "issuing") as update:
        done = store.resume_batch(name, actor="cli", progress=update)
    click.echo(terminal.escape(f"batch {done.name} is complete: {done.count} claim IDs for {done.product}"))


@batch.command("void")
@click.argument("name")
@click.option("--reason", required=True, help="Why the batch is given up (recorded).")
@pass_station
def batch_void(station: Station, name: str, reason: str) -> None:
    """Give up the incomplete batch NAME: its devices become void and their claim IDs are never issued again."""
    done = station.store.void_batch(name, reason, actor="cli")
    click.echo(terminal.escape(f"voided batch {done.name}: its {done.issued} devices are void"))
