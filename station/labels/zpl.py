"""ZPL II labels for Zebra-compatible printers: ``^XA ... ^XZ`` with ``^PW``/``^LL`` from the layout's size
in dots, text in the scalable font 0 sized from the layout (``^A0``, ``^FB`` for the alignment),
``^BQ`` QR codes (manual alphanumeric input, so the printer encodes the same payload), ``^BC`` Code128 with
the subsets named, ``^GB`` for lines and boxes and ``^GFA`` for images. The layout's static parts are
formatted once per layout.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from PIL import Image

from .compose import BarsPart, BitmapPart, LabelData, Part, QRPart, Rect, TextPart, dynamic_parts, static_parts
from .layout import Layout

_JUSTIFY = {"left": "L", "center": "C", "right": "R"}
# ^FH_ lets field data carry a byte as _XX: ^, ~, _ and control characters would be read as commands,
# escapes or line ends.
_FIELD_ESCAPES = {ord(ch): f"_{ord(ch):02X}" for ch in "^~_" + "".join(map(chr, range(32))) + "\x7f"}


@lru_cache(maxsize=32)
def _head(layout: Layout) -> str:
    static = "".join(_command(part) for part in static_parts(layout))
    return f"^XA^CI28^PW{layout.width}^LL{layout.height}^LH0,0{static}"


def render(layout: Layout, data: LabelData) -> bytes:
    """One label format, UTF-8 (``^CI28``)."""
    body = "".join(_command(part) for part in dynamic_parts(layout, data))
    return f"{_head(layout)}{body}^PQ1^XZ\n".encode()


def render_many(layout: Layout, labels: Iterable[LabelData]) -> bytes:
    """Several label formats, one after the other, as a printer takes them in one job."""
    return b"".join(render(layout, data) for data in labels)


def field(text: str) -> str:
    """Field data that prints ``text`` as it is (after ^FH_; other characters go as UTF-8, ^CI28)."""
    return text.translate(_FIELD_ESCAPES)


def _command(part: Part) -> str:
    if isinstance(part, Rect):
        return f"^FO{part.x},{part.y}^GB{part.w},{part.h},{min(part.w, part.h)}^FS"
    if isinstance(part, TextPart):
        height = max(1, round(part.size))
        return (f"^FO{part.x},{round(part.top)}^A0N,{height},{height}^FB{part.w},1,0,{_JUSTIFY[part.align]},0"
                f"^FH_^FD{field(part.text)}^FS")
    if isinstance(part, QRPart):
        # ^FD<ecc>M,A<data>: error correction, manual input, alphanumeric mode (ZPL II ^BQ field data).
        return f"^FO{part.x},{part.y}^BQN,2,{part.module}^FD{part.ecc}M,A{part.payload}^FS"
    if isinstance(part, BarsPart):
        return f"^FO{part.x},{part.y}^BY{part.module}^BCN,{part.h},N,N,N,N^FD{part.symbol.zpl}^FS"
    if isinstance(part, BitmapPart):
        # ^GF wants 1 for a black dot; pillow's mode "1" packs 1 for white, so the image is inverted first
        # (inverting the packed bytes would also blacken the padding bits at the end of each row).
        image = part.image.convert("L").point(lambda v: 255 - v).convert("1", dither=Image.Dither.NONE)
        row = (image.width + 7) // 8
        data = image.tobytes().hex().upper()
        return f"^FO{part.x},{part.y}^GFA,{row * image.height},{row * image.height},{row},{data}^FS"
    raise TypeError(f"no ZPL for {part!r}")
