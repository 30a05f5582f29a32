"""The devices pages: the list that answers questions (filters, sort and page in the URL) and each device's
page with its history and what may be done to it: reprint its label, void it, re-flash it on a slot.

Every action is the library call the CLI or the line makes (``print_label`` as ``station reprint``,
``Store.void`` through the writer as the line's void, the line's unit cycle), and ends in a redirect to the
device page (POST/redirect/GET), whose history then holds its events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core import lifecycle
from ..core.errors import Invalid, NotFound, StationError
from ..db.devices import LIST_SORTS
from ..labels.printing import label_problem, print_label
from ..store import Store
from .bodies import parse_int
from .line import line
from .pages import page_error, signed_in
from .runtime import runtime

PAGE = 50
MAX_PAGE = 10**6  # pages of the device list: far beyond any registry, within what SQLite's OFFSET takes
DEFAULT_SORT = "issued"  # newest first: the unit that just passed is at the top
ORDERS = ("asc", "desc")
COLUMNS = (("claim", "Claim ID"), ("state", "State"), ("product", "Product"), ("batch", "Batch"), ("serial", "Serial"),
           ("issued", "Issued"))
DONE = {  # what the device page says after an action (fixed texts: nothing a request sent is shown back)
    "reprint": "The label was printed again.",
    "void": "The device is void now; its claim ID is never issued again.",
    "reflash": "The re-flash has started; its steps appear in the history as they happen.",
}

bp = Blueprint("devices", __name__)
bp.register_error_handler(StationError, page_error)  # a person sees the page's message, not the API's JSON


def first_order(sort: str) -> str:
    """The order a column sorts in when its header is first clicked: issue time newest first, the rest A to Z."""
    return "desc" if sort == DEFAULT_SORT else "asc"


def sorting(args: Mapping[str, str]) -> tuple[str, str]:
    """The list's sort key and order from the URL, each refused with a message naming the ones there are."""
    sort = args.get("sort") or DEFAULT_SORT
    if sort not in LIST_SORTS:
        raise Invalid(f"unknown sort {sort[:40]!r}: sort by one of {', '.join(LIST_SORTS)}")
    order = args.get("order") or first_order(sort)
    if order not in ORDERS:
        raise Invalid(f"unknown order {order[:40]!r}: asc or desc")
    return sort, order


@bp.get("/devices")
@signed_in()
def listing() -> ResponseReturnValue:
    """Search by any typed form of a claim code or a serial, or list by batch, state and product, sorted and paged."""
    store = runtime().reader()
    q = request.args.get("q", "").strip()
    filters = {key: request.args.get(key) or None for key in ("product", "batch", "state", "station")}
    sort, order, page, total = DEFAULT_SORT, first_order(DEFAULT_SORT), 1, 0
    error, status = None, 200
    found: list[Any] = []
    try:
        sort, order = sorting(request.args)
        page = parse_int(request.args.get("page"), "page", 1, MAX_PAGE, default=1)
        if q:
            try:
                return redirect(url_for("devices.device", uci=store.find(q).uci))
            except StationError as exc:
                found = list(store.devices(serial=q, limit=PAGE))
                if len(found) == 1:
                    return redirect(url_for("devices.device", uci=found[0].uci))
                if not found:
                    raise exc from None
                total = len(found)
        else:
            found, total = store.listing(sort=sort, descending=order == "desc", **filters, limit=PAGE,
                                         offset=(page - 1) * PAGE)
            if not found and page > 1:
                raise NotFound(f"page {page} is past the end: {total:,} devices make {max(1, -(-total // PAGE)):,} "
                               f"page(s) of {PAGE}")
    except StationError as exc:  # shown on the list itself, its filters kept, so that the person can change them
        error, status = str(exc), exc.status
    products = store.products()
    kept = {key: value for key, value in {**filters, "sort": sort, "order": order}.items() if value}
    return render_template(
        "devices.html", devices=found, total=total, page=page, pages=max(1, -(-total // PAGE)), size=PAGE, q=q,
        error=error, filters=filters, sort=sort, order=order, kept=kept, columns=COLUMNS, first_order=first_order,
        names={p.id: p.name for p in products}, products=products, batches=store.batches(),
        states=lifecycle.ALL_STATES, stations=store.stations(),
    ), status


@bp.get("/devices/<uci>")
@signed_in()
def device(uci: str) -> ResponseReturnValue:
    return _device_page(uci, notice=DONE.get(request.args.get("done", "")))


def _device_page(uci: str, *, notice: str | None = None, error: str | None = None,
                 status: int = 200) -> ResponseReturnValue:
    store, config = runtime().reader(), runtime().config
    found = store.device(uci)
    held = store.credentials_of(uci)  # usernames, serials, fingerprints: never a secret or a key
    tiles = line().snapshot()
    return render_template(
        "device.html", device=found, product=store.product(found.product), events=store.events(uci),
        credentials=held, provisioning=found.provisioning, notice=notice, error=error,
        printers=sorted(config.get("printers")), default_printer=config.get("label_printer"), slots=tiles,
        working=[t["slot"] for t in tiles if t["uci"] == uci and t["status"] == "busy"],
        voidable=_allows(lifecycle.void, found.state), label_problem=label_problem(store, config, found),
        flashable=_allows(lambda state: lifecycle.advance(state, "flashed"), found.state),
    ), status


def _allows(rule: Callable[[str], str], state: str) -> bool:
    """Whether the life cycle's ``rule`` takes a device in ``state`` (the page offers only what it allows)."""
    try:
        rule(state)
    except StationError:
        return False
    return True


def _act(uci: str, done: str, action: Callable[[], object]) -> ResponseReturnValue:
    """Run a device page's action, then show the device page: after a redirect when it was done, at once with
    the refusal's message (and its status) when not."""
    runtime().reader().device(uci)  # an unknown claim ID is the 404 page, whatever the action
    try:
        action()
    except StationError as exc:
        return _device_page(uci, error=str(exc), status=exc.status)
    return redirect(url_for("devices.device", uci=uci, done=done), 303)


def _reason(what: str) -> str:
    reason = request.form.get("reason", "").strip()
    if not reason:
        raise Invalid(f"say why {what} (the Reason field)")
    return reason


@bp.post("/devices/<uci>/reprint")
@signed_in("issue")
def reprint(uci: str) -> ResponseReturnValue:
    """Print the device's label again on a configured printer, with the reason (as ``station reprint``)."""

    def action() -> object:
        printer, reason = request.form.get("printer", "").strip(), _reason("the label is printed again")
        if not printer:
            raise Invalid("choose the printer for the label")
        config = runtime().config
        with Store.configured(config) as store:
            return print_label(store, config, store.device(uci), printer=printer, actor=g.user.actor, reason=reason)

    return _act(uci, "reprint", action)


@bp.post("/devices/<uci>/void")
@signed_in("void")
def void(uci: str) -> ResponseReturnValue:
    """Void the device for good, with the reason; the life cycle refuses a device that is void already."""
    return _act(uci, "void", lambda: runtime().writer.call(Store.void, uci, _reason("the device is voided"),
                                                           g.user.actor))


@bp.post("/devices/<uci>/reflash")
@signed_in("issue")
def reflash(uci: str) -> ResponseReturnValue:
    """Run the unit's cycle again on the chosen slot of the line: the flash and its registration, no new claim
    ID and no label; a busy slot is refused (409)."""

    def action() -> object:
        slot = request.form.get("slot", "").strip()
        if not slot:
            raise Invalid("choose the slot the unit is on")
        return line().reflash(g.user.actor, slot, runtime().reader().usable_device(uci))

    return _act(uci, "reflash", action)
