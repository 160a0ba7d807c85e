"""Ad-hoc pooling of CSV files: ``peerevidence pool`` and ``peerevidence pool-many``.

Input columns (metafor's names): ``study`` and either ``yi, vi``, or binary ``ai, bi, ci, di``
or ``ai, n1i, ci, n2i``, or continuous ``m1i, sd1i, n1i, m2i, sd2i, n2i``; ``pool-many``
adds ``analysis``. Results are on the ``yi`` scale (no sign harmonisation).

Checks: each study name once (a repeated name is an error naming both rows); a file with both
``yi, vi`` and raw columns is an error unless ``columns`` ("yi" or "raw") says which to use;
SMD needs n1i + n2i >= 4 (metafor's escalc gives NA below); non-integer counts are accepted,
as metafor accepts them, with a note.

``pool-many`` runs analyses on any ``concurrent.futures.Executor`` (a process pool for
``--workers N``, or a Dask ``Client.get_executor()`` for a cluster). Each worker process
compiles the model once and keeps it in :data:`_WORKER_MODELS` — the one piece of
process-level state in the package, a cache of compiled models.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from peerevidence.errors import DataError
from peerevidence.records.schema import SamplerSettings
from peerevidence.stats import effects
from peerevidence.stats.model import CompiledModels, FitData, Priors, fit

MEASURES = ("SMD", "MD", "OR", "RR", "HR", "GEN")
BINARY_ABCD = ("ai", "bi", "ci", "di")
BINARY_TOTALS = ("ai", "n1i", "ci", "n2i")
CONTINUOUS = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
GENERIC = ("yi", "vi")


def read_csv(path: Path, display: str | None = None) -> pd.DataFrame:
    display = display or str(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{display}: file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{display}: not UTF-8 text") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{display}: empty file (need a header and at least one study)") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{display}: not a readable CSV ({' '.join(str(exc).split())[:150]})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _lines(frame: pd.DataFrame) -> list[int]:
    """The file line of each row: header is line 1; ``split_analyses`` keeps the file's index."""
    return [int(ix) + 2 if isinstance(ix, (int, np.integer)) else i + 2 for i, ix in enumerate(frame.index)]


def _numbers(frame: pd.DataFrame, cols: tuple[str, ...], display: str) -> dict[str, np.ndarray]:
    lines = _lines(frame)
    out = {}
    for col in cols:
        values = []
        for i, raw in enumerate(frame[col].tolist()):
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise DataError(f"{display}: row {lines[i]}: {col}: not a number (got {raw!r})") from None
            if not math.isfinite(value):
                raise DataError(f"{display}: row {lines[i]}: {col}: must be finite (got {raw!r})")
            values.append(value)
        out[col] = np.array(values)
    return out


def _check_positive(
    values: np.ndarray, col: str, display: str, lines: list[int], strict: bool = True, whole: bool = False
) -> None:
    for i, v in enumerate(values):
        if (v <= 0 if strict else v < 0) or (whole and v != int(v)):
            need = "> 0" if strict else ">= 0"
            kind = "a whole number " if whole else ""
            raise DataError(f"{display}: row {lines[i]}: {col}: must be {kind}{need} (got {v:g})")


COLUMN_CHOICES = ("yi", "raw")


def _raw_sets(cols: set[str]) -> list[tuple[str, ...]]:
    return [group for group in (CONTINUOUS, BINARY_ABCD, BINARY_TOTALS) if set(group) <= cols]


