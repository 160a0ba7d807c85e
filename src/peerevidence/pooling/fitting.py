"""validate -> table -> analyses -> fits (cached) -> summaries; no printing here.

Each outcome with poolable rows gives up to two analyses:

* ``<outcome>``: every included study. For intervention-effect outcomes, studies of a design
  listed under ``design_bias`` in ``evidence/analysis.yaml`` enter with that design's bias
  term and variance inflation (:class:`~peerevidence.records.schema.BiasSetting`);
* ``<outcome>--randomised``: randomised studies only (rct, cluster_rct, pilot_rct), no bias
  terms; always reported beside the first. When both hold the same data they share one fit.

Association outcomes (observational by nature) are pooled without design-bias terms.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from peerevidence.errors import RecordError, ValidationFailed
from peerevidence.pooling.store import FitStore, digest, file_sha256, run_lock, versions, write_manifest
from peerevidence.pooling.table import evidence_table, pooling_data
from peerevidence.records.project import EvidenceBase
from peerevidence.records.rules import check
from peerevidence.records.schema import RANDOMISED_DESIGNS, AnalysisConfig, Outcome, SamplerSettings
from peerevidence.stats.model import MODEL_VERSION, CompiledModels, FitData, Priors, fit
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior
from peerevidence.stats.summary import FitSummary, Provenance

FloatArray = npt.NDArray[np.float64]

VARIANTS = ("all", "randomised")


@dataclass(frozen=True)
class Analysis:
    name: str
    outcome: Outcome
    variant: str
    data: FitData
    priors: Priors
    sampler: SamplerSettings
    rows: pd.DataFrame = field(repr=False, compare=False, hash=False)
    tolerance_sd: float
    tolerance_z: float

    def key(self) -> str:
        d = self.data
        return digest(
            {
                "model": MODEL_VERSION,
                "labels": list(d.labels),
                "yi": d.yi,
                "vi": d.vi,
                "bias_mean": d.bias_mean,
                "bias_var": d.bias_var,
                "inflation": d.inflation,
                "bias_group": d.bias_group,
                "group_var": d.group_var,
                "group_names": list(d.group_names),
                "priors": self.priors.as_dict(),
                "sampler": self.sampler.model_dump(),
                "tolerance": [self.tolerance_sd, self.tolerance_z],
                "versions": versions(),
            }
        )


@dataclass(frozen=True)
class AnalysisFit:
    """One planned analysis with its (new or reused) fit summary."""

    analysis: Analysis
    key: str
    reused: bool
    seconds: float
    summary: FitSummary

    @property
    def failed(self) -> bool:
        return not self.summary.ok


def derived_seed(seed: int, name: str) -> int:
    """A per-analysis seed: stable, independent of the order analyses are fitted in."""
    h = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(h[:4], "little") % (2**31 - 1)


def priors_for(outcome: Outcome, config: AnalysisConfig) -> Priors:
    own = config.outcomes.get(outcome.id)
    mu = (own.prior_mu if own and own.prior_mu else None) or config.prior_mu
    tau = (own.prior_tau if own and own.prior_tau else None) or config.prior_tau
    return Priors(parse_mu_prior(mu), parse_tau_prior(tau))


@dataclass(frozen=True)
class BiasTerms:
    """Per-study bias terms of one analysis (all None when no study has any)."""

    mean: np.ndarray | None = None
    study_var: np.ndarray | None = None
    inflation: np.ndarray | None = None
    group: np.ndarray | None = None
    group_var: np.ndarray | None = None
    group_names: tuple[str, ...] = ()


def bias_terms(rows: pd.DataFrame, config: AnalysisConfig, apply: bool, measure: str) -> BiasTerms:
    """The design-bias terms from the table for the outcome's scale: every study of a design
    in the table shares that design's bias (one group per design present)."""
    table = config.design_bias.table(measure) if apply else {}
    if not table:
        return BiasTerms()
    designs = list(rows["design"])
    present = sorted({d for d in designs if d in table and table[d].sd > 0})
    index = {d: i for i, d in enumerate(present)}
    mean = np.array([table[d].mean if d in table else 0.0 for d in designs])
    study_var = np.array([table[d].study_sd ** 2 if d in table else 0.0 for d in designs])
    inflation = np.array([table[d].inflation if d in table else 1.0 for d in designs])
    group = np.array([index.get(d, -1) for d in designs], dtype=int)
    if not any(mean) and not any(study_var) and np.all(inflation == 1.0) and not present:
        return BiasTerms()
    return BiasTerms(
        mean=mean,
        study_var=study_var,
        inflation=inflation,
        group=group if present else None,
        group_var=np.array([table[d].sd ** 2 for d in present]) if present else None,
        group_names=tuple(present),
    )


