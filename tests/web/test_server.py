"""`station serve` as processes: the one server process that answers everything, replaced when it dies, and
never left running once `station serve` itself is gone."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.web.conftest import IOTO_BODY, Server, alive, count, prepare

WAIT = 30.0  # seconds any one change of processes may take, at most


def serving_lines(server: Server) -> list[dict[str, object]]:
    lines = server.log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if '"msg": "serving"' in line]


def test_one_server_process_answers_devices_api_and_pages(tmp_path: Path) -> None:
    prepare(tmp_path)
    server = Server(tmp_path)
    try:
        parent, child = server.pids
        assert parent == server.proc.pid and child != parent and alive(child)
        assert server.serialize().status == 200
        assert server.call("GET", "/api/openapi.json").status == 200
        assert server.call("GET", "/signin").status == 200
    finally:
        assert server.stop() == 0
    deadline = time.monotonic() + WAIT
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    assert '"msg": "server process stopped"' in server.log.read_text()  # a clean stop: queued writes finished


def test_a_killed_server_process_is_replaced_and_the_station_answers_again(tmp_path: Path) -> None:
    prepare(tmp_path)
    server = Server(tmp_path)
    try:
        code = server.serialize({**IOTO_BODY, "serial": "BEFORE-KILL"}).json["id"]
        first = server.pids[1]
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + WAIT
        while len(serving_lines(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        replaced = serving_lines(server)[-1]
        assert replaced["pids"][1] != first and alive(replaced["pids"][1])  # type: ignore[index]
        assert server.serialize({**IOTO_BODY, "serial": "BEFORE-KILL"}).json["id"] == code  # its UCI was on disk
        assert server.serialize({**IOTO_BODY, "serial": "AFTER-KILL"}).status == 200
    finally:
        assert server.stop() == 0


def test_the_server_process_stops_when_station_serve_is_killed(tmp_path: Path) -> None:
    prepare(tmp_path)
    server = Server(tmp_path)
    child = server.pids[1]
    assert server.serialize().status == 200
    server.kill()  # SIGKILL of `station serve`: nothing of it runs to stop its server process
    deadline = time.monotonic() + WAIT
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    log = server.log.read_text()
    assert "`station serve` is gone" in log and '"msg": "server process stopped"' in log  # it stopped cleanly
    assert count(server.db, "SELECT count(*) FROM devices") == 1
