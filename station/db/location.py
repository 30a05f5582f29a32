"""Where a station's database is: the embedded SQLite file, or a PostgreSQL registry's URL, named in messages
without its password."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

Location = str | Path  # a SQLite file, or a postgresql:// URL
SCHEMES = ("postgresql://", "postgres://")


def is_url(location: Location) -> bool:
    """Whether the location names a PostgreSQL server rather than a file."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def shown(location: Location) -> str:
    """The location as messages and logs may name it: a registry's URL without its password."""
    if not is_url(location):
        return str(location)
    parts = urlsplit(str(location))
    if parts.password is None:
        return str(location)
    netloc = f"{parts.username}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
