"""Failures allowed per key in a time window: wrong passwords at sign-in, wrong claim codes from the maker's
cloud. A guesser is slowed down by whatever they share (an address, a name, an account, a token), and one
person's typos do not lock everyone else out: each kind of key has a limit of its own.

A check and its count are one step, so parallel guesses cannot all pass before any of them is counted.
Memory stays bounded: beyond ``MAX_KEYS`` keys, those whose last failure is oldest are forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from ..core.errors import StationError

MAX_KEYS = 10_000  # keys remembered at once (about a megabyte)


class TooManyAttempts(StationError):
    """Refused for a while after repeated failures; ``retry_after`` is the wait in whole seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FailureLimiter:
    """``limits`` maps a kind of key (``addr``, ``user``, ``account``, ``token``) to the failures it may have in
    ``window`` seconds; ``refusal`` is the message of a refusal, with ``{wait}`` for the seconds to wait."""

    def __init__(self, limits: dict[str, int], window: float, refusal: str) -> None:
        self.limits = limits
        self.window = window
        self.refusal = refusal
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque()
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def begin(self, **keys: str | None) -> float:
        """Refuse when a key is over its limit, else count this attempt now, as a failure until ``succeeded``."""
        now = time.monotonic()
        named = [f"{kind}:{value}" for kind, value in keys.items() if value is not None]
        with self._lock:
            for key in named:
                times = self._recent(key, now)
                if len(times) >= self.limits[key.partition(":")[0]]:
                    wait = int(self.window - (now - times[0])) + 1
                    raise TooManyAttempts(self.refusal.format(wait=wait), wait)
            for key in named:
                self._failures[key].append(now)
                self._failures.move_to_end(key)
        return now

    def succeeded(self, attempt: float, forgive: tuple[str, ...] = (), **keys: str | None) -> None:
        """The attempt was right after all: it no longer counts, and the kinds in ``forgive`` start again (a
        right password clears its name's count)."""
        with self._lock:
            for kind, value in keys.items():
                key = f"{kind}:{value}"
                if kind in forgive:
                    self._failures.pop(key, None)
                elif attempt in self._failures.get(key, ()):
                    self._failures[key].remove(attempt)
