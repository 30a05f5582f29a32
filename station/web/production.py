"""The production view: how the line is doing (units per hour, first-pass yield, retests, why units fail), for
today, the current shift and the last 7 days, for the station or one slot. The page draws it (charts made on
the server, charts.py); /api/v1/production gives the same report as JSON or CSV to tools; a display account, or
``?display=1``, gets large tiles for a screen beside the line that refresh themselves and offer no action.

The figures are defined once, in station/production.py; this module only chooses the span and the slot.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from .. import production, times
from ..core.errors import Invalid
from . import charts
from .access import require
from .pages import may, signed_in
from .runtime import runtime

bp = Blueprint("production", __name__)

SPANS = {"today": "Today", "shift": "This shift", "7d": "Last 7 days"}  # the keys of times.spans, as the page names them
FORMATS = ("json", "csv")
REFRESH = 30  # seconds between two looks of a display screen
SLOT_MAX = 100  # characters of a slot name asked for (config slots are short names)


def _report() -> production.Report:
    """The report the request asks for: ``span`` (today, shift or 7d) and ``slot`` (none: the station)."""
    name = request.args.get("span") or "today"
    if name not in SPANS:
        raise Invalid(f"span must be today, shift or 7d (the current shift, the last 7 days), not {name[:40]!r}")
    slot = (request.args.get("slot") or "").strip() or None
    if slot is not None and len(slot) > SLOT_MAX:
        raise Invalid(f"slot must be a slot's name (at most {SLOT_MAX} characters)")
    config = runtime().config
    span = times.spans(config.get("shifts"), config.zone)[name]
    return production.report(runtime().reader(), span, slot, zone=config.zone)


def _export(report: production.Report) -> ResponseReturnValue:
    """The report as ``format`` asks: JSON (all of it), or CSV (one ``part``: figures, hours or failures)."""
    kind = request.args.get("format") or "json"
    if kind not in FORMATS:
        raise Invalid(f"format must be json or csv, not {kind[:40]!r}")
    if kind == "json":
        return jsonify(report.to_json())
    part = request.args.get("part") or "figures"
    name = f"production-{report.span.name}{f'-{report.slot}' if report.slot else ''}-{part}.csv"
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in name)
    return Response(report.to_csv(part), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})


@bp.get("/api/v1/production")
def api() -> ResponseReturnValue:
    """The production report for tools: a token with the read scope, or a page's session (access.caller)."""
    caller = runtime().access.caller(request)
    g.caller = caller.actor
    require(caller, "watch")
    return _export(_report())


@bp.get("/production/export")
@signed_in("watch", api=True)
def export() -> ResponseReturnValue:
    """The page's downloads: the API's report, for the signed-in user's session."""
    return _export(_report())


@bp.get("/production")
@signed_in("watch")
def page() -> ResponseReturnValue:
    report = _report()
    config = runtime().config
    zone_name = datetime.now(UTC).astimezone(config.zone).tzname() or str(config.zone)
    slots = sorted(set(config.get("slots")) | {f.slot for f in report.slots if f.slot})
    display = request.args.get("display") == "1" or not may("read")  # an account that may only watch: a screen
    return render_template(
        "production.html", report=report, display=display, refresh=REFRESH, spans=SPANS, slots=slots,
        definitions=production.DEFINITIONS, parts=production.PARTS, zone_name=zone_name,
        updated=times.shown(report.span.end, config.zone), hourly=charts.hourly(report.hours, zone_name),
        pareto=charts.pareto(report.failures))