def plan(
    base: EvidenceBase, table: pd.DataFrame, sampler: SamplerSettings, outcomes: list[str] | None = None
) -> list[Analysis]:
    """The analyses to fit, sorted by name."""
    config = base.analysis
    analyses: list[Analysis] = []
    catalogue = {o.id: o for o in base.outcomes.outcomes} if base.outcomes else {}
    for oid in sorted(catalogue):
        if outcomes and oid not in outcomes:
            continue
        outcome = catalogue[oid]
        rows = pooling_data(table, oid)
        if rows.empty:
            continue
        priors = priors_for(outcome, config)
        for variant in VARIANTS:
            sub = rows if variant == "all" else rows[rows["design"].isin(RANDOMISED_DESIGNS)]
            if sub.empty:
                continue
            sub = sub.reset_index(drop=True)
            apply_bias = variant == "all" and outcome.kind == "intervention_effect"
            bias = bias_terms(sub, config, apply_bias, outcome.measure)
            name = oid if variant == "all" else f"{oid}--{variant}"
            data = FitData(
                labels=tuple(sub["study"]),
                yi=sub["yi"].to_numpy(float),
                vi=sub["vi"].to_numpy(float),
                bias_mean=bias.mean,
                bias_var=bias.study_var,
                inflation=bias.inflation,
                measure=outcome.measure,
                bias_group=bias.group,
                group_var=bias.group_var,
                group_names=bias.group_names,
            )
            settings = sampler.model_copy(update={"seed": derived_seed(sampler.seed, oid)})
            analyses.append(
                Analysis(
                    name,
                    outcome,
                    variant,
                    data,
                    priors,
                    settings,
                    sub,
                    config.tolerance_sd,
                    config.tolerance_z,
                )
            )
    return analyses


def input_hashes(base: EvidenceBase) -> dict[str, str]:
    paths = base.paths
    files = [
        paths.bib,
        paths.change_model,
        paths.outcomes,
        paths.analysis,
        paths.certainty,
        *paths.record_files(),
    ]
    return {paths.rel(p): file_sha256(p) for p in files if p.exists()}


Progress = Callable[[str, str, float], None]


def fit_analyses(
    base: EvidenceBase,
    analyses: list[Analysis],
    force: bool = False,
    models: CompiledModels | None = None,
    progress: Progress | None = None,
) -> list[AnalysisFit]:
    """Fit (or reuse) every analysis; write fits, links and summaries atomically."""
    store = FitStore(base.paths.reports)
    models = models or CompiledModels()
    done: dict[str, AnalysisFit] = {}
    results = []
    for analysis in analyses:
        key = analysis.key()
        start = time.perf_counter()
        if key in done:
            summary, reused = done[key].summary, True
        elif store.has(key) and not force:
            summary, reused = store.load_summary(key), True
        else:
            if progress:
                progress(analysis.name, "fitting", 0.0)
            result = fit(
                analysis.data,
                analysis.priors,
                analysis.sampler,
                models,
                analysis.tolerance_sd,
                analysis.tolerance_z,
            )
            summary = result.summary.with_provenance(
                Provenance(
                    key=key,
                    model_version=MODEL_VERSION,
                    sampler=analysis.sampler.model_dump(),
                    versions=versions(),
                    data={
                        "study": list(analysis.data.labels),
                        "yi": [float(x) for x in analysis.data.yi],
                        "vi": [float(x) for x in analysis.data.vi],
                        "design": list(analysis.rows["design"]),
                    },
                )
            )
            store.save(key, result.idata, summary)
            reused = False
        store.link(key, analysis.name)
        seconds = time.perf_counter() - start
        fitted = AnalysisFit(analysis, key, reused, seconds, summary)
        done.setdefault(key, fitted)
        results.append(fitted)
        if progress:
            progress(analysis.name, "reused" if reused else "fitted", seconds)
    return results


