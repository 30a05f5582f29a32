"""One unit through the line: the checks before its claim ID is spent, the issue, its label, the flash through
the rig, and the verdict event.

The operator pages and ``station rig run`` both drive this class, so a unit meets the same rules and leaves
the same record whichever way it came: nothing is issued for a printer that is not configured or a console
that does not open, and every cycle ends with a ``line-pass`` or ``line-fail`` event that names the slot, and
for a FAIL the step and the reason. The events of the parts stay theirs (``printed``, the rig's flash events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..core.errors import StationError
from ..core.lifecycle import Kind
from ..labels import printers
from ..rig import finalize
from ..rig.flash import Progress, outcome
from ..rig.settings import SlotSettings
from ..rig.slots import Rig
from ..store import Device, IssueRequest, Store

PASS, FAIL = Kind.LINE_PASS, Kind.LINE_FAIL  # the verdict events, counted per slot by the line's report of the day


@dataclass(frozen=True)
class Verdict:
    """How a unit's cycle ended: PASS, or FAIL with the step (``label``, a step of the flash, ``station``)."""

    uci: str
    passed: bool
    step: str | None
    reason: str

    def summary(self) -> str:
        return outcome(self.passed, self.step, self.reason)


def _print_label() -> Callable[..., Any]:
    """The labels part's print function, imported when a label is asked for: a station whose renderers cannot
    load (their image and PDF libraries) still flashes, and one asked for a label says so before issuing."""
    try:
        from ..labels.printing import print_label
    except ImportError as exc:
        raise StationError(f"labels are not available in this station ({exc}); run without --label") from exc
    return print_label


class UnitCycle:
    """The cycle of one unit on one slot of ``rig``, as ``actor``; ``progress`` sees each step as it happens."""

    def __init__(self, config: Config, rig: Rig, slot: SlotSettings, *, actor: str, printer: str | None = None,
                 progress: Callable[[Progress], None] | None = None) -> None:
        """``printer``: a printer of station.json5, else its ``label_printer``."""
        self.config = config
        self.rig = rig
        self.slot = slot
        self.actor = actor
        self.printer = printer
        self.progress = progress

    def check(self, *, label: bool, product: str | None = None) -> None:
        """Fail, before a claim ID is spent, on what can be known beforehand: the labels part and the printer
        (when a label is asked for), the station files of the ``product``'s finalize steps, and the slot's
        console, opened and let go."""
        if label:
            _print_label()
            printers.get(self.config, self.printer)
        steps = self.rig.settings.finalize(product) if product else None
        if steps:
            finalize.read(steps)
        self.rig.connect(self.slot, threading.Event()).close()

    def issue(self, store: Store, product: str, serial: str | None) -> Device:
        """The unit's claim ID, committed; the store refuses (with its event) a product that may not issue."""
        device, _ = store.issue(IssueRequest(product, serial=serial, actor=self.actor, details={"slot": self.slot.name}))
        return device

    def run(self, store: Store, uci: str, *, label: bool) -> Verdict:
        """Label the issued unit (when asked), flash it and confirm its registration; the verdict is recorded
        and returned. A failing unit or printer is a FAIL, never an exception."""
        if label:
            self._report(uci, "label", f"printing on {self.printer or self.config.get('label_printer')}")
            try:
                printed = _print_label()(store, self.config, uci, printer=self.printer, actor=self.actor)
            except StationError as exc:  # the claim ID stays issued; the labels part recorded the failed print
                return self.record(store, Verdict(uci, False, "label", f"the label did not print: {exc}"))
            self._report(uci, "label", f"printed on {printed.printer} ({printed.where})")
        result = self.rig.start(self.slot, uci, on_progress=self.progress).wait()
        if result is None:  # a job ends with a result even when it crashes; without one the station is broken
            raise StationError(f"the rig ended the cycle of slot {self.slot.name} without a result; see the log")
        return self.record(store, Verdict(uci, result.passed, result.step, result.reason))

    def record(self, store: Store, verdict: Verdict) -> Verdict:
        """The verdict's event (``line-pass`` or ``line-fail``), with the slot, the step and the reason."""
        store.record(verdict.uci, PASS if verdict.passed else FAIL, self.actor,
                     {"slot": self.slot.name, "step": verdict.step, "reason": verdict.reason})
        return verdict

    def _report(self, uci: str, step: str, message: str) -> None:
        if self.progress:
            self.progress(Progress(self.slot.name, uci, step, message))
