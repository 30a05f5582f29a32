"""A real Mosquitto broker for the tests (Debian's ``mosquitto``): started on free 127.0.0.1 ports with a
config written to the test's folder, waited for within a bound, reloaded by SIGHUP, stopped after; and a
paho-mqtt client that says whether a connection was accepted."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None) \
    or pytest.fail("mosquitto is not installed: run .ci/setup-mosquitto (apt-get install -y mosquitto)")
WAIT = 15.0  # seconds, at most, for the broker to listen, reload, or answer a client
CONNECTED = "connected"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    """One mosquitto process: a password listener (``port``) and, given TLS files, a certificate listener
    (``tls_port``) that takes the client certificate's CN as the username."""

    def __init__(self, folder: Path, password_file: Path | None = None, *, cafile: Path | None = None,
                 certfile: Path | None = None, keyfile: Path | None = None, crlfile: Path | None = None) -> None:
        self.folder, self.log = folder, folder / "mosquitto.log"
        self.port, self.tls_port = free_port(), free_port()
        lines = ["per_listener_settings true", "persistence false", "log_dest stderr", "log_type all"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to the mosquitto user, who cannot read the test's files
        if password_file is not None:
            lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous false", f"password_file {password_file}"]
        if cafile is not None:
            lines += [f"listener {self.tls_port} 127.0.0.1", "allow_anonymous false", f"cafile {cafile}",
                      f"certfile {certfile}", f"keyfile {keyfile}", "require_certificate true",
                      # TLS 1.2: a refused certificate fails the handshake itself, with the alert that says why
                      "use_identity_as_username true", "tls_version tlsv1.2"]
            if crlfile is not None:
                lines.append(f"crlfile {crlfile}")
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)
        ports = [p for p, on in ((self.port, "password_file" in self.config.read_text()),
                                 (self.tls_port, "cafile" in self.config.read_text())) if on]
        deadline = time.monotonic() + WAIT
        for port in ports:
            while True:
                if self.process.poll() is not None:
                    pytest.fail(f"mosquitto stopped: {self.log.read_text()}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not listen on {port} within {WAIT} s: {self.log.read_text()}")
                time.sleep(0.05)
        return self

    def reload(self) -> None:
        """SIGHUP, then wait until the broker says it reloaded (it re-reads the password file right then, in
        the loop that also answers clients, so a connection made after the line sees the new file)."""
        assert self.process is not None
        before = self.log.read_text().count("Reloading config")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        while self.log.read_text().count("Reloading config") == before:
            if time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not reload within {WAIT} s: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=WAIT)


@contextlib.contextmanager
def running(broker: Broker) -> Iterator[Broker]:
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def connect(port: int, username: str | None = None, password: str | None = None, *, cafile: Path | None = None,
            certfile: Path | None = None, keyfile: Path | None = None) -> str:
    """Connect with MQTT 3.1.1 and disconnect: ``connected``, or what refused it (the CONNACK's reason, or the
    TLS or socket error)."""
    outcome: dict[str, str] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{username or 'tls'}-{port}",
                         protocol=mqtt.MQTTv311)

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        outcome.setdefault("result", CONNECTED if str(reason) == "Success" else f"refused: {reason}")

    def on_disconnect(client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        outcome.setdefault("result", f"disconnected: {reason}")

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    if username is not None:
        client.username_pw_set(username, password)
    if cafile is not None:
        client.tls_set(ca_certs=str(cafile), certfile=str(certfile) if certfile else None,
                       keyfile=str(keyfile) if keyfile else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        deadline = time.monotonic() + WAIT
        while "result" not in outcome and time.monotonic() < deadline:
            client.loop(timeout=0.1)
    except (OSError, ssl.SSLError) as exc:
        outcome.setdefault("result", f"error: {exc}")
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
    return outcome.get("result", f"no answer within {WAIT} s")


def handshake(port: int, cafile: Path, certfile: Path | None = None, keyfile: Path | None = None) -> str:
    """A TLS handshake alone with the broker's certificate listener: ``ok``, or the alert that refused it
    (paho reports a refused handshake only as a disconnect)."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if certfile is not None:
        context.load_cert_chain(str(certfile), str(keyfile))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.do_handshake()
            return "ok"
    except ssl.SSLError as exc:
        return exc.reason or str(exc)
