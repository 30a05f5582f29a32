"""The production line's pages: a scan issues the unit's claim ID, prints its label, flashes it on a rig slot
and confirms its registration; every browser watching sees each step as it happens (server-sent events).

The page drives the unit cycle of ``station.line`` (the one owner of its checks, steps and verdict, which
``station rig run`` drives too); the issue goes through the app's one writer. Each slot's cycle runs on a
thread of its own with its own database connection, so a unit that hangs holds up only its own tile.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue

from .. import times
from ..config import Config
from ..core import lifecycle
from ..core.errors import Conflict, Invalid, NotFound, StationError, Unavailable
from ..core.models import stored
from ..labels.printing import has_label, preview_png, print_label
from ..line.cycle import FAIL, PASS, UnitCycle, Verdict
from ..rig import settings as rig_settings
from ..rig.console import Connect
from ..rig.flash import Progress
from ..rig.port import serial_console
from ..rig.slots import Rig
from ..serve.writer import Writer
from ..store import Device, Store
from . import serialized
from .bodies import parse_object
from .pages import signed_in
from .runtime import runtime

log = logging.getLogger("station.web.line")

WATCHERS = 6  # open line pages; each holds a server thread, and devices must always find one free (server.THREADS)
# Seconds between SSE comments. A stream whose tab was closed learns it only when a write fails (the second one
# after the close, each hop of a worker's relay alike), so this sets how soon a closed tab frees its slot.
KEEPALIVE = 1.0
STREAM_FOR = 300.0  # an event stream ends after this; EventSource reconnects, so no request thread is held forever
RECENT = 5


@dataclass
class Tile:
    """What one slot's tile shows: idle, busy with a unit, or its verdict, which stays until the next scan."""

    slot: str
    status: str = "idle"  # idle | busy | pass | fail | void
    uci: str | None = None
    display: str | None = None
    product: str | None = None
    serial: str | None = None
    printer: str | None = None
    step: str | None = None
    message: str = ""
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, str]] = field(default_factory=list)


