"""PNG labels with pillow, one pixel per printer dot (8-bit grey, the layout's dpi in the file).

The static parts are drawn once per layout into a base image; each label starts from a copy of it.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

from PIL import Image, ImageDraw

from . import fonts
from .compose import BarsPart, BitmapPart, LabelData, Part, QRPart, Rect, TextPart, dynamic_parts, static_parts
from .layout import Layout

_DARK = bytes([255, 0]) + bytes(254)  # module byte 0 (light) -> white, 1 (dark) -> black
_ANCHORS = {"left": "ls", "center": "ms", "right": "rs"}


@lru_cache(maxsize=32)
def _base(layout: Layout) -> Image.Image:
    image = Image.new("L", (layout.width, layout.height), 255)
    draw = ImageDraw.Draw(image)
    for part in static_parts(layout):
        _draw(image, draw, part)
    return image


def image(layout: Layout, data: LabelData) -> Image.Image:
    """The label as a pillow image."""
    label = _base(layout).copy()
    draw = ImageDraw.Draw(label)
    for part in dynamic_parts(layout, data):
        _draw(label, draw, part)
    return label


def render(layout: Layout, data: LabelData) -> bytes:
    """The label as PNG bytes, tagged with the printer's resolution."""
    out = io.BytesIO()
    image(layout, data).save(out, "PNG", dpi=(layout.dpi, layout.dpi), compress_level=1)
    return out.getvalue()


@lru_cache(maxsize=1024)
def _text_mask(text: str, bold: bool, size: float, anchor: str) -> tuple[Image.Image, int, int]:
    """The text's coverage, and its offset from the anchor point; cached, because product names, models
    and dates repeat on every label of a batch. Sizes are rounded down, so never wider than measured."""
    font = fonts.pil(bold, size)
    left, top, right, bottom = (int(edge) for edge in font.getbbox(text, anchor=anchor))  # whole pixels for PIL
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font, anchor=anchor)
    return mask, left, top


def _draw(image: Image.Image, draw: ImageDraw.ImageDraw, part: Part) -> None:
    if isinstance(part, Rect):
        draw.rectangle((part.x, part.y, part.x + part.w - 1, part.y + part.h - 1), fill=0)
    elif isinstance(part, TextPart):
        mask, left, top = _text_mask(part.text, part.bold, math.floor(part.size * 4) / 4, _ANCHORS[part.align])
        image.paste(0, (round(part.anchor_x) + left, round(part.baseline) + top), mask)
    elif isinstance(part, QRPart):
        rows = part.symbol.rows
        n = len(rows)
        cells = b"".join(bytes(row) for row in rows).translate(_DARK)
        side = n * part.module
        image.paste(Image.frombytes("L", (n, n), cells).resize((side, side), Image.Resampling.NEAREST), (part.x, part.y))
    elif isinstance(part, BarsPart):
        m = part.module
        for start, width in part.symbol.bars:
            left = part.x + start * m
            draw.rectangle((left, part.y, left + width * m - 1, part.y + part.h - 1), fill=0)
    elif isinstance(part, BitmapPart):
        image.paste(part.image.convert("L"), (part.x, part.y))
