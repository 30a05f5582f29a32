"""``station product``: the products whose claim IDs the station issues."""

from __future__ import annotations

import click

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