def effects_from_frame(
    frame: pd.DataFrame,
    measure: str | None,
    display: str,
    columns: str | None = None,
    notes: list[str] | None = None,
) -> tuple[FitData, str]:
    """Compute (yi, vi) from whichever columns the frame has; return the data and measure.

    ``columns`` chooses between ``yi, vi`` ("yi") and raw columns ("raw") when a file has
    both; without it such a file is an error.  Notes about the input (e.g. non-integer counts)
    are appended to ``notes`` when a list is given.
    """
    cols = set(frame.columns)
    if "study" not in cols:
        raise DataError(f"{display}: missing column 'study' (columns: {', '.join(sorted(cols))})")
    if len(frame) < 1:
        raise DataError(f"{display}: no studies (need at least one row)")
    if measure is not None and measure not in MEASURES:
        raise DataError(f"measure '{measure}' not known (accepted: {', '.join(MEASURES)})")
    if columns is not None and columns not in COLUMN_CHOICES:
        raise DataError(f"columns '{columns}' not known (accepted: {', '.join(COLUMN_CHOICES)})")
    lines = _lines(frame)
    labels = _labels(frame["study"].tolist(), display, lines)
    raw = _raw_sets(cols)
    if set(GENERIC) <= cols and raw and columns is None:
        raise DataError(
            f"{display}: both yi,vi and {','.join(raw[0])} columns given; say which to use "
            f"(accepted: --columns yi, --columns raw)"
        )
    if notes is None:
        notes = []
    if set(GENERIC) <= cols and columns != "raw":
        num = _numbers(frame, GENERIC, display)
        _check_positive(num["vi"], "vi", display, lines)
        return FitData(labels, num["yi"], num["vi"], measure=measure or "GEN"), measure or "GEN"
    if set(CONTINUOUS) <= cols:
        m = measure or "SMD"
        if m not in ("SMD", "MD"):
            raise DataError(f"{display}: continuous columns give SMD or MD, not {m}")
        num = _numbers(frame, CONTINUOUS, display)
        for col in ("sd1i", "sd2i", "n1i", "n2i"):
            _check_positive(num[col], col, display, lines)
        if m == "SMD":
            small = np.nonzero(num["n1i"] + num["n2i"] < 4)[0]
            if small.size:
                i = int(small[0])
                raise DataError(
                    f"{display}: row {lines[i]}: n1i + n2i: SMD needs at least 4 participants "
                    f"(got {num['n1i'][i] + num['n2i'][i]:g}; metafor's escalc gives NA)"
                )
        fn = effects.smd if m == "SMD" else effects.md
        yi, vi = fn(*(num[c] for c in CONTINUOUS))
        return FitData(labels, yi, vi, measure=m), m
    binary = (
        BINARY_ABCD if set(BINARY_ABCD) <= cols else (BINARY_TOTALS if set(BINARY_TOTALS) <= cols else None)
    )
    if binary:
        m = measure or "OR"
        if m not in ("OR", "RR"):
            raise DataError(f"{display}: binary columns give OR or RR, not {m}")
        num = _numbers(frame, binary, display)
        for col in binary:
            _check_positive(num[col], col, display, lines, strict=col in ("n1i", "n2i"))
        fractional = [
            f"{col} row {lines[i]} ({num[col][i]:g})"
            for col in binary
            for i in range(len(num[col]))
            if num[col][i] != int(num[col][i])
        ]
        if fractional:
            more = f" and {len(fractional) - 3} more" if len(fractional) > 3 else ""
            notes.append(
                f"{display}: non-integer counts used as given, as metafor does: "
                f"{', '.join(fractional[:3])}{more}"
            )
        if binary == BINARY_TOTALS:
            for e, n in (("ai", "n1i"), ("ci", "n2i")):
                bad = np.nonzero(num[e] > num[n])[0]
                if bad.size:
                    i = int(bad[0])
                    raise DataError(
                        f"{display}: row {lines[i]}: {e}: events ({num[e][i]:g}) exceed {n} ({num[n][i]:g})"
                    )
            cells = effects.table_from_totals(*(num[c] for c in binary))
        else:
            cells = [num[c] for c in binary]
        fn = effects.log_or if m == "OR" else effects.log_rr
        yi, vi = fn(*cells)
        return FitData(labels, yi, vi, measure=m), m
    raise DataError(
        f"{display}: need columns yi,vi or ai,bi,ci,di or ai,n1i,ci,n2i or "
        f"m1i,sd1i,n1i,m2i,sd2i,n2i besides 'study' (got: {', '.join(sorted(cols))})"
    )


def _labels(raw: list[str], display: str, lines: list[int]) -> tuple[str, ...]:
    """Study names, each once: a repeated name would pool the same study twice."""
    seen: dict[str, int] = {}
    out = []
    for i, label in enumerate(raw):
        label = str(label).strip()
        if not label:
            raise DataError(f"{display}: row {lines[i]}: study: must not be empty")
        if label in seen:
            raise DataError(
                f"{display}: row {lines[i]}: study: '{label}' repeats row {lines[seen[label]]} "
                "(each study once; give distinct names to distinct studies)"
            )
        seen[label] = i
        out.append(label)
    return tuple(out)


