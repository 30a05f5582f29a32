"""The batches pages: the list, and for admins a batch made from the browser (a count, or an uploaded list of
serials) that runs in the background (batchruns.py); each batch's page with its counts, its downloads (manifest,
device files, labels), printing to a configured printer, and resume or void of an interrupted batch.

Every action is the library call the CLI makes (Store.generate_batch, generate_for_serials, resume_batch,
void_batch, batchfiles, printing.print_batch), with the signed-in user as the actor.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from .. import batchfiles, columns, manifest
from ..core import fields, lifecycle
from ..core.errors import Conflict, Invalid, NotFound, StationError
from ..labels import layout as layout_mod
from ..labels import printing
from ..store import Batch, Store
from .batchruns import Job, runs
from .bodies import parse_int
from .pages import page_error, signed_in
from .runtime import runtime

MAX_COUNT = 1_000_000  # claim IDs in one batch made from the browser; `station generate` makes larger ones
MAX_START = 1000  # first free label on a sheet: far beyond any sheet; the layout's own limit is checked by pdf.py
LABEL_FORMATS = {"pdf": "application/pdf", "zpl": "application/octet-stream"}
MANIFEST_TYPES = {"csv": "text/csv", "json": "application/json"}

bp = Blueprint("batches", __name__)


@bp.errorhandler(StationError)
def refused(exc: StationError) -> ResponseReturnValue:
    """A page says what is wrong on a page; the run page's script gets the API's JSON error."""
    if request.endpoint == "batches.run_state":
        from .app import error_reply  # the app imports this module: the one shape of JSON errors is there

        return error_reply(str(exc), exc.status)
    return page_error(exc)


@bp.get("/batches")
@signed_in()
def listing() -> ResponseReturnValue:
    return _listing()


def _listing(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    store = runtime().reader()
    counts: dict[str | None, dict[str, int]] = {}
    for row in store.stats():
        counts.setdefault(row["batch"], {})[row["state"]] = row["devices"]
    products = store.products()
    return render_template("batches.html", batches=store.batches(), counts=counts, states=lifecycle.ALL_STATES,
                           products=products, names={p.id: p.name for p in products}, error=error,
                           form=request.form, max_count=MAX_COUNT), status


@bp.post("/batches")
@signed_in("manage")
def create() -> ResponseReturnValue:
    """Start a new batch in the background and show its progress; a refusal stays on the form."""
    try:
        total, name, job = _new_batch(runtime().reader(), request.form, request.files.get("serials"), g.user.actor)
        run = runs().start("generate", total, name, job)
    except StationError as exc:
        return _listing(str(exc), exc.status)
    return redirect(url_for("batches.run", run_id=run.id))


def _new_batch(store: Store, form: Any, upload: FileStorage | None, actor: str) -> tuple[int, str, Job]:
    """What the form asks for, checked before anything starts: the batch's size, name and its job."""
    product = store.product(form.get("product", ""))
    name = fields.text(form.get("name", "").strip(), "a batch name")
    if _exists(store, name):
        raise Conflict(f"batch name {name!r} is already used; choose another")
    owner = batchfiles.owner(form.get("account", "").strip() or None, form.get("cloud", "").strip() or None)
    count_text = form.get("count", "").strip()
    if upload is not None and upload.filename:
        if count_text:
            raise Invalid("give either a count or a file of serials, not both")
        source = upload.filename
        serials = columns.values(upload.read(), source, form.get("column", "").strip() or None)
        return len(serials), name, lambda s, progress: s.generate_for_serials(
            product.id, serials, name=name, actor=actor, source=source, owner=owner)
    if not count_text:
        raise Invalid("give how many claim IDs to issue, or choose a file of serials")
    count = parse_int(count_text, "the count", 1, MAX_COUNT)
    return count, name, lambda s, progress: s.generate_batch(product.id, count, name=name, actor=actor,
                                                             progress=progress, owner=owner)


