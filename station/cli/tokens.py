"""``station token``: API tokens for the JSON API."""

from __future__ import annotations

import click

from ..store import DEFAULT_SCOPES, TOKEN_SCOPES
from .base import Station, StationGroup, echo_table, pass_station


@click.group(cls=StationGroup)
def token() -> None:
    """API tokens for /api/v1/ (programs and operators' tools)."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses the token, e.g. mes-export.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(TOKEN_SCOPES),
              help="What it may do; repeat for more: read (look up), issue (issue and void claim IDs), "
                   f"admin (add products). [default: {' '.join(DEFAULT_SCOPES)}]")
@pass_station
def token_create(station: Station, name: str, scopes: tuple[str, ...]) -> None:
    """Create a token and print it, once: only its hash is stored."""
    granted = scopes or DEFAULT_SCOPES
    secret = station.store.create_token(name, granted, actor="cli")
    click.echo(secret)
    click.echo(f"token {name!r} created with scopes {' '.join(s for s in TOKEN_SCOPES if s in granted)}; keep it now, it cannot be shown "
               f"again (send it as `Authorization: Bearer <token>`)", err=True)


@token.command("list")
@pass_station
def token_list(station: Station) -> None:
    """List the tokens' names, scopes and when they were last used."""
    echo_table(("name", "scopes", "created", "last used"),
               [(t["name"], t["scopes"], t["created"], t["last_used"] or "never") for t in station.store.tokens()])


@token.command("revoke")
@click.argument("name")
@pass_station
def token_revoke(station: Station, name: str) -> None:
    """Delete a token: calls that carry it are refused from now on."""
    station.store.revoke_token(name, actor="cli")
    click.echo(f"token {name!r} revoked")
