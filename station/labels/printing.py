"""Printing and reprinting labels, with every attempt recorded (DESIGN.md section 4).

The label is rendered and handed to the printer first; only then is the event written. The first
successful print of a device records ``printed`` and moves it to ``labeled`` (Store.advance); a later one
is a ``reprinted`` event that needs a reason and moves nothing back. A print that fails for any reason is
a ``print-failed`` event and changes nothing. The web page and the rig call ``print_label``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..core import lifecycle
from ..core.errors import Conflict, Invalid, StationError
from ..core.lifecycle import Kind
from ..store import Device, Product, Store
from . import compose, pdf, png, printers, zpl
from . import layout as layout_mod
from .compose import LabelData
from .layout import Layout

log = logging.getLogger("station.labels")

PRINTED, REPRINTED, FAILED = Kind.PRINTED, Kind.REPRINTED, Kind.PRINT_FAILED
LABELED = "labeled"


@dataclass(frozen=True)
class PrintResult:
    """What was printed, where, and how many labels were first prints or reprints."""

    printer: str
    layout: str
    format: str
    where: str
    printed: int
    reprinted: int


def choose_layout(config: Config, name: str | None = None, printer: printers.Printer | None = None,
                  product: Product | None = None) -> Layout:
    """The layout to use: the one asked for, else the printer's, the product's, station.json5's
    ``label_layout``, and last the 203 dpi thermal layout."""
    chosen = (name or (printer.layout if printer else None) or (product.layout if product else None)
              or config.get("label_layout") or layout_mod.DEFAULT_LAYOUT)
    return layout_mod.load(chosen, layout_mod.directory(config))


def render(layout: Layout, labels: list[LabelData], fmt: str, *, start_at: int = 1, title: str = "labels",
           progress: Callable[[int], None] | None = None) -> bytes:
    """The labels in ``fmt``: one PNG, or a PDF, or ZPL formats back to back."""
    if fmt == "pdf":
        return pdf.render(layout, labels, start_at=start_at, title=title, progress=progress)
    if fmt not in printers.FORMATS:
        raise Invalid(f"unknown label format {fmt!r}; use one of {', '.join(printers.FORMATS)}")
    if start_at != 1:
        raise Invalid("--start-at is for PDF sheets only")
    if fmt == "png" and len(labels) != 1:
        raise Invalid("a PNG holds one label; use pdf or zpl for several")
    data = png.render(layout, labels[0]) if fmt == "png" else zpl.render_many(layout, labels)
    if progress:
        progress(len(labels))
    return data


def label_problem(store: Store, config: Config, device: Device | str) -> str | None:
    """Why the device's label cannot be made with the station's layout (a page says so instead of a broken image);
    None when it can. Composes the label's parts without drawing them."""
    device = _device(store, device)
    product = store.product(device.product)
    try:
        compose.parts(choose_layout(config, None, None, product), LabelData.for_device(device, product))
    except StationError as exc:  # a value the layout refuses, or a layout that is not there
        return str(exc)
    return None


def preview_png(store: Store, config: Config, device: Device | str, layout: str | None = None) -> bytes:
    """A PNG of the device's label, for a screen: nothing is printed or recorded."""
    device = _device(store, device)
    product = store.product(device.product)
    chosen = choose_layout(config, layout, None, product)
    return png.render(chosen, LabelData.for_device(device, product))


def print_label(store: Store, config: Config, device: Device | str, *, printer: str | None = None,
                layout: str | None = None, fmt: str | None = None, out: str | Path | None = None,
                actor: str = "operator", reason: str | None = None) -> PrintResult:
    """Print one device's label on ``printer`` (or into the file ``out``) and record it.

    A device that already has a label is reprinted only with a ``reason``.
    """
    device = _device(store, device)
    return _print(store, config, [device], printer=printer, layout=layout, fmt=fmt, out=out, actor=actor,
                  reason=reason, title=device.uci, start_at=1, progress=None, batch=None)


def print_batch(store: Store, config: Config, batch: str, *, printer: str | None = None, layout: str | None = None,
                fmt: str | None = None, out: str | Path | None = None, start_at: int = 1, actor: str = "cli",
                reason: str | None = None, progress: Callable[[int], None] | None = None) -> PrintResult:
    """Print a batch's labels in issue order, void devices left out; already labelled ones need a reason."""
    devices = [d for d in store.devices(batch=batch) if d.state != lifecycle.VOID]
    if not devices:
        raise Invalid(f"batch {batch!r} has no device that can get a label (all are void)")
    title = re.sub(r"[^A-Za-z0-9._-]", "_", batch)
    return _print(store, config, devices, printer=printer, layout=layout, fmt=fmt, out=out, actor=actor,
                  reason=reason, title=title, start_at=start_at, progress=progress, batch=batch)


def has_label(store: Store, uci: str) -> bool:
    """Whether the device's label was ever printed: a second one then needs a reason."""
    return bool(store.with_events([uci], (PRINTED, REPRINTED)))


