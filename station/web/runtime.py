"""What the request threads of one app share: the configuration, the one writer, read connections and the
access rules. Reads run on a connection of the request's own thread (WAL lets them run beside the writer).
Issuance and the API's and pages' writes go through the writer, so that concurrent requests group-commit and
never race; the line's and the rig's cycles write their step events on connections of their own threads,
which SQLite's lock (and the busy timeout) serializes with the writer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import current_app

from ..config import Config
from ..labels.factory import FactoryLabels
from ..serve.writer import Writer
from ..store import Store, is_url, prefetch
from .access import Access
from .bodies import MAX_KEY, field
from .limits import FailureLimiter


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
        self._local = threading.local()
        self._readers: list[Store] = []
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
        """This thread's read connection, opened on its first use."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store.open(self.config.database, timeout=self.timeout, station=self.config.station)
            with self._lock:
                self._readers.append(store)
        return store

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
            for store in self._readers:
                store.close()
            self._readers.clear()


def claim_limiter() -> FailureLimiter:
    """Wrong claim codes allowed in ten minutes: few per end user's account, more per client address, most per
    API token (the maker's cloud claims for all its users through one)."""
    return FailureLimiter({"account": 10, "addr": 30, "token": 200}, 600.0,
                          "too many claim codes that did not match a unit; wait {wait} seconds and check the code on "
                          "the label")


def runtime() -> Runtime:
    """The runtime of the app handling the current request."""
    return current_app.extensions["station"]
