"""The flash cycle of one device on one slot: connect, log in, write and verify device.json5, write and prove
the unit's credentials (``credentials.py``: a secret, a certificate, as its product says), trigger the first
boot, and wait for the station to see the unit register.

Every attempt is recorded: ``flash-started``, then ``flash-failed`` (with the step and the reason) or the move
to ``flashed`` (only after a matching readback of the file in place and of every credential), then ``boot-triggered`` (and
``trigger-failed`` when the command fails), then ``registration-confirmed``, ``registration-refused`` or ``registration-timeout``
(``flash-cancelled`` when the operator stops it). The service records the registration itself. Where the product
has finalize steps (``finalize.py``), the console is opened again once it registered, and ``finalized`` (or
``finalize-failed``) ends the cycle; their station files are read before ``flash-started``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import Conflict
from ..core.lifecycle import Kind
from ..store import Store
from . import finalize, registration
from .console import Connect, Console
from .credentials import CredentialStep, Issuing, load_authority
from .errors import Cancelled, StepFailed
from .port import serial_console
from .settings import RigSettings, SlotSettings
from .shell import Shell
from .transfer import Transfer, Written

log = logging.getLogger("station.rig")


@dataclass(frozen=True)
class Progress:
    """One step of a cycle as it happens, for a terminal or the operator page."""

    slot: str
    uci: str
    step: str
    message: str
    done: int | None = None
    total: int | None = None


def outcome(passed: bool, step: str | None, reason: str) -> str:
    """One line for a terminal, of a flash or of a unit's whole cycle: PASS, or FAIL with the step and reason."""
    return f"PASS {reason}" if passed else f"FAIL at {step}: {reason}"


@dataclass(frozen=True)
class FlashResult:
    """How a cycle ended: PASS, or FAIL with the step and the reason."""

    slot: str
    uci: str
    passed: bool
    step: str | None
    reason: str
    seconds: float
    written: Written | None = None
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def summary(self) -> str:
        return outcome(self.passed, self.step, self.reason)



def _scrub(text: str, slot: SlotSettings) -> str:
    """Keep the console password out of anything recorded, whatever a unit echoed."""
    return text.replace(slot.password, "[hidden]") if slot.password else text


