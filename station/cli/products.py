"""``station product``: the products whose claim IDs the station issues."""

from __future__ import annotations

from dataclasses import asdict

import click

from .. import terminal
from ..core import credentials
from ..core.errors import Invalid
from ..credentials import secret
from .base import Station, StationGroup, echo_table, pass_station, switches


@click.group(cls=StationGroup)
def product() -> None:
    """Products: the Ioto product token, name, model and claim ID settings."""


@product.command("add")
@click.option("--id", "product_id", required=True, help="The Ioto product token, e.g. 01H4R15D3478JD26YDYK408XE6.")
@click.option("--name", required=True)
@click.option("--model", required=True)
@click.option("--description", default="", help="Goes into the device object's description.")
@click.option("--bits", default=80, show_default=True, type=int, help="Claim ID size: a multiple of 5, at least 50.")
@click.option("--no-check-symbol", is_flag=True, help="Print labels without the check symbol.")
@click.option("--claim-url", default=None, help="QR payload template with {id}, e.g. https://example.com/claim/{id}.")
@click.option("--layout", default=None, help="Label layout name from label_layouts/.")
@pass_station
def product_add(station: Station, product_id: str, name: str, model: str, description: str, bits: int,
                no_check_symbol: bool, claim_url: str | None, layout: str | None) -> None:
    """Add a product."""
    p = station.store.add_product(product_id, name, model, description=description, bits=bits,
                                  check_symbol=not no_check_symbol, claim_url=claim_url, layout=layout)
    click.echo(f"added product {p.id} ({p.name}, {p.model}, {p.bits}-bit claim IDs)")


@product.command("list")
@pass_station
def product_list(station: Station) -> None:
    """List the products."""
    rows = [
        (p.id, p.name, p.model, str(p.bits), "yes" if p.check_symbol else "no", p.claim_url or "-",
         p.layout or "-", "enabled" if p.enabled else "disabled")
        for p in station.store.products()
    ]
    echo_table(("product", "name", "model", "bits", "check", "claim url", "layout", "status"), rows)


switches(product, "product", "PRODUCT_ID", lambda station, name, on: station.store.set_product_enabled(name, on),
          ("Allow claim IDs to be issued for a product again.",
           "Stop issuing claim IDs for a product (devices and their history stay)."),
          ": no claim IDs are issued for it until `station product enable {name}`")


@product.command("credentials")
@click.argument("product_id")
@click.option("--kinds", required=True, help="none, or secret, x509 or secret,x509: what each unit gets.")
@click.option("--keys", type=click.Choice(credentials.KEY_ORIGINS), default=None,
              help="Where X.509 keys are made: on the unit (only its CSR leaves it) or by the station.")
@click.option("--username", default=None, help="MQTT username rule with {uci} and {product} [default {uci}].")
@click.option("--validity-days", type=int, default=None, help="Device certificates' life [default 3650].")
@click.option("--mode", default=None, help="File mode of the credentials on the unit, octal, owner-only [0600].")
@click.option("--secret-path", default=None)
@click.option("--key-path", default=None)
@click.option("--csr-path", default=None)
@click.option("--cert-path", default=None)
@click.option("--chain-path", default=None)
@pass_station
def product_credentials(station: Station, product_id: str, mode: str | None, **given: str | int | None) -> None:
    """Set the credentials a product's units get from now on; settings not given stay as they are."""
    values = {**asdict(station.store.product(product_id).credentials),
              **{key: value for key, value in given.items() if value is not None}}
    if mode is not None:
        try:
            values["mode"] = int(mode, 8)
        except ValueError as exc:
            raise Invalid(f"--mode is octal file permissions such as 0600, not {mode!r}") from exc
    checked = credentials.settings(values)
    if checked.secret:  # the broker's file must take every username the rule makes (secret.password_line's rule)
        secret.password_line(checked.mqtt_username("0" * 16, product_id), "")
    settings = station.store.set_product_credentials(product_id, checked).credentials
    click.echo(terminal.escape(f"product {product_id}: credentials {', '.join(settings.kinds) or 'none'}"
                               + (f", username {settings.username}" if settings.secret else "")
                               + (f", keys made on the {'unit' if settings.keys == 'device' else 'station'}, "
                                  f"{settings.validity_days} days" if settings.x509 else "")))


@product.command("claiming")
@click.argument("product_id")
@click.option("--before-registration/--after-registration", required=True,
              help="Whether end users may claim a unit still in the factory (pre-claimed units), or only once it "
                   "has registered.")
@pass_station
def product_claiming(station: Station, product_id: str, before_registration: bool) -> None:
    """Set when a product's units may be claimed."""
    station.store.set_product_claiming(product_id, before_registration)
    when = "before registration too" if before_registration else "once registered"
    click.echo(f"product {product_id}: units may be claimed {when}")


@product.command("preclaimed")
@click.argument("product_id")
@click.option("--account", default=None, help="The Ioto account ID the units are claimed for.")
@click.option("--cloud", default=None, help="The Ioto cloud ID of that account.")
@click.option("--none", "stop", is_flag=True, help="Units of the product are no longer pre-claimed.")
@pass_station
def product_preclaimed(station: Station, product_id: str, account: str | None, cloud: str | None, stop: bool) -> None:
    """Pre-claim a product's units: every device file carries the Ioto account and cloud from now on."""
    if stop == (account is not None or cloud is not None):
        raise Invalid("give --account and --cloud, or --none")
    done = station.store.set_product_owner(product_id, account, cloud)
    click.echo(f"product {product_id}: " + (f"units pre-claimed for account {done.account} on cloud {done.cloud}"
                                            if done.account else "units not pre-claimed"))
