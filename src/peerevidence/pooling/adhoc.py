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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from peerevidence.errors import DataError, FitFailed
from peerevidence.records.schema import SamplerSettings
from peerevidence.stats import effects
from peerevidence.stats.model import CompiledModels, FitData, Priors, fit
from peerevidence.stats.summary import FitSummary

MEASURES = ("SMD", "MD", "OR", "RR", "HR", "GEN")
BINARY_ABCD = ("ai", "bi", "ci", "di")
BINARY_TOTALS = ("ai", "n1i", "ci", "n2i")
CONTINUOUS = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
GENERIC = ("yi", "vi")


def read_csv(path: Path, display: str | None = None) -> pd.DataFrame:
    """Read a CSV of studies as text; every row must have as many fields as the header.

    The returned frame's index holds each row's number in the file (the header is row 1),
    named ``row``, so that errors found later name the row of the file, also after
    ``pool-many`` has split the rows by analysis.
    """
    display = display or str(path)
    numbers = _check_field_counts(path, display)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False)
    except FileNotFoundError:
        raise DataError(f"{display}: file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{display}: not UTF-8 text") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{display}: empty file (need a header and at least one study)") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{display}: not a readable CSV ({' '.join(str(exc).split())[:150]})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(numbers) != len(frame):  # pandas skipped or merged lines differently
        numbers = list(range(2, len(frame) + 2))
    frame.index = pd.Index(numbers, name="row")
    return frame


def _check_field_counts(path: Path, display: str) -> list[int]:
    """Name the first row whose number of fields differs from the header's (header = row 1);
    return the row numbers of the non-blank rows after the header."""
    import csv

    numbers: list[int] = []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, skipinitialspace=True)
            header = next(reader, None)
            if header is None:
                return numbers  # pandas reports the empty file
            for row_no, row in enumerate(reader, start=2):
                if not row:
                    continue  # a blank line: pandas skips it too
                if len(row) != len(header):
                    raise DataError(
                        f"{display}: row {row_no}: has {len(row)} field(s), the header has {len(header)}"
                    )
                numbers.append(row_no)
    except (OSError, UnicodeDecodeError, csv.Error):
        return []  # pandas reports these with its own message
    return numbers


def _rows(frame: pd.DataFrame) -> list[int]:
    """File row numbers of the frame's rows (from :func:`read_csv`), else 2, 3, ..."""
    if frame.index.name == "row":
        return [int(r) for r in frame.index]
    return list(range(2, len(frame) + 2))


def _lines(frame: pd.DataFrame) -> list[int]:
    """The file row of each row of ``frame`` (header = row 1)."""
    return _rows(frame)


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
    values: np.ndarray, col: str, display: str, lines: list[int], strict: bool = True
) -> None:
    for i, v in enumerate(values):
        if v <= 0 if strict else v < 0:
            need = "> 0" if strict else ">= 0"
            raise DataError(f"{display}: row {lines[i]}: {col}: must be {need} (got {v:g})")


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
            cells = tuple(effects.table_from_totals(*(num[c] for c in binary)))
        else:
            cells = tuple(num[c] for c in binary)
        yi, vi = effects.log_or(*cells) if m == "OR" else effects.log_rr(*cells)
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
ENGINES = ("mcmc", "exact")
# a worker process pays its start (interpreter, numba's cached density, nutpie) once, about
# the time of this many fits: fewer analyses per worker than this and one process is faster
MIN_JOBS_PER_WORKER = 40
CHUNK = 8  # analyses per task sent to an executor


def _models() -> CompiledModels:
    global _WORKER_MODELS
    if _WORKER_MODELS is None:
        _WORKER_MODELS = CompiledModels()
    return _WORKER_MODELS


