"""Section `batch`: pool-many on the Cochrane corpus (exact-only engine, MCMC, workers)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import CORPUS, Context, Result, fmt, log, section, table


def _exe() -> str:
    return shutil.which("peerevidence", path=str(Path(sys.executable).parent)) or "peerevidence"


def corpus_rows() -> list[dict[str, str]]:
    with open(CORPUS / "effects_long.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_long(rows: list[dict[str, str]], keys: list[str], path: Path) -> None:
    wanted = set(keys)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["analysis", "study", "yi", "vi"])
        for r in rows:
            if r["analysis_key"] in wanted:
                w.writerow([r["analysis_key"], r["study"], r["yi"], r["vi"]])


def _pool_many(path: Path, *args: str) -> tuple[float, int, list[dict]]:
    t = time.perf_counter()
    proc = subprocess.run(
        [_exe(), "pool-many", str(path), *args], capture_output=True, text=True, timeout=7200
    )
    seconds = time.perf_counter() - t
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode not in (0, 1) or not out:
        raise RuntimeError(f"pool-many failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, proc.returncode, out


@section("batch", "pool-many on the Cochrane corpus: exact-only engine, MCMC, workers")
def bench_batch(ctx: Context) -> Result:
    if not (CORPUS / "effects_long.csv").exists():
        return Result("_corpus not found; skipped_", {}, [])
    rows = corpus_rows()
    keys = sorted({r["analysis_key"] for r in rows})
    n_mcmc = 100 if ctx.quick else 1000
    with tempfile.TemporaryDirectory(prefix="peerevidence-batch-") as tmp:
        tmp = Path(tmp)
        every = tmp / "all.csv"
        write_long(rows, keys, every)
        exact_s, exact_code, exact_out = _pool_many(every, "--engine", "exact", "--workers", "2")
        log(f"exact engine: {len(exact_out)} analyses in {exact_s:.1f} s")
        small = tmp / "small.csv"
        write_long(rows, keys[:10], small)
        one_s, _, _ = _pool_many(small, "--workers", "1")
        two_s, _, _ = _pool_many(small, "--workers", "2")
        log(f"10 analyses: 1 worker {one_s:.1f} s, 2 workers {two_s:.1f} s")
        many = tmp / "many.csv"
        write_long(rows, keys[:n_mcmc], many)
        mcmc_s, mcmc_code, mcmc_out = _pool_many(many, "--workers", "2")
        log(f"mcmc: {len(mcmc_out)} analyses in {mcmc_s:.1f} s")
    errors = [o for o in mcmc_out if "error" in o]
    good = [
        o
        for o in mcmc_out
        if "error" not in o
        and o["diagnostics"]["ess_bulk_min"] >= 1000
        and o["diagnostics"]["rhat_max"] <= 1.01
        and o["diagnostics"]["divergences"] == 0
    ]
    md = "\n".join(
        [
            f"Method: `peerevidence pool-many` subprocesses on the analyses of `effects_long.csv` "
            f"({len(keys)} analyses; default priors and sampler); wall time including start-up.",
            "",
            table(
                ["run", "analyses", "seconds", "per analysis ms", "exit", "failed rows"],
                [
                    [
                        "`--engine exact --workers 2`",
                        len(exact_out),
                        fmt(exact_s),
                        fmt(1e3 * exact_s / len(exact_out)),
                        exact_code,
                        sum("error" in o for o in exact_out),
                    ],
                    ["MCMC, 10 analyses, `--workers 1`", 10, fmt(one_s), fmt(100 * one_s), "–", "–"],
                    ["MCMC, 10 analyses, `--workers 2`", 10, fmt(two_s), fmt(100 * two_s), "–", "–"],
                    [
                        "MCMC `--workers 2`",
                        len(mcmc_out),
                        fmt(mcmc_s),
                        fmt(1e3 * mcmc_s / len(mcmc_out)),
                        mcmc_code,
                        len(errors),
                    ],
                ],
            ),
            "",
            f"MCMC analyses at ESS bulk ≥ 1000, R̂ ≤ 1.01, 0 divergences, no error: {len(good)}/{len(mcmc_out)}.",
            *(f"* `{o['analysis']}`: {o['error']}" for o in errors[:20]),
        ]
    )
    targets = [
        {
            "target": f"`--engine exact`: all {len(keys)} corpus analyses in seconds",
            "measured": f"{exact_s:.1f} s",
            "verdict": "meets" if exact_s <= 60 else "falls short",
        },
        {
            "target": "`--workers 2` not slower than one worker on 10 analyses",
            "measured": f"{two_s:.1f} s vs {one_s:.1f} s",
            "verdict": "meets" if two_s <= one_s * 1.1 else "falls short",
        },
        {
            "target": f"{len(mcmc_out)} analyses: every one ESS ≥ 1000, R̂ ≤ 1.01, 0 divergences, exact ok",
            "measured": f"{len(good)}/{len(mcmc_out)} in {mcmc_s:.0f} s",
            "verdict": "meets" if len(good) == len(mcmc_out) else "falls short",
        },
    ]
    raw = {"exact_s": exact_s, "one_s": one_s, "two_s": two_s, "mcmc_s": mcmc_s, "errors": errors}
    return Result(md, raw, targets)