SUMMARY_COLUMNS = [
    "analysis",
    "outcome",
    "variant",
    "measure",
    "k",
    "n",
    "designs",
    "mu_mean",
    "mu_sd",
    "mu_q025",
    "mu_q50",
    "mu_q975",
    "tau_q025",
    "tau_q50",
    "tau_q975",
    "theta_new_q025",
    "theta_new_q975",
    "p_benefit",
    "reml_mu",
    "reml_se",
    "reml_ci_lb",
    "reml_ci_ub",
    "reml_tau2",
    "reml_i2",
    "reml_pi_lb",
    "reml_pi_ub",
    "rhat_max",
    "ess_bulk_min",
    "ess_tail_min",
    "divergences",
    "exact_max_sd_discrepancy",
    "exact_max_z",
    "exact_ok",
    "prior_mu",
    "prior_tau",
    "seed",
    "key",
    "reused",
]


def summary_rows(fits: list[AnalysisFit]) -> pd.DataFrame:
    """One row per analysis: the columns of ``summary.csv`` (:data:`SUMMARY_COLUMNS`)."""
    rows = []
    for f in fits:
        s, a = f.summary, f.analysis
        d, x = s.diagnostics, s.exact_check
        rows.append(
            {
                "analysis": a.name,
                "outcome": a.outcome.id,
                "variant": a.variant,
                "measure": a.outcome.measure,
                "k": s.k,
                "n": float(np.nansum(a.rows["n"].to_numpy(float))),
                "designs": ";".join(sorted(set(a.rows["design"]))),
                "mu_mean": s.mu.mean,
                "mu_sd": s.mu.sd,
                "mu_q025": s.mu.q025,
                "mu_q50": s.mu.q50,
                "mu_q975": s.mu.q975,
                "tau_q025": s.tau.q025,
                "tau_q50": s.tau.q50,
                "tau_q975": s.tau.q975,
                "theta_new_q025": s.theta_new.q025,
                "theta_new_q975": s.theta_new.q975,
                "p_benefit": s.p_mu_gt_0,
                "reml_mu": s.reml.mu,
                "reml_se": s.reml.se,
                "reml_ci_lb": s.reml.ci_lb,
                "reml_ci_ub": s.reml.ci_ub,
                "reml_tau2": s.reml.tau2,
                "reml_i2": s.reml.i2,
                "reml_pi_lb": s.reml.pi_lb,
                "reml_pi_ub": s.reml.pi_ub,
                "rhat_max": d.rhat_max,
                "ess_bulk_min": d.ess_bulk_min,
                "ess_tail_min": d.ess_tail_min,
                "divergences": d.divergences,
                "exact_max_sd_discrepancy": x.max_sd_discrepancy,
                "exact_max_z": x.max_z,
                "exact_ok": x.ok,
                "prior_mu": s.priors["mu"],
                "prior_tau": s.priors["tau"],
                "seed": a.sampler.seed,
                "key": f.key,
                "reused": f.reused,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


@dataclass
class RunResult:
    base: EvidenceBase
    table: pd.DataFrame
    fits: list[AnalysisFit]
    manifest: dict[str, Any]

    @property
    def failed(self) -> list[AnalysisFit]:
        return [f for f in self.fits if f.failed]


def load_valid(root: str | Path) -> tuple[EvidenceBase, list[RecordError]]:
    """Load and validate; raise ValidationFailed (every error) if the project is invalid."""
    from peerevidence.records.project import load_project

    base, load_errors = load_project(root)
    report = check(base, load_errors)
    if report.errors:
        raise ValidationFailed(report.errors)
    return base, report.warnings


def check_outcomes(base: EvidenceBase, outcomes: list[str] | None) -> None:
    """Refuse outcome ids the project does not define (a usage error, with did-you-mean)."""
    import difflib

    from peerevidence.errors import UsageError

    known = sorted(o.id for o in base.outcomes.outcomes) if base.outcomes else []
    for oid in outcomes or []:
        if oid not in known:
            close = difflib.get_close_matches(oid, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UsageError(
                f"--outcome {oid}: not an outcome of evidence/outcomes.yaml ({hint}accepted: {', '.join(known)})"
            )


def fit_project(
    base: EvidenceBase,
    sampler_overrides: dict[str, Any] | None = None,
    outcomes: list[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    models: CompiledModels | None = None,
) -> RunResult:
    """table -> plan -> fit (cached) for a validated project; writes fits/, summary.csv,
    summary.json and manifest.json. The caller holds the run lock.

    With ``outcomes``, only their analyses are (re)fitted; every other analysis whose stored
    fit is current is kept, so the summaries and the manifest always cover the whole project.
    """
    from peerevidence.atomic import write_csv, write_text
    from peerevidence.pooling.store import dumps

    check_outcomes(base, outcomes)
    sampler = base.analysis.sampler.model_copy(update=sampler_overrides or {})
    table = evidence_table(base)
    analyses = plan(base, table, sampler)
    store = FitStore(base.paths.reports)
    store.sweep()
    chosen = [a for a in analyses if not outcomes or a.outcome.id in outcomes]
    if progress:
        progress("", "total", float(len(chosen)))
    fitted = {f.analysis.name: f for f in fit_analyses(base, chosen, force, models, progress)}
    fits = []
    for analysis in analyses:
        if analysis.name in fitted:
            fits.append(fitted[analysis.name])
        elif store.has(key := analysis.key()):
            fits.append(AnalysisFit(analysis, key, True, 0.0, store.load_summary(key)))
    reports = base.paths.reports
    summary = summary_rows(fits)
    write_csv(reports / "summary.csv", summary, index=False, float_format="%.10g")
    write_text(
        reports / "summary.json",
        dumps(
            {f.analysis.name: {k: v for k, v in f.summary.to_json().items() if k != "versions"} for f in fits}
        ),
    )
    manifest = {
        "inputs": input_hashes(base),
        "versions": versions(),
        "sampler": sampler.model_dump(),
        "analyses": {
            f.analysis.name: {
                "key": f.key,
                "reused": f.reused,
                "seconds": round(f.seconds, 3),
                "seed": f.analysis.sampler.seed,
                "outcome": f.analysis.outcome.id,
                "variant": f.analysis.variant,
                "studies": list(f.analysis.data.labels),
                "k": f.summary.k,
                "mu": f.summary.mu.to_json(),
                "p_mu_gt_0": f.summary.p_mu_gt_0,
                "exact_ok": f.summary.ok,
            }
            for f in sorted(fits, key=lambda f: f.analysis.name)
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_manifest(reports, manifest)
    return RunResult(base, table, fits, manifest)


def run_fits(
    root: Path,
    sampler_overrides: dict[str, Any] | None = None,
    outcomes: list[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    models: CompiledModels | None = None,
    base: EvidenceBase | None = None,
) -> RunResult:
    """validate -> :func:`fit_project`, holding the run lock."""
    if base is None:
        base, _ = load_valid(root)
    with run_lock(base.paths.reports):
        return fit_project(base, sampler_overrides, outcomes, force, progress, models)


def load_fits(
    root: str | Path, sampler_overrides: dict[str, Any] | None = None, outcomes: list[str] | None = None
) -> RunResult:
    """The current fits of a project, read from the store without sampling.

    Raises DataError naming the first analysis whose fit is missing or out of date (the
    records, priors or settings changed since the last ``peerevidence fit``).
    """
    from peerevidence.errors import DataError
    from peerevidence.pooling.store import read_manifest

    base, _ = load_valid(root)
    sampler = base.analysis.sampler.model_copy(update=sampler_overrides or {})
    table = evidence_table(base)
    store = FitStore(base.paths.reports)
    fits = []
    for analysis in plan(base, table, sampler, outcomes):
        key = analysis.key()
        if not store.has(key):
            raise DataError(
                f"{base.paths.rel(base.paths.reports)}/fits: no current fit for '{analysis.name}' "
                "(inputs changed or never fitted); run `peerevidence fit` or `peerevidence run`"
            )
        fits.append(AnalysisFit(analysis, key, True, 0.0, store.load_summary(key)))
    manifest = read_manifest(base.paths.reports / "manifest.json") or {}
    return RunResult(base, table, fits, manifest)
