"""The label font: Bitstream Vera Sans and Sans Bold, the TrueType files that ship inside reportlab.

reportlab is already a dependency, so the font is on every machine that runs the station, with no system
package; its licence (reportlab/fonts/bitstream-vera-license.txt) allows embedding and redistribution.
The same file is measured (reportlab's metrics), drawn into PNGs (pillow) and embedded in PDFs, so a
text that fits in one renderer fits in the others. Vera's ascent and descent add up to one em.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import reportlab
from PIL import ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(reportlab.__file__).parent / "fonts"
_FILES = {False: "Vera.ttf", True: "VeraBd.ttf"}
ELLIPSIS = "\u2026"


@lru_cache(maxsize=2)
def pdf_name(bold: bool) -> str:
    """The reportlab font name, registered on first use (embedded, subset, in every PDF that uses it)."""
    name = "StationVeraBold" if bold else "StationVera"
    pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / _FILES[bold])))
    return name


def ascent(bold: bool) -> float:
    """Height above the baseline, as a fraction of the em."""
    return pdfmetrics.getFont(pdf_name(bold)).face.ascent / 1000


def width(text: str, bold: bool, size: float) -> float:
    """Advance width of ``text`` at ``size`` (in the unit of ``size``)."""
    return pdfmetrics.stringWidth(text, pdf_name(bold), size)


@lru_cache(maxsize=64)
def pil(bold: bool, size: float) -> ImageFont.FreeTypeFont:
    """The pillow font at ``size`` pixels (callers round sizes, so that the cache is reused)."""
    return ImageFont.truetype(str(FONT_DIR / _FILES[bold]), size)
