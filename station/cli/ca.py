"""``station ca``: the station's certificate authority (credentials/authority.py), made, imported, shown,
and its chain and CRL written for brokers and clouds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import terminal
from ..core.errors import Invalid
from ..core.lifecycle import Kind
from ..credentials import authority
from ..credentials.authority import Authority
from ..credentials.export import write
from .base import Station, StationGroup, pass_station

PARENT_VARIABLE = "STATION_PARENT_CA_PASSPHRASE"  # the parent CA key's passphrase, for `ca init --parent-key`


def _asked(prompt: str, confirm: bool = False) -> bytes | None:
    """A passphrase typed at a hidden prompt, only where someone can type (stdin a terminal); None otherwise."""
    if not sys.stdin.isatty():
        return None
    typed = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, default="", show_default=False)
    return typed.encode("utf-8") or None


def new_passphrase(no_passphrase: bool, what: str) -> bytes | None:
    """The passphrase a new CA key file gets: STATION_CA_PASSPHRASE, else typed; none only when asked for."""
    if no_passphrase:
        return None
    secret = authority.passphrase() or _asked(f"Passphrase for {what}", confirm=True)
    if secret is None:
        raise Invalid(f"set {authority.PASSPHRASE_VARIABLE} (or run this on a terminal to type it) to encrypt the "
                      f"CA key, or pass --no-passphrase to keep it unencrypted")
    return secret


def load(station: Station) -> Authority:
    """The station's CA with its key, the passphrase from STATION_CA_PASSPHRASE or typed when the key needs one."""
    data_dir = station.config.data_dir
    secret = authority.passphrase()
    if secret is None and authority.exists(data_dir) and authority.show(data_dir)["encrypted"]:
        secret = _asked("Passphrase of the station's CA key")
    return Authority.load(data_dir, secret)


def _recorded(station: Station, kind: str, ca: Authority) -> None:
    summary = ca.summary()
    station.store.record(None, kind, "cli", {k: summary[k] for k in ("subject", "serial", "fingerprint", "not_after",
                                                                     "key", "chain")})


@click.group(cls=StationGroup)
def ca() -> None:
    """The certificate authority that signs the units' certificates."""


@ca.command("init")
@click.option("--cn", default="Station device CA", show_default=True, help="The CA's common name.")
@click.option("--days", default=authority.CA_DAYS, show_default=True, type=int, help="How long the CA is valid.")
@click.option("--key", "key_kind", type=click.Choice(list(authority.CA_KEYS)), default="p256", show_default=True)
@click.option("--parent-cert", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Make an intermediate: the parent CA's certificate (PEM, its own parents after it).")
@click.option("--parent-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help=f"The parent CA's key (PEM; its passphrase from {PARENT_VARIABLE}, or typed).")
@click.option("--no-passphrase", is_flag=True, help="Keep the CA key unencrypted (it is owner-only either way).")
@pass_station
def ca_init(station: Station, cn: str, days: int, key_kind: str, parent_cert: str | None, parent_key: str | None,
            no_passphrase: bool) -> None:
    """Make the station's CA: a root, or an intermediate under the company's CA."""
    data_dir = station.config.data_dir
    parent = Path(parent_key).read_bytes() if parent_key else None
    parent_secret = None
    if parent is not None and b"ENCRYPTED" in parent:
        parent_secret = (os.environ.get(PARENT_VARIABLE) or "").encode() or _asked("Passphrase of the parent CA's key")
    made = Authority.init(data_dir, new_passphrase(no_passphrase, "the new CA key"), cn=cn, days=days, key=key_kind,
                          parent_cert=Path(parent_cert).read_bytes() if parent_cert else None, parent_key=parent,
                          parent_secret=parent_secret)
    _recorded(station, Kind.CA_CREATED, made)
    _echo_summary(data_dir)


@ca.command("import")
@click.argument("cert", type=click.Path(exists=True, dir_okay=False))
@click.argument("key", type=click.Path(exists=True, dir_okay=False))
@click.option("--chain", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The CA's parents (PEM), nearest first, when CERT holds only the CA itself.")
@click.option("--no-passphrase", is_flag=True, help="Accept a key that is not passphrase-protected.")
@pass_station
def ca_import(station: Station, cert: str, key: str, chain: str | None, no_passphrase: bool) -> None:
    """Use a CA the company already has (its key passphrase-protected, the passphrase in STATION_CA_PASSPHRASE)."""
    data_dir = station.config.data_dir
    key_pem = Path(key).read_bytes()
    secret = authority.passphrase()
    if secret is None and b"ENCRYPTED" in key_pem:
        secret = _asked("Passphrase of the CA key")
    made = Authority.import_(data_dir, Path(cert).read_bytes(), key_pem, secret,
                             chain_pem=Path(chain).read_bytes() if chain else None, unencrypted=no_passphrase)
    _recorded(station, Kind.CA_IMPORTED, made)
    _echo_summary(data_dir)


def _echo_summary(data_dir: Path) -> None:
    shown = authority.show(data_dir)
    for key in ("subject", "issuer", "serial", "fingerprint", "not_before", "not_after", "key", "chain", "key_file"):
        click.echo(terminal.escape(f"{key + ':':13s}{shown[key]}"))
    click.echo(f"{'encrypted:':13s}{'yes' if shown['encrypted'] else 'no'}")
    if shown["expired"]:
        click.echo(f"{'state:':13s}EXPIRED: {authority.REPLACE}")


@ca.command("show")
@pass_station
def ca_show(station: Station) -> None:
    """Describe the CA (subject, serial, fingerprint, validity, key type, chain); never its key."""
    _echo_summary(station.config.data_dir)


@ca.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the chain (PEM).")
@pass_station
def ca_export(station: Station, out: str) -> None:
    """Write the CA chain: for a broker's cafile, AWS IoT JITP/JITR, Azure DPS enrollment groups."""
    write(Path(out), authority.chain_of(station.config.data_dir))
    click.echo(f"wrote the CA chain to {out}", err=True)


@ca.command("crl")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the CRL (PEM).")
@click.option("--days", default=authority.CRL_DAYS, show_default=True, type=int,
              help="Days until its next update: write a new one before, a broker refuses everyone after.")
@pass_station
def ca_crl(station: Station, out: str, days: int) -> None:
    """Write the CRL of revoked certificates (revoked, superseded, of void units), for a broker's crlfile."""
    crl = load(station).crl(station.store, days)
    write(Path(out), crl)
    click.echo(f"wrote the CRL ({len(station.store.revoked_certificates())} certificates) to {out}", err=True)
