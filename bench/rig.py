"""Flash and verify into the simulated unit at 115200 baud; compare with the wire time of the bytes.

The unit runs as `station simulate` in a process of its own, pacing its console at the baud rate both ways.
Each run logs in (not timed), then times what crosses the wire:
- the device file alone: chunks with their checks, the SHA-256 readback, the rename, sync, the readback in place;
- the whole flash with an X.509 credential made on the unit: the device file, then the key and CSR made by the
  unit's openssl, the CSR read back, signed by a CA made for the run, the certificate and the CA chain written
  and verified, the unit's key proven to match (the credentials step of rig/credentials.py, recorded in a
  temporary store).
Wire time is the bytes actually sent and received x 10 / baud; payload is what had to cross (the files
written, and the CSR read back), so bytes per payload byte is the protocol's overhead.

    python bench/rig.py [--runs 7] [--baud 115200] [--chunk 76]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from station.core.credentials import settings as credential_settings
from station.credentials.authority import Authority
from station.rig.credentials import CredentialStep, Issuing
from station.rig.port import Link, open_port
from station.rig.settings import RigSettings, SlotSettings, from_mapping
from station.rig.shell import Shell
from station.rig.transfer import Transfer
from station.store import Product, Store

PASSWORD = "bench"
PRODUCT = Product("01H4R15D3478JD26YDYK408XE6", "Blank", "Blank-01", "Blank slate app")
HEADER = f"{'run':>3} {'seconds':>8} {'sent':>6} {'received':>8} {'wire s':>7} {'ratio':>6} {'B/payload B':>11}"


def _quiet(step: str, message: str, done: int | None = None, total: int | None = None) -> None:
    """Progress nobody watches."""


Work = Callable[[Shell], Callable[[], int]]  # does the timed work; returns how to count its payload afterwards


def _wc(shell: Shell, path: str) -> int:
    """A file's size on the unit (after the timing: its bytes are not counted)."""
    return len(shell.check(f"cat {path}", "bench").output.encode())


def measure(slot: SlotSettings, baud: int, runs: int, title: str, work: Work) -> tuple[float, float]:
    """Run ``work`` ``runs`` times, each on a fresh login; print each run and the medians; the median seconds
    and wire time."""
    rows = []
    print(title)
    print(HEADER)
    for run in range(1, runs + 1):
        with Link(open_port(slot), slot.name) as link:
            shell = Shell(link, slot)
            shell.login()
            link.bytes_sent = link.bytes_received = 0
            started = time.perf_counter()
            payload = work(shell)
            seconds = time.perf_counter() - started
            sent, received = link.bytes_sent, link.bytes_received
            wire = (sent + received) * 10 / baud
            per = (sent + received) / payload()
            rows.append((seconds, sent, received, wire, per))
            print(f"{run:>3} {seconds:>8.3f} {sent:>6} {received:>8} {wire:>7.3f} {seconds / wire:>6.2f} {per:>11.2f}")
    seconds, sent, received, wire, per = (statistics.median(r[i] for r in rows) for i in range(5))
    print(f"median {seconds:.3f} s; wire time {wire:.3f} s ({sent:.0f} bytes sent + {received:.0f} received, "
          f"x10/{baud}); ratio {seconds / wire:.2f}; {per:.2f} bytes on the wire per payload byte")
    return seconds, wire


def device_file(settings: RigSettings, data: bytes) -> Work:
    def work(shell: Shell) -> Callable[[], int]:
        Transfer(shell, chunk=settings.chunk, retries=settings.retries, tmp_dir=settings.tmp_dir).write(
            settings.device_json_path, data)
        return lambda: len(data)

    return work


def whole_flash(settings: RigSettings, store: Store, issuing: Issuing, product_id: str) -> Work:
    product = store.product(product_id)
    paths = product.credentials

    def work(shell: Shell) -> Callable[[], int]:
        uci = store.issue(product_id)[0].uci
        data = product.device_file(uci)
        Transfer(shell, chunk=settings.chunk, retries=settings.retries, tmp_dir=settings.tmp_dir).write(
            settings.device_json_path, data)
        CredentialStep(store, shell, settings, product, uci, issuing=issuing, actor="bench", report=_quiet).run()
        # What had to cross: the files written, and the CSR read back (the key never crosses).
        return lambda: len(data) + sum(_wc(shell, path) for path in (paths.cert_path, paths.chain_path, paths.csr_path))

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--chunk", type=int, default=76)
    args = parser.parse_args()
    data = PRODUCT.device_file("7QJ4X9TN2KVBM0RA")
    unit = subprocess.Popen(
        [sys.executable, "-c", "from station.cli import main; main()", "simulate", "--baud", str(args.baud),
         "--password", PASSWORD], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        path = unit.stdout.readline().strip()
        settings = from_mapping({"chunk": args.chunk, "retries": 3}, {"bench": {"port": path, "baud": args.baud,
                                                                              "password": PASSWORD}})
        slot = settings.slot("bench")
        print(f"rig bench: {args.baud} baud, chunk {args.chunk}, {args.runs} runs each")
        measure(slot, args.baud, args.runs, f"device.json5 of {len(data)} bytes", device_file(settings, data))
        with tempfile.TemporaryDirectory() as folder:
            issuing = Issuing(Path(folder))
            Authority.init(issuing.data_dir)
            with Store.open(issuing.data_dir / "station.db") as store:
                store.add_product(PRODUCT.id, PRODUCT.name, PRODUCT.model, description=PRODUCT.description)
                store.set_product_credentials(PRODUCT.id, credential_settings({"kinds": ["x509"]}), actor="bench")
                measure(slot, args.baud, args.runs, "whole flash: device.json5, then an EC P-256 key and CSR made on "
                        "the unit, the CSR read back, the certificate and CA chain written, the key proven",
                        whole_flash(settings, store, issuing, PRODUCT.id))
    finally:
        unit.send_signal(signal.SIGTERM)
        unit.wait(20)


if __name__ == "__main__":
    main()
