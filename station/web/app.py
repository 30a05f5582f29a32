"""The Flask app factory: one app for the device endpoints, the JSON API and the operator pages.

The device endpoints sit in front of Flask as WSGI (device.py); blueprints carry the rest. Every error
leaves as ``{"error": "..."}`` with its status, never as an HTML page, and every request is one log line.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from .. import resources
from ..config import Config
from ..core.errors import StationError
from . import api, batches, devices, line, openapi, pages, production, replies, session
from .bodies import Capped
from .device import DeviceEndpoints
from .limits import TooManyAttempts
from .requestlog import log_request
from .runtime import Runtime

log = logging.getLogger("station.web")

HTTP_HINTS = {
    404: "no such endpoint or resource; /api/openapi.json lists the endpoints",
    405: "this endpoint does not take {method}; /api/openapi.json lists the methods",
}


def create_app(config: Config) -> Flask:
    """The station's WSGI app on the data directory of ``config``; close it with ``app.extensions["station"].close()``."""
    resources.check()  # an installation without its pages or layouts refuses to start, saying how to mend it
    app = Flask(__name__, static_folder=None)  # the pages blueprint serves the shipped static files
    app.json.sort_keys = False  # type: ignore[attr-defined]
    runtime = app.extensions["station"] = Runtime(config)
    app.wsgi_app = Capped(DeviceEndpoints(runtime, app.wsgi_app))  # type: ignore[method-assign]
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    try:
        session.configure(app, config)
        app.extensions["line"] = the_line = line.Line(config, runtime.writer)
    except BaseException:
        runtime.close()
        raise
    runtime.on_close.append(the_line.close)
    runtime.access.ways_in.append(session.session_way_in)
    app.register_blueprint(pages.bp)
    app.register_blueprint(line.bp)
    app.register_blueprint(devices.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(production.bp)
    app.before_request(_start_clock)
    app.after_request(_log_request)
    app.teardown_appcontext(runtime.give_back)
    app.register_error_handler(StationError, _station_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def error_reply(message: str, status: int) -> tuple[Response, int]:
    """The one shape of every error: a JSON object with a message that says what to do."""
    response = Response(replies.json_body({"error": message}), mimetype="application/json")
    response.headers.extend(replies.error_headers(status))
    return response, status


def _station_error(exc: StationError) -> tuple[Response, int]:
    response, status = error_reply(str(exc), exc.status)
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response, status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    return error_reply(HTTP_HINTS.get(status, exc.description or "").format(method=request.method), status)


def _unexpected(exc: Exception) -> tuple[Response, int]:
    log.exception("unexpected error", extra={"method": request.method, "path": request.path})
    return error_reply("internal error of the station; its log has the details", 500)


def _start_clock() -> None:
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    log_request(request.method, request.path, response.status_code, g.get("started"), request.remote_addr, g.get("caller"))
    return response
