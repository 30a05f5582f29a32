"""One label as every renderer draws it: a layout filled in with one device's fields, in printer dots.

``static_parts`` (lines, boxes, images, fixed text) depend on the layout alone and are cached per layout;
``dynamic_parts`` are the device's texts, QR code and barcode. Renderers only translate parts into
pixels, PDF operators or ZPL commands: every decision about size and position is taken here or in
layout.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from PIL import Image as PILImage

from ..core import uci
from ..core.errors import Invalid
from ..store import Device, Product
from . import code128, fonts, qr
from .layout import (
    BAR_QUIET,
    FIELDS,
    MM_PER_INCH,
    QR,
    Code128,
    Fill,
    Image,
    Layout,
    Outline,
    Text,
    fit_text,
    outline_sides,
)


@dataclass(frozen=True)
class LabelData:
    """The fields a layout can use, for one device."""

    uci: str
    display_id: str
    product_name: str
    model: str
    serial: str = ""
    batch: str = ""
    date: str = ""
    claim_url: str | None = None

    @classmethod
    def for_device(cls, device: Device, product: Product) -> LabelData:
        """Fields of a stored device; ``date`` is the day its claim ID was issued, so a reprint matches."""
        return cls(uci=device.uci, display_id=device.display or product.display(device.uci), product_name=product.name,
                   model=product.model, serial=device.serial or "", batch=device.batch or "",
                   date=device.created[:10], claim_url=product.claim_url)


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class TextPart:
    """``x``/``w``: the element's span (alignment is within it); ``top`` and ``baseline`` in dots."""

    x: int
    w: int
    top: float
    baseline: float
    size: float
    text: str
    bold: bool
    align: str

    @property
    def anchor_x(self) -> float:
        return {"left": self.x, "center": self.x + self.w / 2, "right": self.x + self.w}[self.align]


@dataclass(frozen=True)
class QRPart:
    """A QR symbol (without quiet zone) at (x, y), ``module`` dots per module."""

    x: int
    y: int
    module: int
    payload: str
    ecc: str
    version: int

    @cached_property
    def symbol(self) -> qr.Symbol:
        return qr.symbol(self.payload, self.ecc)


@dataclass(frozen=True)
class BarsPart:
    x: int
    y: int
    h: int
    module: int
    symbol: code128.Symbol


@dataclass(frozen=True, eq=False)
class BitmapPart:
    x: int
    y: int
    image: PILImage.Image  # mode "1"


Part = Rect | TextPart | QRPart | BarsPart | BitmapPart


def _mm(layout: Layout, dots: float) -> str:
    return f"{dots * MM_PER_INCH / layout.dpi:.1f} mm"


@lru_cache(maxsize=64)
def static_parts(layout: Layout) -> tuple[Part, ...]:
    """What every label of this layout shares."""
    parts: list[Part] = []
    for element in layout.elements:
        if isinstance(element, Outline):
            parts.extend(Rect(*side) for side in outline_sides(element))
        elif isinstance(element, Fill):
            parts.append(Rect(element.x, element.y, element.w, element.h))
        elif isinstance(element, Image):
            parts.append(BitmapPart(element.x, element.y, element.bitmap))
        elif isinstance(element, Text) and not element.fields:
            parts.append(_text(element, element.template))
    return tuple(parts)


def dynamic_parts(layout: Layout, data: LabelData) -> list[Part]:
    """The device's own parts; an element is left out when a field it names is empty."""
    values = {name: getattr(data, name) for name in FIELDS}
    parts: list[Part] = []
    for element in layout.elements:
        if isinstance(element, QR):
            parts.append(_qr(layout, element, data))
        elif isinstance(element, (Text, Code128)) and element.fields:
            if not all(values[f] for f in element.fields):
                continue
            text = element.template.format(**values)
            parts.append(_text(element, text) if isinstance(element, Text) else _bars(layout, element, text))
    return parts


def _text(element: Text, text: str) -> TextPart:
    fitted = fit_text(element, text)
    baseline = element.y + fonts.ascent(element.bold) * element.size  # shrunk text keeps the designed baseline
    return TextPart(element.x, element.w, baseline - fonts.ascent(element.bold) * fitted.size, baseline,
                    fitted.size, fitted.text, element.bold, element.align)


def _qr(layout: Layout, element: QR, data: LabelData) -> QRPart:
    payload = uci.qr_payload(data.uci, data.claim_url if element.payload == "claim" else None)
    qr.check_payload(payload)
    version = qr.version_for(len(payload), element.ecc)
    side = qr.modules_for(version) * element.module
    needed = side + 2 * element.quiet * element.module
    if needed > min(element.w, element.h):
        raise Invalid(
            f"layout {layout.name!r}: {element.label} is {_mm(layout, element.w)}, but the QR payload {payload!r} "
            f"({len(payload)} characters) needs a version {version} code with its quiet zone: {_mm(layout, needed)}; "
            f"shorten the product's claim URL, or use a larger element or a smaller module"
        )
    return QRPart(element.x + (element.w - side) // 2, element.y + (element.h - side) // 2, element.module,
                  payload, element.ecc, version)


def _bars(layout: Layout, element: Code128, text: str) -> BarsPart:
    symbol = code128.encode(text)
    needed = (symbol.modules + 2 * BAR_QUIET) * element.module
    if needed > element.w:
        raise Invalid(
            f"layout {layout.name!r}: {element.label} is {_mm(layout, element.w)} wide, but {text!r} as Code128 "
            f"needs {_mm(layout, needed)} with its quiet zones; widen the element or use a smaller module"
        )
    return BarsPart(element.x + (element.w - symbol.modules * element.module) // 2, element.y, element.h,
                    element.module, symbol)


def parts(layout: Layout, data: LabelData) -> list[Part]:
    """Every part of one label, static first."""
    return [*static_parts(layout), *dynamic_parts(layout, data)]