class Line:
    """The slots of this station, their tiles, and the browsers watching them."""

    def __init__(self, config: Config, writer: Writer, connect: Connect = serial_console) -> None:
        """``connect`` opens a slot's console: its serial port, unless a test gives another."""
        self.config = config
        self.writer = writer
        self.settings = rig_settings.load(config)
        self.rig = Rig.of(config, self.settings, connect=connect)
        self.tiles = {name: Tile(name) for name in self.settings.slots}
        self._lock = threading.Lock()
        self._watchers: list[queue.Queue[str]] = []

    # --- what browsers see --------------------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(tile) for tile in self.tiles.values()]

    def _publish(self, tile: Tile) -> None:
        message = f"event: tile\ndata: {json.dumps(asdict(tile))}\n\n"
        with self._lock:
            for watcher in self._watchers:
                watcher.put(message)

    def admit(self) -> queue.Queue[str]:
        """A place among the watchers, taken in the same step as the count is checked (parallel requests cannot
        all pass the check), or 503 when enough pages already watch (each holds a server thread). Whoever is
        admitted must ``leave`` once, whether or not its stream ever runs."""
        with self._lock:
            if len(self._watchers) >= WATCHERS:
                raise Unavailable(f"{WATCHERS} pages already follow the line; close a browser tab and reload this page")
            mine: queue.Queue[str] = queue.Queue()
            self._watchers.append(mine)
            return mine

    def leave(self, mine: queue.Queue[str]) -> None:
        """Give an admitted watcher's place back (again is harmless)."""
        with self._lock:
            if mine in self._watchers:
                self._watchers.remove(mine)

    def watch(self, mine: queue.Queue[str]) -> Iterator[str]:
        """An admitted watcher's event stream: every tile now, then each change, with keep-alive comments; it
        ends by itself, and gives its place back however it ends."""
        try:
            yield "retry: 2000\n\n"
            for tile in self.snapshot():
                yield f"event: tile\ndata: {json.dumps(tile)}\n\n"
            ends = time.monotonic() + STREAM_FOR
            while time.monotonic() < ends:
                try:
                    yield mine.get(timeout=KEEPALIVE)
                except queue.Empty:
                    yield ": keep-alive\n\n"
        finally:
            self.leave(mine)

    # --- what operators do --------------------------------------------------------------------------------

    def _tile(self, slot: str) -> Tile:
        if slot not in self.tiles:
            known = ", ".join(self.tiles) or "none: configure slots in station.json5"
            raise NotFound(f"no rig slot {slot!r} (slots: {known})")
        return self.tiles[slot]

    def scan(self, actor: str, product: str, printer: str, slot: str, serial: str | None) -> dict[str, Any]:
        """Issue a claim ID for the unit just scanned and start its cycle on ``slot``."""
        with self._taken(slot) as tile:  # taken before the write: two scans cannot start one slot
            cycle = self._unit_cycle(slot, actor, printer)
            cycle.check(label=True, product=product)  # an unknown printer, a missing finalize file or a console
            # that does not open spends no claim ID
            device = self.writer.call(cycle.issue, product, serial)
        return self._begin(tile, actor, device, printer, label=True)

    def reflash(self, actor: str, slot: str, device: Device) -> dict[str, Any]:
        """Run a stored unit's cycle again on ``slot`` (a device page's re-flash): no claim ID is issued and no
        label printed; a void unit is refused by the life cycle before the slot is taken."""
        lifecycle.advance(device.state, "flashed")
        with self._taken(slot) as tile:
            self._unit_cycle(slot, actor, None).check(label=False, product=device.product)
        return self._begin(tile, actor, device, None, label=False)

    @contextmanager
    def _taken(self, slot: str) -> Iterator[Tile]:
        """Mark the slot busy unless it is, in one step; give it back as it was if starting its unit fails."""
        tile = self._tile(slot)
        with self._lock:
            if tile.status == "busy":
                raise Conflict(f"slot {slot} is still busy with {tile.display}; wait for its verdict or use another slot")
            before, tile.status = tile.status, "busy"
        try:
            yield tile
        except BaseException:
            with self._lock:
                tile.status = before  # the slot's last unit stays on its tile, with its buttons
            raise

    def _begin(self, tile: Tile, actor: str, device: Device, printer: str | None, *, label: bool) -> dict[str, Any]:
        """Put the unit on its taken slot's tile and start its cycle."""
        with self._lock:
            self.tiles[tile.slot] = Tile(tile.slot, "busy", device.uci, device.display, device.product, device.serial,
                                         printer, recent=tile.recent)
        self._start(tile.slot, actor, label=label)
        return asdict(self.tiles[tile.slot])

    @contextmanager
    def _working(self, slot: str, what: str) -> Iterator[tuple[Tile, str]]:
        """Check that the slot holds a finished unit and mark it busy in one step; undo that if ``what`` fails."""
        tile = self._tile(slot)
        with self._lock:
            if tile.uci is None or tile.status in ("busy", "idle", "void"):
                raise Conflict(f"slot {slot} has no finished unit to {what}")
            before, tile.status = tile.status, "busy"
        try:
            yield tile, before
        except BaseException:
            with self._lock:
                tile.status = before
            raise

    def retry(self, actor: str, slot: str) -> dict[str, Any]:
        """Run the failed unit's cycle again: the label only if it has none yet, then the flash."""
        with self._working(slot, "retry") as (tile, _):
            with Store.configured(self.config) as store:
                label = not has_label(store, tile.uci or "")
            with self._lock:
                tile.reason, tile.steps = "", []
            self._start(slot, actor, label=label)
        return asdict(tile)

    def reprint(self, actor: str, slot: str, reason: str) -> dict[str, Any]:
        if not reason.strip():
            raise Invalid("say why the label is printed again (for example: smudged, torn, lost)")
        with self._working(slot, "reprint") as (tile, before):
            with Store.configured(self.config) as store:
                print_label(store, self.config, tile.uci or "", printer=tile.printer, actor=actor, reason=reason.strip())
            with self._lock:
                tile.status = before
        self._step(slot, "label", f"label printed again: {reason.strip()}")
        return asdict(tile)

    def void(self, actor: str, slot: str, reason: str) -> dict[str, Any]:
        with self._working(slot, "void") as (tile, _):
            uci = tile.uci or ""
            self.writer.call(Store.void, uci, reason, actor)
            with self._lock:
                tile.status, tile.reason = "void", f"voided: {reason.strip()}"
        self._publish(tile)
        return asdict(tile)

    # --- the cycle ----------------------------------------------------------------------------------------

    def _unit_cycle(self, slot: str, actor: str, printer: str | None) -> UnitCycle:
        return UnitCycle(self.config, self.rig, self.settings.slot(slot), actor=actor, printer=printer,
                         progress=lambda p: self._progress(slot, p))

    def _start(self, slot: str, actor: str, *, label: bool) -> None:
        self._publish(self.tiles[slot])
        threading.Thread(target=self._cycle, args=(slot, actor, label), name=f"line-{slot}", daemon=True).start()

    def _step(self, slot: str, step: str, message: str) -> None:
        tile = self.tiles[slot]
        with self._lock:
            if tile.steps and tile.steps[-1]["step"] == step:
                tile.steps[-1]["message"] = message
            else:
                tile.steps.append({"step": step, "message": message})
            tile.step, tile.message = step, message
        self._publish(tile)

    def _cycle(self, slot: str, actor: str, label: bool) -> None:
        tile = self.tiles[slot]
        uci = tile.uci or ""
        cycle = self._unit_cycle(slot, actor, tile.printer)
        try:
            with Store.configured(self.config) as store:
                verdict = cycle.run(store, uci, label=label)
        except Exception as exc:  # never leave a tile busy: the operator must see what happened
            log.exception("line cycle crashed", extra={"slot": slot, "uci": uci})
            verdict = Verdict(uci, False, "station", str(exc) if isinstance(exc, StationError) else f"the station failed: {exc}")
            try:
                self.writer.call(cycle.record, verdict)
            except StationError:
                log.exception("could not record a line failure", extra={"slot": slot, "uci": uci})
        passed = verdict.passed
        with self._lock:
            tile.status = "pass" if passed else "fail"
            tile.step, tile.reason = (None, "") if passed else (verdict.step, verdict.reason)
            tile.message = verdict.reason if passed else ""
            tile.recent = ([{"display": tile.display or "", "verdict": "PASS" if passed else "FAIL"}] + tile.recent)[:RECENT]
        self._publish(tile)

    def _progress(self, slot: str, progress: Progress) -> None:
        detail = f" ({progress.done}/{progress.total})" if progress.total else ""
        self._step(slot, progress.step, progress.message + detail)

    # --- reports ------------------------------------------------------------------------------------------

    def today(self, store: Store) -> dict[str, dict[str, int]]:
        """Passes and fails since the station's midnight, per slot and for the station (key ``""``)."""
        counts: dict[str, dict[str, int]] = {"": {"pass": 0, "fail": 0}}
        for row in store.counts_by_slot((PASS, FAIL), since_midnight(self.config)):
            verdict = "pass" if row["kind"] == PASS else "fail"
            counts.setdefault(row["slot"] or "", {"pass": 0, "fail": 0})[verdict] += row["n"]
            if row["slot"]:
                counts[""][verdict] += row["n"]
        return counts

    def close(self) -> None:
        self.rig.close()


