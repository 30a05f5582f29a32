"""A registry's URL as the station names it in messages, logs and pages: never with its password, wherever libpq
takes one; hosts, ports and other parameters as they were written."""

from __future__ import annotations

from pathlib import Path

import pytest

from station import config as config_mod
from station.core.errors import Invalid
from station.db.location import shown


@pytest.mark.parametrize("url,named", [
    ("postgresql://station:s3cret@reg.example/station", "postgresql://station@reg.example/station"),
    ("postgresql://station@reg/station?password=s3cret", "postgresql://station@reg/station"),
    ("postgresql://station@reg/station?sslmode=require&PASSWORD=s3cret&sslpassword=s3cret&application_name=a",
     "postgresql://station@reg/station?sslmode=require&application_name=a"),
    ("postgresql://station:s3cret@h1:5432,h2:5433/station", "postgresql://station@h1:5432,h2:5433/station"),
    ("postgresql://station:s3cret@[::1]:5432/station", "postgresql://station@[::1]:5432/station"),
    ("postgres://station:s3cret@reg/station#s3cret", "postgres://station@reg/station"),
    ("postgresql://reg/station", "postgresql://reg/station"),
    ("postgresql://u:s3?cret@h/db", "postgresql://u@h/db"),  # "?" and "#" may be in a password
    ("postgresql://u:s3#cret@h/db", "postgresql://u@h/db"),
    ("postgresql://u:s3cr@t@h/db", "postgresql://u@h/db"),
    ("postgresql://u@h/db?passw%6Frd=s3cret&x=1", "postgresql://u@h/db?x=1"),  # libpq decodes parameter names
    ("postgresql://u:p@h?password=s3cret&sslmode=require", "postgresql://u@h?sslmode=require"),
    ("postgresql://u:s3/cret@h/db", "postgresql://(the URL is not shown: its password cannot be told from the rest)"),
])
def test_a_registry_is_named_without_its_password(url: str, named: str) -> None:
    assert shown(url) == named and "s3cret" not in shown(url)


def test_a_bad_url_is_refused_without_showing_its_password() -> None:
    with pytest.raises(Invalid) as refused:
        config_mod.check({"database": "postgresql://station:s3cret@reg/station with spaces"}, Path("station.json5"))
    assert "s3cret" not in str(refused.value) and "must be a PostgreSQL URL" in str(refused.value)