# --------------------------------------------------------------------------- JSON shape

STAT_KEYS = ("mean", "sd", "q025", "q50", "q975")
NEW_KEYS = ("mean", "sd", "q025", "q975")
DIAG_KEYS = ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "exact_max_sd_discrepancy")
REML_KEYS = (
    "mu", "se", "ci_lb", "ci_ub", "tau2", "i2", "pi_lb", "pi_ub",
    "hksj_se", "hksj_ci_lb", "hksj_ci_ub", "hksj_df", "pi_t_lb", "pi_t_ub",
    "tau2_qp_lb", "tau2_qp_ub", "i2_qp_lb", "i2_qp_ub",
)  # fmt: skip


def pool_json(summary: dict[str, Any]) -> dict[str, Any]:
    """The documented ``pool --json`` object, exactly these keys."""
    pick = lambda d, keys: {k: d.get(k) for k in keys}  # noqa: E731
    ex = summary["exact"]
    return {
        "k": summary["k"],
        "measure": summary["measure"],
        "mu": pick(summary["mu"], STAT_KEYS),
        "tau": pick(summary["tau"], STAT_KEYS),
        "theta_new": pick(summary["theta_new"], NEW_KEYS),
        "p_mu_gt_0": summary["p_mu_gt_0"],
        "theta": [{"study": t["study"], **pick(t, NEW_KEYS)} for t in summary["theta"]],
        "diagnostics": pick(summary["diagnostics"], DIAG_KEYS),
        "exact": {
            "mu": pick(ex["mu"], STAT_KEYS),
            "tau": pick(ex["tau"], STAT_KEYS),
            "theta_new": pick(ex["theta_new"], NEW_KEYS),
            "p_mu_gt_0": ex["p_mu_gt_0"],
        },
        "reml": pick(summary["reml"], REML_KEYS),
        "priors": dict(summary["priors"]),
    }


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> flat ``a_b_c`` columns (lists of per-study results are dropped)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "_"))
        elif isinstance(value, list):
            continue
        else:
            out[name] = value
    return out


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Job:
    name: str | None
    data: FitData
    priors: Priors
    sampler: SamplerSettings
    tolerance_sd: float = 0.1
    tolerance_z: float = 5.0
    notes: tuple[str, ...] = ()  # notes about the input (from effects_from_frame)


_WORKER_MODELS: CompiledModels | None = None


def _models() -> CompiledModels:
    global _WORKER_MODELS
    if _WORKER_MODELS is None:
        _WORKER_MODELS = CompiledModels()
    return _WORKER_MODELS


def run_job(job: Job) -> dict[str, Any]:
    """Fit one job in this process (compiling at most once per model structure)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(job.data, job.priors, job.sampler, _models(), job.tolerance_sd, job.tolerance_z)
    out = pool_json(result.summary)
    if job.name is not None:
        out = {"analysis": job.name, **out}
    out["_exact_ok"] = result.summary["diagnostics"]["exact_ok"]
    out["_notes"] = list(job.notes) + list(result.summary["notes"])
    return out


def split_analyses(frame: pd.DataFrame, display: str) -> list[tuple[str, pd.DataFrame]]:
    if "analysis" not in frame.columns:
        raise DataError(f"{display}: missing column 'analysis' (pool-many needs analysis, study, ...)")
    groups = []
    for name, sub in frame.groupby("analysis", sort=True):
        if not str(name).strip():
            raise DataError(f"{display}: an 'analysis' value is empty")
        groups.append((str(name), sub))  # keeps the file's row index for error messages
    if not groups:
        raise DataError(f"{display}: no analyses")
    return groups


def run_many(jobs: list[Job], executor: Executor | None = None) -> Iterator[dict[str, Any]]:
    """Yield results in input order; ``executor`` may be any concurrent.futures Executor."""
    if executor is None:
        for job in jobs:
            yield run_job(job)
        return
    futures: list[Future] = [executor.submit(run_job, job) for job in jobs]
    for future in futures:
        yield future.result()
