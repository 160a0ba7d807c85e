"""Section `fresh`: what a user waits for, in fresh processes, side by side.

* ``peerevidence pool FILE`` (4 studies) vs the exact oracle's own process (``oracle.py``);
* cold ``peerevidence run --force`` of the shipped project vs ``peerevidence validate``;
* an unchanged rerun.
Each pair alternates, so both members see the same load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BENCH, ROOT, Context, Result, fmt, log, median, section, table

FOUR = "study,yi,vi\na,0.10,0.04\nb,0.30,0.05\nc,0.20,0.03\nd,0.45,0.06\n"


def _exe() -> str:
    return shutil.which("peerevidence", path=str(Path(sys.executable).parent)) or "peerevidence"


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds


def _copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "references.bib", dest)
    for folder in ("evidence", "extraction"):
        shutil.copytree(ROOT / folder, dest / folder)
    return dest


@section("fresh", "Fresh processes: pool vs exact oracle, cold run vs validate, unchanged rerun")
def bench_fresh(ctx: Context) -> Result:
    repeats = 3 if ctx.quick else 7
    exe = _exe()
    with tempfile.TemporaryDirectory(prefix="peerevidence-fresh-") as tmp:
        tmp = Path(tmp)
        csv = tmp / "four.csv"
        csv.write_text(FOUR)
        pool_s, oracle_s = [], []
        for _ in range(repeats):
            pool_s.append(_timed([exe, "pool", str(csv), "--json"]))
            oracle_s.append(_timed([sys.executable, str(BENCH / "oracle.py"), str(csv)]))
        log(f"fresh pool {median(pool_s):.2f} s vs oracle {median(oracle_s):.2f} s")
        project = _copy_project(tmp / "project")
        run_s, validate_s, rerun_s = [], [], []
        for _ in range(max(2, repeats // 2)):
            validate_s.append(_timed([exe, "validate", "--project", str(project)]))
            run_s.append(_timed([exe, "run", "--project", str(project), "--quiet", "--force"]))
        manifest = json.loads((project / "reports" / "manifest.json").read_text())
        fitted = sum(not e["reused"] for e in manifest["analyses"].values())
        for _ in range(repeats):
            rerun_s.append(_timed([exe, "run", "--project", str(project), "--quiet"]))
        log(
            f"cold run {median(run_s):.1f} s vs validate {median(validate_s):.2f} s; rerun {median(rerun_s):.2f} s"
        )
    pool_ratio = median(pool_s) / median(oracle_s)
    run_ratio = median(run_s) / median(validate_s)
    rows = [
        [
            "`pool` 4 studies vs exact oracle process",
            fmt(median(pool_s)),
            fmt(median(oracle_s)),
            fmt(pool_ratio, 2),
            "≤ 4",
        ],
        [
            "cold `run --force` vs `validate`",
            fmt(median(run_s)),
            fmt(median(validate_s)),
            fmt(run_ratio, 2),
            "≤ 6",
        ],
        ["unchanged rerun", fmt(median(rerun_s)), "–", "–", "≤ 1 s"],
    ]
    md = "\n".join(
        [
            f"Method: each command as a subprocess (interpreter start and imports included), {repeats} "
            "alternating repeats of each pair; medians of wall time. The oracle is "
            "`benchmarks/oracle.py` (reads the CSV, exact posterior, prints JSON). `run --force` refits "
            f"every analysis ({fitted} fits of {len(manifest['analyses'])} analyses) and renders the report.",
            "",
            table(["what", "seconds", "reference s", "ratio", "target"], rows),
        ]
    )
    targets = [
        {
            "target": "fresh-process `pool` ≤ 4× the exact oracle's process",
            "measured": f"{pool_ratio:.2f}× ({median(pool_s):.2f} s vs {median(oracle_s):.2f} s)",
            "verdict": "meets" if pool_ratio <= 4 else "falls short",
        },
        {
            "target": "cold `run --force` ≤ 6× `validate`",
            "measured": f"{run_ratio:.2f}× ({median(run_s):.1f} s vs {median(validate_s):.2f} s)",
            "verdict": "meets" if run_ratio <= 6 else "falls short",
        },
        {
            "target": "unchanged rerun ≤ 1 s",
            "measured": f"{median(rerun_s):.2f} s",
            "verdict": "meets" if median(rerun_s) <= 1 else "falls short",
        },
    ]
    raw = {
        "pool_s": pool_s,
        "oracle_s": oracle_s,
        "run_s": run_s,
        "validate_s": validate_s,
        "rerun_s": rerun_s,
    }
    return Result(md, raw, targets)
