"""Claims as an oracle: does a refused claim take the same time whether its code is unknown, names a unit of
another product, or names a void unit? (issue 16: "the same status and body, in the same time within noise")

Run: python bench/claims.py [--rounds 2000] [--units 10000]

A station database on a real file holds `--units` registered units of two products and some void ones. Each
round claims, through `Store.claim` (what POST /api/v1/claims runs on the writer, after the same reading of the
body and the same rate limit), one code of each kind in a shuffled order; the figures are the medians of each
kind's time. The baseline is the unknown code: a guesser's usual answer. Ratios near 1.0 mean no oracle; a
real claim of a registered unit is printed beside them, for scale (it moves the unit and stores the claim).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from station.core import uci
from station.core.errors import StationError
from station.core.lifecycle import Kind
from station.store import Store

PRODUCT, OTHER = "01H4R15D3478JD26YDYK408XE6", "01OTHERPRODUCT000000000001"


def prepare(store: Store, units: int) -> tuple[list[str], list[str], list[str]]:
    """Registered units of both products, and void ones of the product: their display codes."""
    store.add_product(PRODUCT, "Blank", "Blank-01")
    store.add_product(OTHER, "Other", "Other-01")
    store.generate_batch(PRODUCT, units, name="mine")
    store.generate_batch(OTHER, units // 10, name="theirs")
    codes = {name: [d.uci for d in store.devices(batch=name)] for name in ("mine", "theirs")}
    store.advance_many([(c, Kind.REGISTERED) for c in codes["mine"] + codes["theirs"]], "registered", "bench")
    free, gone = codes["mine"][: -units // 10], codes["mine"][-units // 10:]
    for code in gone:
        store.void(code, "bench", "bench")
    return [uci.display(c) for c in free], [uci.display(c) for c in codes["theirs"]], [uci.display(c) for c in gone]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--units", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Store.open(Path(folder) / "station.db") as store:
        free, foreign, void = prepare(store, args.units)
        times: dict[str, list[float]] = {"unknown": [], "other product": [], "void": [], "claimed (for scale)": []}
        for n in range(args.rounds):
            trials = [("unknown", uci.display(uci.generate())), ("other product", random.choice(foreign)),
                      ("void", random.choice(void)), ("claimed (for scale)", free[n % len(free)])]
            random.shuffle(trials)
            for kind, code in trials:
                began = time.perf_counter()
                try:
                    store.claim(code, f"acct-{n}", "api:bench", PRODUCT)
                except StationError:
                    pass
                times[kind].append(time.perf_counter() - began)
        base = statistics.median(times["unknown"])
        print(f"Store.claim, {args.rounds} rounds, {args.units:,} units; medians (ms) and ratio to an unknown code")
        for kind, seen in times.items():
            median = statistics.median(seen)
            print(f"  {kind:22s} {median * 1000:7.3f} ms   ratio {median / base:5.2f}   p90 "
                  f"{statistics.quantiles(seen, n=10)[-1] * 1000:7.3f} ms")


if __name__ == "__main__":
    main()
