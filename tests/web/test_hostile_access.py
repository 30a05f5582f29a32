"""Hostile input against who may do what, against a real `station serve`: operators and tokens beyond their
rights, replayed session cookies after sign-out, a new password and a disabled account, numbers no station
counts to, a flood of line event streams, a flood of refused device calls, passwords typed as names, and
form-encoded calls to the JSON API."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from station import accounts
from station.core.errors import Invalid
from station.store import Store
from station.web import api, bodies, line
from tests.conftest import PRODUCT
from tests.web.conftest import IOTO_BODY, Server, count, prepare, station

OPERATOR, ADMIN, PASSWORD = "olga", "adam", "line-password-1"
FREED_WITHIN = 15.0  # seconds a closed stream may keep its slot: a bound on a loop, not a measurement (it was ~75 s)


def users(data_dir: Path) -> None:
    prepare(data_dir)
    with Store.open(data_dir / "station.db") as store:
        accounts.add_user(store, OPERATOR, "operator", PASSWORD)
        accounts.add_user(store, ADMIN, "admin", PASSWORD)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A station with an operator and an admin, in the default mode (worker processes)."""
    data_dir = tmp_path_factory.mktemp("station-data")
    users(data_dir)
    running = Server(data_dir)
    yield running
    assert running.stop() == 0


class Person:
    """A cookie-keeping client that signs in as a browser does: the form with its token, then a page's token."""

    def __init__(self, server: Server) -> None:
        self.url = f"http://127.0.0.1:{server.port}"
        self.http = requests.Session()
        self.csrf = ""

    def sign_in(self, name: str, password: str = PASSWORD) -> requests.Response:
        page = self.http.get(self.url + "/signin", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        reply = self.http.post(self.url + "/signin", data={"name": name, "password": password, "csrf_token": token},
                               allow_redirects=False, timeout=30)
        if reply.status_code == 302:
            self.csrf = self.page_token()
        return reply

    def page_token(self) -> str:
        page = self.http.get(self.url + "/devices", allow_redirects=False, timeout=30).text
        return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    def api(self, method: str, path: str, body: object = None, **headers: str) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, allow_redirects=False, timeout=30,
                                 headers={"X-CSRF-Token": self.csrf, **headers})

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, allow_redirects=False, timeout=30)

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def sign_out(self) -> None:
        reply = self.http.post(self.url + "/signout", data={"csrf_token": self.csrf}, allow_redirects=False, timeout=30)
        assert reply.status_code == 302


