"""Labels of units that serialized themselves over /ioto/serialize (DESIGN.md section 2): which printer a unit's
label goes to (``factory_printer``, per product, by the unit's address), and the one thread that prints them.

The device's reply never waits for a printer: the endpoint queues the new UCI here and answers. Labels print in
the order the UCIs were issued, on a connection of this thread. Each outcome is an event (``printed`` or
``print-failed`` with its reason), so a unit whose label did not print shows on the line page with why, and a
print from there mends it. At shutdown the queue is finished within FINISH_WITHIN seconds; what is left then
gets a ``print-failed`` event that says so.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
import time
from typing import NamedTuple

from ..config import Config
from ..core.errors import StationError
from ..core.lifecycle import Kind
from ..store import Store
from . import printers
from .printing import print_label

log = logging.getLogger("station.labels")

ACTOR = "factory"
FINISH_WITHIN = 30.0  # seconds the queue may take to print at shutdown; a printer job's own timeout bounds each
STOPPED = "the station stopped before this label was printed; print it from the line page"


class Target(NamedTuple):
    """Where a unit's factory label goes: a printer name, or None and why not (``configured``: whether a
    factory_printer applies at all; without one, no label is wanted and no failure is recorded)."""

    printer: str | None
    reason: str = ""
    configured: bool = True


def target(config: Config, product: str, remote: str | None) -> Target:
    """The printer for a label of ``product`` whose unit called from ``remote``: the product's ``factory_printer``
    (else the station's), a name or the first CIDR block holding the address."""
    setting = config.for_product(product, "factory_printer")
    if setting is None:
        return Target(None, "no factory_printer is set in station.json5 for this product", configured=False)
    if isinstance(setting, str):
        return Target(setting)
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return Target(None, f"no factory_printer for address {remote or '(none)'}")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:  # a dual-stack socket's IPv4 client
        address = address.ipv4_mapped
    for network, name in setting:
        if address.version == network.version and address in network:
            return Target(name)
    return Target(None, f"no factory_printer for address {address}")


def check(config: Config) -> None:
    """Refuse, when the station starts, a factory_printer (the station's or a product's) naming no printer."""
    settings = [config.get("factory_printer")] + [own["factory_printer"] for own in config.get("products").values()
                                                  if "factory_printer" in own]
    for setting in settings:
        for name in [setting] if isinstance(setting, str) else [name for _, name in setting or ()]:
            printers.get(config, name)


class FactoryLabels:
    """The print queue of self-serialized units: ``submit`` from the request, ``close`` at shutdown."""

    def __init__(self, config: Config) -> None:
        check(config)
        self.config = config
        self._store = Store.configured(config)  # a bad database fails at start
        self._queue: queue.SimpleQueue[tuple[str, str | None] | None] = queue.SimpleQueue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._finish_by: float | None = None  # set by close: past it, queued labels are recorded as not printed
        self._thread = threading.Thread(target=self._run, name="station-factory-labels", daemon=True)
        self._thread.start()

    def submit(self, uci: str, remote: str | None) -> None:
        """Queue the label of a newly issued UCI; returns at once."""
        with self._lock:
            if self._finish_by is not None:  # the request outlived close(): the page shows it as not printed
                log.warning("factory label not queued: the station is stopping", extra={"uci": uci})
                return
            self._pending.add(uci)
        self._queue.put((uci, remote))

    def pending(self) -> set[str]:
        """The UCIs whose labels are queued or printing now."""
        with self._lock:
            return set(self._pending)

    def close(self) -> None:
        """Print what is queued (for FINISH_WITHIN seconds at most), record the rest as not printed, and stop."""
        with self._lock:
            self._finish_by = time.monotonic() + FINISH_WITHIN
        self._queue.put(None)
        self._thread.join(FINISH_WITHIN + 10)  # a job under way ends within its printer's timeout
        left = self.pending()
        if self._thread.is_alive():
            log.error("factory labels left unprinted at shutdown: a printer did not answer",
                      extra={"ucis": sorted(left)})
        else:
            self._store.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            uci, remote = item
            try:
                if self._finish_by is not None and time.monotonic() > self._finish_by:
                    self._store.record(uci, Kind.PRINT_FAILED, ACTOR, {"error": STOPPED, "remote": remote})
                    log.warning("factory label not printed: the station stopped", extra={"uci": uci})
                else:
                    self._print(uci, remote)
            except StationError as exc:  # the database itself: the event could not be written either
                log.error("factory label not printed or recorded", extra={"uci": uci, "error": str(exc)})
            except Exception:  # a bug must not stop the labels of the units after this one
                log.exception("factory label failed", extra={"uci": uci})
            finally:
                with self._lock:
                    self._pending.discard(uci)

    def _print(self, uci: str, remote: str | None) -> None:
        where = target(self.config, self._store.device(uci).product, remote)
        if where.printer is None:
            if where.configured:
                self._store.record(uci, Kind.PRINT_FAILED, ACTOR, {"error": where.reason, "remote": remote})
                log.info("factory label not printed", extra={"uci": uci, "reason": where.reason})
            return
        try:
            print_label(self._store, self.config, uci, printer=where.printer, actor=ACTOR)
        except StationError as exc:  # print_label recorded it as print-failed: the line page offers a new print
            log.info("factory label failed", extra={"uci": uci, "printer": where.printer, "error": str(exc)})
