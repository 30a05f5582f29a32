"""Request threads kept for devices: whatever the pages, the JSON API and the line's event streams do, a unit
calling ``/ioto/serialize`` or ``/api/device/register`` finds a thread of its process free.

Granian runs every request on one pool of threads. A page request holds its thread until its
reply is sent (an event stream for minutes), so a burst of them could leave none for devices. ``Reserve``
sits in front of a process's app and lets at most ``threads - DEVICE_THREADS`` requests that are not for the
device endpoints run at once; one more is answered 503 at once, which frees its thread again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..web import replies
from ..web.device import ENDPOINTS

DEVICE_THREADS = 4  # threads of each process that only the device endpoints may use
BUSY = "the station is busy with other page and API requests; try again in a moment"



class Reserve:
    """A process's app, with DEVICE_THREADS of its ``threads`` request threads kept for the device endpoints."""

    def __init__(self, app: replies.WSGIApp, threads: int) -> None:
        if threads <= DEVICE_THREADS:
            raise ValueError(f"a process needs more than {DEVICE_THREADS} request threads, not {threads}")
        self.app = app
        self.others = threads - DEVICE_THREADS  # requests of pages, API and line that may run at once
        self._free = threading.BoundedSemaphore(self.others)

    def __call__(self, environ: dict[str, Any], start_response: replies.StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in ENDPOINTS:
            return self.app(environ, start_response)
        if not self._free.acquire(blocking=False):
            return replies.error(start_response, 503, BUSY, [("Retry-After", "1")])
        try:
            reply = self.app(environ, start_response)
        except BaseException:
            self._free.release()
            raise
        return _Held(reply, self._free.release)


class _Held:
    """A reply that holds its place until the server closes it (after its last byte, or when the client left)."""

    def __init__(self, reply: Iterable[bytes], release: Callable[[], None]) -> None:
        self.reply = reply
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.reply)

    def close(self) -> None:
        try:
            close = getattr(self.reply, "close", None)
            if close is not None:
                close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
