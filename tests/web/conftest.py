"""A real `station serve` process on 127.0.0.1 and clients that speak to it as Ioto agents and tools do."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from station import config as config_mod
from station.store import Store
from tests.conftest import ENGINES, PRODUCT
from tests.postgres_servers import drop_database, fresh_database

STATION = [sys.executable, "-c", "from station.cli import main; main()"]  # the `station` command of this Python
START_TIMEOUT = 30.0
OTHER = "01OTHERPRODUCT0000000000001"
DISABLED = "01DISABLEDPRODUCT000000001"
IOTO_BODY = {"product": PRODUCT, "name": "Blank", "description": "Blank slate app", "model": "Blank-01"}


def station(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a `station` command on the data directory; fail the test on a non-zero exit."""
    done = subprocess.run([*STATION, "--data-dir", str(data_dir), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done


def prepare(data_dir: Path, database: str | None = None) -> None:
    """The products the tests use: Blank, another one, and a disabled one, in the station's database: its SQLite
    file, or the registry at ``database`` (then named in its station.json5, and migrated as `station db migrate` does)."""
    if database:
        (data_dir / "station.json5").write_text(json.dumps({"database": database}))
    with Store.configured(config_mod.load(data_dir), migrate=True) as store:
        store.add_product(PRODUCT, "Blank", "Blank-01", description="Blank slate app")
        store.add_product(OTHER, "Other", "Other-01", bits=50)
        store.add_product(DISABLED, "Off", "Off-01")
        store.set_product_enabled(DISABLED, False)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_reply(sock: socket.socket) -> Reply:
    """One HTTP reply as it came over the socket: its body up to Content-Length, or to the close without one."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the reply's headers: {data!r}"
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", -1))
    while len(body) < length or length < 0:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Reply(int(lines[0].split()[1]), headers, body)


@dataclass
class Server:
    """`station serve --port 0` on a data directory; the port and the process ids come from its `serving` log line."""

    data_dir: Path
    options: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] = field(init=False)
    port: int = field(init=False)
    pids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir / "serve.stderr"
        start = self.log.stat().st_size if self.log.exists() else 0  # an earlier server's lines name its port
        self.proc = subprocess.Popen([*STATION, "--data-dir", str(self.data_dir), "serve", "--port", "0", *self.options],
                                     stdout=subprocess.DEVNULL, stderr=self.log.open("ab"))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in self.log.read_bytes()[start:].decode(errors="replace").split("\n")[:-1]:  # whole lines
                if '"msg": "serving"' in line:
                    serving = json.loads(line)
                    self.port = int(serving["url"].rsplit(":", 1)[1])
                    self.pids = serving["pids"]
                    return
            time.sleep(0.05)
        self.proc.kill()
        raise AssertionError(f"station serve did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    @property
    def db(self) -> str | Path:
        """The station's database: its SQLite file, or the registry's URL."""
        return config_mod.load(self.data_dir, create=False).database

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill(self) -> None:
        """SIGKILL of `station serve` alone (its server process notices it is orphaned and stops)."""
        self.proc.kill()
        self.proc.wait(30)

    def crash(self) -> None:
        """SIGKILL of every process of the station at once, the writer's among them: a power cut, as far as the
        station can tell."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(pid) for pid in self.pids):
            time.sleep(0.05)

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        """One request on a new connection, as a tool would send it (a body that is not bytes goes as JSON)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def ioto(self, path: str, body: bytes, extra: str = "", source: str | None = None) -> Reply:
        """A request byte for byte as an Ioto agent sends it (DESIGN.md 2); the reply must carry Content-Length.
        ``source``: the unit's address, another of 127.0.0.0/8 (a fixture of its own)."""
        head = (f"POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Length: {len(body)}\r\n{extra}\r\n")
        with socket.create_connection(("127.0.0.1", self.port), timeout=30,
                                      source_address=(source, 0) if source else None) as sock:
            sock.sendall(head.encode() + body)
            reply = read_reply(sock)
        assert "content-length" in reply.headers, "the Ioto agent reads only replies that carry Content-Length"
        assert len(reply.raw) == int(reply.headers["content-length"]), "connection closed before the reply's body"
        return reply

    def serialize(self, device: dict[str, Any] | None = None, extra: str = "", source: str | None = None) -> Reply:
        """POST /ioto/serialize with a device object, compact JSON as the agent sends it."""
        return self.ioto("/ioto/serialize", json.dumps(device or IOTO_BODY, separators=(",", ":")).encode(), extra,
                         source)

    def register(self, device: dict[str, Any], product: str | None = None) -> Reply:
        """POST /api/device/register as the agent sends it, `Authorization: bearer <product>`."""
        auth = f"Authorization: bearer {product or device['product']}\r\n"
        return self.ioto("/api/device/register", json.dumps(device, separators=(",", ":")).encode(), auth)


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A station with the test products, shared by a module's tests (each test uses its own units), on each engine
    (a registry's URL in its station.json5, which the server and every command on its data directory read)."""
    data_dir = tmp_path_factory.mktemp("station-data")
    url = fresh_database() if request.param == "postgresql" else None
    prepare(data_dir, url)
    running = Server(data_dir)
    yield running
    assert running.stop() == 0
    if url:
        drop_database(url)


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    """An API token made by `station token create`, as an operator makes one, with every scope."""
    scopes = ("--scope", "read", "--scope", "issue", "--scope", "claim", "--scope", "admin")
    return station(server.data_dir, "token", "create", "--name", "tests", *scopes).stdout.strip()


def count(db: str | Path, sql: str, *params: Any) -> int:
    """One number from the live database, read beside the server."""
    with Store.open(db) as store:
        return store.conn.execute(sql, params).fetchone()[0]
