"""Sign-in rules over plain HTTP: cookie flags, the attempt limit, roles, CSRF, and the session as a way
into the JSON API; and `station serve --demo`, which must give a newcomer the whole cycle at once."""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

from tests.pages.conftest import ADMIN, OPERATOR, PASSWORD, STATION_NAME, Line

CYCLE_WITHIN = 90.0  # seconds: bounds the demo's cycle; never a measurement


class Browserless:
    """A cookie-keeping HTTP client that signs in as a person does: GET the form, POST it with its token."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())
        self.csrf = ""

    def request(self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, response.headers, response.read()  # header names in any case
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def sign_in(self, name: str, password: str) -> tuple[int, Message, bytes]:
        status, _, page = self.request("GET", "/signin")
        assert status == 200
        self.csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
        form = urllib.parse.urlencode({"name": name, "password": password, "csrf_token": self.csrf}).encode()
        reply = self.request("POST", "/signin", form, {"Content-Type": "application/x-www-form-urlencoded"})
        if reply[0] == 302:  # signing in gives the session a new token: read it from a page, as the browser does
            page = self.request("GET", "/devices")[2]
            self.csrf = re.search(rb'name="csrf-token" content="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
        return reply

    def post_json(self, path: str, body: dict[str, Any], csrf: bool = True) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", **({"X-CSRF-Token": self.csrf} if csrf else {})}
        status, _, raw = self.request("POST", path, json.dumps(body).encode(), headers)
        return status, json.loads(raw)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:  # the tests look at redirects themselves
        return None


def test_session_cookie_is_httponly_and_samesite(line: Line) -> None:
    client = Browserless(line.url)
    status, headers, _ = client.sign_in(OPERATOR, PASSWORD)
    assert status == 302 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "station_session=" in cookie
    assert PASSWORD not in cookie


def test_wrong_passwords_are_limited(line: Line) -> None:
    client = Browserless(line.url)
    for _ in range(5):
        status, _, page = client.sign_in(ADMIN, "not the password")
        assert status == 401 and b"wrong name or password" in page
    status, _, page = client.sign_in(ADMIN, PASSWORD)
    assert status == 429 and b"too many wrong passwords" in page
    assert Browserless(line.url).sign_in(OPERATOR, PASSWORD)[0] == 302  # others at the same PC can still sign in
    log = (line.server.data_dir / "web.log").read_text()
    assert "not the password" not in log and PASSWORD not in log


def test_pages_need_a_session_and_admin_pages_an_admin(line: Line) -> None:
    anonymous = Browserless(line.url)
    status, headers, _ = anonymous.request("GET", "/devices")
    assert status == 302 and headers["Location"].startswith("/signin?next=/devices")
    status, _, body = anonymous.request("GET", "/line/state")
    assert status == 401 and "sign in" in json.loads(body)["error"]
    operator = Browserless(line.url)
    assert operator.sign_in(OPERATOR, PASSWORD)[0] == 302
    status, _, page = operator.request("GET", "/settings")
    assert status == 403 and b"ask an admin" in page
    status, _, page = operator.request("GET", "/devices")
    assert status == 200 and f"<title>Devices · {STATION_NAME} · Station</title>".encode() in page
    assert f">{STATION_NAME}</span>".encode() in page  # which line's station this is, in the bar of every page


def test_the_session_is_a_way_into_the_api_with_its_csrf_token(line: Line) -> None:
    client = Browserless(line.url)
    client.sign_in(OPERATOR, PASSWORD)
    assert client.request("GET", "/api/v1/stats")[0] == 200
    status, reply = client.post_json("/api/v1/devices", {"product": "01H4R15D3478JD26YDYK408XE6"}, csrf=False)
    assert status == 401
    status, reply = client.post_json("/api/v1/devices", {"product": "01H4R15D3478JD26YDYK408XE6"})
    assert status == 201 and reply["state"] == "issued"
    assert any(event["actor"] == f"operator:{OPERATOR}" for event in reply["events"])


def test_a_scan_with_bad_input_spends_no_claim_id(line: Line) -> None:
    client = Browserless(line.url)
    client.sign_in(OPERATOR, PASSWORD)
    before = client.request("GET", "/api/v1/stats")[2]
    for body, message in (({"product": "NOPE", "printer": "files", "slot": "A"}, "unknown product"),
                          ({"product": "01H4R15D3478JD26YDYK408XE6", "printer": "nope", "slot": "A"}, "printer"),
                          ({"product": "01H4R15D3478JD26YDYK408XE6", "printer": "files", "slot": "Z"}, "no rig slot")):
        status, reply = client.post_json("/line/units", body)
        assert 400 <= status < 500 and message in reply["error"]
    assert client.request("GET", "/api/v1/stats")[2] == before


def test_demo_gives_the_full_cycle(tmp_path: Path) -> None:
    log = tmp_path / "demo.stderr"  # a file, not a pipe: the server logs every request and must never block
    process = subprocess.Popen(
        [sys.executable, "-c", "from station.cli import main; main()", "--data-dir", str(tmp_path / "demo"), "serve",
         "--demo", "--port", "0"], stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 30
        found = None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"demo: open (\S+)/ and sign in as (\S+) with password (\S+)", log.read_text(errors="replace"))
            time.sleep(0.1)
        assert found, f"the demo never said how to sign in: {log.read_text(errors='replace')[-2000:]}"
        url, name, password = found.groups()
        client = Browserless(url)
        assert client.sign_in(name, password)[0] == 302
        page = client.request("GET", "/")[2].decode()
        product = re.search(r'<select id="product">\s*<option value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        printer = re.search(r'<select id="printer">\s*<option>([^<]+)<', page).group(1)  # type: ignore[union-attr]
        status, tile = client.post_json("/line/units", {"product": product, "printer": printer, "slot": "demo", "serial": "DEMO-1"})
        assert status == 202 and tile["status"] == "busy"
        deadline = time.monotonic() + CYCLE_WITHIN
        while time.monotonic() < deadline:
            state = json.loads(client.request("GET", "/line/state")[2])
            tile = state["tiles"][0]
            if tile["status"] != "busy":
                break
            time.sleep(0.5)
        assert tile["status"] == "pass", tile
        assert state["today"][""]["pass"] == 1
    finally:
        process.terminate()
        process.wait(30)


def test_a_station_without_accounts_says_how_to_make_one(tmp_path: Path) -> None:
    from tests.web.conftest import Server

    server = Server(tmp_path)
    try:
        status, _, page = Browserless(f"http://127.0.0.1:{server.port}").request("GET", "/signin")
        assert status == 200 and b"station user add NAME --role admin" in page
    finally:
        server.stop()


def test_sign_in_never_sends_people_to_another_site(line: Line) -> None:
    for wanted in ("//evil.example/", "/\t/evil.example", "https://evil.example/", "/\\evil.example", "evil", "/devices"):
        client = Browserless(line.url)
        query = "?" + urllib.parse.urlencode({"next": wanted})
        page = client.request("GET", "/signin" + query)[2]
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()  # type: ignore[union-attr]
        form = urllib.parse.urlencode({"name": OPERATOR, "password": PASSWORD, "csrf_token": token}).encode()
        status, headers, _ = client.request("POST", "/signin" + query, form,
                                            {"Content-Type": "application/x-www-form-urlencoded"})
        expected = "/devices" if wanted == "/devices" else "/"
        assert status == 302 and headers["Location"] == expected, (wanted, headers["Location"])


def test_the_demo_refuses_a_station_in_use(tmp_path: Path) -> None:
    from station import accounts
    from station.store import Store

    data = tmp_path / "line-3"
    with Store.open((data.mkdir() or data) / "station.db") as store:
        accounts.add_user(store, "chief", "admin", "a long password")
    done = subprocess.run([sys.executable, "-c", "from station.cli import main; main()", "--data-dir", str(data), "serve",
                           "--demo", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "holds a station in use" in done.stderr and "station-demo" in done.stderr


def test_parallel_guesses_cannot_pass_the_limit_together() -> None:
    import threading

    from station.web.limits import TooManyAttempts
    from station.web.session import sign_in_limiter

    limiter = sign_in_limiter(per_name=5, per_address=100)
    passed: list[float] = []
    go = threading.Barrier(20)

    def guess() -> None:
        go.wait()
        try:
            passed.append(limiter.begin(addr="10.0.0.9", user="adam"))
        except TooManyAttempts:
            pass

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(passed) == 5
    limiter.succeeded(passed[0], forgive=("user",), addr="10.0.0.9", user="adam")  # a right password clears the name
    limiter.begin(addr="10.0.0.9", user="adam")
