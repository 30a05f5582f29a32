"""Look-ups and corrections: ``station show``, ``void``, ``export`` and ``stats``."""

from __future__ import annotations

import sys

import click

from .. import manifest, terminal
from ..core import lifecycle
from .base import Station, echo_table, pass_station


@click.command()
@click.argument("code")
@pass_station
def show(station: Station, code: str) -> None:
    """Show a device by any typed form of its claim code, with its history."""
    device = station.store.find(code)
    for key in ("display", "uci", "product", "batch", "state", "serial", "created", "updated"):
        click.echo(terminal.escape(f"{key + ':':9s}{getattr(device, key) or '-'}"))
    click.echo("events:")
    for event in station.store.events(device.uci):
        details = " ".join(f"{k}={v}" for k, v in event.details.items())
        click.echo(terminal.escape(f"  {event.time}  {event.kind:16s} {event.actor:9s} {details}".rstrip()))


@click.command()
@click.argument("code")
@click.option("--reason", required=True, help="Why the device is voided.")
@pass_station
def void(station: Station, code: str, reason: str) -> None:
    """Void a device: its claim ID is never used again."""
    device = station.store.find(code)
    device = station.store.void(device.uci, reason, actor="cli")
    click.echo(f"voided {device.display}")


@click.command()
@click.option("--product", default=None)
@click.option("--batch", default=None)
@click.option("--state", type=click.Choice(lifecycle.ALL_STATES), default=None)
@click.option("--station", "issued_by", default=None, help="Only the devices this station issued (a shared registry).")
@click.option("--format", "fmt", type=click.Choice(manifest.FORMATS), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File to write [default: stdout].")
@pass_station
def export(station: Station, product: str | None, batch: str | None, state: str | None, issued_by: str | None, fmt: str,
           out: str | None) -> None:
    """Export devices as CSV or JSON."""
    devices = station.store.devices(product=product, batch=batch, state=state, station=issued_by)
    if out:
        count = manifest.write_file(devices, out, fmt, station.config.zone)
        click.echo(f"wrote {count} devices to {out}", err=True)
    else:
        manifest.write(devices, terminal.for_terminal(sys.stdout), fmt, station.config.zone)


@click.command()
@click.option("--station", "issued_by", default=None, help="Only the devices this station issued (a shared registry).")
@pass_station
def stats(station: Station, issued_by: str | None) -> None:
    """Device counts by product, batch and state, and the batches that are incomplete."""
    rows = [(r["product"], r["batch"] or "-", r["state"], str(r["devices"])) for r in station.store.stats(issued_by)]
    echo_table(("product", "batch", "state", "devices"), rows)
    for unsettled in station.store.batches():
        if not unsettled.complete:
            click.echo(terminal.escape(unsettled.incomplete()))
