"""Watching the store for a unit's first-boot registration, which the station's HTTP service records.

The rig never talks to the service: the service writes a ``registered`` event when it accepts the unit's
POST (and a ``refused`` one when it turns it away), and the rig waits for such an event recorded after the
event of its boot trigger. Event ids only grow, so "after" is exact, whatever the clock does.
"""

from __future__ import annotations

import threading
import time

from ..core.lifecycle import Kind
from ..store import Event, Store
from .errors import Cancelled, StepFailed, StepTimeout

STEP = "register"
POLL = 0.2  # seconds between looks at the store


class RegistrationRefused(StepFailed):
    """The service turned the unit's registration away; the reason is the service's."""


def wait(store: Store, uci: str, after: int, timeout: float, cancel: threading.Event | None = None) -> Event:
    """The ``registered`` event recorded for ``uci`` after the event ``after``, waiting at most ``timeout`` seconds."""
    cancel = cancel or threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        for event in store.events(uci):
            if event.id <= after or event.uci != uci:
                continue
            if event.kind == Kind.REGISTERED:
                return event
            if event.kind == Kind.REFUSED and event.details.get("attempted") == "registered":
                raise RegistrationRefused(STEP, f"the station refused the registration: {event.details.get('reason', '')}")
        if time.monotonic() >= deadline:
            raise StepTimeout(STEP, f"the unit did not register with the station within {timeout:g} s "
                                    f"(is `station serve` running and the unit's builder URL pointing at it?)")
        if cancel.wait(POLL):
            raise Cancelled(STEP, "cancelled")
