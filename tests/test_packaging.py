"""The station as a newcomer installs it: a wheel in a fresh virtual environment, outside the checkout.

The wheel must carry the pages' templates and static files and the label layouts (setup.cfg maps the
top-level folders into the package): `station serve --demo` from it answers the sign-in page and the
stylesheet, and its simulated unit passes the line over HTTP. An installation that lost a part refuses to
start with a message that says how to mend it.
"""

from __future__ import annotations

import configparser
import http.cookiejar
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from setuptools import find_packages

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0  # s for the demo to print its URL and password
PASS_TIMEOUT = 90.0  # s for the demo unit's whole cycle (issue, label, flash, registration)


def test_setup_cfg_lists_every_package_of_the_station() -> None:
    """Packages are listed by hand (find: cannot map the top-level folders), so a new one must not be forgotten."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    code = set(find_packages(str(REPO), include=["station", "station.*"]))
    assert code <= listed, f"add {sorted(code - listed)} to packages in setup.cfg"
    mapped = {line.split("=")[0].strip() for line in config["options"]["package_dir"].strip().splitlines()}
    assert listed == code | mapped


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the station's wheel (and its pinned dependencies) installed."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(root / "dist"), str(REPO)],
                   check=True, cwd=root)
    wheel = next((root / "dist").glob("station-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-c", str(REPO / "constraints.txt"), str(wheel)], check=True, cwd=root)
    return root / "venv"


def _site_package(venv: Path) -> Path:
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import station, os; print(os.path.dirname(station.__file__))"],
                           check=True, capture_output=True, text=True, cwd=venv).stdout.strip()
    assert not found.startswith(str(REPO)), "the smoke test must run the installed wheel, not the checkout"
    return Path(found)


class Demo:
    """`station serve --demo` of the installed wheel, with a browser-like HTTP client (cookies, CSRF)."""

    def __init__(self, venv: Path, data_dir: Path) -> None:
        self.proc = subprocess.Popen([str(venv / "bin" / "station"), "--data-dir", str(data_dir), "serve", "--demo",
                                      "--port", "0"],
                                     cwd=data_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url, self.password = self._started()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def _started(self) -> tuple[str, str]:
        deadline, seen = time.monotonic() + START_TIMEOUT, []
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"demo: open (\S+)/ and sign in as operator with password (\S+)", line)
            if found:
                return found.group(1), found.group(2)
        self.stop()
        raise AssertionError("the demo did not start:\n" + "".join(seen))

    def get(self, path: str) -> tuple[int, bytes]:
        with self.http.open(self.url + path, timeout=30) as reply:
            return reply.status, reply.read()

    def post(self, path: str, data: bytes, content_type: str, csrf: str | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, **({"X-CSRF-Token": csrf} if csrf else {})}
        with self.http.open(urllib.request.Request(self.url + path, data=data, headers=headers), timeout=30) as reply:
            return reply.status, reply.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _csrf(page: bytes) -> str:
    found = re.search(rb'name="csrf[-_]token" (?:value|content)="([^"]+)"', page)
    assert found, "the page carries no CSRF token"
    return found.group(1).decode()


def test_the_wheel_serves_the_demo_and_its_unit_passes(venv: Path, tmp_path: Path) -> None:
    _site_package(venv)
    demo = Demo(venv, tmp_path / "station-data")
    try:
        status, signin = demo.get("/signin")
        assert status == 200 and b"<form" in signin
        status, css = demo.get("/static/station.css")
        assert status == 200 and b"{" in css
        form = urllib.parse.urlencode({"name": "operator", "password": demo.password, "csrf_token": _csrf(signin)})
        status, line_page = demo.post("/signin", form.encode(), "application/x-www-form-urlencoded")
        assert status == 200 and b"csrf-token" in line_page, "signing in did not lead to the line page"
        csrf = _csrf(line_page)
        product = re.search(rb'<option value="([0-9A-Z]{26})"', line_page)
        assert product and b"<option>demo-labels</option>" in line_page, "the line page offers no product or printer"
        scan = {"product": product.group(1).decode(), "printer": "demo-labels", "slot": "demo", "serial": "SMOKE-1"}
        status, _ = demo.post("/line/units", json.dumps(scan).encode(), "application/json", csrf)
        assert status == 202
        deadline, tile = time.monotonic() + PASS_TIMEOUT, {}
        while time.monotonic() < deadline:
            tile = json.loads(demo.get("/line/state")[1])["tiles"][0]
            if tile["status"] in ("pass", "fail"):
                break
            time.sleep(0.5)
        assert tile.get("status") == "pass", f"the demo unit did not pass: {tile}"
        status, png = demo.get(f"/devices/{tile['uci']}/label.png")
        assert status == 200 and png.startswith(b"\x89PNG")
    finally:
        demo.stop()


def test_an_installation_without_its_templates_refuses_to_serve(venv: Path, tmp_path: Path) -> None:
    templates = _site_package(venv) / "templates"
    kept = tmp_path / "templates-kept"
    shutil.move(str(templates), str(kept))
    try:
        run = subprocess.run([str(venv / "bin" / "station"), "--data-dir", str(tmp_path / "data"), "serve", "--port", "0"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    finally:
        shutil.move(str(kept), str(templates))
    assert run.returncode != 0
    assert "no templates" in run.stderr and "reinstall" in run.stderr
    assert "Traceback" not in run.stderr
