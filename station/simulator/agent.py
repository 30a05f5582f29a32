"""The simulated Ioto agent's first boot: read device.json5, get an ID from the factory when it has none
(DESIGN.md section 2), register with the builder (section 3).

    POST <station>/ioto/serialize
    Content-Type: application/json

    {...the device object of device.json5, compact...}

Only a status-200 reply whose top-level ``id`` is a string gives the ID; on any failure the agent asks again
2 s later, for ever. It writes device.json5 with the ID only when started with --id, --product, --account and
--cloud (``save_id``); otherwise the ID lives in memory and a restarted agent asks again.

    POST <builder>/device/register
    Authorization: bearer <product id>
    Content-Type: application/json

    {...the device object of device.json5..., "created": "<time>"}

The reply must be a JSON object with at least two keys; its ``id`` must be the device's (else the agent
deprovisions and registers again); it is kept as provision.json5. An error status, an empty reply or ``{}``
make the agent log "Cannot register device" and stop.
"""

from __future__ import annotations

import http.client
import json
import posixpath
import threading
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import json5

from .fs import FsError, MemoryFS

PROVISION = "/var/lib/ioto/provision.json5"
DATABASE = "/var/lib/ioto/db/ioto.db"  # made at the agent's start, as the real one opens its database
ATTEMPTS = 3  # registrations in a row whose reply names another device, before the agent gives up
TIMEOUT = 30.0  # seconds the agent waits for the builder, and for the factory's serialization service
SERIALIZE_RETRY = 2.0  # seconds between two requests for an ID (the agent's rSleep(2 * 1000))
DEVICE_MODE = 0o600  # what the agent's serialization asks of jsonSave for device.json5


def _post(url: str, body: bytes, token: str | None = None) -> tuple[int, bytes]:
    """One POST on a new connection, as the agent makes it (serialization sends no Authorization)."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=TIMEOUT)
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"bearer {token}"} if token else {})
    try:
        connection.request("POST", parts.path or "/", body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def serial_id(url: str, device: dict[str, Any], log: Callable[[str], None], stop: threading.Event) -> str | None:
    """Ask the factory for the device's ID until it gives one (None: the agent was stopped first)."""
    body = json.dumps(device, separators=(",", ":")).encode()
    while True:
        reply: Any = None
        try:
            status, data = _post(url, body)
            error = "" if status == 200 else f"status {status}"
            reply = json5.loads(data.decode("utf-8")) if status == 200 else None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = str(exc) or type(exc).__name__
        if error:
            log(f"ioto: error serialize: Cannot fetch device ID from {url}: {error}")
        elif isinstance(reply, dict) and isinstance(reply.get("id"), str) and reply["id"]:
            return str(reply["id"])
        else:
            log("ioto: error serialize: Cannot find device ID in response")
        if stop.wait(SERIALIZE_RETRY):
            return None


def first_boot(fs: MemoryFS, device_path: str, builder: str | None, log: Callable[[str], None],
               stop: threading.Event, *, delay: float = 0.0, reachable: bool = True, serialize: str | None = None,
               save_id: bool = False) -> dict[str, Any] | None:
    """Start the agent: get an ID from the ``serialize`` URL if device.json5 has none (saved there only with
    ``save_id``), register the device and return the provision reply, or None after logging why not."""
    log("ioto: info main: Starting Ioto agent 2.6.0 (services: provision, register, mqtt)")
    if delay and stop.wait(delay):
        return None
    fs.mkdir(posixpath.dirname(DATABASE), parents=True)
    fs.write(DATABASE, b"SQLite format 3\x00")
    try:
        device = json5.loads(fs.read(device_path).decode("utf-8"))
    except FsError as exc:
        log(f"ioto: error main: Cannot read {device_path}: {exc}")
        return None
    except ValueError as exc:
        log(f"ioto: error main: Cannot parse {device_path}: {exc}")
        return None
    if serialize and isinstance(device, dict) and not device.get("id"):
        code = serial_id(serialize, device, log, stop)
        if code is None:
            return None
        device = {**device, "id": code}
        if save_id:
            try:  # as jsonSave does: a new file beside it, renamed over it
                fs.write(device_path + ".tmp", json5.dumps(device, indent=4, quote_keys=False).encode(),
                         mode=DEVICE_MODE)
                fs.rename(device_path + ".tmp", device_path)
            except FsError as exc:
                log(f"ioto: error serialize: Cannot save serialization to {device_path}: {exc}")
        log(f"ioto: info ioto: Device Claim ID: {code}")
    if not isinstance(device, dict) or not device.get("id") or not device.get("product"):
        log(f"ioto: error main: {device_path} has no device id or product: cannot register")
        return None
    if not builder:
        log("ioto: error register: No builder URL configured")
        return None
    if not reachable:
        log(f"ioto: error register: Cannot connect to {builder}: network is unreachable")
        return None
    url = builder.rstrip("/") + "/device/register"
    for _ in range(ATTEMPTS):
        log(f"ioto: info register: Registering device {device['id']} with {builder}")
        created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = json.dumps({**device, "created": created}, separators=(",", ":")).encode()
        try:
            status, data = _post(url, body, str(device["product"]))
            reply = json.loads(data) if status == 200 else None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log(f"ioto: error register: Cannot register device: {exc}")
            return None
        if not isinstance(reply, dict) or len(reply) < 2:
            log(f"ioto: error register: Cannot register device (status {status})")
            return None
        if reply.get("id") != device["id"]:
            log(f"ioto: warn register: Builder returned id {reply.get('id')!r}, deprovisioning and registering again")
            continue
        fs.write(PROVISION, json.dumps(reply, indent=4).encode())
        log(f"ioto: info register: Device registered (registered: {str(reply.get('registered', False)).lower()})")
        return reply
    log("ioto: error register: Cannot register device: the builder keeps returning another id")
    return None
