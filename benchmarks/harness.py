"""The benchmark harness: section registry, machine and load records, ``results.md``.

Sections live in ``benchmarks/sections/<name>.py``; each registers itself with
``@section(name, title)`` and returns a :class:`Result`. Timings use explicit hooks of the
package (``fit(..., timings=...)``) or fresh processes, never patched private names.

    python benchmarks/bench.py [--quick] [--only SECTION ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
OUT = BENCH / "out"
RESULTS = BENCH / "results.md"
_CORPUS_DEFAULT = next(
    (
        p / "shared" / "corpus" / "cochrane2000"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared").is_dir()
    ),
    ROOT.parent / "shared" / "corpus" / "cochrane2000",
)  # ../shared next to the checkout, or next to the worktrees' folder
CORPUS = Path(os.environ.get("PEEREVIDENCE_CORPUS", _CORPUS_DEFAULT))

SEED = 20150703
DEFAULT_PRIOR_MU = "normal:0:1"
DEFAULT_PRIOR_TAU = "halfnormal:0.5"

# targets (issue 4 "Performance"; issue 6 "Targets")
FIT_RATIO_TARGET = 5.0
FIT_ESS_TARGET = 1000.0
RHAT_TARGET = 1.01
BATCH_SECONDS_TARGET = 300.0
BATCH_N_TARGET = 1000
BATCH_ESS_TARGET = 400.0


# ============================================================================ registry


@dataclass
class Context:
    quick: bool
    machine: dict[str, Any]


@dataclass
class Result:
    markdown: str
    raw: dict[str, Any]
    targets: list[dict[str, str]] = field(default_factory=list)  # {target, measured, verdict}


@dataclass
class Section:
    name: str
    title: str
    func: Callable[[Context], Result] | None
    placeholder: str | None = None


SECTIONS: dict[str, Section] = {}


def section(name: str, title: str) -> Callable:
    """Register ``func(ctx) -> Result`` as benchmark section ``name``."""

    def deco(func: Callable[[Context], Result]) -> Callable[[Context], Result]:
        SECTIONS[name] = Section(name, title, func)
        return func

    return deco


def placeholder(name: str, title: str, text: str) -> None:
    SECTIONS[name] = Section(name, title, None, text)


# ============================================================================ helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def machine_busy_s() -> float:
    """CPU-seconds all processes of the machine have been busy since boot (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:  # pragma: no cover
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU-seconds of this process and its waited-for children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # kB on Linux


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    ``VmHWM`` of ``/proc/self/status`` where available: ``getrusage(RUSAGE_SELF).ru_maxrss``
    survives fork + exec on Linux, so a child started by a large parent reports at least the
    parent's resident size at the fork (measured here: every child of a 575 MB parent said
    575 MB). ``ru_maxrss`` is the fallback on systems without /proc.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return maxrss_mb()


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    x = float(x)
    if math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


def ms(seconds: float) -> str:
    return fmt(seconds * 1000)


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(r if isinstance(r, str) else fmt(r) for r in row) + " |")
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def src_digest() -> str:
    """A hash of the package source, to notice when others change src/ during a section."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def model_version() -> str:
    try:
        from peerevidence.stats.model import MODEL_VERSION

        return MODEL_VERSION
    except Exception:
        return "?"


def machine_info() -> dict[str, Any]:
    from importlib import metadata

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gb = float("nan")
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 1024**2
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    packages = {}
    for name in (
        "peerevidence",
        "pymc",
        "pytensor",
        "nutpie",
        "arviz",
        "numpy",
        "scipy",
        "pandas",
        "xarray",
        "numba",
        "psutil",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    git = {}
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        git["commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        git["src_uncommitted_files"] = len(dirty.splitlines()) if dirty else 0
    return {
        "nproc": nproc,
        "cpu": cpu,
        "ram_gb": round(ram_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "git": git,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "model_version": model_version(),
        "loadavg": loadavg(),
    }


def quiet_warnings() -> None:
    warnings.simplefilter("ignore")
    import logging

    for name in ("pymc", "pytensor", "arviz", "nutpie"):
        logging.getLogger(name).setLevel(logging.ERROR)


CHILDREN: dict[str, Callable[..., Any]] = {}


def child(name: str) -> Callable:
    """Register ``func(*args) -> jsonable`` to run in a fresh interpreter via :func:`run_child`."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        CHILDREN[name] = func
        return func

    return deco


# ---------------------------------------------------------------------------- fitting helpers


def sim_data(k: int, seed: int, mu: float = 0.3, tau: float = 0.2, vlo: float = 0.01, vhi: float = 0.1):
    """Simulated analysis: theta_i ~ N(mu, tau^2), y_i ~ N(theta_i, v_i), v_i ~ U(vlo, vhi)."""
    from peerevidence.stats.model import FitData

    rng = np.random.default_rng([seed, k])
    vi = rng.uniform(vlo, vhi, k)
    yi = mu + tau * rng.standard_normal(k) + np.sqrt(vi) * rng.standard_normal(k)
    return FitData(tuple(f"s{i + 1}" for i in range(k)), yi, vi, measure="GEN")