@dataclass(frozen=True)
class PoolResult:
    """One ad-hoc analysis: its name (``pool-many``) and the typed fit summary, or the exact
    summaries only (``engine="exact"``), or why it failed (``error``)."""

    name: str | None
    summary: FitSummary | None
    error: str | None = None
    exact_only: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        if self.error is not None:
            return False
        return self.exact_only is not None or (self.summary is not None and self.summary.ok)

    @property
    def reason(self) -> str | None:
        """Why the analysis failed (None when it did not)."""
        if self.error is not None:
            return self.error
        if self.summary is not None and not self.summary.ok:
            x = self.summary.exact_check
            return (
                f"exact check failed after re-sampling: {x.worst} off by {x.max_sd_discrepancy:.3g} "
                f"posterior SD ({x.max_z:.3g} MCSE)"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        """The ``pool --json`` object (with ``analysis`` first for ``pool-many``); a failed
        analysis adds ``error``."""
        head = {"analysis": self.name} if self.name is not None else {}
        if self.error is not None:
            return {**head, "error": self.error}
        if self.exact_only is not None:
            out = self.exact_only
        else:
            assert self.summary is not None  # a result without an error or exact-only part has a fit
            out = self.summary.to_dict()
        if self.reason is not None:
            out = {**out, "error": self.reason}
        return {**head, **out}


def _exact_only(job: Job) -> dict[str, Any]:
    """The exact posterior's summaries and the REML line, without sampling."""
    from peerevidence.stats.exact import summarise
    from peerevidence.stats.frequentist import random_effects
    from peerevidence.stats.summary import ExactSummary, RemlLine, Stat

    data = job.data
    post = data.exact_posterior(job.priors.mu, job.priors.tau)
    ex = summarise(post, list(data.labels), with_theta=False)
    y, v = data.adjusted()
    exact = ExactSummary(
        mu=Stat.from_json(ex["mu"]),
        tau=Stat.from_json(ex["tau"]),
        theta_new=Stat.from_json({**ex["theta_new"], "q50": None}),
        p_mu_gt_0=float(ex["p_mu_gt_0"]),
    )
    return {
        "k": data.k,
        "measure": data.measure,
        "engine": "exact",
        "exact": exact.to_json(),
        "reml": RemlLine.from_json(random_effects(y, v, "REML").summary()).to_json(),
        "priors": job.priors.as_dict(),
    }


def run_job(job: Job, engine: str = "mcmc") -> PoolResult:
    """Fit one job in this process. Never raises for a bad analysis: the fit re-samples an
    analysis that fails the exact check, and an error becomes the result's ``error``."""
    import warnings

    try:
        with warnings.catch_warnings():
            # overflow in the far tails of the exact quadrature's grid carries no information
            warnings.simplefilter("ignore", RuntimeWarning)
            if engine == "exact":
                return PoolResult(job.name, None, exact_only=_exact_only(job))
            result = fit(job.data, job.priors, job.sampler, _models(), job.tolerance_sd, job.tolerance_z)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as exc:
        return PoolResult(job.name, None, error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
    summary = result.summary
    if job.notes:
        summary = replace(summary, notes=(*job.notes, *summary.notes))
    return PoolResult(job.name, summary)


def run_jobs(jobs: list[Job], engine: str = "mcmc") -> list[PoolResult]:
    """Several jobs in one task (fewer round trips to an executor's workers)."""
    return [run_job(job, engine) for job in jobs]


def pool(
    frame: pd.DataFrame,
    *,
    measure: str | None = None,
    prior_mu: str = "normal:0:1",
    prior_tau: str = "halfnormal:0.5",
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    name: str = "<data frame>",
    columns: str | None = None,
) -> FitSummary:
    """Pool one table of studies with the Bayesian random-effects model.

    Parameters
    ----------
    frame : pandas.DataFrame
        A ``study`` column and either ``yi, vi``, binary ``ai, bi, ci, di`` (or
        ``ai, n1i, ci, n2i``) or continuous ``m1i, sd1i, n1i, m2i, sd2i, n2i`` columns, as
        in metafor's ``escalc``.
    measure : {"SMD", "MD", "OR", "RR", "HR", "GEN"}, optional
        The effect measure (default: GEN for yi/vi, SMD for means, OR for counts).
    prior_mu, prior_tau : str
        Prior specifications (see the README, "Priors").
    draws, chains, seed : int, optional
        Sampler settings (defaults from :class:`~peerevidence.records.schema.SamplerSettings`).
    name : str
        How errors name the input.
    columns : {"yi", "raw"}, optional
        Which columns to use when the frame has both ``yi, vi`` and raw columns.

    Returns
    -------
    FitSummary
        ``.to_dict()`` is the object ``peerevidence pool --json`` prints.

    Raises
    ------
    DataError, UsageError
        Bad columns, values or prior specifications, with a one-line message.
    """
    from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

    if measure is not None and measure not in MEASURES:
        raise DataError(f"{name}: measure {measure!r} is not known (accepted: {', '.join(MEASURES)})")
    priors = Priors(parse_mu_prior(prior_mu), parse_tau_prior(prior_tau))
    overrides = {k: v for k, v in (("draws", draws), ("chains", chains), ("seed", seed)) if v is not None}
    settings = SamplerSettings(**overrides)
    notes: list[str] = []
    data, _ = effects_from_frame(frame, measure, name, columns, notes)
    result = run_job(Job(None, data, priors, settings, notes=tuple(notes)))
    if result.summary is None:
        raise FitFailed(f"{name}: the fit failed: {result.error or result.reason}")
    return result.summary


def split_analyses(frame: pd.DataFrame, display: str) -> list[tuple[str, pd.DataFrame]]:
    if "analysis" not in frame.columns:
        raise DataError(f"{display}: missing column 'analysis' (pool-many needs analysis, study, ...)")
    groups = []
    for name, sub in frame.groupby("analysis", sort=True):
        if not str(name).strip():
            raise DataError(f"{display}: an 'analysis' value is empty")
        groups.append((str(name), sub))  # keeps the file's row numbers (index "row")
    if not groups:
        raise DataError(f"{display}: no analyses")
    return groups


def run_many(
    jobs: list[Job], executor: Executor | None = None, engine: str = "mcmc", chunk: int = CHUNK
) -> Iterator[PoolResult]:
    """Yield results in input order; ``executor`` may be any concurrent.futures Executor
    (a process pool, or a Dask ``Client.get_executor()``); jobs go to it ``chunk`` at a time."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not known (accepted: {', '.join(ENGINES)})")
    if executor is None:
        for job in jobs:
            yield run_job(job, engine)
        return
    futures: list[Future[list[PoolResult]]] = [
        executor.submit(run_jobs, jobs[i : i + chunk], engine) for i in range(0, len(jobs), chunk)
    ]
    for future in futures:
        yield from future.result()


def effective_workers(n_jobs: int, workers: int) -> int:
    """Worker processes worth starting for ``n_jobs`` analyses (never more than asked)."""
    return max(1, min(workers, n_jobs // MIN_JOBS_PER_WORKER))


def pool_many(
    jobs: list[Job], workers: int = 1, fmt: str = "jsonl", engine: str = "mcmc"
) -> tuple[str, list[PoolResult]]:
    """Run a batch to the end; return the output text (JSON lines or CSV) and the failed
    results (each with its ``reason``), in input order."""
    import csv
    import io
    import json
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from peerevidence.pooling.store import _jsonable

    n = effective_workers(len(jobs), workers)
    executor = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) if n > 1 else None
    chunk = max(1, min(CHUNK, len(jobs) // (4 * n) or 1))
    results: list[PoolResult] = []
    try:
        results = list(run_many(jobs, executor, engine, chunk))
    finally:
        if executor is not None:
            executor.shutdown()
    failed = [r for r in results if not r.ok]
    dicts = [_jsonable(r.to_dict()) for r in results]
    if fmt == "jsonl":
        return "".join(json.dumps(d) + "\n" for d in dicts), failed
    rows = [flatten(d) for d in dicts]
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return (buf.getvalue() if rows else ""), failed
