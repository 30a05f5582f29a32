"""Label layouts: the schema, loading, and every rule a layout must pass (the one module that owns them).

A layout is one JSON5 file in the layouts directory (``label_layouts/``; station.json5 key
``label_layouts``). Sizes and positions are in millimetres from the label's top-left corner; they are
converted once, here, to whole printer dots at the layout's ``dpi``, and every renderer (PNG, PDF, ZPL)
draws those dots. label_layouts/README.md documents the schema. A layout is refused at load, with a
message naming the element, when an element does not fit the label, names an unknown field or image,
asks for QR modules under 0.25 mm, or reaches outside the layouts directory.
"""

from __future__ import annotations

import math
import os
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import json5
from PIL import Image as PILImage

from .. import config as config_mod
from .. import resources
from ..core.errors import Invalid, NotFound, StationError
from . import fonts

FIELDS = ("display_id", "uci", "product_name", "model", "serial", "batch", "date")
MM_PER_INCH = 25.4
MIN_QR_MODULE_MM = 0.25  # smaller modules do not scan reliably from a printed label
MAX_QR_MODULE_DOTS = 10  # the largest magnification ZPL's ^BQ accepts
MIN_QUIET = 4  # QR quiet zone, in modules (ISO 18004)
QR_V1 = 21  # modules on a side of the smallest QR symbol
MIN_BAR_MODULE_MM = 0.125  # 5 mil, the narrowest Code128 bar that common scanners read
BAR_QUIET = 10  # Code128 quiet zone on each side, in modules
MIN_CODE128 = 46  # modules of a one-character Code128 symbol (start, data, check, stop)
PAGES = {"A4": (210.0, 297.0), "letter": (215.9, 279.4)}
ALIGN = ("left", "center", "right")
OVERFLOW = ("shrink", "ellipsis")
QR_PAYLOADS = ("claim", "id")
ECC = ("L", "M", "Q", "H")
DEFAULT_LAYOUT = "thermal-50x25-203"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SUFFIX = ".json5"


@dataclass(frozen=True)
class Element:
    """What every element has: a name for messages and its box in dots."""

    label: str
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Text(Element):
    template: str
    fields: tuple[str, ...]
    size: float  # em, in dots
    min_size: float
    bold: bool
    align: str
    overflow: str


@dataclass(frozen=True)
class QR(Element):
    module: int  # dots
    quiet: int  # modules
    ecc: str
    payload: str  # "claim" or "id"


@dataclass(frozen=True)
class Code128(Element):
    module: int  # dots
    template: str
    fields: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Image(Element):
    bitmap: PILImage.Image  # mode "1", fitted to the box


@dataclass(frozen=True)
class Fill(Element):
    """A filled rectangle: a line, or one side of a box."""


@dataclass(frozen=True)
class Sheet:
    """Labels on a page: ``columns`` x ``rows`` slots, the first at (left, top), one pitch apart (mm)."""

    page_width: float
    page_height: float
    columns: int
    rows: int
    left: float
    top: float
    pitch_x: float
    pitch_y: float

    @property
    def slots(self) -> int:
        return self.columns * self.rows


@dataclass(frozen=True, eq=False)
class Layout:
    """A loaded, checked layout; compared by identity, so renderers can cache per layout."""

    name: str
    path: Path
    description: str
    width_mm: float
    height_mm: float
    dpi: int
    width: int  # dots
    height: int
    elements: tuple[Element, ...]
    sheet: Sheet | None
    files: tuple[Path, ...]  # the layout file and its images, to notice changes

    @property
    def default_format(self) -> str:
        return "pdf" if self.sheet else "png"


def directory(config: config_mod.Config) -> Path:
    """The layouts directory: station.json5 ``label_layouts`` (relative to the data directory), else the
    layouts shipped with the station."""
    configured = config.get("label_layouts")
    if configured:
        return config.data_dir / Path(configured).expanduser()
    return resources.folder("label_layouts")


def names(folder: Path) -> list[str]:
    """The layouts in ``folder``, by name."""
    if not folder.is_dir():
        raise NotFound(f"the label layouts directory {folder} does not exist; set label_layouts in station.json5")
    stems = (p.name[: -len(SUFFIX)] for p in folder.iterdir() if p.name.endswith(SUFFIX))
    return sorted(stem for stem in stems if _NAME.fullmatch(stem))


@dataclass(frozen=True)
class Checked:
    """One layout file after loading: the layout, or why it is refused."""

    name: str
    layout: Layout | None
    problem: str | None

    @property
    def media(self) -> str:
        if self.layout is None:
            return "-"
        sheet = self.layout.sheet
        return f"sheet {sheet.columns}x{sheet.rows}" if sheet else "one per page"


