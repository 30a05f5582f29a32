"""``station user``: accounts for the operator pages."""

from __future__ import annotations

import sys

import click

from .. import accounts
from .base import Station, StationGroup, echo_table, pass_station, switches


@click.group(cls=StationGroup)
def user() -> None:
    """Accounts for the operator pages: operators run the line, admins also manage the station."""


def read_password(from_stdin: bool) -> str:
    """The password from stdin (scripts) or asked twice on the terminal, never from the command line."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_station
def user_add(station: Station, name: str, role: str, password_stdin: bool) -> None:
    """Add a user; the password is asked for and stored only as a hash."""
    added = accounts.add_user(station.store, name, role, read_password(password_stdin))
    click.echo(f"added {added.role} {added.name}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_station
def user_passwd(station: Station, name: str, password_stdin: bool) -> None:
    """Set a user's password; it signs the user out everywhere."""
    accounts.set_password(station.store, name, read_password(password_stdin))
    click.echo(f"password of {name} changed; their sessions are ended")


switches(user, "user", "NAME", lambda station, name, on: accounts.set_enabled(station.store, name, on),
          ("Let a disabled user sign in again.",
           "Stop a user signing in and end their sessions (the account and its history stay)."),
          "; their sessions are ended until `station user enable {name}`")


@user.command("list")
@pass_station
def user_list(station: Station) -> None:
    """The users, their roles and whether they may sign in."""
    echo_table(("user", "role", "enabled"),
               [(u.name, u.role, "yes" if u.enabled else "no") for u in accounts.users(station.store)])
