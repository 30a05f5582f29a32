"""Delivering events to webhook endpoints: one thread per endpoint in `station serve`'s own process (beside,
not inside, the server process: its JSON, signing and HTTP then never hold the request threads' interpreter
lock), reading the events after its cursor with its own connection and POSTing each, signed, in event order.

The events table is the outbox, so nothing is lost while a receiver is down or the station restarts: the
cursor (moved on only past events whose POST got a 2xx) is where delivery resumes.
The cursor is stored at most once a second while deliveries flow (a commit per event would cost the serialize
path a commit each), so a station killed mid-delivery sends up to a second's events again: each carries its
delivery id, ``<endpoint>:<event id>``, for the receiver to drop duplicates. A failure (refused connection,
timeout, a status other than 2xx) retries the same event after 1 s, doubling to 5 minutes, with jitter; the
next event waits, so order is never broken.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta

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
SAVE_EVERY = 1.0  # seconds between stores of the cursor while deliveries flow: the most a restart sends again
STOP_WAIT = 5.0  # seconds `close` waits for each thread (an answer under way is cut off first)
REPLY_MAX = 65536  # bytes of a receiver's reply read (and dropped); a longer one costs its connection
USER_AGENT = "Station-Webhooks/1"
TEST_KIND = "webhook-test"  # the kind of `station webhooks test`'s delivery, which no stored event has

log = logging.getLogger("station.webhooks")


def body(delivery: str, event: Event, station: str) -> bytes:
    """A delivery's JSON: its id (``<endpoint>:<event id>``, for de-duplication), the event, the station."""
    return json.dumps({
        "id": delivery,
        "event": {"id": event.id, "time": event.time, "kind": event.kind, "uci": event.uci, "batch": event.batch,
                  "actor": event.actor, "details": event.details},
        "station": station,
    }, separators=(",", ":"), sort_keys=True).encode()


def backoff(attempt: int) -> float:
    """Seconds before trying again after failed attempt number ``attempt`` (1 s, 2 s, 4 s ... 5 minutes)."""
    return min(MAX_RETRY, FIRST_RETRY * 2 ** min(attempt - 1, 20)) * random.uniform(1 - JITTER, 1 + JITTER)


class Deliverer:
    """One endpoint's thread: events of its kinds after its cursor, POSTed one at a time, in order."""

    def __init__(self, endpoint: Endpoint, config: Config, cursor: int, station: str) -> None:
        self.endpoint = endpoint
        self._config = config
        self._store: Store | None = None  # the thread's own connection: it reads the events and stores the cursor
        self._station = station
        self._saved = self._position = cursor  # stored cursor; every event of its kinds up to position delivered
        self._delivered = False  # one was delivered since the cursor was last stored
        self._saved_at = time.monotonic()
        self._stop = threading.Event()
        self._sender = Sender(endpoint, self._stop)
        self._thread = threading.Thread(target=self._run, name=f"station-webhook-{endpoint.name}", daemon=True)
        self._thread.start()

    def interrupt(self) -> None:
        """Tell the thread to stop, cutting off an answer under way."""
        self._stop.set()
        self._sender.cut()

    def close(self) -> None:
        """Stop: the thread stores its cursor on the way out; waited for, bounded."""
        self.interrupt()
        self._thread.join(STOP_WAIT)

    def _run(self) -> None:
        store = None
        try:
            store = self._store = Store.open(self._config.db_path, timeout=self._config.database_timeout)
            while not self._stop.is_set():
                try:
                    self._round(store)
                except Exception:  # the database or the writer failed: try again, never lose the thread
                    log.exception("webhook deliveries paused", extra={"endpoint": self.endpoint.name})
                    self._stop.wait(FIRST_RETRY)
        except Exception:
            log.exception("webhook deliveries stopped", extra={"endpoint": self.endpoint.name})
        finally:
            try:
                self._save()
            except Exception:  # the database refused the last store: the next start sends them again
                log.warning("webhook cursor not stored", extra={"endpoint": self.endpoint.name,
                                                                "cursor": self._position})
            self._sender.disconnect()
            if store is not None:
                store.close()

    def _round(self, store: Store) -> None:
        """Deliver what the events after the position hold, or wait for more."""
        events, read_to = store.webhook_events(self._position, self.endpoint.kinds, BATCH)
        for event in events:
            if not self._deliver(event):
                return
            self._position = event.id
            self._delivered = True
            if time.monotonic() - self._saved_at >= SAVE_EVERY:
                self._save()
        self._position = read_to
        if time.monotonic() - self._saved_at >= SAVE_EVERY:
            self._save()
        if not events:
            self._stop.wait(POLL)

    def _save(self) -> None:
        if self._position > self._saved and self._store is not None:
            self._store.webhook_delivered(self.endpoint.name, self._position, self._delivered)
            self._saved, self._delivered = self._position, False
        self._saved_at = time.monotonic()

    def _deliver(self, event: Event) -> bool:
        """POST the event until a 2xx (True), retrying with backoff; False when stopped first."""
        delivery = f"{self.endpoint.name}:{event.id}"
        data = body(delivery, event, self._station)
        attempts = 0
        while not self._stop.is_set():
            error = self._sender.post(delivery, data)
            if error is None:
                if attempts:  # the list shows the endpoint healthy again at once
                    self._position, self._delivered = event.id, True
                    self._save()
                    log.info("webhook delivered after failures", extra={"endpoint": self.endpoint.name,
                                                                        "event": event.id, "attempts": attempts})
                return True
            attempts += 1
            wait = backoff(attempts)
            self._save()  # what was delivered before this event, so that a restart does not send it again
            next_attempt = stored(datetime.now(UTC) + timedelta(seconds=wait))
            if self._store is not None:
                self._store.webhook_failed(self.endpoint.name, error, next_attempt)
            log.warning("webhook delivery failed", extra={"endpoint": self.endpoint.name, "url": self.endpoint.url,
                                                          "event": event.id, "error": error, "attempts": attempts,
                                                          "retry_in": round(wait, 1)})
            self._stop.wait(wait)
        return False


