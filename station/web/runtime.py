"""What the request threads of one app share: the configuration, the one writer, read connections and the
access rules. Reads run on a read connection the request takes and gives back (WAL lets them run beside the writer).
Issuance and the API's and pages' writes go through the writer, so that concurrent requests group-commit and
never race; the line's and the rig's cycles write their step events on connections of their own threads,
which SQLite's lock (and the busy timeout) serializes with the writer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import current_app, g

from ..config import Config
from ..labels.factory import FactoryLabels
from ..serve.writer import Writer
from ..store import Store, is_url, prefetch
from .access import Access
from .bodies import MAX_KEY, field
from .limits import FailureLimiter

_READER = "station_reader"  # the request's read connection, in flask.g
IDLE_READERS = 8  # read connections kept between requests: about the server's busy threads


class Runtime:
    """The shared state of one app; ``close`` it when the server stops."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.timeout = config.database_timeout  # a batch beside the line holds the lock for less
        self.hardware_keys: tuple[str, ...] = config.get("hardware_keys")
        self.writer = Writer(config.database, timeout=self.timeout, station=config.station)
        # The registry's pages are warmed once, in the background: a cold station reads one page per UCI it issues.
        if not is_url(config.database):  # a registry's server keeps its own cache
            threading.Thread(target=prefetch, args=(config.db_path,), name="station-prefetch", daemon=True).start()
        self._idle: list[Store] = []  # read connections that requests gave back
        self._closed = False
        self._lock = threading.Lock()
        self.on_close: list[Callable[[], None]] = []  # parts that hold resources of their own (the line's rig)
        self.claim_failures = claim_limiter()
        try:
            self.factory_labels = FactoryLabels(config)  # labels of units that serialized themselves, off the request
            self.access = Access(config.get("client_networks"), self.reader, self.writer)
        except Exception:
            self.close()
            raise

    def reader(self) -> Store:
        """The current request's read connection: one a request gave back, else a new one; it goes back when the
        request ends (``give_back``). Not one per thread: the server retires idle threads and starts others, and
        each would keep a connection (a shared registry's server counts them) until the station stops."""
        store: Store | None = g.get(_READER)
        if store is None:
            with self._lock:
                store = self._idle.pop() if self._idle else None
            if store is None:
                store = Store.open(self.config.database, timeout=self.timeout, station=self.config.station)
            setattr(g, _READER, store)
        return store

    def give_back(self, _error: BaseException | None = None) -> None:
        """At the end of a request (the app context's teardown): its read connection, kept for the next requests up
        to IDLE_READERS, else closed."""
        store: Store | None = g.pop(_READER, None)
        if store is None:
            return
        with self._lock:
            if not self._closed and len(self._idle) < IDLE_READERS:
                self._idle.append(store)
                return
        store.close()

    def hardware_key(self, device: dict[str, Any]) -> str | None:
        """``name:value`` of the first configured hardware key the device object carries, else None."""
        for key in self.hardware_keys:
            if device.get(key) is not None:
                return f"{key}:{field(device, key, str, required=True, max_len=MAX_KEY)}"
        return None

    def close(self) -> None:
        """Stop the parts, finish the queued writes and close every connection."""
        for close in self.on_close:
            close()
        if hasattr(self, "access"):
            self.access.close()  # its counted refusals are written before the writer stops
        if hasattr(self, "factory_labels"):
            self.factory_labels.close()  # queued labels print, or are recorded as not printed
        self.writer.close()
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for store in idle:
            store.close()


def claim_limiter() -> FailureLimiter:
    """Wrong claim codes allowed in ten minutes: few per end user's account, more per client address, most per
    API token (the maker's cloud claims for all its users through one)."""
    return FailureLimiter({"account": 10, "addr": 30, "token": 200}, 600.0,
                          "too many claim codes that did not match a unit; wait {wait} seconds and check the code on "
                          "the label")


def runtime() -> Runtime:
    """The runtime of the app handling the current request."""
    return current_app.extensions["station"]
