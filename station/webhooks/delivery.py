"""Delivering events to webhook endpoints: a thread per endpoint in `station serve`'s own process (beside, not
inside, the server process: its JSON, signing and HTTP then never hold the request threads' interpreter lock).
It reads the events after the endpoint's cursor with its own connection and hands them to ``concurrency``
lanes, a unit's events always to the same lane; libcurl runs the lanes' POSTs at once in one multi handle, each
lane one at a time and in event order. So a receiver's round trip does not bound the rate, each unit's events
still arrive in order, and no lock or thread hand-off costs a delivery anything.

The events table is the outbox, so nothing is lost while a receiver is down or the station restarts: the
cursor (moved on only past events that all got a 2xx) is where delivery resumes. Of the stations on one
registry that name an endpoint, the one that holds its lease delivers (renewed every LEASE / 3 s); the others
try to take it over every TAKE_OVER s, at once when the holder stops, within LEASE when it was killed or cut off
(then, as after a restart, up to a second's events go out twice).
The cursor is stored at most once a second while deliveries flow (a commit per event would cost the serialize
path a commit each), with the events after it that the lanes have delivered (``ahead``: a restart skips them),
so a station killed mid-delivery sends up to a second's events again: each carries its delivery id,
``<endpoint>:<event id>``, for the receiver to drop duplicates. A failure (refused connection,
timeout, a status other than 2xx) retries the same event after 1 s, doubling to 5 minutes, with jitter; the
lane's next events wait, so no unit's order is ever broken.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import ssl
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pycurl

from ..config import Config
from ..core.models import Event, stored
from ..core.webhooks import Endpoint
from ..store import Store
from . import signing

FIRST_RETRY = 1.0  # seconds before the first retry of a failed delivery; each further one waits twice as long
MAX_RETRY = 300.0  # seconds: the longest wait between attempts (5 minutes)
JITTER = 0.2  # each wait is drawn within this share of its length, so that endpoints failing together spread out
POLL = 0.2  # seconds between looks for new events
BATCH = 500  # events read at a time
WINDOW = 2000  # events read and not yet all delivered, at most: a lane that fails holds the others this far
SAVE_EVERY = 1.0  # seconds between stores of the cursor while deliveries flow: the most a restart sends again
STOP_POLL = 0.2  # seconds between looks at the stop while transfers run (connecting too)
DB_WAIT = 1.0  # seconds a store of the cursor waits for another's write lock, at most: then it waits for the next
STOP_WAIT = 5.0  # seconds `close` waits for the thread, which sees the stop within STOP_POLL (plus a store)
REPLY_MAX = 65536  # bytes of a receiver's reply read (and dropped); a longer one costs its connection
USER_AGENT = "Station-Webhooks/1"
LEASE = 15.0  # seconds a station holds an endpoint's deliveries without renewing them: then another may take over
TAKE_OVER = 1.0  # seconds between a waiting station's attempts to take an endpoint's deliveries over
TEST_KIND = "webhook-test"  # the kind of `station webhooks test`'s delivery, which no stored event has

log = logging.getLogger("station.webhooks")
_BODY = json.JSONEncoder(separators=(",", ":"), sort_keys=True)  # one encoder for every body (json.dumps makes one each)


def body(delivery: str, event: Event, station: str) -> bytes:
    """A delivery's JSON: its id (``<endpoint>:<event id>``, for de-duplication), the event, and the station that
    wrote it (``station`` for events of before stations had names)."""
    return _BODY.encode({
        "id": delivery,
        "event": {"id": event.id, "time": event.time, "kind": event.kind, "uci": event.uci, "batch": event.batch,
                  "actor": event.actor, "details": event.details},
        "station": event.station or station,
    }).encode()


def backoff(attempt: int) -> float:
    """Seconds before trying again after failed attempt number ``attempt`` (1 s, 2 s, 4 s ... 5 minutes)."""
    return min(MAX_RETRY, FIRST_RETRY * 2 ** min(attempt - 1, 20)) * random.uniform(1 - JITTER, 1 + JITTER)


class _Transfers:
    """libcurl's multi interface: its transfers run at once in the thread that calls ``run``, which waits on
    their sockets (or, while none is open yet, on libcurl's timer) and never spins."""

    def __init__(self) -> None:
        self.multi = pycurl.CurlMulti()
        self._active = 0  # transfers libcurl still runs

    def run(self, timeout: float) -> list[tuple[pycurl.Curl, int, str]]:
        """Let libcurl act, waiting up to ``timeout`` s when nothing ended yet; the transfers that ended:
        (handle, libcurl's code, its message)."""
        ended = self._ended()
        if ended:
            return ended
        if not self._active:
            time.sleep(timeout)
            return self._ended()
        wanted = self.multi.timeout()  # ms until libcurl's next timer (-1: none)
        timeout = min(timeout, wanted / 1000) if wanted >= 0 else timeout
        if any(self.multi.fdset()):
            self.multi.select(timeout)
        else:  # no socket to wait on (a name being looked up; or one numbered past select's 1024): a short sleep
            time.sleep(min(timeout, 0.01))
        return self._ended()

    def _ended(self) -> list[tuple[pycurl.Curl, int, str]]:
        _, self._active = self.multi.perform()
        ended: list[tuple[pycurl.Curl, int, str]] = []
        while True:
            left, done, failed = self.multi.info_read()
            ended += [(curl, pycurl.E_OK, "") for curl in done]
            ended += [(curl, int(code), str(message)) for curl, code, message in failed]
            if not left:
                return ended

    def close(self) -> None:
        """Last: libcurl may wait here for a name look-up under way."""
        self.multi.close()


@dataclass
class _Lane:
    """The events of some units, delivered one at a time, in order: the first is under way or waits to be retried."""

    sender: Sender
    queue: deque[tuple[Event, list[Any]]] = field(default_factory=deque)  # (event, its window entry)
    busy: bool = False  # its first event's transfer is running
    attempts: int = 0  # failed attempts at its first event
    retry_at: float = 0.0  # monotonic time its first event may be tried again


class Deliverer:
    """One endpoint's deliveries: its thread, its lanes, its window of events under way and its cursor."""

    def __init__(self, endpoint: Endpoint, config: Config, station: str) -> None:
        self.endpoint = endpoint
        self._config = config
        self._station = station
        self._holder = f"{station} #{secrets.token_hex(4)}"  # this deliverer, as the endpoint's row names its holder
        self._held = False  # this deliverer holds the endpoint's lease: it delivers
        self._hold_at = 0.0  # monotonic time to renew the lease, or to try to take it
        self._lease_end = 0.0  # monotonic time the lease ends unless renewed
        self._stop = threading.Event()
        self._pending: deque[list[Any]] = deque()  # [event id, delivered], in event order: the window
        self._read_to = 0  # every event up to here is in the window, delivered, or not of the kinds
        self._read_at = -POLL  # monotonic time of the last read
        self._more = True  # the last read was cut by its limit: more events wait
        self._ahead: set[int] = set()  # events after the cursor delivered before a restart: not sent again
        self._deliveries = 0  # deliveries so far; the cursor's store records a delivery's time when it grew
        self._store: Store | None = None
        self._saved, self._saved_deliveries = 0, 0
        self._saved_ahead: list[int] = []
        self._saved_at = time.monotonic()
        self._lanes = [_Lane(Sender(endpoint)) for _ in range(endpoint.concurrency)]
        self._running: dict[pycurl.Curl, _Lane] = {}  # the transfers under way
        self._thread = threading.Thread(target=self._run, name=f"station-webhook-{endpoint.name}", daemon=True)
        self._thread.start()

    def interrupt(self) -> None:
        """Tell the thread to stop: transfers under way are given up within STOP_POLL."""
        self._stop.set()

    def close(self) -> None:
        """Stop: the cursor is stored on the way out; waited for, bounded."""
        self.interrupt()
        self._thread.join(STOP_WAIT)

    def _run(self) -> None:
        transfers = _Transfers()
        try:
            while not self._stop.is_set():
                try:
                    if self._store is None:
                        self._store = Store.open(self._config.database, station=self._config.station,
                                                 timeout=min(DB_WAIT, self._config.database_timeout))
                    self._hold()
                    if self._held:
                        self._round(transfers)
                    if not self._held:  # another station delivers (or took over: what was under way is its now)
                        self._leave(transfers)
                        self._stop.wait(max(0.0, self._hold_at - time.monotonic()))
                except Exception:  # the database or libcurl failed: try again, never lose the thread
                    log.exception("webhook deliveries paused", extra={"endpoint": self.endpoint.name})
                    self._give_up(transfers)
                    self._stop.wait(FIRST_RETRY)
        finally:
            self._give_up(transfers)  # sent again after the restart
            if self._held and self._store is not None:
                try:
                    self._save()
                    self._store.webhook_release(self.endpoint.name, self._holder)
                except Exception:  # the database refused: the next holder sends them again, once the lease ends
                    log.warning("webhook cursor not stored", extra={"endpoint": self.endpoint.name,
                                                                    "cursor": self._saved})
            if self._store is not None:
                self._store.close()
            for lane in self._lanes:
                lane.sender.disconnect()
            transfers.close()

    def _hold(self) -> None:
        """Renew the endpoint's lease when it is time, or try to take it: taken, delivery starts at the stored
        cursor (another station may have moved it); found with another station, this one stops delivering."""
        asked = time.monotonic()
        if self._held and asked >= self._lease_end:  # not renewed in time: another station may deliver by now
            self._held, self._hold_at = False, asked
        if asked < self._hold_at:
            return
        assert self._store is not None
        try:
            taken = self._store.webhook_hold(self.endpoint.name, self._holder, LEASE)
        except Exception:
            self._hold_at = min(asked + TAKE_OVER, self._lease_end) if self._held else asked + TAKE_OVER
            if self._held:  # (a write lock held long) still this station's until its lease ends: it goes on
                log.warning("webhook lease not renewed", extra={"endpoint": self.endpoint.name,
                                                                "left_s": round(self._lease_end - asked, 1)})
                return
            self._held = False
            raise
        self._hold_at = asked + (LEASE / 3 if taken else TAKE_OVER)
        if taken is None:
            self._held = False
            return
        self._lease_end = asked + LEASE
        if not self._held:
            self._begin(*taken)

    def _begin(self, cursor: int, ahead: frozenset[int]) -> None:
        """Deliver from the stored cursor, the events after it delivered already left out (the window and the
        lanes start empty: what they held when the lease was lost is read again from the cursor)."""
        self._clear()
        self._held, self._read_to, self._read_at, self._more, self._ahead = True, cursor, -POLL, True, set(ahead)
        self._saved, self._saved_ahead, self._saved_deliveries = cursor, sorted(ahead), self._deliveries
        self._saved_at = time.monotonic()
        log.info("webhook deliveries started", extra={"endpoint": self.endpoint.name, "url": self.endpoint.url,
                                                      "kinds": list(self.endpoint.kinds), "cursor": cursor,
                                                      "holder": self._holder})

    def _leave(self, transfers: _Transfers) -> None:
        """What this station had under way is another's to deliver now: given up, the window emptied."""
        if not (self._pending or self._running):
            return
        log.warning("webhook deliveries taken over by another station", extra={"endpoint": self.endpoint.name,
                                                                               "cursor": self._saved})
        self._give_up(transfers)
        self._clear()

    def _clear(self) -> None:
        self._pending.clear()
        for lane in self._lanes:
            lane.queue.clear()
            lane.attempts, lane.retry_at = 0, 0.0

    def _give_up(self, transfers: _Transfers) -> None:
        """End the transfers under way, unfinished: their events are tried again."""
        for curl, lane in self._running.items():
            transfers.multi.remove_handle(curl)
            lane.busy = False
            lane.sender.disconnect()
        self._running.clear()

    def _round(self, transfers: _Transfers) -> None:
        """Read events as the window has room, start the lanes that can go, wait for the sockets, a retry, the
        next read or the stop, take the transfers that ended, and store the cursor when it is time."""
        now = time.monotonic()
        if (read_at := self._next_read()) is not None and read_at <= now:
            try:
                self._read(now)
            except Exception:  # the transfers under way go on; the read is tried again after POLL
                self._read_at = now
                log.exception("webhook events not read", extra={"endpoint": self.endpoint.name})
        for lane in self._lanes:
            if lane.queue and not lane.busy and lane.retry_at <= now:
                self._start(transfers, lane)
        for curl, code, message in transfers.run(self._timeout()):
            lane = self._running.pop(curl)
            transfers.multi.remove_handle(curl)
            lane.busy = False
            try:
                self._ended(lane, code, message)
            except Exception:  # a fault of the station's own: the lane tries its event again
                log.exception("webhook delivery crashed", extra={"endpoint": self.endpoint.name})
                lane.sender.disconnect()
        if time.monotonic() - self._saved_at >= SAVE_EVERY:
            self._save_quietly()

    def _next_read(self) -> float | None:
        """When to read events next: POLL after the last read, at once while more wait and the lanes run low;
        None while the window is full."""
        if len(self._pending) >= WINDOW:
            return None
        low = sum(len(lane.queue) for lane in self._lanes) < BATCH
        return self._read_at if self._more and low else self._read_at + POLL

    def _timeout(self) -> float:
        """Seconds until the next thing to do (the stop is looked at every STOP_POLL)."""
        read_at = self._next_read()
        until = [self._saved_at + SAVE_EVERY, *(lane.retry_at for lane in self._lanes if lane.queue and not lane.busy),
                 *((read_at,) if read_at is not None else ())]
        return max(0.0, min(STOP_POLL, *(t - time.monotonic() for t in until)))

    def _read(self, now: float) -> None:
        """Hand the events after those read to their lanes, as far as the window has room."""
        assert self._store is not None
        limit = min(BATCH, WINDOW - len(self._pending))
        events, self._read_to = self._store.webhook_events(self._read_to, self.endpoint.kinds, limit)
        self._read_at, self._more = now, len(events) == limit
        for event in events:
            entry = [event.id, event.id in self._ahead]  # delivered before the restart: not again
            self._pending.append(entry)
            if not entry[1]:
                key = event.uci or f"batch {event.batch}"
                self._lanes[zlib.crc32(key.encode()) % len(self._lanes)].queue.append((event, entry))
        self._ahead = {event for event in self._ahead if event > self._read_to}  # (of kinds no longer asked: gone)
        self._advance()

    def _advance(self) -> None:
        """Drop the delivered events at the window's start."""
        while self._pending and self._pending[0][1]:
            self._pending.popleft()

    def _start(self, transfers: _Transfers, lane: _Lane) -> None:
        event, _ = lane.queue[0]
        delivery = f"{self.endpoint.name}:{event.id}"
        curl = lane.sender.prepare(delivery, body(delivery, event, self._station))
        transfers.multi.add_handle(curl)
        self._running[curl] = lane
        lane.busy = True

    def _ended(self, lane: _Lane, code: int, message: str) -> None:
        """A lane's transfer ended: its event delivered, or its failed attempt recorded and its retry set."""
        error = lane.sender.outcome(code, message)
        event, entry = lane.queue[0]
        if error is None:
            lane.queue.popleft()
            entry[1] = True
            self._deliveries += 1
            self._advance()
            if lane.attempts:  # the list shows the endpoint healthy again at once
                log.info("webhook delivered after failures", extra={"endpoint": self.endpoint.name,
                                                                    "event": event.id, "attempts": lane.attempts})
                lane.attempts = 0
                self._save_quietly()
            return
        lane.attempts += 1
        wait = backoff(lane.attempts)
        lane.retry_at = time.monotonic() + wait
        self._save_quietly()  # what was delivered before, so that a restart does not send it again
        try:
            assert self._store is not None
            self._store.webhook_failed(self.endpoint.name, self._holder, error,
                                       stored(datetime.now(UTC) + timedelta(seconds=wait)))
        except Exception:  # the list misses this attempt; the delivery is tried again all the same
            log.warning("webhook failure not stored", extra={"endpoint": self.endpoint.name, "event": event.id})
        log.warning("webhook delivery failed", extra={"endpoint": self.endpoint.name, "url": self.endpoint.url,
                                                      "event": event.id, "error": error, "attempts": lane.attempts,
                                                      "retry_in": round(wait, 1)})

    def _save(self) -> None:
        """Store the cursor: every event up to the window's start delivered, and those delivered after it; the
        failed attempts end once every lane delivers again."""
        position = self._pending[0][0] - 1 if self._pending else self._read_to
        ahead = sorted({entry[0] for entry in self._pending if entry[1]} | self._ahead)
        delivered = self._deliveries > self._saved_deliveries
        if (position > self._saved or ahead != self._saved_ahead) and self._store is not None:
            if not self._store.webhook_delivered(self.endpoint.name, self._holder, position, delivered, ahead,
                                                 recovered=delivered and not any(lane.attempts for lane in self._lanes)):
                self._held, self._hold_at = False, 0.0  # another station took over: see whether it still holds
                return
            self._saved, self._saved_ahead, self._saved_deliveries = position, ahead, self._deliveries
        self._saved_at = time.monotonic()

    def _save_quietly(self) -> None:
        """Store the cursor; a refusal (another's write lock held past DB_WAIT) waits for the next store."""
        try:
            self._save()
        except Exception:
            self._saved_at = time.monotonic()
            log.warning("webhook cursor not stored", extra={"endpoint": self.endpoint.name, "cursor": self._saved})


class Sender:
    """A lane's signed POSTs to an endpoint through a libcurl handle, whose connection stays alive between
    deliveries (a receiver's closed keep-alive connection is opened again at once). libcurl does in C what
    http.client does in Python: a third of the CPU per delivery, which a loaded line's two cores need."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._curl: pycurl.Curl | None = None
        self._transfers: _Transfers | None = None  # ``post``'s own, for a delivery on its own
        self._reply = 0  # bytes of the answer under way read so far

    def _handle(self) -> pycurl.Curl:
        if self._curl is None:
            curl = pycurl.Curl()
            curl.setopt(pycurl.URL, self.endpoint.url)
            curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
            curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
            curl.setopt(pycurl.POST, 1)
            curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: this is one thread of many
            curl.setopt(pycurl.TIMEOUT_MS, int(self.endpoint.timeout * 1000))
            curl.setopt(pycurl.USERAGENT, USER_AGENT)
            curl.setopt(pycurl.WRITEFUNCTION, self._read_reply)
            curl.setopt(pycurl.HEADERFUNCTION, len)  # the answer's headers: only its status counts
            paths = ssl.get_default_verify_paths()  # trust what Python's own TLS trusts (SSL_CERT_FILE included)
            if paths.cafile:
                curl.setopt(pycurl.CAINFO, paths.cafile)
            if paths.capath:
                curl.setopt(pycurl.CAPATH, paths.capath)
            self._curl = curl
        return self._curl

    def _read_reply(self, data: bytes) -> int:
        """A receiver's reply is read and dropped; a longer one than REPLY_MAX ends its connection."""
        self._reply += len(data)
        return len(data) if self._reply <= REPLY_MAX else 0

    def prepare(self, delivery: str, data: bytes) -> pycurl.Curl:
        """The handle, set for one signed POST of ``data``: to be run by a multi handle, then told to ``outcome``."""
        curl = self._handle()
        timestamp = int(time.time())
        curl.setopt(pycurl.HTTPHEADER, [
            "Content-Type: application/json", "Expect:", f"Station-Webhook-Id: {delivery}",
            f"Station-Timestamp: {timestamp}", f"{signing.HEADER}: {signing.sign(self.endpoint.secret, data, timestamp)}"])
        curl.setopt(pycurl.POSTFIELDS, data)
        self._reply = 0
        return curl

    def outcome(self, code: int, message: str) -> str | None:
        """What the transfer that ended with libcurl's ``code`` came to: None on a 2xx, else what went wrong."""
        assert self._curl is not None
        status, errno = self._curl.getinfo(pycurl.RESPONSE_CODE), self._curl.getinfo(pycurl.OS_ERRNO)
        if code == pycurl.E_OK or (code == pycurl.E_WRITE_ERROR and status):  # (a reply too long: answered)
            if code != pycurl.E_OK:
                self.disconnect()  # the rest of that reply is not read: its connection goes
            return None if 200 <= status < 300 else f"HTTP {status}"
        self.disconnect()
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return f"no answer within {self.endpoint.timeout:g} s (the endpoint's timeout)"
        if code in (pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST):
            return f"cannot reach the receiver: {os.strerror(errno) if errno else message}"[:200]
        if code in (pycurl.E_GOT_NOTHING, pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR):
            return "the receiver closed the connection"
        if code in (pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CACERT_BADFILE):
            return f"TLS failed: {message}"[:200]
        return f"delivery failed: {message}"[:200]

    def post(self, delivery: str, data: bytes) -> str | None:
        """One attempt on its own (``station webhooks test``): None on a 2xx, else what went wrong."""
        if self._transfers is None:
            self._transfers = _Transfers()  # kept: its connection serves the next attempt
        transfers, curl = self._transfers, self.prepare(delivery, data)
        transfers.multi.add_handle(curl)
        try:
            while not (ended := transfers.run(STOP_POLL)):  # bounded by the handle's own timeout
                pass
        finally:
            transfers.multi.remove_handle(curl)
        _, code, message = ended[0]
        return self.outcome(code, message)

    def disconnect(self) -> None:
        if self._curl is not None:
            self._curl.close()
            self._curl = None
        if self._transfers is not None:
            self._transfers.close()
            self._transfers = None


def send_test(endpoint: Endpoint, station: str, actor: str = "cli") -> str | None:
    """One signed delivery of a ``webhook-test`` event (never stored: no cursor moves), so that a maker can check
    the URL, the secret and the receiver's signature check; None when it answered 2xx, else what went wrong."""
    event = Event(0, stored(datetime.now(UTC)), None, None, TEST_KIND, actor, {"endpoint": endpoint.name})
    sender = Sender(endpoint)
    try:
        delivery = f"{endpoint.name}:test-{secrets.token_hex(4)}"
        return sender.post(delivery, body(delivery, event, station))
    finally:
        sender.disconnect()


class Webhooks:
    """Every configured endpoint's deliverer; started and closed by `station serve` (serve/server.py)."""

    def __init__(self, config: Config) -> None:
        endpoints: tuple[Endpoint, ...] = config.get("webhooks")
        self.deliverers: list[Deliverer] = []
        if not endpoints:
            return
        with Store.configured(config) as store:
            for endpoint in endpoints:  # new ones start now
                store.webhook_start(endpoint.name, endpoint.start == "start")
        self.deliverers = [Deliverer(endpoint, config, config.station) for endpoint in endpoints]

    def close(self) -> None:
        """Stop every deliverer (each stores its cursor on the way out)."""
        for deliverer in self.deliverers:
            deliverer.interrupt()  # all at once: each then waits only for itself
        for deliverer in self.deliverers:
            deliverer.close()