def _exists(store: Store, name: str) -> bool:
    try:
        store.batch(name)
    except StationError:
        return False
    return True


@bp.get("/batches/runs/<run_id>")
@signed_in()
def run(run_id: str) -> ResponseReturnValue:
    return render_template("batchrun.html", run=runs().get(run_id))


@bp.get("/batches/runs/<run_id>.json")
@signed_in(api=True)
def run_state(run_id: str) -> ResponseReturnValue:
    """What the run page polls: progress, then the batch's page or the error."""
    found = runs().get(run_id)
    url = url_for("batches.batch", name=found.batch) if found.state == "done" and found.batch else None
    return jsonify({**found.as_json(), "url": url})


@bp.get("/batches/<name>")
@signed_in()
def batch(name: str) -> ResponseReturnValue:
    return _batch_page(name)


def _batch_page(name: str, error: str | None = None, message: str | None = None, status: int = 200,
                failed: str | None = None) -> ResponseReturnValue:
    store, config = runtime().reader(), runtime().config
    try:
        found = store.batch(name)
    except NotFound:
        if error is None:
            raise
        return render_template("error.html", message=error), status  # a new batch whose first rows are not in yet
    counts = {row["state"]: row["devices"] for row in store.stats() if row["batch"] == found.name}
    try:
        layouts = [c.name for c in layout_mod.check_all(layout_mod.directory(config)) if c.layout is not None]
    except StationError:
        layouts = []
    product = store.product(found.product)
    return render_template("batch.html", batch=found, product=product, counts=counts, states=lifecycle.ALL_STATES,
                           running=runs().running(found.name), printers=list(config.get("printers")),
                           default_printer=config.get("label_printer"), layouts=layouts, error=error, failed=failed,
                           message=message, secrets=product.credentials.secret), status


def _usable(name: str) -> Batch:
    """The batch, if complete: refused (409) while a run is still making it, or after one was interrupted."""
    running = runs().running(name)
    if running is not None:
        raise Conflict(f"batch {name!r} is still being made ({running.done:,} of {running.total:,} claim IDs); "
                       f"its downloads open once it is complete")
    return runtime().reader().usable_batch(name)


@contextmanager
def _own_store() -> Iterator[Store]:
    """A connection of this request's own for work that renders or hashes while it writes (labels, secrets), as
    the line's cycles have: the app's one writer keeps serving the line meanwhile."""
    config = runtime().config
    with Store.configured(config) as store:
        yield store


def _download(data: IO[bytes], batch: Batch, suffix: str, mimetype: str) -> Response:
    title = re.sub(r"[^A-Za-z0-9._-]", "_", batch.name)
    return send_file(data, mimetype=mimetype, as_attachment=True, download_name=f"{title}{suffix}")


@bp.get("/batches/<name>/manifest.<fmt>")
@signed_in()
def manifest_file(name: str, fmt: str) -> ResponseReturnValue:
    """The batch's manifest as `station generate --csv/--json` writes it, times in the station's zone."""
    if fmt not in MANIFEST_TYPES:
        return _batch_page(name, error=f"no manifest format {fmt!r}: use csv or json", status=404)
    try:
        found = _usable(name)
    except StationError as exc:
        return _batch_page(name, error=str(exc), status=exc.status)
    out = tempfile.TemporaryFile()  # noqa: SIM115 (send_file closes it once sent): a big batch is not held in memory
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")  # the CSV's own CRLF, untranslated
    manifest.write(runtime().reader().devices(batch=found.name), text, fmt, runtime().config.zone)
    text.flush()
    text.detach()
    out.seek(0)
    return _download(out, found, f".{fmt}", MANIFEST_TYPES[fmt])


