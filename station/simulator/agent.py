"""The simulated Ioto agent's first boot: read device.json5, register with the builder (DESIGN.md section 3).

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
TIMEOUT = 30.0  # seconds the agent waits for the builder


def _post(url: str, token: str, body: bytes) -> tuple[int, bytes]:
    """One POST on a new connection, as the agent makes it."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=TIMEOUT)
    try:
        connection.request("POST", parts.path or "/", body=body, headers={
            "Authorization": f"bearer {token}", "Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def first_boot(fs: MemoryFS, device_path: str, builder: str | None, log: Callable[[str], None],
               stop: threading.Event, *, delay: float = 0.0, reachable: bool = True) -> dict[str, Any] | None:
    """Start the agent: register the device and return the provision reply, or None after logging why not."""
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
            status, data = _post(url, str(device["product"]), body)
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
