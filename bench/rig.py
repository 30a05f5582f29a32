"""Flash and verify one device.json5 into the simulated unit at 115200 baud; compare with the wire time.

The unit runs as `station simulate` in a process of its own, pacing its console at the baud rate both ways.
Each run logs in (not timed), then times the transfer: chunks with their checks, the SHA-256 readback, the
rename, sync and the readback in place. Wire time is the bytes actually sent and received x 10 / baud.

    python bench/rig.py [--runs 7] [--baud 115200] [--chunk 76]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time

from station.rig.port import Link, open_port
from station.rig.settings import from_mapping
from station.rig.shell import Shell
from station.rig.transfer import Transfer
from station.store import Product

PASSWORD = "bench"
PRODUCT = Product("01H4R15D3478JD26YDYK408XE6", "Blank", "Blank-01", "Blank slate app")


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
        rows = []
        print(f"rig bench: device.json5 of {len(data)} bytes, chunk {args.chunk}, {args.baud} baud, {args.runs} runs")
        print(f"{'run':>3} {'seconds':>8} {'sent':>6} {'received':>8} {'wire s':>7} {'ratio':>6}")
        for run in range(1, args.runs + 1):
            with Link(open_port(slot), slot.name) as link:
                shell = Shell(link, slot)
                shell.login()
                link.bytes_sent = link.bytes_received = 0
                started = time.perf_counter()
                Transfer(shell, chunk=settings.chunk, retries=settings.retries, tmp_dir=settings.tmp_dir).write(
                    settings.device_json_path, data)
                seconds = time.perf_counter() - started
                wire = (link.bytes_sent + link.bytes_received) * 10 / args.baud
                rows.append((seconds, link.bytes_sent, link.bytes_received, wire))
                print(f"{run:>3} {seconds:>8.3f} {link.bytes_sent:>6} {link.bytes_received:>8} {wire:>7.3f} "
                      f"{seconds / wire:>6.2f}")
        seconds = statistics.median(r[0] for r in rows)
        wire = statistics.median(r[3] for r in rows)
        sent = statistics.median(r[1] for r in rows)
        received = statistics.median(r[2] for r in rows)
        print(f"median flash-and-verify {seconds:.3f} s; wire time {wire:.3f} s "
              f"({sent:.0f} bytes sent + {received:.0f} received, x10/{args.baud}); ratio {seconds / wire:.2f}")
    finally:
        unit.send_signal(signal.SIGTERM)
        unit.wait(20)


if __name__ == "__main__":
    main()
