"""PDF labels with reportlab: one label per page (thermal printers through CUPS), or labels on sheets
(rows and columns at the layout's pitch; ``start_at`` skips the used slots of a partly used sheet).

Each label is drawn in printer dots (the page is scaled by 72/dpi), so the PDF has the geometry of the
PNG and ZPL renderers; the QR code is vector paths (one rectangle per run of dark modules), the text is
Vera, embedded. The static parts are one form XObject per document, placed under every label.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import BinaryIO

from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from ..core.errors import Invalid
from . import fonts
from .compose import BarsPart, BitmapPart, LabelData, Part, QRPart, Rect, TextPart, dynamic_parts, static_parts
from .layout import Layout

_FORM = "static"


def slots_on_first_page(layout: Layout, start_at: int) -> int:
    """Refuse a start position the sheet does not have; thermal layouts start at 1 only."""
    slots = layout.sheet.slots if layout.sheet else 1
    if isinstance(start_at, bool) or not isinstance(start_at, int) or not 1 <= start_at <= slots:
        where = f"a sheet of layout {layout.name!r} has slots 1 to {slots}" if layout.sheet else \
            f"layout {layout.name!r} prints one label per page, so it starts at 1"
        raise Invalid(f"cannot start at label {start_at}: {where}")
    return slots - start_at + 1


def write(layout: Layout, labels: Iterable[LabelData], out: BinaryIO, *, start_at: int = 1,
          title: str = "labels", progress: Callable[[int], None] | None = None) -> int:
    """Write the labels to ``out`` as one PDF; returns how many were drawn."""
    slots_on_first_page(layout, start_at)
    sheet = layout.sheet
    page = (sheet.page_width * mm, sheet.page_height * mm) if sheet else (layout.width_mm * mm, layout.height_mm * mm)
    canvas = Canvas(out, pagesize=page, pageCompression=1, invariant=1)
    canvas.setTitle(title)
    canvas.setCreator("station")
    scale = 72 / layout.dpi
    canvas.beginForm(_FORM, 0, -layout.height, layout.width, 0)
    for part in static_parts(layout):
        _draw(canvas, part)
    canvas.endForm()
    slot = start_at - 1
    count = 0
    for data in labels:
        if count and (sheet is None or slot == 0):
            canvas.showPage()
        if sheet:
            column, row = slot % sheet.columns, slot // sheet.columns
            left = (sheet.left + column * sheet.pitch_x) * mm
            top = page[1] - (sheet.top + row * sheet.pitch_y) * mm
        else:
            left, top = 0.0, page[1]
        canvas.saveState()
        canvas.translate(left, top)
        canvas.scale(scale, scale)  # one unit is one printer dot; y goes up, so dots are drawn at -y
        canvas.doForm(_FORM)
        for part in dynamic_parts(layout, data):
            _draw(canvas, part)
        canvas.restoreState()
        count += 1
        slot = (slot + 1) % (sheet.slots if sheet else 1)
        if progress:
            progress(1)
    if not count:
        raise Invalid("there are no labels to put in the PDF")
    canvas.save()
    return count


def render(layout: Layout, labels: Iterable[LabelData], *, start_at: int = 1, title: str = "labels",
           progress: Callable[[int], None] | None = None) -> bytes:
    """The labels as PDF bytes."""
    out = io.BytesIO()
    write(layout, labels, out, start_at=start_at, title=title, progress=progress)
    return out.getvalue()


def _draw(canvas: Canvas, part: Part) -> None:
    if isinstance(part, Rect):
        canvas.rect(part.x, -part.y - part.h, part.w, part.h, stroke=0, fill=1)
    elif isinstance(part, TextPart):
        canvas.setFont(fonts.pdf_name(part.bold), part.size)
        draw = {"left": canvas.drawString, "center": canvas.drawCentredString, "right": canvas.drawRightString}
        draw[part.align](part.anchor_x, -part.baseline, part.text)
    elif isinstance(part, QRPart):
        m = part.module
        _fill(canvas, [(part.x + start * m, part.y + r * m, width * m, m)
                       for r, row in enumerate(part.symbol.rows) for start, width in _runs(row)])
    elif isinstance(part, BarsPart):
        m = part.module
        _fill(canvas, [(part.x + start * m, part.y, width * m, part.h) for start, width in part.symbol.bars])
    elif isinstance(part, BitmapPart):
        canvas.drawImage(ImageReader(part.image.convert("L")), part.x, -part.y - part.image.height,
                         part.image.width, part.image.height)


def _runs(row: tuple[bool, ...]) -> list[tuple[int, int]]:
    """(start, length) of each run of dark modules in a row."""
    runs, c, n = [], 0, len(row)
    while c < n:
        if row[c]:
            start = c
            while c < n and row[c]:
                c += 1
            runs.append((start, c - start))
        c += 1
    return runs


def _fill(canvas: Canvas, rects: list[tuple[int, int, int, int]]) -> None:
    """Fill rectangles given in whole dots as one vector path. The operators are written directly: the
    numbers are integers, and reportlab's general number formatting would cost more than the rest of the
    label (it is pure Python unless its optional C accelerator is installed)."""
    ops = " ".join(f"{x} {-y - h} {w} {h} re" for x, y, w, h in rects)
    canvas.addLiteral(f"{ops} f")
