"""Where a station's database is: the embedded SQLite file, or a PostgreSQL registry's URL, named in messages
without its password."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

Location = str | Path  # a SQLite file, or a postgresql:// URL
SCHEMES = ("postgresql://", "postgres://")
SECRET_PARAMETERS = ("password", "sslpassword")  # where else libpq takes a password: the URL's query


def is_url(location: Location) -> bool:
    """Whether the location names a PostgreSQL server rather than a file."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def shown(location: Location) -> str:
    """The location as messages and logs may name it: a registry's URL without its password, wherever libpq
    takes one (after the user name, or as a parameter, its name percent-encoded or not); hosts, ports and other
    parameters as they were written. Whatever cannot be told apart from a password is left out."""
    if not is_url(location):
        return str(location)
    scheme, _, rest = str(location).partition("://")
    slash = rest.find("/")
    authority, tail = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" in authority:  # user[:password]@hosts: a password may hold anything but "/"; the last "@" ends it
        at = authority.rfind("@")
        authority = f"{authority[:at].split(':', 1)[0]}@{authority[at + 1:]}"
    elif "@" in tail:  # a password holding "/": where the user ends cannot be told
        return f"{scheme}://(the URL is not shown: its password cannot be told from the rest)"
    for mark in "?#":  # hosts end where the parameters or the fragment begin
        if mark in authority:
            authority, _, more = authority.partition(mark)
            tail = mark + more + tail
    path, _, query = tail.split("#", 1)[0].partition("?")
    kept = [pair for pair in query.split("&")
            if pair and unquote(pair.split("=", 1)[0]).strip().lower() not in SECRET_PARAMETERS]
    return f"{scheme}://{authority}{path}" + (f"?{'&'.join(kept)}" if kept else "")