def check_all(folder: Path) -> list[Checked]:
    """Every layout in ``folder``, loaded and checked: what `station layouts` and the settings page show."""
    checked = []
    for name in names(folder):
        try:
            checked.append(Checked(name, load(name, folder), None))
        except StationError as exc:
            checked.append(Checked(name, None, str(exc)))
    return checked


_cache: dict[Path, tuple[tuple[tuple[int, int], ...], Layout]] = {}


def load(name: str, folder: Path) -> Layout:
    """The checked layout ``name`` from ``folder``, cached until its file or an image of it changes."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Invalid(f"layout name {name!r} must be letters, digits, '.', '_' or '-' "
                      f"(a file name in {folder}, without {SUFFIX})")
    path = folder / (name + SUFFIX)
    cached = _cache.get(path)
    if cached and cached[0] == _stamps(cached[1].files):
        return cached[1]
    layout = _parse(name, folder, path)
    _cache[path] = (_stamps(layout.files), layout)
    return layout


def _stamps(files: tuple[Path, ...]) -> tuple[tuple[int, int], ...]:
    try:
        return tuple((s.st_mtime_ns, s.st_size) for s in (os.stat(f) for f in files))
    except OSError:
        return ()


def inside(folder: Path, relative: str, what: str) -> Path:
    """``folder/relative``, refusing absolute paths, '..' and symlinks that lead out of ``folder``."""
    if not isinstance(relative, str) or not relative:
        raise Invalid(f"{what} must be a file name in {folder}")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"[A-Za-z]:", relative) or ".." in pure.parts:
        raise Invalid(f"{what} {relative!r} must be a file inside {folder} (no absolute paths, no '..')")
    path = folder / pure
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound(f"{what} {relative!r} does not exist in {folder}") from None
    if not real.is_relative_to(folder.resolve()):
        raise Invalid(f"{what} {relative!r} is a link to {real}, outside {folder}; copy the file into {folder}")
    if not real.is_file():
        raise Invalid(f"{what} {relative!r} in {folder} is not a file")
    return real


def _parse(name: str, folder: Path, path: Path) -> Layout:
    if not path.exists():
        known = ", ".join(names(folder)) or "none"
        raise NotFound(f"unknown label layout {name!r}: no {path.name} in {folder} (layouts: {known})")
    real = inside(folder, path.name, f"layout {name!r}")
    where = f"layout {name!r} ({real})"
    try:
        raw = json5.loads(real.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"{where} is not valid JSON5: {exc}") from exc
    reader = _Reader(where)
    top = reader.object(raw, "the layout", {"description", "size", "dpi", "elements", "sheet"}, {"size", "dpi", "elements"})
    size = reader.object(top["size"], "size", {"width", "height"}, {"width", "height"})
    width_mm = reader.number(size["width"], "size.width", low=1, high=1000)
    height_mm = reader.number(size["height"], "size.height", low=1, high=1000)
    dpi = reader.integer(top["dpi"], "dpi", low=100, high=1200)
    description = top.get("description", "")
    if not isinstance(description, str):
        raise Invalid(f"{where}: description must be text")
    sheet = _sheet(reader, top["sheet"], width_mm, height_mm) if "sheet" in top else None
    if not isinstance(top["elements"], list) or not top["elements"]:
        raise Invalid(f"{where}: elements must be a list with at least one element")
    build = _Builder(reader, folder, width_mm, height_mm, dpi)
    elements = tuple(build.element(i, spec) for i, spec in enumerate(top["elements"], 1))
    _check_quiet_zones(where, elements)
    return Layout(
        name=name, path=real, description=description, width_mm=width_mm, height_mm=height_mm, dpi=dpi,
        width=build.dots(width_mm), height=build.dots(height_mm), elements=elements, sheet=sheet,
        files=(real, *build.files),
    )


class _Reader:
    """Type checks with messages that say where the value is."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, what: str, problem: str) -> Invalid:
        return Invalid(f"{self.where}: {what} {problem}")

    def object(self, value: Any, what: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(what, "must be an object {...}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(what, f"has unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(what, f"needs {missing[0]!r}")
        return value

    def number(self, value: Any, what: str, low: float = 0, high: float = 10_000) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(what, f"must be a number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(what, f"is {value}, outside {low:g} to {high:g}")
        return float(value)

    def integer(self, value: Any, what: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(what, f"must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(what, f"is {value}, outside {low} to {high}")
        return value

    def choice(self, value: Any, what: str, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.fail(what, f"is {value!r}; use one of {', '.join(options)}")
        return value

    def flag(self, value: Any, what: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(what, f"must be true or false, not {value!r}")
        return value


def _sheet(reader: _Reader, raw: Any, width: float, height: float) -> Sheet:
    spec = reader.object(raw, "sheet", {"page", "columns", "rows", "margin", "pitch"}, {"page", "columns", "rows"})
    page = spec["page"]
    if isinstance(page, str):
        if page not in PAGES:
            raise reader.fail("sheet.page", f"is {page!r}; use {', '.join(PAGES)} or {{width, height}} in mm")
        page_w, page_h = PAGES[page]
    else:
        dims = reader.object(page, "sheet.page", {"width", "height"}, {"width", "height"})
        page_w = reader.number(dims["width"], "sheet.page.width", 10, 2000)
        page_h = reader.number(dims["height"], "sheet.page.height", 10, 2000)
    columns = reader.integer(spec["columns"], "sheet.columns", 1, 100)
    rows = reader.integer(spec["rows"], "sheet.rows", 1, 100)
    margin = reader.object(spec.get("margin", {}), "sheet.margin", {"left", "top"}, set())
    pitch = reader.object(spec.get("pitch", {}), "sheet.pitch", {"x", "y"}, set())
    left = reader.number(margin.get("left", 0), "sheet.margin.left", 0, page_w)
    top = reader.number(margin.get("top", 0), "sheet.margin.top", 0, page_h)
    pitch_x = reader.number(pitch.get("x", width), "sheet.pitch.x", width, page_w)
    pitch_y = reader.number(pitch.get("y", height), "sheet.pitch.y", height, page_h)
    right = left + (columns - 1) * pitch_x + width
    bottom = top + (rows - 1) * pitch_y + height
    if right > page_w + 1e-6 or bottom > page_h + 1e-6:
        raise reader.fail("sheet", f"needs {right:g} x {bottom:g} mm but the page is {page_w:g} x {page_h:g} mm")
    return Sheet(page_w, page_h, columns, rows, left, top, pitch_x, pitch_y)


def template_fields(template: str, fail: Callable[[str], Invalid]) -> tuple[str, ...]:
    """The fields a template names, refusing unknown fields, formats and stray braces."""
    found = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise fail(f"has a stray brace ({exc}); write {{{{ or }}}} for a literal brace") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in FIELDS:
            raise fail(f"names unknown field {{{field}}}; fields are {', '.join(FIELDS)}")
        if spec or conversion:
            raise fail(f"formats field {{{field}}}; write plain {{{field}}}")
        found.append(field)
    return tuple(found)


class _Builder:
    """Turns element specs into elements in dots, checking each against the label."""

    def __init__(self, reader: _Reader, folder: Path, width: float, height: float, dpi: int) -> None:
        self.reader, self.folder, self.width, self.height, self.dpi = reader, folder, width, height, dpi
        self.files: list[Path] = []

    def dots(self, mm: float) -> int:
        return round(mm * self.dpi / MM_PER_INCH)

    def mm(self, dots: float) -> float:
        return dots * MM_PER_INCH / self.dpi

    def element(self, index: int, spec: Any) -> Element:
        if not isinstance(spec, dict):
            raise self.reader.fail(f"element {index}", "must be an object {...}")
        kind = spec.get("type")
        name = spec.get("name")
        label = f"element {index} ({kind} {name!r})" if isinstance(name, str) else f"element {index} ({kind})"
        makers = {"text": self.text, "qr": self.qr, "code128": self.code128, "image": self.image,
                  "line": self.line, "box": self.box}
        if kind not in makers:
            raise self.reader.fail(label, f"has type {kind!r}; use one of {', '.join(makers)}")
        return makers[kind](label, spec)

    def _keys(self, label: str, spec: dict[str, Any], allowed: set[str], required: set[str]) -> None:
        self.reader.object(spec, label, allowed | {"type", "name"}, required)

    def _box(self, label: str, x: float, y: float, w: float, h: float) -> tuple[int, int, int, int]:
        """Refuse a box that leaves the label, then snap it to dots."""
        if x + w > self.width + 1e-6:
            raise self.reader.fail(label, f"reaches {x + w:g} mm across but the label is {self.width:g} mm wide")
        if y + h > self.height + 1e-6:
            raise self.reader.fail(label, f"reaches {y + h:g} mm down but the label is {self.height:g} mm high")
        left, top = self.dots(x), self.dots(y)
        return left, top, self.dots(x + w) - left, self.dots(y + h) - top

    def _position(self, label: str, spec: dict[str, Any], *sizes: str) -> list[float]:
        num = self.reader.number
        return [num(spec["x"], f"{label} x"), num(spec["y"], f"{label} y")] + [
            num(spec[key], f"{label} {key}", low=0.01) for key in sizes
        ]

    def text(self, label: str, spec: dict[str, Any]) -> Text:
        self._keys(label, spec, {"x", "y", "width", "size", "min_size", "text", "bold", "align", "overflow"},
                   {"x", "y", "width", "size", "text"})
        x, y, w, size = self._position(label, spec, "width", "size")
        min_size = self.reader.number(spec.get("min_size", size), f"{label} min_size", low=0.5, high=size)
        template = spec["text"]
        if not isinstance(template, str) or not template.strip():
            raise self.reader.fail(label, "needs some text")
        fields = template_fields(template, lambda problem: self.reader.fail(label, problem))
        box = self._box(label, x, y, w, size)  # Vera's ascent and descent add up to one em
        element = Text(label, *box, template=template, fields=fields, size=size * self.dpi / MM_PER_INCH,
                       min_size=min_size * self.dpi / MM_PER_INCH,
                       bold=self.reader.flag(spec.get("bold", False), f"{label} bold"),
                       align=self.reader.choice(spec.get("align", "left"), f"{label} align", ALIGN),
                       overflow=self.reader.choice(spec.get("overflow", "shrink"), f"{label} overflow", OVERFLOW))
        if not fields:
            fit_text(element, template)  # static text must fit now
        return element

    def qr(self, label: str, spec: dict[str, Any]) -> QR:
        self._keys(label, spec, {"x", "y", "size", "module", "quiet", "ecc", "payload"}, {"x", "y", "size", "module"})
        x, y, size, module_mm = self._position(label, spec, "size", "module")
        module = max(1, self.dots(module_mm))
        if self.mm(module) < MIN_QR_MODULE_MM:
            raise self.reader.fail(
                label, f"asks for {module_mm:g} mm QR modules, {module} dot(s) = {self.mm(module):.3f} mm at {self.dpi} dpi: "
                       f"under {MIN_QR_MODULE_MM} mm, too small to scan; use a module of at least {MIN_QR_MODULE_MM} mm")
        if module > MAX_QR_MODULE_DOTS:
            raise self.reader.fail(label, f"asks for {module} dots per QR module; ZPL printers allow at most "
                                          f"{MAX_QR_MODULE_DOTS}")
        quiet = self.reader.integer(spec.get("quiet", MIN_QUIET), f"{label} quiet", MIN_QUIET, 40)
        box = self._box(label, x, y, size, size)
        if (QR_V1 + 2 * quiet) * module > box[2]:
            raise self.reader.fail(
                label, f"is {size:g} mm, too small for even the smallest QR code ({QR_V1} modules and a quiet zone of "
                       f"{quiet}) at {self.mm(module):.3f} mm per module")
        return QR(label, *box, module=module, quiet=quiet,
                  ecc=self.reader.choice(spec.get("ecc", "M"), f"{label} ecc", ECC),
                  payload=self.reader.choice(spec.get("payload", "claim"), f"{label} payload", QR_PAYLOADS))

    def code128(self, label: str, spec: dict[str, Any]) -> Code128:
        self._keys(label, spec, {"x", "y", "width", "height", "module", "data"}, {"x", "y", "width", "height", "module"})
        x, y, w, h, module_mm = self._position(label, spec, "width", "height", "module")
        module = max(1, self.dots(module_mm))
        if self.mm(module) < MIN_BAR_MODULE_MM - 1e-3:
            raise self.reader.fail(
                label, f"asks for {module_mm:g} mm bars, {module} dot(s) = {self.mm(module):.3f} mm at {self.dpi} dpi: "
                       f"under {MIN_BAR_MODULE_MM} mm, too narrow to scan")
        template = spec.get("data", "{serial}")
        if not isinstance(template, str) or not template:
            raise self.reader.fail(label, "data must be a text template such as \"{serial}\"")
        fields = template_fields(template, lambda problem: self.reader.fail(label, problem))
        box = self._box(label, x, y, w, h)
        if (MIN_CODE128 + 2 * BAR_QUIET) * module > box[2]:
            raise self.reader.fail(label, f"is {w:g} mm wide, too narrow for even one Code128 character and its quiet zones")
        return Code128(label, *box, module=module, template=template, fields=fields)

    def image(self, label: str, spec: dict[str, Any]) -> Image:
        self._keys(label, spec, {"x", "y", "width", "height", "file"}, {"x", "y", "width", "height", "file"})
        x, y, w, h = self._position(label, spec, "width", "height")
        box = self._box(label, x, y, w, h)
        try:
            path = inside(self.folder, spec["file"], f"{label} file")
        except (Invalid, NotFound) as exc:
            raise self.reader.fail(label, f"cannot use its image: {exc}") from None
        try:
            with PILImage.open(path) as source:
                picture = source.convert("RGBA")
        except (OSError, ValueError) as exc:
            raise self.reader.fail(label, f"file {spec['file']!r} is not an image pillow can read ({exc})") from None
        self.files.append(path)
        return Image(label, *box, bitmap=_fit_bitmap(picture, box[2], box[3]))

    def line(self, label: str, spec: dict[str, Any]) -> Fill:
        self._keys(label, spec, {"x", "y", "length", "thickness", "direction"}, {"x", "y", "length"})
        x, y, length = self._position(label, spec, "length")
        thickness = self.reader.number(spec.get("thickness", 0.25), f"{label} thickness", low=0.01)
        direction = self.reader.choice(spec.get("direction", "horizontal"), f"{label} direction", ("horizontal", "vertical"))
        w, h = (length, thickness) if direction == "horizontal" else (thickness, length)
        left, top, wd, hd = self._box(label, x, y, w, h)
        return Fill(label, left, top, max(1, wd), max(1, hd))

    def box(self, label: str, spec: dict[str, Any]) -> Fill:
        """A box outline, kept as one element; compose() draws its four sides."""
        self._keys(label, spec, {"x", "y", "width", "height", "thickness"}, {"x", "y", "width", "height"})
        x, y, w, h = self._position(label, spec, "width", "height")
        thickness = self.reader.number(spec.get("thickness", 0.25), f"{label} thickness", low=0.01, high=min(w, h) / 2)
        left, top, wd, hd = self._box(label, x, y, w, h)
        return Outline(label, left, top, wd, hd, thickness=max(1, self.dots(thickness)))


@dataclass(frozen=True)
class Outline(Fill):
    """A box outline of ``thickness`` dots."""

    thickness: int


def _fit_bitmap(picture: PILImage.Image, width: int, height: int) -> PILImage.Image:
    """The image scaled to fit the box (aspect kept, centred), on white, dithered to black and white."""
    scale = min(width / picture.width, height / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    canvas = PILImage.new("RGBA", (width, height), "white")
    scaled = picture.resize(size, PILImage.Resampling.LANCZOS)
    canvas.alpha_composite(scaled, ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas.convert("L").convert("1")


def _check_quiet_zones(where: str, elements: tuple[Element, ...]) -> None:
    """Nothing may be drawn inside a QR element's box: its quiet zone must stay blank to scan."""
    for code in (e for e in elements if isinstance(e, QR)):
        for other in elements:
            if other is code:
                continue
            for x, y, w, h in _inked(other):
                if x < code.x + code.w and code.x < x + w and y < code.y + code.h and code.y < y + h:
                    raise Invalid(f"{where}: {other.label} overlaps {code.label}, whose quiet zone must stay blank")


def _inked(element: Element) -> list[tuple[int, int, int, int]]:
    """The rectangles an element may draw on (an outline only inks its four sides)."""
    if isinstance(element, Outline):
        return outline_sides(element)
    return [(element.x, element.y, element.w, element.h)]


def outline_sides(box: Outline) -> list[tuple[int, int, int, int]]:
    """The four filled sides of a box outline."""
    t = box.thickness
    return [(box.x, box.y, box.w, t), (box.x, box.y + box.h - t, box.w, t),
            (box.x, box.y, t, box.h), (box.x + box.w - t, box.y, t, box.h)]


@dataclass(frozen=True)
class FittedText:
    """A text as it will be drawn: maybe shrunk, maybe cut with an ellipsis."""

    text: str
    size: float  # dots


def fit_text(element: Text, text: str) -> FittedText:
    """Fit ``text`` in the element's width: shrink down to min_size, then cut (ellipsis) or refuse (shrink)."""
    natural = fonts.width(text, element.bold, element.size)
    if natural <= element.w:
        return FittedText(text, element.size)
    size = element.size * element.w / natural
    if size >= element.min_size:
        return FittedText(text, size)
    if element.overflow == "ellipsis":
        cut = text
        while cut and fonts.width(cut.rstrip() + fonts.ELLIPSIS, element.bold, element.min_size) > element.w:
            cut = cut[:-1]
        return FittedText(cut.rstrip() + fonts.ELLIPSIS, element.min_size)
    raise Invalid(
        f"{element.label} cannot fit {text!r} in its width even at its min_size; widen the element, lower min_size, "
        f"or set overflow: \"ellipsis\""
    )