def replay(server: Server, cookie: str, csrf: str) -> tuple[requests.Response, requests.Response]:
    """A page and an API write with a copied cookie, from a client that never signed in."""
    url = f"http://127.0.0.1:{server.port}"
    page = requests.get(url + "/devices", headers={"Cookie": cookie}, allow_redirects=False, timeout=30)
    write = requests.post(url + "/api/v1/devices", json={"product": PRODUCT}, timeout=30,
                          headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    return page, write


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- point 2: one table of who may do what; token scopes ------------------------------------------------------

def test_an_operator_cannot_add_products_through_the_api_either(live: Server) -> None:
    operator = Person(live)
    assert operator.sign_in(OPERATOR).status_code == 302
    new = {"id": "01OPERATORPRODUCT000000001", "name": "Op", "model": "Op-1"}
    refused = operator.api("POST", "/api/v1/products", new)
    assert refused.status_code == 403 and "admin" in refused.json()["error"]
    form = {"id": new["id"], "name": "Op", "model": "Op-1", "csrf_token": operator.csrf}
    assert operator.http.post(operator.url + "/products", data=form, timeout=30).status_code == 403
    assert count(live.db, "SELECT count(*) FROM products WHERE id = ?", new["id"]) == 0
    assert operator.api("POST", "/api/v1/devices", {"product": PRODUCT}).status_code == 201  # operators issue
    admin = Person(live)
    admin.sign_in(ADMIN)
    assert admin.api("POST", "/api/v1/products", new).status_code == 201


def test_tokens_do_only_what_their_scopes_allow(live: Server) -> None:
    reader = station(live.data_dir, "token", "create", "--name", "reader").stdout.strip()  # default: read only
    issuer = station(live.data_dir, "token", "create", "--name", "issuer", "--scope", "read", "--scope", "issue").stdout.strip()
    assert live.call("GET", "/api/v1/stats", headers=auth(reader)).status == 200
    refused = live.call("POST", "/api/v1/devices", {"product": PRODUCT}, auth(reader))
    assert refused.status == 403 and "scope 'issue'" in refused.json["error"] and "--scope issue" in refused.json["error"]
    issued = live.call("POST", "/api/v1/devices", {"product": PRODUCT}, auth(issuer))
    assert issued.status == 201
    assert live.call("POST", f"/api/v1/devices/{issued.json['uci']}/void", {"reason": "test"}, auth(reader)).status == 403
    product = {"id": "01ISSUERPRODUCT00000000001", "name": "I", "model": "I-1"}
    refused = live.call("POST", "/api/v1/products", product, auth(issuer))
    assert refused.status == 403 and "scope 'admin'" in refused.json["error"]
    listing = station(live.data_dir, "token", "list").stdout
    assert re.search(r"reader\s+read\s", listing) and re.search(r"issuer\s+read issue\s", listing)
    done = station_fails(live.data_dir, "token", "create", "--name", "x", "--scope", "everything")
    assert "everything" in done


def station_fails(data_dir: Path, *args: str) -> str:
    import subprocess

    from tests.web.conftest import STATION

    done = subprocess.run([*STATION, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    return done.stderr


def test_every_api_endpoint_names_its_action() -> None:
    app = Flask(__name__)
    app.register_blueprint(api.bp)
    views = {name: view for name, view in app.view_functions.items() if name.startswith("api_v1.")}
    assert len(views) >= 10
    missing = [name for name, view in views.items() if getattr(view, "action", None) not in access_rules()]
    assert not missing


def access_rules() -> set[str]:
    from station.web.access import RULES

    return set(RULES)


# --- point 5: sessions end on sign-out, a new password, a disabled account ---------------------------------

def test_a_copied_cookie_is_refused_after_sign_out(live: Server) -> None:
    person = Person(live)
    person.sign_in(OPERATOR)
    cookie, csrf = person.cookie(), person.csrf
    page, write = replay(live, cookie, csrf)
    assert page.status_code == 200 and write.status_code == 201  # the copy works while the session lives
    person.sign_out()
    page, write = replay(live, cookie, csrf)
    assert page.status_code == 302 and page.headers["Location"].startswith("/signin")
    assert write.status_code == 401


def test_signing_in_again_ends_the_browsers_earlier_session(live: Server) -> None:
    person = Person(live)
    person.sign_in(OPERATOR)
    cookie, csrf = person.cookie(), person.csrf
    person.sign_in(ADMIN)  # another person takes the same browser without signing out first
    page, write = replay(live, cookie, csrf)
    assert page.status_code == 302 and write.status_code == 401


def test_a_new_password_ends_every_session_of_the_user(live: Server) -> None:
    with Store.open(live.db) as store:
        accounts.add_user(store, "pat", "operator", PASSWORD, actor="test")
    first, second = Person(live), Person(live)
    first.sign_in("pat")
    second.sign_in("pat")
    station(live.data_dir, "user", "passwd", "pat", "--password-stdin", stdin="a new password\n")
    for person in (first, second):
        page, write = replay(live, person.cookie(), person.csrf)
        assert page.status_code == 302 and write.status_code == 401
    assert Person(live).sign_in("pat", "a new password").status_code == 302


def test_a_disabled_user_is_signed_out_and_cannot_sign_in(live: Server) -> None:
    with Store.open(live.db) as store:
        accounts.add_user(store, "dan", "operator", PASSWORD, actor="test")
    person = Person(live)
    person.sign_in("dan")
    assert station(live.data_dir, "user", "disable", "dan").returncode == 0
    page, write = replay(live, person.cookie(), person.csrf)
    assert page.status_code == 302 and write.status_code == 401
    refused = Person(live).sign_in("dan")
    assert refused.status_code == 403 and "disabled" in refused.text
    assert count(live.db, "SELECT count(*) FROM events WHERE kind = 'sign-in-refused' AND json_extract(details, '$.user') = 'dan' "
                          "AND json_extract(details, '$.reason') = 'disabled'") == 1
    assert re.search(r"dan\s+operator\s+no", station(live.data_dir, "user", "list").stdout)
    station(live.data_dir, "user", "enable", "dan")
    assert Person(live).sign_in("dan").status_code == 302


def _app_with_key(server: Server) -> Flask:
    """A bare Flask app with the station's cookie key, to read a cookie the way the station does."""
    app = Flask("reader")
    app.secret_key = (server.data_dir / "secret_key").read_bytes()
    return app


def test_the_cookie_holds_no_name_and_the_store_only_a_hash(live: Server) -> None:
    person = Person(live)
    person.sign_in(OPERATOR)
    with Store.open(live.db) as store:
        stored = [row[0] for row in store.conn.execute("SELECT id FROM sessions WHERE user = ?", (OPERATOR,))]
    assert stored and all(re.fullmatch(r"[0-9a-f]{64}", sid) for sid in stored)
    assert not any(sid in person.cookie() for sid in stored)
    # What the signed cookie carries, read as Flask reads it: a session token, neither a name nor a hash.
    cookie = next(c.value for c in person.http.cookies if c.name == "station_session")
    carried = SecureCookieSessionInterface().get_signing_serializer(_app_with_key(live)).loads(cookie)
    assert set(carried) <= {"sid", "csrf", "_permanent"} and OPERATOR not in json.dumps(carried)
    assert hashlib.sha256(carried["sid"].encode()).hexdigest() in stored


# --- point 8: every number through one bounded parser --------------------------------------------------------

@pytest.mark.parametrize("page", ["99999999999999999999999", "%C2%B2", "-1", "1_0", "0"])
def test_absurd_page_numbers_are_a_clear_400(live: Server, page: str) -> None:
    person = Person(live)
    person.sign_in(OPERATOR)
    reply = person.get(f"/devices?page={page}")
    assert reply.status_code == 400 and "page must be a whole number from 1 to" in reply.text


def test_a_size_in_bits_that_is_not_a_number_is_the_forms_error(live: Server) -> None:
    admin = Person(live)
    admin.sign_in(ADMIN)
    for bits in ("²", "99999999999999999999999", "８０"):
        form = {"id": "01BITSPRODUCT0000000000001", "name": "B", "model": "B-1", "bits": bits, "csrf_token": admin.csrf}
        reply = admin.http.post(admin.url + "/products", data=form, timeout=30)
        assert reply.status_code == 400 and "size in bits must be a whole number" in reply.text
    for query in ("limit=%C2%B2", "offset=99999999999999999999999", "limit=0"):
        reply = admin.api("GET", f"/api/v1/devices?{query}")
        assert reply.status_code == 400 and "whole number" in reply.json()["error"]


def test_parse_int_takes_only_ascii_digits_within_bounds() -> None:
    assert bodies.parse_int(" 42 ", "n", 1, 100) == 42
    assert bodies.parse_int(None, "n", 1, 100, default=7) == 7
    assert bodies.parse_int("", "n", 1, 100, default=7) == 7
    for text in ("²", "1e3", "+5", "-5", "101", "0", "٣", "9" * 400, "1_0"):
        with pytest.raises(Invalid, match="n must be a whole number from 1 to 100"):
            bodies.parse_int(text, "n", 1, 100)
    with pytest.raises(Invalid, match="required"):
        bodies.parse_int(None, "n", 1, 100)


# --- point 14: a failed sign-in keeps only names of accounts -------------------------------------------------

def test_a_password_typed_as_the_name_is_not_kept(live: Server) -> None:
    secret = "Hunter2-typed-in-the-name-field"
    assert Person(live).sign_in(secret, "whatever").status_code == 401
    assert Person(live).sign_in(ADMIN, "not the password").status_code == 401
    with Store.open(live.db) as store:
        rows = [json.loads(r[0]) for r in store.conn.execute("SELECT details FROM events WHERE kind = 'sign-in-refused'")]
        everything = "\n".join(store.conn.iterdump())
    assert {"user": "unknown", "remote": "127.0.0.1"} in rows and {"user": ADMIN, "remote": "127.0.0.1"} in rows
    assert secret not in everything
    assert secret not in (live.data_dir / "web.log").read_text()


# --- point 16: form-encoded calls to the API keep their body -------------------------------------------------

def test_a_form_encoded_api_call_with_a_session_keeps_its_body(live: Server) -> None:
    person = Person(live)
    person.sign_in(OPERATOR)
    body = json.dumps({"product": PRODUCT, "serial": "FORM-ENCODED-1"})
    reply = person.http.post(person.url + "/api/v1/devices", data=body, timeout=30,
                             headers={"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": person.csrf})
    assert reply.status_code == 201 and reply.json()["serial"] == "FORM-ENCODED-1"
    form = {"product": PRODUCT, "csrf_token": person.csrf}  # the API takes its CSRF token from the header only
    assert person.http.post(person.url + "/api/v1/devices", data=form, timeout=30).status_code == 401


# --- point 11: refusals from outside client_networks are summarised ------------------------------------------

def test_a_flood_of_refused_device_calls_writes_a_couple_of_events(tmp_path: Path) -> None:
    (tmp_path / "station.json5").write_text('{client_networks: ["10.99.0.0/16"]}')
    prepare(tmp_path)
    server = Server(tmp_path)
    try:
        for _ in range(500):
            assert server.serialize(IOTO_BODY).status == 403
        assert count(server.db, "SELECT count(*) FROM events WHERE kind = 'refused'") == 1  # the first, at once
    finally:
        assert server.stop() == 0
    with Store.open(server.db) as store:
        details = [json.loads(r[0]) for r in store.conn.execute("SELECT details FROM events WHERE kind = 'refused'")]
    assert len(details) <= 2 and sum(d["count"] for d in details) == 500  # the rest, summarised on stop
    assert {d["remote"] for d in details} == {"127.0.0.1"} and "client_networks" in details[0]["reason"]


def test_many_refused_addresses_keep_memory_bounded() -> None:
    from station.web import access

    written: list[dict[str, object]] = []

    class Writer:
        def call(self, function: object, *args: object) -> None:
            written.append(args[-1])  # type: ignore[arg-type]

    rules = access.Access((ipaddress.ip_network("10.99.0.0/16"),), lambda: None, Writer())  # type: ignore[arg-type, return-value]
    total = access.REFUSED_ADDRESSES + 500
    for n in range(total):
        for _ in range(2):
            with pytest.raises(access.Forbidden):
                rules.check_device(f"192.0.{n // 256}.{n % 256}")
    assert len(rules._refused) <= access.REFUSED_ADDRESSES + 1  # and one count for all the others
    rules.close()
    assert sum(int(d["count"]) for d in written) == 2 * total  # type: ignore[call-overload]
    assert len(written) <= 2 * (access.REFUSED_ADDRESSES + 1)


# --- point 4: line event streams: an atomic limit, dead streams freed, devices always answered ---------------

def open_stream(port: int, cookie: str) -> tuple[int, socket.socket]:
    """GET /line/events on a socket of its own: the status, and the socket (open while the stream is admitted)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET /line/events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    if status != 200:
        sock.close()
    return status, sock


def test_parallel_event_streams_admit_at_most_the_limit(tmp_path: Path) -> None:
    users(tmp_path)
    server = Server(tmp_path)
    try:
        person = Person(server)
        person.sign_in(OPERATOR)
        cookie = person.cookie()
        parallel = 150
        results: list[tuple[int, socket.socket]] = []
        go = threading.Barrier(parallel)
        lock = threading.Lock()

        def one() -> None:
            go.wait()
            got = open_stream(server.port, cookie)
            with lock:
                results.append(got)

        threads = [threading.Thread(target=one) for _ in range(parallel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        statuses = [status for status, _ in results]
        admitted = [sock for status, sock in results if status == 200]
        assert len(results) == parallel and set(statuses) <= {200, 503}, statuses
        assert 1 <= len(admitted) <= line.WATCHERS, statuses
        while len(admitted) < line.WATCHERS:  # fill the rest: every slot held
            status, sock = open_stream(server.port, cookie)
            assert status == 200
            admitted.append(sock)
        assert open_stream(server.port, cookie)[0] == 503
        for n in range(20):  # devices still answer while every stream is open
            reply = server.serialize({**IOTO_BODY, "serial": f"STREAMS-{n}"})
            assert reply.status == 200, reply.raw
        for sock in admitted[:2]:
            sock.close()  # two tabs closed
        deadline = time.monotonic() + FREED_WITHIN
        reopened: list[socket.socket] = []
        while len(reopened) < 2 and time.monotonic() < deadline:
            status, sock = open_stream(server.port, cookie)
            if status == 200:
                reopened.append(sock)
            else:
                time.sleep(0.2)
        assert len(reopened) == 2, "closed streams kept their slots"
        for sock in admitted[2:] + reopened:
            sock.close()
    finally:
        assert server.stop() == 0


def test_pages_never_take_the_threads_kept_for_devices() -> None:
    from station.serve.reserve import DEVICE_THREADS, Reserve

    hold = threading.Event()
    entered: list[str] = []

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        entered.append(str(environ["PATH_INFO"]))
        if environ["PATH_INFO"] != "/ioto/serialize":
            hold.wait(30)  # a page that takes its time: an event stream, a slow store
        return [b"ok"]

    statuses: list[str] = []
    reserve = Reserve(app, 16)

    def call(path: str) -> None:
        reply = reserve({"PATH_INFO": path}, lambda status, headers: statuses.append(status))
        getattr(reply, "close", lambda: None)()

    pages = [threading.Thread(target=call, args=("/line/events",)) for _ in range(16)]
    for thread in pages:
        thread.start()
    deadline = time.monotonic() + 30
    while len(entered) + len(statuses) < 16 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(entered) == 16 - DEVICE_THREADS and statuses == ["503 Service Unavailable"] * DEVICE_THREADS
    call("/ioto/serialize")  # runs on a kept thread while every other place is taken
    assert entered[-1] == "/ioto/serialize"
    hold.set()
    for thread in pages:
        thread.join(30)
    call("/devices")  # the pages' places came back when their replies closed
    assert entered[-1] == "/devices"


@pytest.mark.parametrize("body", [b'{"product": "P", "printer": "x", "slot": "A", "serial": "SN\\u0000"}',
                                  b'{"product": "P\\ud800", "printer": "x", "slot": "A"}', b"not json", b""])
def test_the_lines_bodies_are_read_by_the_one_checked_reader(live: Server, body: bytes) -> None:
    person = Person(live)
    person.sign_in(OPERATOR)
    before = count(live.db, "SELECT count(*) FROM devices")
    reply = person.http.post(person.url + "/line/units", data=body, allow_redirects=False, timeout=30,
                             headers={"X-CSRF-Token": person.csrf, "Content-Type": "application/json"})
    assert reply.status_code == 400 and "error" in reply.json()
    assert count(live.db, "SELECT count(*) FROM devices") == before
