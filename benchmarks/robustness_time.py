#!/usr/bin/env python
"""Time of the extra analyses per outcome (issue 15): the robustness analysis of each
outcome's main fit (sensitivity subsets, leave-one-out, cumulative, small-study tests,
subgroups, moderators; all exact or REML, no sampling), on the shipped evidence base.

    .venv/bin/peerevidence run -q && .venv/bin/python benchmarks/robustness_time.py

Prints a markdown table (median of 3 runs per outcome) for benchmarks/results.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from peerevidence.pooling.fitting import load_fits  # noqa: E402
from peerevidence.synthesis.certainty import main_fits  # noqa: E402
from peerevidence.synthesis.robustness import outcome_robustness  # noqa: E402


def main() -> None:
    result = load_fits(ROOT)
    rows = []
    for oid, fit in sorted(main_fits(result).items()):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            outcome_robustness(result, fit)
            times.append(time.perf_counter() - start)
        rows.append((oid, fit.summary.k, statistics.median(times)))
    print(f"Load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; median of 3 runs.")
    print()
    print("| outcome | k | robustness analyses (ms) |")
    print("|---|---:|---:|")
    for oid, k, seconds in rows:
        print(f"| {oid} | {k} | {seconds * 1000:.0f} |")
    print(f"| all outcomes | | {sum(r[2] for r in rows) * 1000:.0f} |")


if __name__ == "__main__":
    main()
