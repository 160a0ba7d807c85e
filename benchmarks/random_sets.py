#!/usr/bin/env python
"""Our REML line against metafor 3.8-1 on 4,000 seeded random small meta-analyses (issue 12).

    python benchmarks/random_sets.py [--tol 1e-4] [--fixture PATH]

Reads ``tests/data/metafor/random_sets.json`` (made by ``tests/data/metafor/make_reference.R``:
k = 2..10, log vi uniform on [log 0.01, log 1.1], tau^2 in {0, 0, .01, .05, .2, .5}) and fits
each set with :func:`peerevidence.stats.frequentist.random_effects` (REML, metafor's default
threshold).  For every quantity it counts the sets where |ours - metafor| > tol and gives the
largest difference, then prints a markdown table (for benchmarks/results.md).

Quantities: mu, tau^2, SE, Wald CI, Wald PI, I^2 (``rma()`` + ``predict()``); HKSJ SE and CI
and the t PI (``rma(test="knha")`` + ``predict()``); the Q-profile CI of tau^2
(``confint()``, roots to 1e-12 in the fixture).  Standalone: not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from peerevidence.stats.frequentist import random_effects  # noqa: E402

# (label, fixture block, fixture key(s), our attribute(s))
QUANTITIES = (
    ("mu", "reml", ("mu",), ("mu",)),
    ("tau2", "reml", ("tau2",), ("tau2",)),
    ("SE", "reml", ("se",), ("se",)),
    ("CI (Wald)", "reml", ("ci_lb", "ci_ub"), ("ci_lb", "ci_ub")),
    ("PI (z)", "reml", ("pi_lb", "pi_ub"), ("pi_lb", "pi_ub")),
    ("I2 (%)", "reml", ("I2",), ("i2",)),
    ("SE (HKSJ)", "knha", ("se",), ("hksj_se",)),
    ("CI (HKSJ)", "knha", ("ci_lb", "ci_ub"), ("hksj_ci_lb", "hksj_ci_ub")),
    ("PI (t)", "knha", ("pi_lb", "pi_ub"), ("pi_t_lb", "pi_t_ub")),
    ("tau2 CI (QP)", "qp", ("tau2_lb", "tau2_ub"), ("tau2_qp_lb", "tau2_qp_ub")),
)


def _diff(ours: float, theirs: float | None) -> float:
    if theirs is None:
        return 0.0 if math.isnan(ours) else math.inf
    return abs(ours - theirs)


def compare(sets: list[dict], tol: float) -> tuple[dict[str, dict], float, list[str]]:
    stats = {label: {"n": 0, "off": 0, "max": 0.0, "worst": None} for label, *_ in QUANTITIES}
    failed: list[str] = []
    start = time.perf_counter()
    for s in sets:
        fit = random_effects(s["yi"], s["vi"], "REML")
        if "reml" not in s:  # metafor stopped with an error
            failed.append(f"set {s['id']} (k = {len(s['yi'])}): ours converged={fit.converged}")
            continue
        for label, block, theirs_keys, our_keys in QUANTITIES:
            ref = s.get(block)
            if ref is None:
                continue
            d = max(_diff(getattr(fit, o), ref[t]) for t, o in zip(theirs_keys, our_keys, strict=True))
            entry = stats[label]
            entry["n"] += 1
            if d > tol:
                entry["off"] += 1
            if d > entry["max"]:
                entry["max"], entry["worst"] = d, s["id"]
    return stats, time.perf_counter() - start, failed


def markdown(stats: dict[str, dict], n_sets: int, tol: float, seconds: float, failed: list[str]) -> str:
    lines = [
        f"REML line vs metafor 3.8-1 on {n_sets:,} seeded random sets (k 2-10; "
        f"tests/data/metafor/random_sets.json); {seconds:.1f} s for all fits.",
        "",
        f"| quantity | sets compared | off by > {tol:g} | largest difference | worst set |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, entry in stats.items():
        worst = "" if entry["worst"] is None else str(entry["worst"])
        lines.append(f"| {label} | {entry['n']:,} | {entry['off']} | {entry['max']:.2e} | {worst} |")
    if failed:
        lines += [
            "",
            f"Not compared: {len(failed)} sets where metafor's Fisher scoring did not converge "
            "(rma() stops with an error); ours then maximises the restricted likelihood by a "
            "bounded search and says so in `notes`: " + "; ".join(failed) + ".",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--fixture", type=Path, default=ROOT / "tests/data/metafor/random_sets.json")
    args = parser.parse_args(argv)
    sets = json.loads(args.fixture.read_text(encoding="utf-8"))["sets"]
    stats, seconds, failed = compare(sets, args.tol)
    print(markdown(stats, len(sets), args.tol, seconds, failed))
    return 1 if any(entry["off"] for entry in stats.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
