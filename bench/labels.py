"""Label rendering speed: PNG and ZPL per label, a 1,000-label PDF sheet run, against plain qrcode.

Run: python bench/labels.py [--count 1000] [--rounds 5]

Every figure is the median of the rounds. The baseline, measured in the same run on the same payloads,
is what a label costs at least without this package: ``qrcode.make(payload)`` for each of the 1,000
payloads (one QR image each, no label around it). Targets: PNG <= 10 ms, ZPL <= 1 ms per label, PDF
sheets <= 5 s for 1,000 labels.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import qrcode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from station.core import uci
from station.labels import layout as layout_mod
from station.labels import pdf, png, qr, zpl
from station.labels.compose import LabelData
from station.labels.layout import Layout

LAYOUTS = Path(__file__).resolve().parent.parent / "label_layouts"
CLAIM_URL = "https://example.com/claim/{id}"


def labels(count: int, claim_url: str | None) -> list[LabelData]:
    return [LabelData(uci=code, display_id=uci.display(code), product_name="Blank Sensor Hub", model="Blank-01",
                      serial=f"SN-{i:08d}", batch="BENCH", date="2026-01-31", claim_url=claim_url)
            for i, code in enumerate(uci.generate_many(count, 80))]


def median_seconds(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(thermal: Layout, sheet: Layout, items: list[LabelData], payloads: list[str], rounds: int) -> None:
    """Print the figures for one kind of payload."""
    n = len(items)
    png.render(thermal, items[0]), zpl.render(thermal, items[0]), pdf.render(sheet, items[:1])  # warm the caches
    baseline = median_seconds(rounds, lambda: [qrcode.make(p) for p in payloads])
    png_s = median_seconds(rounds, lambda: [png.render(thermal, item) for item in items])
    zpl_s = median_seconds(rounds, lambda: [zpl.render(thermal, item) for item in items])
    pdf_s = median_seconds(rounds, lambda: pdf.render(sheet, items))
    sheets = -(-n // sheet.sheet.slots)
    print(f"  baseline  qrcode.make x{n}:              {baseline:7.3f} s   {baseline / n * 1000:7.3f} ms per QR image")
    print(f"  PNG  {thermal.name} per label:  {png_s / n * 1000:7.3f} ms   ratio {png_s / baseline:5.2f} x baseline"
          f"   (target <= 10 ms)")
    print(f"  ZPL  {thermal.name} per label:  {zpl_s / n * 1000:7.3f} ms   ratio {zpl_s / baseline:5.3f} x baseline"
          f"   (target <= 1 ms)")
    print(f"  PDF  {sheet.name}, {n} labels, {sheets} sheets: {pdf_s:6.3f} s   ratio {pdf_s / baseline:5.2f} x baseline"
          f"   (target <= 5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    thermal = layout_mod.load("thermal-50x25-203", LAYOUTS)
    sheet = layout_mod.load("a4-3x8-70x37", LAYOUTS)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"labels benchmark: {args.count} labels of 80-bit claim IDs, median of {args.rounds} rounds "
          f"({os.cpu_count()} CPUs, load average {load})")
    for claim_url in (CLAIM_URL, None):
        items = labels(args.count, claim_url)
        payloads = [uci.qr_payload(item.uci, claim_url) for item in items]
        kind = f"claim URL {claim_url}" if claim_url else "claim ID alone"
        print(f"\nQR payload: {kind} (QR version {qr.version_for(len(payloads[0]), 'M')})")
        measure(thermal, sheet, items, payloads, args.rounds)


if __name__ == "__main__":
    main()
