"""Fixtures shared by every part's tests: a real station database in a temporary data directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.store import Store

PRODUCT = "01H4R15D3478JD26YDYK408XE6"


def dump(db: Path) -> list[str]:
    """Every row and schema line of a database: compared before and after to show nothing changed."""
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "station-data"
    path.mkdir()
    return path


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """A station database with the Blank product of the Ioto samples."""
    with Store.open(data_dir / "station.db") as db:
        db.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        yield db