class Cycle:
    """One flash cycle; ``run`` never raises for a failing unit, it returns a FAIL.

    The cycle opens the unit's console through ``connect`` (the slot's serial port unless told otherwise), so
    that any ``Console`` can carry it. ``issuing`` says where the station's CA is and how secrets are hashed;
    by default the CA of the data directory holding the store's database, with Mosquitto's iterations."""

    def __init__(self, store: Store, settings: RigSettings, slot: SlotSettings, uci: str, *,
                 progress: Callable[[Progress], None] | None = None, cancel: threading.Event | None = None,
                 connect: Connect = serial_console, issuing: Issuing | None = None) -> None:
        self.store = store
        self.issuing = issuing or Issuing(Path(store.location).parent)  # a registry's stations pass theirs
        self.settings = settings
        self.slot = slot
        self.uci = uci
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.connect = connect
        self.consoles: list[Console] = []  # opened by this cycle: for the flash, then for the finalize steps

    def _report(self, step: str, message: str, done: int | None = None, total: int | None = None) -> None:
        log.info(message, extra={"slot": self.slot.name, "uci": self.uci, "step": step})
        if self.progress:
            self.progress(Progress(self.slot.name, self.uci, step, message, done, total))

    def _details(self, **extra: object) -> dict[str, object]:
        return {"slot": self.slot.name, "port": self.slot.port, **extra}

    def run(self) -> FlashResult:
        """Flash the device and confirm its registration; every outcome is an event and a result."""
        started = time.monotonic()
        store, settings, slot, actor = self.store, self.settings, self.slot, self.slot.actor
        device = store.device(self.uci)
        written: Written | None = None
        try:
            if device.state == "void":
                raise StepFailed("connect", f"{device.display} is void: its claim ID must never reach a unit")
            try:
                store.usable_device(self.uci)
            except Conflict as exc:  # its batch is incomplete: the claim ID must not reach a unit yet
                raise StepFailed("connect", str(exc)) from None
            product = store.product(device.product)
            data = product.device_file(self.uci, device.serial, store.batch(device.batch) if device.batch else None)
            steps = settings.finalize(product.id)
            plan = finalize.read(steps) if steps else None  # a missing station file: nothing reaches the unit
            store.record(self.uci, Kind.FLASH_STARTED, actor, self._details(path=settings.device_json_path))
            authority = load_authority(self.issuing) if product.credentials.x509 else None
            self._report("connect", f"opening {slot.port} at {slot.baud} baud")
            console = self._open()
            with console:
                shell = Shell(console, slot)
                self._report("login", "waking the console")
                shell.login()
                transfer = Transfer(shell, chunk=settings.chunk, retries=settings.retries, tmp_dir=settings.tmp_dir,
                                    report=self._report)
                written = transfer.write(settings.device_json_path, data)
                credentials: dict[str, object] = {}
                if product.credentials.kinds:
                    self._report("credentials", f"writing {' and '.join(product.credentials.kinds)}")
                    credentials = CredentialStep(store, shell, settings, product, self.uci, issuing=self.issuing,
                                                 actor=actor, report=self._report, authority=authority).run()
                store.advance(self.uci, "flashed", Kind.FLASHED, actor, self._details(
                    path=written.path, bytes=written.size, sha256=written.sha256, chunks=written.chunks,
                    chunk_retries=written.chunk_retries, readback_retries=written.readback_retries,
                    credentials=credentials))
                self._report("trigger", f"starting the agent: {settings.trigger}")
                # Recorded before the command goes out: a quick agent registers before the command returns.
                triggered = store.record(self.uci, Kind.BOOT_TRIGGERED, actor, self._details(command=settings.trigger))
                status = shell.start(settings.trigger, "trigger", settings.trigger_wait)
                if status not in (0, None):
                    raise StepFailed("trigger", f"`{settings.trigger}` exited with status {status}")
            self._report("register", f"waiting up to {settings.register_timeout:g} s for the registration")
            event = registration.wait(store, self.uci, triggered, settings.register_timeout, self.cancel)
            seconds = round(time.monotonic() - started, 3)
            store.record(self.uci, Kind.REGISTRATION_CONFIRMED, actor, self._details(event=event.id, seconds=seconds))
            if plan is None:
                return self._result(True, None, f"{device.display} flashed, verified and registered in {seconds:.1f} s",
                                    started, written)
            store.record(self.uci, Kind.FINALIZED, actor, self._details(**self._finalize(plan, written)))
            seconds = round(time.monotonic() - started, 3)
            return self._result(True, None, f"{device.display} flashed, verified, registered and finalized in "
                                            f"{seconds:.1f} s", started, written)
        except StepFailed as exc:
            reason = _scrub(exc.reason, slot)
            kind = {"trigger": Kind.TRIGGER_FAILED, "register": Kind.REGISTRATION_TIMEOUT,
                    finalize.STEP: Kind.FINALIZE_FAILED}.get(exc.step, Kind.FLASH_FAILED)
            if isinstance(exc, registration.RegistrationRefused):
                kind = Kind.REGISTRATION_REFUSED
            elif isinstance(exc, Cancelled):
                kind = Kind.FLASH_CANCELLED
            store.record(self.uci, kind, actor, self._details(step=exc.step, reason=reason))
            log.info("cycle failed", extra={"slot": slot.name, "uci": self.uci, "step": exc.step, "reason": reason})
            return self._result(False, exc.step, reason, started, written)

    def _open(self) -> Console:
        console = self.connect(self.slot, self.cancel)
        self.consoles.append(console)
        return console

    def _finalize(self, plan: finalize.Plan, written: Written) -> dict[str, object]:
        """The finalize steps on the console opened again (the agent may have printed meanwhile, or a reboot
        left a login prompt): what was done, for the ``finalized`` event."""
        self._report(finalize.STEP, f"opening {self.slot.port} again to finalize the unit")
        try:
            console = self._open()
        except StepFailed as exc:
            raise type(exc)(finalize.STEP, f"opening the console again: {exc.reason}") from None
        with console:
            shell = Shell(console, self.slot)
            shell.login(finalize.STEP)
            return finalize.Finalize(shell, self.settings, plan, written, self._report).run()

    def _result(self, passed: bool, step: str | None, reason: str, started: float, written: Written | None) -> FlashResult:
        return FlashResult(self.slot.name, self.uci, passed, step, reason, round(time.monotonic() - started, 3),
                           written, sum(c.bytes_sent for c in self.consoles),
                           sum(c.bytes_received for c in self.consoles))


def flash(store: Store, settings: RigSettings, slot: SlotSettings, uci: str, *,
          progress: Callable[[Progress], None] | None = None, cancel: threading.Event | None = None,
          connect: Connect = serial_console, issuing: Issuing | None = None) -> FlashResult:
    """Run one flash cycle for the device with canonical UCI ``uci`` on ``slot``."""
    return Cycle(store, settings, slot, uci, progress=progress, cancel=cancel, connect=connect, issuing=issuing).run()
