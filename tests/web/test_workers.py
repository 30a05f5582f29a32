"""`station serve` with worker processes: real processes on 127.0.0.1, the relay of pages and API to the main
process (forward.py) in this process against real HTTP servers, and what happens when a process dies."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from waitress.server import create_server
from werkzeug.test import EnvironBuilder

from station import uci
from station.web.bodies import MAX_BODY
from station.web.forward import KEY_HEADER, PEER_HEADER, Forward, Forwarded

from .conftest import IOTO_BODY, STATION, Reply, Server, count, prepare

WAIT = 30.0  # seconds any bounded wait of these tests lasts, at most
MAX_WORKERS = 8
KEY = "the-key-of-this-run"
StartResponse = Callable[..., Any]


# --- looking at processes and sockets through /proc ---------------------------------------------------------

def gone(pid: int) -> bool:
    """The process has exited: no such process, or a zombie nobody reaped yet (it holds nothing any more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return state.split()[1] in ("Z", "X")


def alive(pid: int) -> bool:
    return not gone(pid)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def workers_of(main: int) -> set[int]:
    """The worker processes among the main process's children (not multiprocessing's resource tracker)."""
    found = set()
    for children in Path(f"/proc/{main}/task").glob("*/children"):
        try:
            pids = [int(pid) for pid in children.read_text().split()]
        except FileNotFoundError:
            continue
        for pid in pids:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in command and alive(pid):
                found.add(pid)
    return found


def listening_ports(pid: int) -> set[int]:
    """TCP ports on which the process holds a listening socket on 127.0.0.1."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if fields[3] == "0A" and fields[9] in inodes and address == "0100007F":
            ports.add(int(port, 16))
    return ports


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a log written so far (a line still being written is left out)."""
    if not path.exists():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n")[:-1]:
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def get(port: int, path: str, headers: dict[str, str] | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def is_uci(code: str) -> bool:
    return len(code) == 16 and set(code) <= set(uci.ALPHABET) and uci.parse(code) == code


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers on their own data directory; any still running at the end is killed."""
    servers: list[Server] = []

    def start(*options: str) -> Server:
        data_dir = tmp_path / f"station-data-{len(servers)}"
        data_dir.mkdir()
        prepare(data_dir)
        servers.append(Server(data_dir, options))
        return servers[-1]

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.kill()


# --- real `station serve` processes -----------------------------------------------------------------------

def test_by_default_workers_answer_devices_and_relay_pages_and_api(started: Callable[..., Server]) -> None:
    server = started()
    main, workers = server.pids[0], server.pids[1:]
    assert main == server.proc.pid
    assert len(server.pids) >= 2 and len(workers) == min(os.cpu_count() or 1, MAX_WORKERS)
    assert all(alive(pid) for pid in workers)
    assert workers_of(main) == set(workers)
    web_log = server.data_dir / "web.log"
    assert not [line for line in log_lines(web_log) if line.get("path") == "/ioto/serialize"]

    reply = server.serialize({**IOTO_BODY, "serial": "SN-WORKERS-1"})
    assert reply.status == 200 and is_uci(reply.json["id"])
    assert count(server.db, "SELECT count(*) FROM devices WHERE uci = ? AND hwkey = 'serial:SN-WORKERS-1'", reply.json["id"]) == 1
    assert server.serialize({**IOTO_BODY, "serial": "SN-WORKERS-1"}).json["id"] == reply.json["id"]

    page = server.call("GET", "/signin")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html") and b"<form" in page.raw
    api = server.call("GET", "/api/v1/products")
    assert api.status == 401 and api.headers["content-type"].startswith("application/json") and api.json["error"]

    def logged() -> list[dict[str, Any]]:
        return [line for line in log_lines(web_log) if line.get("msg") == "request" and line.get("path") == "/ioto/serialize"]

    assert wait_until(lambda: len(logged()) == 2), "the workers' request lines did not reach web.log"
    assert {(line["method"], line["status"], line["remote"]) for line in logged()} == {("POST", 200, "127.0.0.1")}
    # A worker writes its request lines past the logging module (logs.direct): the same line as the main
    # process writes for the page it answered.
    here = next(line for line in log_lines(web_log) if line.get("msg") == "request" and line.get("path") == "/signin")
    assert list(logged()[0]) == list(here) and logged()[0]["logger"] == here["logger"] == "station.web"
    assert server.stop() == 0


def test_workers_0_serves_from_one_process(started: Callable[..., Server]) -> None:
    server = started("--workers", "0")
    assert server.pids == [server.proc.pid]
    assert workers_of(server.proc.pid) == set()
    assert listening_ports(server.proc.pid) == {server.port}  # no private port either
    reply = server.serialize()
    assert reply.status == 200 and is_uci(reply.json["id"])
    assert server.call("GET", "/signin").status == 200
    assert server.stop() == 0


def test_workers_setting_of_station_json5_is_used(tmp_path: Path) -> None:
    prepare(tmp_path)
    (tmp_path / "station.json5").write_text("{workers: 1, // one is enough here\n}")
    server = Server(tmp_path)
    try:
        assert len(server.pids) == 2 and workers_of(server.pids[0]) == {server.pids[1]}
        assert server.serialize().status == 200
    finally:
        assert server.stop() == 0
    override = Server(tmp_path, ("--workers", "0"))  # the option wins over the file
    try:
        assert override.pids == [override.proc.pid]
    finally:
        assert override.stop() == 0


def serialize_retrying(server: Server, serial: str) -> Reply:
    """One serialization, sent again only when the connection itself failed (a killed worker may have held it)."""
    for _ in range(10):
        try:
            return server.serialize({**IOTO_BODY, "serial": serial})
        except (OSError, AssertionError):  # refused, reset, or closed before the reply
            time.sleep(0.2)
    return server.serialize({**IOTO_BODY, "serial": serial})


def test_a_killed_worker_is_replaced_and_the_station_keeps_answering(started: Callable[..., Server]) -> None:
    server = started()
    main, workers = server.pids[0], server.pids[1:]
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)

    replies = [serialize_retrying(server, f"SN-AFTER-KILL-{i}") for i in range(20)]
    assert [reply.status for reply in replies] == [200] * 20
    codes = {reply.json["id"] for reply in replies}
    assert len(codes) == 20 and count(server.db, "SELECT count(*) FROM devices WHERE hwkey LIKE 'serial:SN-AFTER-KILL-%'") == 20

    def replaced() -> bool:
        now = workers_of(main)
        return len(now) == len(workers) and victim not in now and bool(now - set(workers))

    assert wait_until(replaced, 60), f"no new worker: {workers_of(main)} (was {workers})"
    died = [line for line in log_lines(server.data_dir / "web.log") if line.get("msg", "").startswith("worker process died")]
    assert [(line["pid"], line["exitcode"], line["level"]) for line in died] == [(victim, -signal.SIGKILL, "error")]
    assert gone(victim)
    every = workers_of(main) | set(workers)
    assert server.serialize().status == 200  # the new worker serves too (or its peer does); either way: answers

    assert server.stop() == 0
    assert wait_until(lambda: all(gone(pid) for pid in every), 15), [pid for pid in every if alive(pid)]


def test_workers_leave_when_the_main_process_is_killed(started: Callable[..., Server]) -> None:
    server = started()
    workers = server.pids[1:]
    assert server.serialize().status == 200
    server.kill()  # SIGKILL: the main process tells nobody
    assert wait_until(lambda: all(gone(pid) for pid in workers), 10), [pid for pid in workers if alive(pid)]
    # The system lets go of the listening socket just after the last process holding it has exited (its
    # files are released in the background): the port refuses connections within moments, not at once.
    assert wait_until(lambda: refused(server.port), 10), "the port still takes connections"


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_private_port_refuses_requests_without_the_runs_key(started: Callable[..., Server]) -> None:
    server = started()
    private = listening_ports(server.pids[0]) - {server.port}
    assert len(private) == 1, f"the main process listens on {listening_ports(server.pids[0])} (public: {server.port})"
    port = private.pop()
    for headers in ({}, {KEY_HEADER: "not-the-key", PEER_HEADER: "10.1.2.3"}, {KEY_HEADER: ""}):
        reply = get(port, "/signin", headers)
        assert reply.status == 403 and reply.headers["content-type"] == "application/json" and reply.json["error"]
        assert b"<form" not in reply.raw
    # A client on the public port cannot put its own key or address on a relayed request either.
    reply = server.call("GET", "/signin", headers={KEY_HEADER: "not-the-key", PEER_HEADER: "10.9.9.9"})
    assert reply.status == 200
    assert wait_until(lambda: any(line.get("path") == "/signin" for line in log_lines(server.data_dir / "web.log")))
    remotes = {line["remote"] for line in log_lines(server.data_dir / "web.log") if line.get("path") == "/signin"}
    assert remotes == {"127.0.0.1"}
    assert server.stop() == 0


@pytest.mark.parametrize("setting", ["-1", '"many"', "true", "65", "2.5"])
def test_a_bad_workers_setting_stops_serve_with_one_line(tmp_path: Path, setting: str) -> None:
    prepare(tmp_path)
    (tmp_path / "station.json5").write_text(f"{{workers: {setting}}}")
    done = subprocess.run([*STATION, "--data-dir", str(tmp_path), "serve", "--port", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "workers" in lines[0], done.stderr


def test_a_bad_workers_option_stops_serve_with_one_line(tmp_path: Path) -> None:
    prepare(tmp_path)
    done = subprocess.run([*STATION, "--data-dir", str(tmp_path), "serve", "--port", "0", "--workers", "-1"],
                          capture_output=True, text=True, timeout=60, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "workers" in lines[0], done.stderr


# --- the relay, in this process ---------------------------------------------------------------------------

def echo(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """What the app behind the relay saw: the client's address and the headers."""
    seen = {"remote": environ.get("REMOTE_ADDR"), "headers": sorted(k for k in environ if k.startswith("HTTP_")),
            "body": environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode(),
            "method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"], "query": environ.get("QUERY_STRING")}
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Called:
    """A WSGI app that records that it was called."""

    def __init__(self, app: Callable[..., Iterable[bytes]] = echo) -> None:
        self.app, self.calls = app, 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


class Started:
    """A start_response that keeps what it was given."""

    status: str = ""
    headers: list[tuple[str, str]]

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status, self.headers = status, headers

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def environ(path: str = "/", remote: str = "10.1.2.3", **options: Any) -> dict[str, Any]:
    built = EnvironBuilder(path=path, **options).get_environ()
    built["REMOTE_ADDR"] = remote
    return built


@pytest.fixture
def upstream() -> Iterator[Callable[[Callable[..., Iterable[bytes]]], int]]:
    """Serve a WSGI app with waitress on 127.0.0.1, as the main process serves its app; returns the port."""
    servers: list[tuple[Any, threading.Thread]] = []

    def serve(app: Callable[..., Iterable[bytes]]) -> int:
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server.effective_port

    yield serve
    for server, thread in servers:
        server.close()
        thread.join(10)
        server.task_dispatcher.shutdown()


def test_forwarded_puts_the_client_address_back_for_the_runs_key_only() -> None:
    inner = Called()
    app = Forwarded(inner, KEY)
    start = Started()
    env = environ("/signin", remote="127.0.0.1", headers={KEY_HEADER: KEY, PEER_HEADER: "10.1.2.3"})
    seen = json.loads(b"".join(app(env, start)))
    assert start.status == "200 OK" and seen["remote"] == "10.1.2.3"
    assert "HTTP_X_STATION_FORWARD_KEY" not in seen["headers"] and "HTTP_X_STATION_PEER" not in seen["headers"]
    assert inner.calls == 1

    for headers in ({KEY_HEADER: "wrong", PEER_HEADER: "10.1.2.3"}, {PEER_HEADER: "10.1.2.3"}, {KEY_HEADER: KEY[:-1]}, {}):
        start = Started()
        body = json.loads(b"".join(app(environ("/signin", remote="127.0.0.1", headers=headers), start)))
        assert start.status.startswith("403") and body["error"] and start.all("Content-Type") == ["application/json"]
    assert inner.calls == 1


def test_forward_relays_method_target_body_and_headers(upstream: Callable[..., int]) -> None:
    back = upstream(Called())
    front = upstream(Forward("127.0.0.1", back, KEY))  # served by waitress, as a worker serves it
    conn = http.client.HTTPConnection("127.0.0.1", front, timeout=30)
    try:
        conn.request("POST", "/api/v1/things?a=1&b=%2F", body=b'{"x": 1}',
                     headers={"Content-Type": "application/json", "X-Custom": "yes"})
        response = conn.getresponse()
        status, seen = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 200
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == ("POST", "/api/v1/things", "a=1&b=%2F", '{"x": 1}')
    assert {"HTTP_X_CUSTOM", "HTTP_X_STATION_FORWARD_KEY", "HTTP_X_STATION_PEER"} <= set(seen["headers"])
    assert seen["remote"] == "127.0.0.1"  # the relay's own connection; the client's address travels in the header


def test_forward_and_forwarded_carry_the_client_address_end_to_end(upstream: Callable[..., int]) -> None:
    inner = Called()
    port = upstream(Forwarded(inner, KEY))
    start = Started()
    seen = json.loads(b"".join(Forward("127.0.0.1", port, KEY)(environ("/x", remote="10.1.2.3",
                                                                       headers={PEER_HEADER: "10.6.6.6"}), start)))
    assert start.status == "200 OK" and seen["remote"] == "10.1.2.3"  # the client's, never one it claims
    assert not {"HTTP_X_STATION_FORWARD_KEY", "HTTP_X_STATION_PEER"} & set(seen["headers"])

    start = Started()
    body = json.loads(b"".join(Forward("127.0.0.1", port, "another run's key")(environ("/x"), start)))
    assert start.status.startswith("403") and body["error"] and inner.calls == 1


def test_forward_streams_a_reply_as_it_comes(upstream: Callable[..., int]) -> None:
    release = threading.Event()

    def stream(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b"data: one\n\n"
        for n in ("two", "three"):
            # Waits for the test to read the chunk before: a relay that buffered the reply would not see it here.
            yield f"data: {n if release.wait(5) else 'late'}\n\n".encode()
            release.clear()

    port = upstream(stream)
    start = Started()
    chunks = iter(Forward("127.0.0.1", port, KEY)(environ("/line/events"), start))
    assert start.status == "200 OK" and start.all("Content-Type") == ["text/event-stream"]
    assert not start.all("Transfer-Encoding")  # hop-by-hop: the worker's own server frames the reply
    assert next(chunks) == b"data: one\n\n"
    release.set()
    assert next(chunks) == b"data: two\n\n"
    release.set()
    assert b"".join(chunks) == b"data: three\n\n"


def test_forward_keeps_repeated_headers(upstream: Callable[..., int]) -> None:
    def cookies(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("302 Found", [("Location", "/line"), ("Set-Cookie", "a=1; Path=/; HttpOnly"),
                                     ("Set-Cookie", "b=2; Path=/"), ("Content-Length", "0")])
        return [b""]

    port = upstream(cookies)
    start = Started()
    assert b"".join(Forward("127.0.0.1", port, KEY)(environ("/signin", method="POST"), start)) == b""
    assert start.status == "302 Found"
    assert start.all("Set-Cookie") == ["a=1; Path=/; HttpOnly", "b=2; Path=/"] and start.all("Location") == ["/line"]


def test_forward_refuses_a_large_body_without_contacting_the_main_process(upstream: Callable[..., int]) -> None:
    inner = Called()
    port = upstream(inner)
    for declared in (True, False):  # with its Content-Length, or without one (as a chunked request comes)
        start = Started()
        env = environ("/api/v1/batches", method="POST", data=b"x" * (MAX_BODY + 1))
        if not declared:
            del env["CONTENT_LENGTH"]
        body = json.loads(b"".join(Forward("127.0.0.1", port, KEY)(env, start)))
        assert start.status.startswith("413") and body["error"]
    start = Started()
    at_limit = environ("/api/v1/batches", method="POST", data=b"y" * MAX_BODY)
    seen = json.loads(b"".join(Forward("127.0.0.1", port, KEY)(at_limit, start)))
    assert start.status == "200 OK" and seen["body"] == "y" * MAX_BODY
    assert inner.calls == 1  # only the request at the limit went across


def test_forward_answers_503_when_the_main_process_does_not(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a bound port that listens to nobody: connections are refused
        closed.bind(("127.0.0.1", 0))
        start = Started()
        body = json.loads(b"".join(Forward("127.0.0.1", closed.getsockname()[1], KEY)(environ("/signin"), start)))
    assert start.status.startswith("503") and start.all("Content-Type") == ["application/json"] and body["error"]
