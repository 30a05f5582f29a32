"""The label commands of the ``station`` CLI: label, labels, reprint and layouts."""

from __future__ import annotations

import click

from ..labels import layout as layout_mod
from ..labels import printing
from ..labels.printers import FORMATS
from .base import Station, echo_table, pass_station, progress_bar

_layout = click.option("--layout", default=None, help="Layout name from the layouts directory (`station layouts`).")
_out = click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the label(s) to this file.")
_printer = click.option("--printer", default=None, help="Printer name from station.json5 [default: label_printer].")
_format = click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                       help="png, pdf or zpl [default: the printer's, or from --out's suffix].")


def _report(result: printing.PrintResult, what: str) -> None:
    counts = f"{result.printed} first print(s), {result.reprinted} reprint(s)"
    click.echo(f"printed {what} ({counts}) with layout {result.layout} as {result.format} to {result.where}")


@click.command("label")
@click.argument("code")
@_layout
@_format
@_out
@_printer
@pass_station
def label(station: Station, code: str, layout: str | None, fmt: str | None, out: str | None, printer: str | None) -> None:
    """Print the label of the device CODE (any typed form); its first label moves it to labeled."""
    device = station.store.find(code)
    result = printing.print_label(station.store, station.config, device, printer=printer, layout=layout, fmt=fmt,
                                  out=out, actor="cli")
    _report(result, device.display)


@click.command("labels")
@click.option("--batch", "batch_name", required=True, help="Batch name.")
@_layout
@click.option("--format", "fmt", type=click.Choice(("pdf", "zpl")), default=None,
              help="pdf or zpl [default: the printer's format; pdf for --out, unless it ends in .zpl].")
@_out
@_printer
@click.option("--start-at", type=int, default=1, show_default=True,
              help="First free label on a partly used sheet (1 = top left, along the rows).")
@click.option("--reason", default=None, help="Why labels that were printed before are printed again.")
@pass_station
def labels(station: Station, batch_name: str, layout: str | None, fmt: str | None, out: str | None, printer: str | None,
           start_at: int, reason: str | None) -> None:
    """Print a batch's labels in issue order (void devices left out), e.g. as PDF sheets."""
    batch = station.store.batch(batch_name)
    if fmt is None and out:
        fmt = "zpl" if out.lower().endswith(".zpl") else "pdf"
    with progress_bar(batch.count, "rendering labels") as update:
        result = printing.print_batch(station.store, station.config, batch.name, printer=printer, layout=layout,
                                      fmt=fmt, out=out, start_at=start_at, actor="cli", reason=reason, progress=update)
    _report(result, f"{result.printed + result.reprinted} labels of batch {batch.name}")


@click.command("reprint")
@click.argument("code")
@click.option("--reason", required=True, help="Why the label is printed again (recorded).")
@_layout
@_format
@_out
@_printer
@pass_station
def reprint(station: Station, code: str, reason: str, layout: str | None, fmt: str | None, out: str | None,
            printer: str | None) -> None:
    """Print the label of the device CODE again, with the reason; its state does not change."""
    if not reason.strip():
        raise click.BadParameter("say why the label is printed again", param_hint="--reason")
    device = station.store.find(code)
    result = printing.print_label(station.store, station.config, device, printer=printer, layout=layout, fmt=fmt,
                                  out=out, actor="cli", reason=reason)
    _report(result, device.display)


@click.command("layouts")
@pass_station
def layouts(station: Station) -> None:
    """List the label layouts and check each one; exits 1 when one is refused."""
    folder = layout_mod.directory(station.config)
    rows, refused = [], 0
    for checked in layout_mod.check_all(folder):
        loaded = checked.layout
        if loaded is None:
            refused += 1
            rows.append((checked.name, "-", "-", "-", f"refused: {checked.problem}"))
            continue
        rows.append((checked.name, f"{loaded.width_mm:g}x{loaded.height_mm:g} mm", str(loaded.dpi), checked.media,
                     f"ok: {loaded.description}".rstrip(": ")))
    click.echo(f"layouts in {folder}:")
    echo_table(("layout", "size", "dpi", "media", "check"), rows)
    if refused:
        raise click.ClickException(f"{refused} layout(s) refused; fix them before printing with them")


COMMANDS = (label, labels, reprint, layouts)
