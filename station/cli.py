"""The ``station`` command line: a thin layer over the library, mirroring its functions.

Every StationError becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from . import accounts, lifecycle, manifest, terminal
from . import config as config_mod
from .errors import StationError
from .store import Store


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
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(self._data_dir)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.config.db_path, timeout=self.config.database_timeout)
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


@click.group(cls=StationGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="STATION_DATA_DIR", type=click.Path(file_okay=False), default=None,
              help="Where the database and station.json5 live [env STATION_DATA_DIR; default ./station-data].")
@click.version_option(package_name="station")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None) -> None:
    """Station: claim IDs, labels and first-boot registration for a production line."""
    station = Station(data_dir)
    ctx.obj = station
    ctx.call_on_close(station.close)


# --- products ---------------------------------------------------------------------------------------------

@cli.group(cls=StationGroup)
def product() -> None:
    """Products: the Ioto product token, name, model and claim ID settings."""


@product.command("add")
@click.option("--id", "product_id", required=True, help="The Ioto product token, e.g. 01H4R15D3478JD26YDYK408XE6.")
@click.option("--name", required=True)
@click.option("--model", required=True)
@click.option("--description", default="", help="Goes into the device object's description.")
@click.option("--bits", default=80, show_default=True, type=int, help="Claim ID size: a multiple of 5, at least 50.")
@click.option("--no-check-symbol", is_flag=True, help="Print labels without the check symbol.")
@click.option("--claim-url", default=None, help="QR payload template with {id}, e.g. https://example.com/claim/{id}.")
@click.option("--layout", default=None, help="Label layout name from label_layouts/.")
@pass_station
def product_add(station: Station, product_id: str, name: str, model: str, description: str, bits: int,
                no_check_symbol: bool, claim_url: str | None, layout: str | None) -> None:
    """Add a product."""
    p = station.store.add_product(product_id, name, model, description=description, bits=bits,
                                  check_symbol=not no_check_symbol, claim_url=claim_url, layout=layout)
    click.echo(f"added product {p.id} ({p.name}, {p.model}, {p.bits}-bit claim IDs)")


@product.command("list")
@pass_station
def product_list(station: Station) -> None:
    """List the products."""
    rows = [
        (p.id, p.name, p.model, str(p.bits), "yes" if p.check_symbol else "no", p.claim_url or "-",
         p.layout or "-", "enabled" if p.enabled else "disabled")
        for p in station.store.products()
    ]
    echo_table(("product", "name", "model", "bits", "check", "claim url", "layout", "status"), rows)


def _switches(group: click.Group, noun: str, metavar: str, apply: Callable[[Station, str, bool], None],
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


_switches(product, "product", "PRODUCT_ID", lambda station, name, on: station.store.set_product_enabled(name, on),
          ("Allow claim IDs to be issued for a product again.",
           "Stop issuing claim IDs for a product (devices and their history stay)."),
          ": no claim IDs are issued for it until `station product enable {name}`")


def echo_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Aligned columns for people reading a terminal."""
    if not rows:
        click.echo("(none)")
        return
    shown = [tuple(terminal.escape(str(cell)) for cell in row) for row in (header, *rows)]  # stored text: escaped
    widths = [max(len(r[i]) for r in shown) for i in range(len(header))]
    for row in shown:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# --- batches ----------------------------------------------------------------------------------------------

@cli.command()
@click.option("--product", "product_id", required=True, help="Product ID.")
@click.option("--count", required=True, type=int, help="How many claim IDs to issue.")
@click.option("--batch", "batch_name", default=None, help="Batch name [default: product and time].")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), default=None, help="Write a CSV manifest.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None, help="Write a JSON manifest.")
@click.option("--device-json", type=click.Path(file_okay=False), default=None,
              help="Write <UCI>.json5 device files into this folder.")
@pass_station
def generate(station: Station, product_id: str, count: int, batch_name: str | None, csv_file: str | None,
             json_file: str | None, device_json: str | None) -> None:
    """Issue COUNT claim IDs in one batch, durably, and write the manifests.

    The batch is committed in short transactions beside a live line and is usable once complete; an
    interrupted one is named by `station stats` and finished by `station batch resume` or `station batch void`.
    """
    store = station.store
    with progress_bar(count, "issuing") as update:
        batch = store.generate_batch(product_id, count, name=batch_name, actor="cli", progress=update)
    click.echo(f"issued {batch.count} claim IDs for {batch.product} in batch {batch.name}")
    # Manifests are written from the database once the batch is complete: only stored UCIs reach a file.
    for path, fmt in ((csv_file, "csv"), (json_file, "json")):
        if path:
            manifest.write_file(store.devices(batch=batch.name), path, fmt)
            click.echo(f"wrote {path}")
    if device_json:
        manifest.write_device_files(store.product(product_id), store.devices(batch=batch.name), device_json)
        click.echo(f"wrote {batch.count} device files into {device_json}")


@cli.group(cls=StationGroup)
def batch() -> None:
    """Batches whose generation was interrupted (`station stats` names them): finish them or give them up."""