def default_priors():
    from peerevidence.stats.model import Priors
    from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

    return Priors(parse_mu_prior(DEFAULT_PRIOR_MU), parse_tau_prior(DEFAULT_PRIOR_TAU))


def run_child(args: list[str], env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``bench.py --child ...`` in a fresh interpreter and return its JSON answer."""
    cmd = [sys.executable, str(BENCH / "bench.py"), "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_results(machine: dict[str, Any]) -> None:
    saved = {}
    for name in SECTIONS:
        path = OUT / f"{name}.json"
        if path.exists():
            saved[name] = json.loads(path.read_text())
    m = machine
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines = [
        "# peerevidence benchmarks",
        "",
        "Generated by `python benchmarks/bench.py` (see `benchmarks/README.md`); raw measurements in",
        "`benchmarks/out/*.json`. Machines and shared runners are noisy: treat times as ±30–50%",
        "(the load average at the start and end of each section is given).",
        "",
        "## Machine",
        "",
        table(
            ["", ""],
            [
                ["cores (`nproc`)", m["nproc"]],
                ["CPU", m["cpu"]],
                ["RAM", f"{m['ram_gb']} GB"],
                ["Python", m["python"]],
                ["packages", pk],
                ["platform", m["platform"]],
                [
                    "checkout",
                    f"{m['git'].get('commit', '?')} ({m['git'].get('src_uncommitted_files', '?')} uncommitted files under src/)",
                ],
                ["results.md written", m["date"]],
            ],
        ),
        "",
        "## Summary: targets vs measured",
        "",
    ]
    summary_rows = []
    for i, (name, sec) in enumerate(SECTIONS.items(), 1):
        s = saved.get(name)
        if s is None:
            summary_rows.append([f"{i}. `{name}`", "–", sec.placeholder or "not run yet", "–"])
            continue
        for t in s.get("targets", []):
            summary_rows.append([f"{i}. `{name}`", t["target"], t["measured"], f"**{t['verdict']}**"])
    lines += [table(["section", "target", "measured", "verdict"], summary_rows), ""]
    for i, (name, sec) in enumerate(SECTIONS.items(), 1):
        lines += [f"## {i}. {sec.title} (`{name}`)", ""]
        s = saved.get(name)
        if s is None:
            lines += [sec.placeholder or f"_not run yet: `python benchmarks/bench.py --only {name}`_", ""]
            continue
        sm = s.get("machine", {})
        lines += [
            f"_Run {s['date']} ({'quick' if s['quick'] else 'full'} mode, {fmt(s['seconds'])} s; load average "
            f"{s['load_before']} → {s['load_after']}; other processes kept "
            f"{fmt(s.get('others_cores_avg', float('nan')), 2)} of {sm.get('nproc', '?')} cores busy on average; checkout "
            f"{sm.get('git', {}).get('commit', '?')}, src digest {s.get('src_before', '?')}, "
            f"model `{sm.get('model_version', '?')}`)._",
            "",
            *(
                [
                    f"**Warning: the package source under `src/` changed while this section ran "
                    f"(digest {s['src_before']} → {s['src_after']}); rerun it.**",
                    "",
                ]
                if s.get("src_before") != s.get("src_after")
                else []
            ),
            s["markdown"].strip(),
            "",
        ]
    RESULTS.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    parser.add_argument(
        "--only", nargs="+", metavar="SECTION", help=f"sections to run: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind not in CHILDREN:
            parser.error(f"unknown child {kind}")
        print(json.dumps(jsonable(CHILDREN[kind](*rest))))
        return 0
    names = args.only or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    status = 0
    for name in names:
        sec = SECTIONS[name]
        if sec.func is None:
            log(f"{name}: placeholder, no code yet ({sec.placeholder})")
            if args.only:
                status = 2
            continue
        log(f"=== {name}: {sec.title}")
        load_before, t = loadavg(), time.perf_counter()
        busy0, own0 = machine_busy_s(), own_cpu_s()
        src_before = src_digest()
        try:
            res = sec.func(Context(quick=args.quick, machine=machine))
        except Exception:
            tb = traceback.format_exc()
            log(f"{name} FAILED:\n{tb}")
            res = Result(
                f"**This section failed to run:**\n\n```\n{tb}\n```",
                {"error": tb},
                [{"target": "(section failed)", "measured": "error", "verdict": "not measured"}],
            )
            status = 1
        seconds = time.perf_counter() - t
        others = (machine_busy_s() - busy0) - (own_cpu_s() - own0)
        record = {
            "name": name,
            "title": sec.title,
            "date": machine_info()["date"],
            "quick": args.quick,
            "seconds": seconds,
            "load_before": load_before,
            "load_after": loadavg(),
            "others_cores_avg": max(others / seconds, 0.0),
            "src_before": src_before,
            "src_after": src_digest(),
            "machine": machine,
            "markdown": res.markdown,
            "targets": res.targets,
            "raw": res.raw,
        }
        (OUT / f"{name}.json").write_text(json.dumps(jsonable(record), indent=1))
        log(f"{name}: done in {record['seconds']:.0f} s")
        write_results(machine)
    write_results(machine)
    log(f"wrote {RESULTS.relative_to(ROOT)}")
    return status
