"""Delivering events to webhook endpoints: threads in `station serve`'s own process (beside, not inside, the
server process: their JSON, signing and HTTP then never hold the request threads' interpreter lock). Per
endpoint, a reader takes the events after its cursor with its own connection, and ``concurrency`` lanes POST
them, signed: a unit's events always through the same lane, in event order, so one receiver's round trip does
not bound the rate, while each unit's events still arrive in order.

The events table is the outbox, so nothing is lost while a receiver is down or the station restarts: the
cursor (moved on only past events that all got a 2xx) is where delivery resumes.
The cursor is stored at most once a second while deliveries flow (a commit per event would cost the serialize
path a commit each), so a station killed mid-delivery sends up to a second's events again: each carries its
delivery id, ``<endpoint>:<event id>``, for the receiver to drop duplicates. A failure (refused connection,
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
from queue import SimpleQueue
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
POLL = 0.2  # seconds between looks for new events while the backlog is empty
BATCH = 500  # events read at a time
WINDOW = 2000  # events read and not yet all delivered, at most: a lane that fails holds the others this far
SAVE_EVERY = 1.0  # seconds between stores of the cursor while deliveries flow: the most a restart sends again
STOP_WAIT = 5.0  # seconds `close` waits for each thread (an answer under way is given up within 1 s)
REPLY_MAX = 65536  # bytes of a receiver's reply read (and dropped); a longer one costs its connection
USER_AGENT = "Station-Webhooks/1"
TEST_KIND = "webhook-test"  # the kind of `station webhooks test`'s delivery, which no stored event has

log = logging.getLogger("station.webhooks")


def body(delivery: str, event: Event, station: str) -> bytes:
    """A delivery's JSON: its id (``<endpoint>:<event id>``, for de-duplication), the event, and the station that
    wrote it (``station`` for events of before stations had names)."""
    return json.dumps({
        "id": delivery,
        "event": {"id": event.id, "time": event.time, "kind": event.kind, "uci": event.uci, "batch": event.batch,
                  "actor": event.actor, "details": event.details},
        "station": event.station or station,
    }, separators=(",", ":"), sort_keys=True).encode()


def backoff(attempt: int) -> float:
    """Seconds before trying again after failed attempt number ``attempt`` (1 s, 2 s, 4 s ... 5 minutes)."""
    return min(MAX_RETRY, FIRST_RETRY * 2 ** min(attempt - 1, 20)) * random.uniform(1 - JITTER, 1 + JITTER)


class Deliverer:
    """One endpoint's deliveries: a reader thread hands the events after the cursor to the endpoint's lanes, a
    unit's events always to the same lane, so that each unit's arrive in order while other units' overlap
    (one lane: every event in order). A lane whose receiver fails retries its event; the rest of its queue
    waits behind it, the other lanes go on until the window of events under way is full."""

    def __init__(self, endpoint: Endpoint, config: Config, cursor: int, station: str) -> None:
        self.endpoint = endpoint
        self._config = config
        self._station = station
        self._stop = threading.Event()
        self._state = threading.Condition()  # the window below; notified as deliveries end
        self._pending: deque[list[Any]] = deque()  # [event id, delivered], in event order: the window
        self._read_to = cursor  # every event up to here is in the window, delivered, or not of the kinds
        self._deliveries = 0  # deliveries so far; the cursor's store records a delivery's time when it grew
        self._db = threading.Lock()  # the reader's connection, which the lanes use to store their failures
        self._store: Store | None = None
        self._saved, self._saved_deliveries, self._saved_at = cursor, 0, time.monotonic()
        self._lanes = [_Lane(Sender(endpoint, self._stop)) for _ in range(endpoint.concurrency)]
        self._thread = threading.Thread(target=self._run, name=f"station-webhook-{endpoint.name}", daemon=True)
        self._thread.start()

    def interrupt(self) -> None:
        """Tell the threads to stop; an answer under way is given up within a second."""
        self._stop.set()
        with self._state:
            self._state.notify_all()

    def close(self) -> None:
        """Stop: the cursor is stored on the way out; waited for, bounded."""
        self.interrupt()
        self._thread.join(STOP_WAIT * 2)

    def _position(self) -> int:
        """The cursor as it may be stored: every event of the kinds up to it delivered (under ``_state``)."""
        return self._pending[0][0] - 1 if self._pending else self._read_to

    def _run(self) -> None:
        threads = [threading.Thread(target=self._serve, args=(lane,), daemon=True,
                                    name=f"station-webhook-{self.endpoint.name}-{n}") for n, lane in enumerate(self._lanes)]
        try:
            with self._db:
                self._store = Store.configured(self._config)
            for thread in threads:
                thread.start()
            while not self._stop.is_set():
                try:
                    self._read()
                except Exception:  # the database failed: try again, never lose the thread
                    log.exception("webhook deliveries paused", extra={"endpoint": self.endpoint.name})
                    self._stop.wait(FIRST_RETRY)
        except Exception:
            log.exception("webhook deliveries stopped", extra={"endpoint": self.endpoint.name})
        finally:
            self._stop.set()
            for lane in self._lanes:
                lane.queue.put(None)
            for thread in threads:
                if thread.is_alive():
                    thread.join(STOP_WAIT)
            try:
                self._save()
            except Exception:  # the database refused the last store: the next start sends them again
                log.warning("webhook cursor not stored", extra={"endpoint": self.endpoint.name,
                                                                "cursor": self._saved})
            for lane in self._lanes:
                lane.sender.disconnect()
            with self._db:
                if self._store is not None:
                    self._store.close()
                    self._store = None

    def _read(self) -> None:
        """Hand the events after those read to their lanes, as the window has room; or wait for more."""
        with self._state:
            while len(self._pending) >= WINDOW and not self._stop.is_set():
                self._state.wait(POLL)
            room, after = WINDOW - len(self._pending), self._read_to
        if room <= 0:
            return
        with self._db:
            assert self._store is not None
            events, read_to = self._store.webhook_events(after, self.endpoint.kinds, min(BATCH, room))
        with self._state:
            for event in events:
                entry = [event.id, False]
                self._pending.append(entry)
                key = event.uci or f"batch {event.batch}"
                self._lanes[zlib.crc32(key.encode()) % len(self._lanes)].queue.put((event, entry))
            self._read_to = read_to
        if time.monotonic() - self._saved_at >= SAVE_EVERY:
            self._save()
        if not events:
            self._stop.wait(POLL)

    def _serve(self, lane: _Lane) -> None:
        """A lane's thread: its events, one at a time, each until delivered."""
        while (item := lane.queue.get()) is not None:
            event, entry = item
            attempts = self._deliver(lane.sender, event)
            if attempts is None:
                return
            with self._state:
                entry[1] = True
                while self._pending and self._pending[0][1]:
                    self._pending.popleft()
                self._deliveries += 1
                self._state.notify_all()
            if attempts:  # the list shows the endpoint healthy again at once
                self._save_quietly()
                log.info("webhook delivered after failures", extra={"endpoint": self.endpoint.name,
                                                                    "event": event.id, "attempts": attempts})

    def _save(self) -> None:
        with self._db:
            with self._state:
                position, deliveries = self._position(), self._deliveries
            if position > self._saved and self._store is not None:
                self._store.webhook_delivered(self.endpoint.name, position, deliveries > self._saved_deliveries)
                self._saved, self._saved_deliveries = position, deliveries
            self._saved_at = time.monotonic()

    def _save_quietly(self) -> None:
        """Store the cursor from a lane: a refusal waits for the reader's next store."""
        try:
            self._save()
        except Exception:
            log.warning("webhook cursor not stored", extra={"endpoint": self.endpoint.name, "cursor": self._saved})

    def _deliver(self, sender: Sender, event: Event) -> int | None:
        """POST the event until a 2xx, retrying with backoff: the failed attempts before it; None when stopped."""
        delivery = f"{self.endpoint.name}:{event.id}"
        data = body(delivery, event, self._station)
        attempts = 0
        while not self._stop.is_set():
            error = sender.post(delivery, data)
            if error is None:
                return attempts
            attempts += 1
            wait = backoff(attempts)
            self._save_quietly()  # what was delivered before, so that a restart does not send it again
            try:
                with self._db:
                    if self._store is not None:
                        self._store.webhook_failed(self.endpoint.name, error,
                                                   stored(datetime.now(UTC) + timedelta(seconds=wait)))
            except Exception:  # the list misses this attempt; the delivery is tried again all the same
                log.warning("webhook failure not stored", extra={"endpoint": self.endpoint.name, "event": event.id})
            log.warning("webhook delivery failed", extra={"endpoint": self.endpoint.name, "url": self.endpoint.url,
                                                          "event": event.id, "error": error, "attempts": attempts,
                                                          "retry_in": round(wait, 1)})
            self._stop.wait(wait)
        return None


