"""Label printers from station.json5's ``printers`` section: ``file`` (a folder), ``cups`` (``lp -d QUEUE``)
and ``raw`` (TCP port 9100; a ZPL printer is asked for its host status, ``~HS``, before each job).

Every failure is an ``Unavailable`` error that names the printer and says what to do; a printer
returns only once the job has been handed over whole.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import config as config_mod
from .. import files
from ..core.errors import Invalid, NotFound, Unavailable

log = logging.getLogger("station.labels")

FORMATS = ("png", "pdf", "zpl")
TYPES = {"file": FORMATS, "cups": FORMATS, "raw": ("zpl", "pdf")}
_KEYS = {
    "file": {"path"},
    "cups": {"queue", "host", "options", "timeout"},
    "raw": {"host", "port", "timeout", "status"},
}
_COMMON = {"type", "format", "layout"}
STX, ETX = b"\x02", b"\x03"


@dataclass(frozen=True)
class Printer:
    """A configured printer: where jobs go, in which format, and its layout if it has one."""

    name: str
    type: str
    format: str
    layout: str | None
    settings: dict[str, Any] = field(default_factory=dict)

    def send(self, data: bytes, title: str) -> str:
        """Hand one job to the printer; returns where it went (for the event)."""
        return {"file": _send_file, "cups": _send_cups, "raw": _send_raw}[self.type](self, data, title)


def get(config: config_mod.Config, name: str | None) -> Printer:
    """The printer named ``name``, else the configured default ``label_printer``."""
    section: dict[str, Any] = config.get("printers")
    name = name or config.get("label_printer")
    if not name:
        known = ", ".join(section) or "none configured"
        raise Invalid(f"no printer given: name one with --printer ({known}), write to a file with --out, "
                      f"or set label_printer in {config.config_path}")
    if name not in section:
        known = ", ".join(section) or "none"
        raise NotFound(f"no printer named {name!r} in the printers section of {config.config_path} (printers: {known})")
    return _check(config, name, section[name])


def file_target(path: str | os.PathLike[str], fmt: str) -> Printer:
    """A one-off file printer for ``--out``: the job is written to exactly ``path``."""
    return Printer(name="file", type="file", format=fmt, layout=None, settings={"file": Path(path)})


def _check(config: config_mod.Config, name: str, spec: Any) -> Printer:
    where = f"printer {name!r} in {config.config_path}"
    if not isinstance(spec, dict):
        raise Invalid(f"{where} must be an object with a type")
    kind = spec.get("type")
    if kind not in TYPES:
        raise Invalid(f"{where} has type {kind!r}; use one of {', '.join(TYPES)}")
    unknown = sorted(set(spec) - _KEYS[kind] - _COMMON)
    if unknown:
        allowed = ", ".join(sorted(_KEYS[kind] | _COMMON))
        raise Invalid(f"{where} has unknown key {unknown[0]!r} (a {kind} printer takes {allowed})")
    fmt = spec.get("format", "zpl" if kind == "raw" else "pdf")
    if fmt not in TYPES[kind]:
        raise Invalid(f"{where} has format {fmt!r}; a {kind} printer takes {', '.join(TYPES[kind])}")
    layout = spec.get("layout")
    if layout is not None and not isinstance(layout, str):
        raise Invalid(f"{where}: layout must be a layout name")
    settings = {k: spec[k] for k in _KEYS[kind] if k in spec}
    required = {"file": ("path",), "cups": ("queue",), "raw": ("host",)}[kind]
    for key in required:
        if not isinstance(settings.get(key), str) or not settings[key]:
            raise Invalid(f"{where} needs {key!r}")
    if kind == "file":
        settings["path"] = config.data_dir / Path(settings["path"]).expanduser()
    if kind == "raw":
        port = settings.setdefault("port", 9100)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise Invalid(f"{where}: port must be a TCP port number, not {port!r}")
        settings.setdefault("status", fmt == "zpl")
    if kind == "cups":
        options = settings.setdefault("options", [])
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise Invalid(f"{where}: options must be a list of lp -o options, such as [\"media=Custom.50x25mm\"]")
    timeout = settings.setdefault("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise Invalid(f"{where}: timeout must be seconds, from 0 to 300")
    return Printer(name=name, type=kind, format=fmt, layout=layout, settings=settings)


def _send_file(printer: Printer, data: bytes, title: str) -> str:
    target = printer.settings.get("file")
    if target is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = printer.settings["path"] / f"{title}-{stamp}.{printer.format}"
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        files.write_bytes(target, data)  # whole or not at all, never through a planted link
    except OSError as exc:
        raise Unavailable(f"cannot write the label to {target}: {exc.strerror}; check the folder and its permissions") from exc
    return str(target)


def _send_cups(printer: Printer, data: bytes, title: str) -> str:
    queue = printer.settings["queue"]
    command = ["lp", "-d", queue, "-t", title]
    if printer.settings.get("host"):
        command += ["-h", printer.settings["host"]]
    if printer.format == "zpl":
        command += ["-o", "raw"]
    for option in printer.settings["options"]:
        command += ["-o", option]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=printer.settings["timeout"], check=False)
    except FileNotFoundError:
        raise Unavailable(f"printer {printer.name!r}: the lp command is not installed; install CUPS's client "
                          f"(apt-get install cups-client)") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"printer {printer.name!r}: lp did not answer within {printer.settings['timeout']} s; "
                          f"check that CUPS is running (lpstat -r)") from None
    if done.returncode:
        reason = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise Unavailable(f"printer {printer.name!r}: CUPS refused the job for queue {queue!r}: {reason}; "
                          f"check the queue with lpstat -p {queue}")
    return done.stdout.decode("utf-8", "replace").strip() or f"cups:{queue}"


def _send_raw(printer: Printer, data: bytes, title: str) -> str:
    host, port, timeout = printer.settings["host"], printer.settings["port"], printer.settings["timeout"]
    where = f"printer {printer.name!r} at {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            if printer.settings["status"]:
                refuse = problem(host_status(conn, timeout, where))
                if refuse:
                    raise Unavailable(f"{where} {refuse}; nothing was printed")
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
    except TimeoutError:
        raise Unavailable(f"{where} did not answer within {timeout} s; check that it is on and on the network") from None
    except ConnectionRefusedError:
        raise Unavailable(f"{where} refused the connection; check the host and port, and that it is on") from None
    except OSError as exc:
        raise Unavailable(f"cannot send to {where}: {exc.strerror or exc}; check that it is on and on the network") from None
    log.info("raw job sent", extra={"printer": printer.name, "bytes": len(data), "title": title})
    return f"{host}:{port}"


def host_status(conn: socket.socket, timeout: float, where: str) -> list[list[str]]:
    """Send ``~HS`` and read its three ``<STX>...<ETX><CR><LF>`` strings, as lists of fields.

    A Zebra printer does not answer ~HS while its media is out or its head is open, so silence is
    refused too, with those causes named.
    """
    conn.sendall(b"~HS")
    reply = b""
    deadline = time.monotonic() + timeout
    while reply.count(ETX) < 3:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(left)
        try:
            chunk = conn.recv(1024)
        except TimeoutError:
            break
        if not chunk:
            break
        reply += chunk
    strings = [part.split(STX, 1)[-1].decode("ascii", "replace").split(",") for part in reply.split(ETX)[:3]]
    if reply.count(ETX) < 3:
        raise Unavailable(
            f"{where} did not answer the status query (~HS) within {timeout} s; a Zebra printer stays silent "
            f"when it is out of media or its head is open: check it (or set status: false for a printer "
            f"that does not speak ZPL); nothing was printed"
        )
    if len(strings[0]) < 3 or len(strings[1]) < 4:
        raise Unavailable(f"{where} answered ~HS with {reply[:80]!r}, which is not a ZPL host status; nothing was printed")
    return strings


def problem(status: list[list[str]]) -> str | None:
    """Why a printer with this ~HS status cannot print now, or None."""
    first, second = status[0], status[1]
    if first[1].strip() == "1":
        return "is out of paper (labels): load labels and try again"
    if second[2].strip() == "1":
        return "has its print head open: close the head and try again"
    if second[3].strip() == "1" and len(second) > 4 and second[4].strip() == "1":  # only thermal transfer uses ribbon
        return "is out of ribbon: load a ribbon and try again"
    if first[2].strip() == "1":
        return "is paused: press its pause button to resume, then try again"
    return None
