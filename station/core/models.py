"""What the store hands out: products, devices, batches and events, and the times they carry."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import uci
from .credentials import CredentialSettings


def now() -> str:
    """UTC time as stored: ISO 8601 with milliseconds, sortable as text."""
    return stored(datetime.now(UTC))


def stored(moment: datetime) -> str:
    """A moment in the store's format (``now()``): UTC, so that stored times compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ago(stamp: str, seconds: float) -> str:
    """The stored time ``seconds`` before ``stamp`` (a stored time): compared as text with stored times."""
    return stored(datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(seconds=seconds))


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    model: str
    description: str = ""
    bits: int = uci.DEFAULT_BITS
    check_symbol: bool = True
    claim_url: str | None = None
    layout: str | None = None
    enabled: bool = True
    created: str = ""
    credentials: CredentialSettings = field(default_factory=CredentialSettings)
    claim_before_registration: bool = False  # pre-claimed factory flows: a unit may be claimed while in the factory
    account: str | None = None  # pre-claimed units: the Ioto account and cloud every device file carries
    cloud: str | None = None

    def display(self, code: str) -> str:
        return uci.display(code, check=self.check_symbol)

    def device_object(self, code: str, batch: Batch | None = None, **extra: Any) -> dict[str, Any]:
        """The device object of device.json5 for a unit of this product, with its UCI in ``id``; a pre-claimed
        batch's or product's ``account`` and ``cloud``, which the agent sends in its registration (DESIGN.md 3)."""
        return {"product": self.id, "name": self.name, "description": self.description, "model": self.model,
                **owner(batch if batch and batch.account else self), **extra, "id": code}

    def device_file(self, code: str, serial: str | None = None, batch: Batch | None = None, **extra: Any) -> bytes:
        """The device.json5 a unit gets, byte for byte: written by the rig, and by manifests for firmware builds;
        a unit with a manufacturer serial carries it, so that the unit and its label name both."""
        if serial:
            extra["serial"] = serial
        return (json.dumps(self.device_object(code, batch, **extra), indent=4) + "\n").encode()


def owner(of: Product | Batch) -> dict[str, str]:
    """The ``account`` and ``cloud`` a pre-claimed product or batch puts into device files, when it has them."""
    return {"account": of.account, "cloud": of.cloud} if of.account and of.cloud else {}


@dataclass(frozen=True)
class Device:
    uci: str
    product: str
    state: str
    created: str
    updated: str
    batch: str | None = None
    serial: str | None = None
    hwkey: str | None = None
    display: str = ""
    provisioning: str | None = None  # Xively's state, derived (core/credentials.provisioning_state), never stored
    station: str | None = None  # the station that issued it (a batch's device: its batch's); None before names

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


REPEAT_WINDOW = 24 * 3600.0  # seconds after its issue that a unit still in the factory gets its UCI again by its hardware key
IDEMPOTENCY_WINDOW = 24 * 3600.0  # seconds an Idempotency-Key names its request; older ones are deleted as issuance comes by


@dataclass(frozen=True)
class IssueRequest:
    """One unit's request for a claim ID, from any way in (a device, the API, the line, the CLI), as the store's
    issuance takes it alone or in a group (the server's writer). A unit that says who it is gets its UCI back: by
    its hardware key ``hwkey`` while still in the factory (within ``repeat_window`` seconds of its issue), by an
    ``idempotency_key`` from the same client address ``remote`` (within ``idempotency_window`` seconds)."""

    product_id: str
    serial: str | None = None
    hwkey: str | None = None
    idempotency_key: str | None = None
    remote: str = ""
    actor: str = "operator"
    details: dict[str, Any] = field(default_factory=dict)  # more for the event (the slot, the client address)
    repeat_window: float = REPEAT_WINDOW
    idempotency_window: float = IDEMPOTENCY_WINDOW


@dataclass(frozen=True)
class Batch:
    id: int
    name: str
    product: str
    count: int
    created: str
    actor: str
    account: str | None = None  # pre-claimed batches: the Ioto account and cloud, over the product's
    cloud: str | None = None
    complete: bool = True  # False while a batch's chunks are being committed, or when that was interrupted
    issued: int = 0  # UCIs stored so far: ``count`` once complete
    station: str | None = None  # the station that made it; None before stations had names

    def incomplete(self) -> str:
        """Why an incomplete batch cannot be used yet, and what finishes it (refusals and `station stats` say it)."""
        return (f"batch {self.name!r} is incomplete ({self.issued:,} of {self.count:,} claim IDs stored: its generation was "
                f"interrupted, or is still running); `station batch resume {self.name}` finishes it, "
                f"`station batch void {self.name} --reason TEXT` gives it up")


@dataclass(frozen=True)
class Event:
    id: int
    time: str
    uci: str | None
    batch: int | None
    kind: str
    actor: str
    details: dict[str, Any]
    station: str | None = None  # the station that wrote it (None: written before stations had names)