@batch.command("resume")
@click.argument("name")
@pass_station
def batch_resume(station: Station, name: str) -> None:
    """Issue the claim IDs the batch NAME still lacks and mark it complete."""
    store = station.store
    lacking = store.batch(name)
    with progress_bar(lacking.count - lacking.issued, "issuing") as update:
        done = store.resume_batch(name, actor="cli", progress=update)
    click.echo(terminal.escape(f"batch {done.name} is complete: {done.count} claim IDs for {done.product}"))


@batch.command("void")
@click.argument("name")
@click.option("--reason", required=True, help="Why the batch is given up (recorded).")
@pass_station
def batch_void(station: Station, name: str, reason: str) -> None:
    """Give up the incomplete batch NAME: its devices become void and their claim IDs are never issued again."""
    done = station.store.void_batch(name, reason, actor="cli")
    click.echo(terminal.escape(f"voided batch {done.name}: its {done.issued} devices are void"))


# --- look-ups and corrections -----------------------------------------------------------------------------

@cli.command()
@click.argument("code")
@pass_station
def show(station: Station, code: str) -> None:
    """Show a device by any typed form of its claim code, with its history."""
    device = station.store.find(code)
    for key in ("display", "uci", "product", "batch", "state", "serial", "created", "updated"):
        click.echo(terminal.escape(f"{key + ':':9s}{getattr(device, key) or '-'}"))
    click.echo("events:")
    for event in station.store.events(device.uci):
        details = " ".join(f"{k}={v}" for k, v in event.details.items())
        click.echo(terminal.escape(f"  {event.time}  {event.kind:16s} {event.actor:9s} {details}".rstrip()))


@cli.command()
@click.argument("code")
@click.option("--reason", required=True, help="Why the device is voided.")
@pass_station
def void(station: Station, code: str, reason: str) -> None:
    """Void a device: its claim ID is never used again."""
    device = station.store.find(code)
    device = station.store.void(device.uci, reason, actor="cli")
    click.echo(f"voided {device.display}")


@cli.command()
@click.option("--product", default=None)
@click.option("--batch", default=None)
@click.option("--state", type=click.Choice(lifecycle.ALL_STATES), default=None)
@click.option("--format", "fmt", type=click.Choice(manifest.FORMATS), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File to write [default: stdout].")
@pass_station
def export(station: Station, product: str | None, batch: str | None, state: str | None, fmt: str, out: str | None) -> None:
    """Export devices as CSV or JSON."""
    devices = station.store.devices(product=product, batch=batch, state=state)
    if out:
        count = manifest.write_file(devices, out, fmt)
        click.echo(f"wrote {count} devices to {out}", err=True)
    else:
        manifest.write(devices, terminal.for_terminal(click.get_text_stream("stdout")), fmt)


@cli.command()
@pass_station
def stats(station: Station) -> None:
    """Device counts by product, batch and state, and the batches that are incomplete."""
    rows = [(r["product"], r["batch"] or "-", r["state"], str(r["devices"])) for r in station.store.stats()]
    echo_table(("product", "batch", "state", "devices"), rows)
    for unsettled in station.store.batches():
        if not unsettled.complete:
            click.echo(terminal.escape(unsettled.incomplete()))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Add a demo product, file printer, simulated unit and operator account.")
@pass_station
def serve(station: Station, host: str, port: int, demo: bool) -> None:
    """Run the station's HTTP service and operator pages (port 0 takes a free port, named in the log)."""
    from .web.server import serve as serve_http  # Flask loads only for this command

    if not demo:
        serve_http(station.config, host, port, on_ready=lambda url: click.echo(
            f"station: open {url}/ (data in {station.config.data_dir}); Ctrl-C stops it", err=True))
        return
    from .web.demo import OPERATOR, Demo

    the_demo = Demo(station.config)

    def ready(url: str) -> None:
        the_demo.point_at(url)
        click.echo(f"demo: open {url}/ and sign in as {OPERATOR} with password {the_demo.password}", err=True)

    try:
        serve_http(station.config, host, port, on_ready=ready)
    finally:
        the_demo.stop()


# --- accounts ---------------------------------------------------------------------------------------------

@cli.group(cls=StationGroup)
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


_switches(user, "user", "NAME", lambda station, name, on: accounts.set_enabled(station.store, name, on),
          ("Let a disabled user sign in again.",
           "Stop a user signing in and end their sessions (the account and its history stay)."),
          "; their sessions are ended until `station user enable {name}`")


@user.command("list")
@pass_station
def user_list(station: Station) -> None:
    """The users, their roles and whether they may sign in."""
    echo_table(("user", "role", "enabled"),
               [(u.name, u.role, "yes" if u.enabled else "no") for u in accounts.users(station.store)])


# Commands of the other parts (each part keeps its commands in its own module):
from .labels.commands import COMMANDS as label_commands  # noqa: E402
from .rig.commands import rig  # noqa: E402
from .simulator.command import simulate  # noqa: E402
from .web.commands import token  # noqa: E402

cli.add_command(token)
cli.add_command(rig)
cli.add_command(simulate)
for _command in label_commands:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="station")


if __name__ == "__main__":
    main()