def _device(store: Store, device: Device | str) -> Device:
    """The stored device now (its state may have moved since the caller read it), if its batch is complete."""
    return store.usable_device(device.uci if isinstance(device, Device) else store.find(device).uci)


def _print(store: Store, config: Config, devices: list[Device], *, printer: str | None, layout: str | None,
           fmt: str | None, out: str | Path | None, actor: str, reason: str | None, title: str, start_at: int,
           progress: Callable[[int], None] | None, batch: str | None) -> PrintResult:
    details: dict[str, Any] = {"printer": printer or ("file" if out else config.get("label_printer")),
                               "layout": layout, "format": fmt}
    reason = reason.strip() if reason and reason.strip() else None
    if reason:
        details["reason"] = reason
    if batch:
        details["batch"] = batch
    # What is wrong before anything is sent (the printer, layout or format named, a void device, a reprint
    # without a reason) is refused with one event: the device's, or the batch's, not one per device.
    try:
        target, chosen, fmt = _target(store, config, devices[0], printer, layout, fmt, out)
        details.update(printer=target.name, layout=chosen.name, format=fmt)
        printed_before = store.with_events([d.uci for d in devices], (PRINTED, REPRINTED))
        _refuse(devices, printed_before, reason)
    except StationError as exc:
        _record_failure(store, devices[:1] if batch is None else [], actor, {**details, "error": str(exc)},
                        batch=batch)
        raise
    try:
        products = {pid: store.product(pid) for pid in {d.product for d in devices}}
        labels = [LabelData.for_device(d, products[d.product]) for d in devices]
        data = render(chosen, labels, fmt, start_at=start_at, title=title, progress=progress)
        where = target.send(data, title)
    except StationError as exc:
        _record_failure(store, devices, actor, {**details, "error": str(exc)})
        log.info("label print failed", extra={**details, "devices": len(devices), "error": str(exc)})
        raise
    details["where"] = where
    moves = [(d.uci, REPRINTED if d.uci in printed_before else PRINTED) for d in devices]
    try:
        store.advance_many(moves, LABELED, actor, details)
    except StationError as exc:
        # The labels exist now: say so, so that nobody prints them again as if they were first prints.
        log.error("labels printed but not recorded", extra={**details, "ucis": [d.uci for d in devices], "error": str(exc)})
        raise type(exc)(f"the labels were printed ({where}) but could not be recorded: {exc}") from exc
    log.info("labels printed", extra={**details, "devices": len(devices), "reprinted": len(printed_before)})
    return PrintResult(target.name, chosen.name, fmt, where, len(devices) - len(printed_before), len(printed_before))


def _target(store: Store, config: Config, device: Device, printer: str | None, layout: str | None,
            fmt: str | None, out: str | Path | None) -> tuple[printers.Printer, Layout, str]:
    """The printer (or file), layout and format of a job."""
    if printer and out:
        raise Invalid("give either a printer or an output file, not both")
    if fmt is not None and fmt not in printers.FORMATS:
        raise Invalid(f"unknown label format {fmt!r}; use one of {', '.join(printers.FORMATS)}")
    if out is None:
        configured = printers.get(config, printer)
        chosen = choose_layout(config, layout, configured, store.product(device.product))
        if fmt and fmt != configured.format:
            raise Invalid(f"printer {configured.name!r} takes {configured.format}, not {fmt}")
        return configured, chosen, configured.format
    chosen = choose_layout(config, layout, None, store.product(device.product))
    suffix = Path(out).suffix.lstrip(".").lower()
    fmt = fmt or (suffix if suffix in printers.FORMATS else chosen.default_format)
    return printers.file_target(out, fmt), chosen, fmt


def _refuse(devices: list[Device], printed_before: set[str], reason: str | None) -> None:
    """Void devices get no label; a second label needs a reason."""
    void = [d.display for d in devices if d.state == lifecycle.VOID]
    if void:
        raise Conflict(f"{void[0]} is void: its claim ID must never be used again, so it gets no label")
    if printed_before and not reason:
        first = next(d for d in devices if d.uci in printed_before)
        several = f" and {len(printed_before) - 1} more" if len(printed_before) > 1 else ""
        raise Conflict(f"{first.display}{several} already has a label; to print it again, say why "
                       f"(station reprint CODE --reason TEXT, or --reason for a batch)")


def _record_failure(store: Store, devices: list[Device], actor: str, details: dict[str, Any],
                    batch: str | None = None) -> None:
    """Print-failed events, for the devices and (when named) once for the batch; a store that cannot
    record must not hide the first error."""
    try:
        store.record_many([d.uci for d in devices], FAILED, actor, details)
        if batch is not None:
            store.record(None, FAILED, actor, details)  # details name the batch
    except StationError as exc:
        log.error("cannot record a failed print", extra={"devices": len(devices), "batch": batch, "error": str(exc)})
