"""``station generate`` and ``station batch``: claim IDs issued ahead, in batches."""

from __future__ import annotations

import click

from .. import manifest, terminal
from .base import Station, StationGroup, pass_station, progress_bar


@click.command()
@click.option("--product", "product_id", required=True, help="Product ID.")
@click.option("--count", required=True, type=int, help="How many claim IDs to issue.")
@click.option("--batch", "batch_name", default=None, help="Batch name [default: product and time].")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), default=None, help="Write a CSV manifest.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None, help="Write a JSON manifest.")
@click.option("--device-json", type=click.Path(file_okay=False), default=None,
              help="Write <UCI>.json5 device files into this folder.")
@pass_station
def generate(station: Station, product_id: str, count: int, batch_name: str | None, csv_file: str | None,
             json_file: str | None, device_json: str | None) -> None:
    """Issue COUNT claim IDs in one batch, durably, and write the manifests.

    The batch is committed in short transactions beside a live line and is usable once complete; an
    interrupted one is named by `station stats` and finished by `station batch resume` or `station batch void`.
    """
    store = station.store
    with progress_bar(count, "issuing") as update:
        batch = store.generate_batch(product_id, count, name=batch_name, actor="cli", progress=update)
    click.echo(f"issued {batch.count} claim IDs for {batch.product} in batch {batch.name}")
    # Manifests are written from the database once the batch is complete: only stored UCIs reach a file.
    for path, fmt in ((csv_file, "csv"), (json_file, "json")):
        if path:
            manifest.write_file(store.devices(batch=batch.name), path, fmt)
            click.echo(f"wrote {path}")
    if device_json:
        manifest.write_device_files(store.product(product_id), store.devices(batch=batch.name), device_json)
        click.echo(f"wrote {batch.count} device files into {device_json}")


@click.group(cls=StationGroup)
def batch() -> None:
    """Batches whose generation was interrupted (`station stats` names them): finish them or give them up."""


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