@dataclass
class _Lane:
    """The events of some units, delivered in order over one connection."""

    sender: Sender
    queue: SimpleQueue[tuple[Event, list[Any]] | None] = field(default_factory=SimpleQueue)


class Sender:
    """One lane's signed POSTs to an endpoint through libcurl, whose handle keeps the connection alive between
    deliveries (a receiver's closed keep-alive connection is opened again at once). libcurl does in C what
    http.client does in Python: a third of the CPU per delivery, which a loaded line's two cores need."""

    def __init__(self, endpoint: Endpoint, stop: threading.Event | None = None) -> None:
        self.endpoint = endpoint
        self._stop = stop or threading.Event()
        self._curl: pycurl.Curl | None = None
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
            curl.setopt(pycurl.NOPROGRESS, 0)
            curl.setopt(pycurl.XFERINFOFUNCTION, lambda *_: 1 if self._stop.is_set() else 0)  # stop: abort
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

    def post(self, delivery: str, data: bytes) -> str | None:
        """One attempt: None on a 2xx, else what went wrong."""
        curl = self._handle()
        timestamp = int(time.time())
        curl.setopt(pycurl.HTTPHEADER, [
            "Content-Type: application/json", "Expect:", f"Station-Webhook-Id: {delivery}",
            f"Station-Timestamp: {timestamp}", f"{signing.HEADER}: {signing.sign(self.endpoint.secret, data, timestamp)}"])
        curl.setopt(pycurl.POSTFIELDS, data)
        self._reply = 0
        try:
            curl.perform()
        except pycurl.error as exc:
            status, errno = curl.getinfo(pycurl.RESPONSE_CODE), curl.getinfo(pycurl.OS_ERRNO)
            code, message = exc.args
            self.disconnect()
            if code == pycurl.E_WRITE_ERROR and 200 <= status < 300:  # delivered, but the reply was too long
                return None
            return self._failure(code, message, errno)
        status = curl.getinfo(pycurl.RESPONSE_CODE)
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    def _failure(self, code: int, message: str, errno: int) -> str:
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return f"no answer within {self.endpoint.timeout:g} s (the endpoint's timeout)"
        if code in (pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_HOST):
            return f"cannot reach the receiver: {os.strerror(errno) if errno else message}"[:200]
        if code in (pycurl.E_GOT_NOTHING, pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR):
            return "the receiver closed the connection"
        if code in (pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_CACERT_BADFILE):
            return f"TLS failed: {message}"[:200]
        if code == pycurl.E_ABORTED_BY_CALLBACK:
            return "stopped"
        return f"delivery failed: {message}"[:200]

    def disconnect(self) -> None:
        if self._curl is not None:
            self._curl.close()
            self._curl = None


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
        station = config.station
        self.deliverers = []
        if not endpoints:
            return
        with Store.configured(config) as store:
            cursors = [store.webhook_start(e.name, e.start == "start") for e in endpoints]  # new ones start now
        for endpoint, cursor in zip(endpoints, cursors, strict=True):
            self.deliverers.append(Deliverer(endpoint, config, cursor, station))
            log.info("webhook deliveries started", extra={"endpoint": endpoint.name, "url": endpoint.url,
                                                          "kinds": list(endpoint.kinds), "cursor": cursor})

    def close(self) -> None:
        """Stop every deliverer (each stores its cursor on the way out)."""
        for deliverer in self.deliverers:
            deliverer.interrupt()  # all at once: each then waits only for itself
        for deliverer in self.deliverers:
            deliverer.close()
