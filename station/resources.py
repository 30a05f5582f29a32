"""The parts the station ships beside its code: the pages' templates and static files, and the label layouts.

They live in the top-level folders templates/, static/ and label_layouts/ of the repository, which setup.cfg
maps into the installed package (``station.templates`` and so on), so an editable install and a wheel find
them the same way: through the import system, never through a path relative to this file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .core.errors import Unavailable

# Each part: its package, and a file that must be there for the part to be whole.
PARTS = {
    "templates": ("station.templates", "signin.html"),
    "static": ("station.static", "station.css"),
    "label_layouts": ("station.label_layouts", "thermal-50x25-203.json5"),
}


def location(part: str) -> Path:
    """Where a shipped part (a key of PARTS) is, or would be in this installation; ``folder`` checks it."""
    try:
        return Path(str(files(PARTS[part][0])))
    except ModuleNotFoundError:  # not installed (a checkout on PYTHONPATH): the repository's own folder
        return Path(__file__).resolve().parents[1] / part


def folder(part: str) -> Path:
    """The folder of a shipped part; refused, saying how to mend the installation, when it is not whole."""
    package, needed = PARTS[part]
    path = location(part)
    if not (path / needed).is_file():
        raise Unavailable(
            f"this installation of station has no {part} ({package} is missing {needed}); reinstall it "
            f"(`pip install --force-reinstall station`, or `pip install -e .` in a checkout)"
        )
    return path


def check() -> None:
    """Refuse to serve from an installation that lacks a part the pages or labels need."""
    for part in PARTS:
        folder(part)
