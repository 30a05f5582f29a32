"""Where a station's database is: the embedded SQLite file, or a PostgreSQL registry's URL, named in messages
without its password."""

from __future__ import annotations

import re
from pathlib import Path

Location = str | Path  # a SQLite file, or a postgresql:// URL
SCHEMES = ("postgresql://", "postgres://")
# libpq's URL: scheme://[user[:password]@]host[:port][,host[:port]...][/dbname][?param=value&...]
_URL = re.compile(r"(?P<scheme>[a-z]+://)(?:(?P<user>[^:@/?#]*)(?::[^@/?#]*)?@)?(?P<rest>[^?#]*)(?P<query>\?[^#]*)?(?:#.*)?",
                  re.DOTALL)
_SECRET_PARAMS = re.compile(r"(?i)(?:^|&)(?:password|sslpassword)=[^&]*")


def is_url(location: Location) -> bool:
    """Whether the location names a PostgreSQL server rather than a file."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def shown(location: Location) -> str:
    """The location as messages and logs may name it: a registry's URL without its password, wherever libpq
    takes one (after the user name, or as a parameter); hosts and ports as they were written."""
    if not is_url(location):
        return str(location)
    found = _URL.fullmatch(str(location))
    if found is None:  # not a URL at all: nothing of it is shown
        return "a PostgreSQL URL"
    user = f"{found['user']}@" if found["user"] is not None else ""
    query = _SECRET_PARAMS.sub("", (found["query"] or "")[1:]).lstrip("&")
    return f"{found['scheme']}{user}{found['rest']}" + (f"?{query}" if query else "")
