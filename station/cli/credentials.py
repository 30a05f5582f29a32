"""``station credentials``: a unit's credentials shown (never a secret) and revoked, and the exports brokers and
clouds load: Mosquitto's password file (hashes only) and the manifest of device certificates."""

from __future__ import annotations

from pathlib import Path

import click

from .. import terminal
from ..core import credentials as rules
from ..core.errors import NotFound
from ..credentials import export as exports
from ..db.credentials import CERTIFICATE_STATES
from ..rig import settings as rig_settings
from ..rig.credentials import Issuing, regenerate
from ..rig.errors import StepFailed
from .base import Station, StationGroup, echo_table, pass_station


@click.group(cls=StationGroup)
def credentials() -> None:
    """Units' MQTT secrets (kept as broker hashes only) and X.509 certificates."""


@credentials.command("show")
@click.argument("code")
@pass_station
def credentials_show(station: Station, code: str) -> None:
    """A unit's credentials: kinds, MQTT username, certificates' serial, fingerprint, validity and state."""
    device = station.store.find(code)
    product = station.store.product(device.product)
    held = station.store.credentials_of(device.uci)
    made = held["secret"] is not None or bool(held["certificates"])
    lines = [("display", device.display), ("uci", device.uci), ("product", device.product),
             ("kinds", ", ".join(product.credentials.kinds) or "none"),
             ("provisioning", rules.provisioning_state(device.state, made) or "-"),
             ("secret", f"{held['secret']['username']} (made {held['secret']['created']})" if held["secret"] else "-")]
    for key, value in lines:
        click.echo(terminal.escape(f"{key + ':':14s}{value}"))
    click.echo("certificates:")
    echo_table(("serial", "fingerprint (SHA-256)", "key", "not before", "not after", "state"),
               [(c["serial"], c["fingerprint"], c["key_origin"], c["not_before"], c["not_after"], c["state"])
                for c in held["certificates"]])


@credentials.command("revoke")
@click.argument("code")
@click.option("--reason", required=True, help="Why the unit's credentials are revoked.")
@pass_station
def credentials_revoke(station: Station, code: str, reason: str) -> None:
    """Revoke a unit's secret and certificates; they stop working once the broker loads the next exports."""
    device = station.store.find(code)
    held = station.store.credentials_of(device.uci)
    if held["secret"] is None and not any(c["state"] != "revoked" for c in held["certificates"]):
        raise NotFound(f"device {device.display} has no credential left to revoke (`station credentials show`)")
    secret = station.store.revoke_secret(device.uci, reason, "cli")
    count = station.store.revoke_certificates(device.uci, reason, "cli")
    click.echo(f"revoked {'the secret and ' if secret else ''}{count} certificate(s) of {device.display}; export "
               f"again for the broker: `station credentials export --format mosquitto` and `station ca crl`")


@credentials.command("regenerate")
@click.argument("code")
@click.option("--slot", "slot_name", required=True, help="The rig slot (station.json5) holding the unit.")
@pass_station
def credentials_regenerate(station: Station, code: str, slot_name: str) -> None:
    """Write a new MQTT secret to the unit in the slot and replace its hash; the old secret stops working once
    the broker loads the next `station credentials export --format mosquitto`."""
    settings = rig_settings.load(station.config)
    slot = settings.slot(slot_name)
    device = station.store.find(code)

    def echo(step: str, message: str, done: int | None = None, total: int | None = None) -> None:
        click.echo(terminal.escape(f"[{slot.name}] {step}: {message}"))

    try:
        kind = regenerate(station.store, settings, slot, device.uci, issuing=Issuing.of(station.config), report=echo)
    except StepFailed as exc:
        click.echo(terminal.escape(f"FAIL at {exc.step}: {exc.reason}"))
        raise click.exceptions.Exit(1) from exc
    click.echo(f"PASS {device.display}: new secret written and verified ({kind}); export again for the broker: "
               f"`station credentials export --format mosquitto`")


@credentials.command("export")
@click.option("--format", "fmt", type=click.Choice(exports.FORMATS), required=True,
              help="mosquitto: the broker's password file; pem or csv: the device certificates.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write it (atomically).")
@click.option("--product", default=None, help="Only this product's certificates (pem, csv).")
@click.option("--state", type=click.Choice(CERTIFICATE_STATES), default="active", show_default=True,
              help="Only certificates in this state (pem, csv).")
@pass_station
def credentials_export(station: Station, fmt: str, out: str, product: str | None, state: str) -> None:
    """Write the password file for Mosquitto, or the certificate manifest for bulk registration."""
    if fmt == "mosquitto":
        data = exports.password_file(station.store)
        what = f"{len(data.splitlines())} password lines"
    else:
        data = (exports.pem_bundle if fmt == "pem" else exports.csv_manifest)(station.store, product, state)
        what = f"{len(station.store.certificates(product, state))} certificates"
    exports.write(Path(out), data)
    click.echo(f"wrote {what} to {out}", err=True)