def since_midnight(config: Config) -> str:
    """The station's midnight as a stored time: where the page's counts of today start."""
    return stored(times.day_start(config.zone))


# --- routes -------------------------------------------------------------------------------------------------

bp = Blueprint("line", __name__)


def line() -> Line:
    return current_app.extensions["line"]


def _actor() -> str:
    return g.user.actor


def _field(name: str) -> str:
    body = parse_object(request.get_data(cache=True))  # NUL and lone surrogates are refused here, as everywhere
    value = body.get(name, "")
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text")
    return value.strip()


@bp.get("/")
@signed_in("watch")
def page() -> ResponseReturnValue:
    try:
        products, down = [p for p in runtime().reader().products() if p.enabled], None
    except Unavailable as exc:  # the registry is down: the page and its slots still show, with why
        products, down = [], str(exc)
    return render_template("line.html", products=products, printers=sorted(runtime().config.get("printers")),
                           slots=list(line().tiles), database_down=down)


@bp.get("/line/state")
@signed_in("watch", api=True)
def state() -> ResponseReturnValue:
    """The tiles (kept by the station, whatever the database does), today's counts, and ``database``: None, or why
    the database cannot be reached (the page's banner), while the station reconnects by itself."""
    try:
        today, down = line().today(runtime().reader()), None
    except Unavailable as exc:
        today, down = None, str(exc)
    return jsonify(tiles=line().snapshot(), today=today, database=down)


@bp.get("/line/events")
@signed_in("watch", api=True)
def events() -> ResponseReturnValue:
    the_line = line()
    mine = the_line.admit()
    try:
        response = Response(stream_with_context(the_line.watch(mine)), mimetype="text/event-stream",
                            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    except BaseException:
        the_line.leave(mine)
        raise
    response.call_on_close(lambda: the_line.leave(mine))  # also when the server never starts the stream
    return response


@bp.post("/line/units")
@signed_in("issue", api=True)
def scan() -> ResponseReturnValue:
    serial = _field("serial") or None
    return jsonify(line().scan(_actor(), _field("product"), _field("printer"), _field("slot"), serial)), 202


@bp.post("/line/slots/<slot>/retry")
@signed_in("issue", api=True)
def retry(slot: str) -> ResponseReturnValue:
    return jsonify(line().retry(_actor(), slot)), 202


@bp.post("/line/slots/<slot>/reprint")
@signed_in("issue", api=True)
def reprint(slot: str) -> ResponseReturnValue:
    return jsonify(line().reprint(_actor(), slot, _field("reason")))


@bp.post("/line/slots/<slot>/void")
@signed_in("void", api=True)
def void(slot: str) -> ResponseReturnValue:
    return jsonify(line().void(_actor(), slot, _field("reason")))


@bp.get("/devices/<uci>/label.png")
@signed_in(api=True)
def label_preview(uci: str) -> ResponseReturnValue:
    png = preview_png(runtime().reader(), runtime().config, uci)
    return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.get("/line/serialized")
@signed_in(api=True)
def serialized_units() -> ResponseReturnValue:
    """Units that serialized themselves, and today's IDs without registration per unit address (the page polls)."""
    rt = runtime()
    return jsonify(serialized.report(rt.reader(), rt.config, rt.factory_labels, since_midnight(rt.config)))


@bp.post("/line/serialized/<uci>/print")
@signed_in("issue", api=True)
def print_serialized(uci: str) -> ResponseReturnValue:
    """Print the label of a unit whose factory label did not print, on the printer the page names."""
    printer = _field("printer")
    if not printer:
        raise Invalid("choose the printer for this label (the Printer list at the top of the page)")
    config = runtime().config
    with Store.configured(config) as store:
        result = print_label(store, config, uci, printer=printer, actor=_actor())
    return jsonify(printer=result.printer, where=result.where)