@bp.post("/batches/<name>/device-files")
@signed_in("manage")
def device_files(name: str) -> ResponseReturnValue:
    """A zip of the batch's ``<UCI>.json5`` (`station batch files`): with secrets, every download makes new ones."""
    out = io.BytesIO()  # in memory: the secrets in the files never touch the station's disk
    try:
        found = _usable(name)
        with _own_store() as store:
            batchfiles.zip_device_files(store, runtime().config, found, out, g.user.actor)
    except StationError as exc:
        out.close()
        return _batch_page(name, error=str(exc), status=exc.status)
    out.seek(0)
    return _download(out, found, "-device-files.zip", "application/zip")


@bp.post("/batches/<name>/labels")
@signed_in("manage")
def labels(name: str) -> ResponseReturnValue:
    """The batch's labels as a file (`station labels --out`): PDF sheets from a start position, or ZPL. The first
    download records the labels as printed; another needs a reason, as a reprint does."""
    form = request.form
    try:
        fmt = form.get("format", "pdf")
        if fmt not in LABEL_FORMATS:
            raise Invalid(f"labels come as pdf or zpl, not {fmt[:20]!r}")
        start_at = parse_int(form.get("start_at"), "the start position", 1, MAX_START, default=1)
        found = _usable(name)
        with tempfile.TemporaryDirectory(prefix="station-labels-") as folder, _own_store() as store:
            out = Path(folder) / f"labels.{fmt}"
            printing.print_batch(store, runtime().config, found.name, layout=form.get("layout") or None, fmt=fmt,
                                 out=out, start_at=start_at, actor=g.user.actor, reason=form.get("reason") or None)
            data = out.open("rb")  # noqa: SIM115 (send_file closes it; the folder goes, the open file stays)
    except StationError as exc:
        return _batch_page(name, error=str(exc), status=exc.status, failed="labels")
    return _download(data, found, f"-labels.{fmt}", LABEL_FORMATS[fmt])


@bp.post("/batches/<name>/print")
@signed_in("manage")
def print_labels(name: str) -> ResponseReturnValue:
    """Print the batch's labels on a configured printer (`station labels --printer`); a failed print records
    print-failed and leaves every label unprinted."""
    form = request.form
    try:
        found = _usable(name)
        with _own_store() as store:
            result = printing.print_batch(store, runtime().config, found.name, printer=form.get("printer") or None,
                                          layout=form.get("layout") or None, actor=g.user.actor,
                                          reason=form.get("reason") or None)
    except StationError as exc:
        return _batch_page(name, error=str(exc), status=exc.status, failed="print")
    return _batch_page(name, message=f"printed {result.printed + result.reprinted} labels ({result.printed} first "
                                     f"prints, {result.reprinted} reprints) as {result.format} to {result.where}")


@bp.post("/batches/<name>/resume")
@signed_in("manage")
def resume(name: str) -> ResponseReturnValue:
    """Issue the claim IDs an interrupted batch lacks (`station batch resume`), in the background."""
    actor = g.user.actor
    try:
        found = runtime().reader().batch(name)
        if found.complete:
            raise Conflict(f"batch {name!r} is complete; there is nothing to resume")
        started = runs().start("resume", found.count - found.issued, found.name,
                               lambda s, progress: s.resume_batch(found.name, actor=actor, progress=progress))
    except StationError as exc:
        return _batch_page(name, error=str(exc), status=exc.status)
    return redirect(url_for("batches.run", run_id=started.id))


@bp.post("/batches/<name>/void")
@signed_in("manage")
def void(name: str) -> ResponseReturnValue:
    """Give up an interrupted batch (`station batch void`), in the background: its devices become void."""
    actor = g.user.actor
    try:
        reason = fields.reason(request.form.get("reason"), "voiding a batch")
        found = runtime().reader().batch(name)
        if found.complete:
            raise Conflict(f"batch {name!r} is complete; void its devices one by one on their pages")
        started = runs().start("void", found.issued, found.name,
                               lambda s, progress: s.void_batch(found.name, reason, actor=actor))
    except StationError as exc:
        return _batch_page(name, error=str(exc), status=exc.status)
    return redirect(url_for("batches.run", run_id=started.id))
