"""Adopting a unit whose agent made its own claim ID (``services.serialize: "auto"``, ``ioto --gen``; DESIGN.md
section 2): its device.json5 is read over the console (base64, proved by the unit's own SHA-256, as the flash
proves what it writes), its ID recorded as a device of its product, and its label printed, so that the label
on the unit matches the ID inside it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import shlex
import threading
from dataclasses import dataclass
from typing import Any

import json5

from ..config import Config
from ..core.errors import Conflict, StationError
from ..labels.printing import PrintResult, print_label
from ..store import Device, Store
from .console import Connect
from .errors import StepFailed
from .port import serial_console
from .settings import RigSettings, SlotSettings
from .shell import Shell

log = logging.getLogger("station.rig")

STEP = "adopt"
_SHA256 = "[0-9a-f]{64}"


@dataclass(frozen=True)
class Adopted:
    device: Device
    printed: PrintResult


def read_device_file(shell: Shell, path: str) -> dict[str, Any]:
    """The unit's device object, read back whole: a console that garbles a byte fails, it never misreads an ID."""
    quoted = shlex.quote(path)
    encoded = shell.check(f"base64 {quoted}", STEP, name="base64")
    try:
        data = base64.b64decode("".join(encoded.lines), validate=True)
    except (binascii.Error, ValueError):
        raise StepFailed(STEP, f"{path} came back garbled over the console; try again") from None
    digest = shell.check(f"sha256sum {quoted}", STEP, name="sha256sum").output.split()
    if not digest or digest[0] != hashlib.sha256(data).hexdigest():
        raise StepFailed(STEP, f"{path} read back differs from the unit's SHA-256 of it; try again")
    try:
        device = json5.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StepFailed(STEP, f"{path} on the unit is not valid JSON5 ({exc})") from None
    if not isinstance(device, dict) or not all(isinstance(device.get(key), str) for key in ("id", "product")):
        raise StepFailed(STEP, f"{path} on the unit has no `id` and `product`: start its agent with "
                               f"services.serialize \"auto\" (or `ioto --gen`) so that it makes its ID first")
    return device


def adopt(store: Store, config: Config, settings: RigSettings, slot: SlotSettings, *, printer: str | None = None,
          connect: Connect = serial_console) -> Adopted:
    """Read the unit's ID on ``slot``, record it where its product takes agent-made IDs, and print its label. A
    label that does not print leaves the device recorded; its error says how to print it again."""
    console = connect(slot, threading.Event())
    with console:
        shell = Shell(console, slot)
        shell.login(STEP)
        unit = read_device_file(shell, settings.device_json_path)
    code, product = unit["id"], unit["product"]
    if not config.for_product(product, "agent_ids"):
        raise Conflict(f"product {product} does not take IDs its units made themselves; set agent_ids: true for it "
                       f"in the products section of {config.config_path} to adopt them")
    device = store.adopt(code, product, slot.actor, {"slot": slot.name, "port": slot.port,
                                                     "path": settings.device_json_path})
    log.info("unit adopted", extra={"slot": slot.name, "uci": device.uci, "product": product})
    try:
        printed = print_label(store, config, device, printer=printer, actor=slot.actor)
    except StationError as exc:
        raise type(exc)(f"{device.display} is recorded, but its label did not print: {exc}; print it with "
                        f"`station label {device.display}`") from exc
    return Adopted(device, printed)