class Sender:
    """One endpoint's HTTP connection (kept alive between deliveries) and its signed POSTs."""

    def __init__(self, endpoint: Endpoint, stop: threading.Event | None = None) -> None:
        self.endpoint = endpoint
        self._stop = stop or threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()  # the connection, shut by `cut` while a thread waits on it
        url = urllib.parse.urlsplit(endpoint.url)
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname or "", url.port
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")

    def cut(self) -> None:
        """Cut off an answer under way (the stop event is set: nothing is sent again)."""
        with self._lock:
            if self._conn is not None and self._conn.sock is not None:
                try:
                    self._conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def post(self, delivery: str, data: bytes) -> str | None:
        """One attempt: None on a 2xx, else what went wrong (a receiver's keep-alive connection that it closed
        meanwhile is opened again once, at once)."""
        reused = self._conn is not None
        try:
            try:
                status, reason = self._send(delivery, data)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.disconnect()
                if not reused or self._stop.is_set():
                    raise
                status, reason = self._send(delivery, data)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            self.disconnect()
            return f"the receiver closed the connection ({type(exc).__name__})"
        except TimeoutError:
            self.disconnect()
            return f"no answer within {self.endpoint.timeout:g} s (the endpoint's timeout)"
        except ssl.SSLError as exc:
            self.disconnect()
            return f"TLS failed: {exc.reason or exc}"
        except OSError as exc:
            self.disconnect()
            return f"cannot reach the receiver: {exc.strerror or exc}"[:200]
        except http.client.HTTPException as exc:
            self.disconnect()
            return f"bad HTTP reply: {exc!r}"[:200]
        if 200 <= status < 300:
            return None
        return f"HTTP {status} {reason}"[:200]

    def _send(self, delivery: str, data: bytes) -> tuple[int, str]:
        with self._lock:
            if self._stop.is_set():
                raise ConnectionResetError("stopping")
            if self._conn is None:
                kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = kind(self._host, self._port, timeout=self.endpoint.timeout)
            conn = self._conn
        timestamp = int(time.time())
        conn.request("POST", self._path, body=data, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT, "Station-Webhook-Id": delivery,
            "Station-Timestamp": str(timestamp), signing.HEADER: signing.sign(self.endpoint.secret, data, timestamp)})
        response = conn.getresponse()
        response.read(REPLY_MAX)
        if not response.isclosed():  # a reply too long to read: its connection goes with it
            self.disconnect()
        return response.status, response.reason

    def disconnect(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


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
        station = socket.gethostname()
        self.deliverers = []
        if not endpoints:
            return
        with Store.open(config.db_path, timeout=config.database_timeout) as store:
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
