"""``station claim`` and ``station release``: an end user's claim by hand (a support desk), and the way back."""

from __future__ import annotations

import click

from .. import terminal
from .base import Station, pass_station


@click.command()
@click.argument("code")
@click.option("--account", required=True, help="The end user's account in the maker's cloud.")
@click.option("--product", "product_id", default=None, help="Only a unit of this product is claimed.")
@pass_station
def claim(station: Station, code: str, account: str, product_id: str | None) -> None:
    """Claim the unit of CODE (as typed from its label) for an account."""
    device, created = station.store.claim(code, account, "cli", product_id)
    verb = "claimed" if created else "was already claimed"
    click.echo(terminal.escape(f"{device.display} {verb} for {account}"))


@click.command()
@click.argument("code")
@click.option("--reason", required=True, help="Why the unit goes back (resale, a support case).")
@pass_station
def release(station: Station, code: str, reason: str) -> None:
    """Return a claimed unit to registered, so that another account can claim it."""
    device = station.store.release(code, reason, "cli")
    click.echo(f"released {device.display}: {device.state}")
