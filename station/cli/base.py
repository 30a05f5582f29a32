"""What every command of the ``station`` CLI shares: the station a command works on, errors as one line,
progress bars, tables, and the enable/disable pair of commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from .. import config as config_mod
from .. import terminal
from ..core.errors import StationError
from ..store import Store


class StationGroup(click.Group):
    """A click group that turns the station's errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StationError as exc:
            raise click.ClickException(str(exc)) from exc


class Station:
    """What every command needs: the configuration, and the store opened on first use."""

    def __init__(self, data_dir: str | None) -> None:
        self._data_dir = data_dir
        self._config: config_mod.Config | None = None
        self._store: Store | None = None

    @property
    def data_dir(self) -> str | None:
        """The data directory as given (--data-dir or STATION_DATA_DIR), None for the default."""
        return self._data_dir

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(self._data_dir)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.configured(self.config)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_station = click.make_pass_decorator(Station)


@contextmanager
def progress_bar(length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def echo_table(header: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> None:
    """Aligned columns for people reading a terminal."""
    if not rows:
        click.echo("(none)")
        return
    shown = [tuple(terminal.escape(str(cell)) for cell in row) for row in (header, *rows)]  # stored text: escaped
    widths = [max(len(r[i]) for r in shown) for i in range(len(header))]
    for row in shown:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def switches(group: click.Group, noun: str, metavar: str, apply: Callable[[Station, str, bool], object],
              helps: tuple[str, str], until: str) -> None:
    """``<noun> enable`` and ``<noun> disable`` in ``group``: one command each, one rule (``apply``); ``until``
    says, after a disable, what it stops until the enable (``{name}`` is the argument)."""
    for enabled, summary in zip((True, False), helps, strict=True):
        verb = "enable" if enabled else "disable"

        @group.command(verb, help=summary)
        @click.argument("name", metavar=metavar)
        @pass_station
        def command(station: Station, name: str, enabled: bool = enabled, verb: str = verb) -> None:
            apply(station, name, enabled)
            click.echo(terminal.escape(f"{noun} {name} {verb}d" + ("" if enabled else until.format(name=name))))
