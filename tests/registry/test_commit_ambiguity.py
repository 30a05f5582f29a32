"""Commit ambiguity (issue 17, point 3): the connection to the registry drops during COMMIT, so the station does not
know whether the group was stored. A real TCP proxy between the station and PostgreSQL cuts the connection at the
station's COMMIT, once after the server answered it (stored, the answer lost) and once before the server got it (not
stored): the station must tell which before it answers, so that no UCI is answered that is not stored, and none is
stored twice when the agent asks again."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from station.core.errors import Unavailable
from station.store import IssueRequest, Store
from tests.conftest import PRODUCT
from tests.postgres_servers import drop_database, fresh_database


class CuttingProxy:
    """127.0.0.1 TCP proxy to a PostgreSQL server that, once armed, cuts the connection at the client's next
    ``COMMIT``: ``after`` the server's answer to it (which the client never gets), or ``before`` the server gets it;
    or goes ``silent`` there: the connection stays open, and nothing more passes either way (a cable cut)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.mode: str | None = None
        self.cuts = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode: str) -> None:
        with self._lock:
            self.mode = mode

    def _take(self) -> str | None:
        with self._lock:
            mode, self.mode = self.mode, None
            if mode:
                self.cuts += 1
            return mode

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=10)
            server.settimeout(None)
            committed = threading.Event()  # the COMMIT went to the server: its answer is the one to lose
            silent = threading.Event()
            threading.Thread(target=self._to_server, args=(client, server, committed, silent), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client, committed, silent), daemon=True).start()

    def _to_server(self, client: socket.socket, server: socket.socket, committed: threading.Event,
                   silent: threading.Event) -> None:
        while data := _recv(client):
            if b"COMMIT" in data and self.mode:
                mode = self._take()
                if mode == "before":
                    _close(client, server)
                    return
                if mode == "silent":
                    silent.set()
                else:
                    committed.set()
            if silent.is_set():
                continue
            try:
                server.sendall(data)
            except OSError:
                break
        _close(client, server)

    def _to_client(self, server: socket.socket, client: socket.socket, committed: threading.Event,
                   silent: threading.Event) -> None:
        while data := _recv(server):
            if committed.is_set():  # the server answered the COMMIT: it is stored, and the client never hears so
                break
            if silent.is_set():
                continue
            try:
                client.sendall(data)
            except OSError:
                break
        _close(client, server)

    def close(self) -> None:
        self.listener.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


@pytest.fixture
def registry() -> Iterator[tuple[str, CuttingProxy]]:
    """A migrated registry with the Blank product, and the proxy's URL to it."""
    url = fresh_database()
    with Store.open(url, migrate=True) as store:
        store.add_product(PRODUCT, "Blank", "Blank-01")
    parts = urlsplit(url)
    proxy = CuttingProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    try:
        yield url, proxy
    finally:
        proxy.close()
        drop_database(url)


def through(url: str, proxy: CuttingProxy) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()


def devices(url: str, key: str) -> list[str]:
    """The UCIs stored for a unit's serial or hardware key."""
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT uci FROM devices WHERE serial = %s OR hwkey = %s", (key, key))]


def test_a_commit_whose_answer_was_lost_is_found_stored_and_answered(registry: tuple[str, CuttingProxy]) -> None:
    url, proxy = registry
    with Store.open(through(url, proxy)) as store:
        proxy.arm("after")
        device, created = store.issue(IssueRequest(PRODUCT, hwkey="mac:answer-lost"))
        assert proxy.cuts == 1 and created
        assert devices(url, "mac:answer-lost") == [device.uci]  # what was answered is what is stored
        again, created = store.issue(IssueRequest(PRODUCT, hwkey="mac:answer-lost"))  # the unit asks again
        assert again.uci == device.uci and not created


def test_a_commit_the_server_never_got_is_refused_and_nothing_is_stored(registry: tuple[str, CuttingProxy]) -> None:
    url, proxy = registry
    with Store.open(through(url, proxy)) as store:
        proxy.arm("before")
        with pytest.raises(Unavailable, match="nothing was stored; try again"):
            store.issue(IssueRequest(PRODUCT, serial="SN-NEVER-STORED"))
        assert proxy.cuts == 1 and devices(url, "SN-NEVER-STORED") == []
        device, created = store.issue(IssueRequest(PRODUCT, serial="SN-NEVER-STORED"))  # the retry, on a new connection
        assert created and devices(url, "SN-NEVER-STORED") == [device.uci]


def test_a_group_whose_commit_answer_was_lost_answers_every_request(registry: tuple[str, CuttingProxy]) -> None:
    """The writer's group commit: every request of the group gets the UCI that is stored, none is stored twice."""
    url, proxy = registry
    requests = [IssueRequest(PRODUCT, serial=f"SN-GROUP-{n}") for n in range(20)]
    with Store.open(through(url, proxy)) as store:
        proxy.arm("after")
        results = store.issue_group(requests)
    assert proxy.cuts == 1
    answered = [result[0] for result in results if isinstance(result, tuple)]
    assert len(answered) == 20
    assert [devices(url, f"SN-GROUP-{n}") for n in range(20)] == [[code] for code in answered]


def test_a_lost_answer_is_found_stored_whatever_isolation_the_server_defaults_to(
        registry: tuple[str, CuttingProxy]) -> None:
    """The look-up after the lock must see what the lock's last holder committed: READ COMMITTED, set by the station
    on each connection, even where the database defaults to SERIALIZABLE."""
    url, proxy = registry
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {urlsplit(url).path.lstrip('/')} SET default_transaction_isolation = 'serializable'")
    with Store.open(through(url, proxy)) as store:
        assert store.conn.execute("SHOW transaction_isolation").fetchone()[0] == "read committed"
        proxy.arm("after")
        device, created = store.issue(IssueRequest(PRODUCT, hwkey="mac:serializable"))
        assert proxy.cuts == 1 and created and devices(url, "mac:serializable") == [device.uci]


def test_a_registry_that_goes_silent_during_a_commit_fails_it_in_bounded_time(
        registry: tuple[str, CuttingProxy]) -> None:
    """A cable cut: the connection neither answers nor closes. The commit fails within the TCP user timeout, the
    server ends the orphaned transaction (idle in transaction) and frees the write lock, and the station, having
    looked its token up, says nothing was stored; the unit's retry stores it once."""
    url, proxy = registry
    with Store.open(through(url, proxy), timeout=2) as store:
        proxy.arm("silent")
        with pytest.raises(Unavailable, match="nothing was stored; try again"):
            store.issue(IssueRequest(PRODUCT, hwkey="mac:silent"))
        assert proxy.cuts == 1 and devices(url, "mac:silent") == []
        device, created = store.issue(IssueRequest(PRODUCT, hwkey="mac:silent"))
        assert created and devices(url, "mac:silent") == [device.uci]
