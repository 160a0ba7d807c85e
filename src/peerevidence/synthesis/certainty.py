"""GRADE-style certainty (guyatt2011) per outcome and per change-model edge.

Start high for randomised evidence, low for non-randomised; rate down for risk of bias,
inconsistency, imprecision, indirectness and, when k >= 10, small-study effects (Egger's
test); each step carries its reason. A reviewer's override in ``evidence/certainty.yaml`` is
shown beside the computed rating.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from peerevidence.records.schema import RANDOMISED_DESIGNS, CertaintyOverride
from peerevidence.stats.frequentist import random_effects
from peerevidence.synthesis.types import LEVELS, Certainty, Downgrade, EdgeCertainty

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult
    from peerevidence.stats.summary import FitSummary

OIS_PARTICIPANTS = 400  # optimal information size, GRADE rule of thumb (continuous outcomes)
RISK_CONCERN = frozenset({"high", "unclear", "not_assessed"})
DEFAULT_MID = 0.2

FloatArray = npt.NDArray[np.float64]


def main_fits(result: RunResult) -> dict[str, AnalysisFit]:
    """The all-designs fit of each outcome, by outcome id."""
    return {f.analysis.outcome.id: f for f in result.fits if f.analysis.variant == "all"}


def _weights(fit: AnalysisFit) -> FloatArray:
    """REML inverse-variance weights of the studies in a fit (on the bias-adjusted data)."""
    y, v = fit.analysis.data.adjusted()
    tau2 = random_effects(y, v, "REML").tau2
    w: FloatArray = 1.0 / (v + tau2)
    share: FloatArray = w / w.sum()
    return share


def egger_p(y: FloatArray, v: FloatArray) -> float:
    """Egger's regression test: regress y/se on 1/se (OLS); two-sided p of the intercept."""
    se = np.sqrt(v)
    z, prec = y / se, 1.0 / se
    k = y.size
    x = np.column_stack([np.ones(k), prec])
    beta, *_ = np.linalg.lstsq(x, z, rcond=None)
    resid = z - x @ beta
    s2 = float(resid @ resid) / (k - 2)
    cov = s2 * np.linalg.inv(x.T @ x)
    t = beta[0] / math.sqrt(cov[0, 0])
    return float(2 * special.stdtr(k - 2, -abs(t)))


def _step_risk_of_bias(rows: pd.DataFrame, w: FloatArray) -> Downgrade:
    """At most one level automatically; a reviewer may override to two (evidence/certainty.yaml)."""
    rob = rows["rob"].tolist()
    high = float(sum(wi for wi, r in zip(w, rob, strict=True) if r == "high"))
    concern = float(sum(wi for wi, r in zip(w, rob, strict=True) if r in RISK_CONCERN))
    detail = f"{high:.0%} of the weight from studies at high risk of bias, {concern:.0%} at high, unclear or unassessed risk"
    if concern >= 0.5:
        return Downgrade("risk_of_bias", 1, f"serious: {detail}")
    return Downgrade("risk_of_bias", 0, f"not serious: {detail}")


def _step_inconsistency(summary: FitSummary) -> Downgrade:
    k = summary.k
    if k < 2:
        return Downgrade("inconsistency", 0, "not assessable with a single study")
    i2 = summary.reml.i2 or 0.0
    mu, reml = summary.mu, summary.reml
    levels, why = 0, [f"I² = {i2:.0f}% (REML)", f"tau median {summary.tau.q50:.2f}"]
    if i2 >= 50:
        levels += 1
    if i2 >= 75:
        levels += 1
    excludes_zero = mu.q025 > 0 or mu.q975 < 0
    # the REML prediction interval reflects observed heterogeneity only (the Bayesian one
    # also carries the prior's uncertainty about tau, which is not inconsistency)
    pi_crosses = reml.pi_lb < 0 < reml.pi_ub and (reml.tau2 or 0.0) > 0
    if levels == 0 and k >= 3 and excludes_zero and pi_crosses:
        levels = 1
        why.append(
            "the REML 95% prediction interval includes no effect though the credible interval does not"
        )
    label = {0: "not serious", 1: "serious", 2: "very serious"}[levels]
    return Downgrade("inconsistency", levels, f"{label}: " + "; ".join(why))


def _step_imprecision(summary: FitSummary, n_total: float, mid: float) -> Downgrade:
    """Judged on the 95% credible interval of mu; with one or two studies on the data's own
    interval (the REML 95% CI, for one study the study's CI), since the data cannot inform
    tau and the CrI's extra width is the tau prior's, not imprecision of the data."""
    lo, hi = summary.mu.q025, summary.mu.q975
    interval = f"95% CrI {lo:.2f} to {hi:.2f} (MID {mid:g})"
    reml = summary.reml
    if summary.k <= 2 and reml.ci_lb is not None and reml.ci_ub is not None:
        lo, hi = reml.ci_lb, reml.ci_ub
        whose = "the study's" if summary.k == 1 else "the REML"
        interval = (
            f"{whose} 95% CI {lo:.2f} to {hi:.2f} (MID {mid:g}; judged on the data, not on the "
            f"95% CrI {summary.mu.q025:.2f} to {summary.mu.q975:.2f}, which the tau prior widens when k = {summary.k})"
        )
    if lo < -mid and hi > mid:
        return Downgrade(
            "imprecision", 2, f"very serious: {interval} includes important effects in both directions"
        )
    reasons = []
    if lo < 0 < hi:
        reasons.append(f"{interval} includes no effect")
    if n_total < OIS_PARTICIPANTS:
        reasons.append(f"{n_total:.0f} participants, below an optimal information size of {OIS_PARTICIPANTS}")
    if reasons:
        return Downgrade("imprecision", 1, "serious: " + "; ".join(reasons))
    return Downgrade("imprecision", 0, f"not serious: {interval}; {n_total:.0f} participants")


def _step_indirectness(rows: pd.DataFrame, w: FloatArray) -> Downgrade:
    flags = rows["indirect"].fillna("").astype(str).tolist()
    share = float(sum(wi for wi, f in zip(w, flags, strict=True) if f.strip()))
    named = sorted({f"{s}: {f}" for s, f in zip(rows["study"], flags, strict=True) if f.strip()})
    if share >= 0.5:
        return Downgrade(
            "indirectness", 1, f"serious: {share:.0%} of the weight flagged indirect ({'; '.join(named)})"
        )
    if named:
        return Downgrade(
            "indirectness", 0, f"not serious: {share:.0%} of the weight flagged indirect ({'; '.join(named)})"
        )
    return Downgrade("indirectness", 0, "not serious: no study flagged as indirect")


def _step_small_studies(fit: AnalysisFit) -> Downgrade:
    k = fit.summary.k
    if k < 10:
        return Downgrade("publication_bias", 0, f"not assessed: small-study effects need k >= 10 (k = {k})")
    y, v = fit.analysis.data.adjusted()
    p = egger_p(y, v)
    if p < 0.10:
        return Downgrade("publication_bias", 1, f"suspected: Egger's test p = {p:.3f}")
    return Downgrade("publication_bias", 0, f"not detected: Egger's test p = {p:.3f}")


def certainty_of(fit: AnalysisFit, mid: float, override: CertaintyOverride | None = None) -> Certainty:
    outcome = fit.analysis.outcome
    rows = fit.analysis.rows
    designs = set(rows["design"])
    if outcome.kind == "association":
        start, why = "low", "observational association studies"
    elif designs <= RANDOMISED_DESIGNS:
        start, why = "high", "randomised trials"
    else:
        start, why = "low", "includes non-randomised studies (see the randomised-only analysis)"
    w = _weights(fit)
    n_total = float(np.nansum(rows["n"].to_numpy(float)))
    steps = (
        _step_risk_of_bias(rows, w),
        _step_inconsistency(fit.summary),
        _step_imprecision(fit.summary, n_total, mid),
        _step_indirectness(rows, w),
        _step_small_studies(fit),
    )
    level = LEVELS.index(start) - sum(s.levels for s in steps)
    rating = LEVELS[max(level, 0)]
    start_step = Downgrade("start", 0, f"start {start}: {why}")
    return Certainty(
        outcome=outcome.id,
        start=start,
        steps=(start_step, *steps),
        rating=rating,
        override=override.rating if override else None,
        override_reason=override.reason if override else None,
        override_by=f"{override.by}, {override.date}" if override else None,
    )


def certainty(result: RunResult) -> dict[str, Certainty]:
    config = result.base.analysis
    overrides = {o.outcome: o for o in result.base.certainty.overrides}
    out = {}
    for oid, fit in sorted(main_fits(result).items()):
        own = config.outcomes.get(oid)
        mid = own.mid if own and own.mid else DEFAULT_MID
        out[oid] = certainty_of(fit, mid, overrides.get(oid))
    return out


def edge_certainty(result: RunResult, ratings: dict[str, Certainty]) -> dict[str, EdgeCertainty]:
    cm = result.base.change_model
    catalogue = result.base.outcomes.outcomes if result.base.outcomes else []
    out = {}
    for edge in cm.edges if cm else []:
        with_data = tuple(sorted(o.id for o in catalogue if edge.id in o.edges and o.id in ratings))
        if with_data:
            best = max((ratings[o].final for o in with_data), key=LEVELS.index)
            out[edge.id] = EdgeCertainty(edge.id, "quantitative", best, with_data)
        elif "qualitative_data" in edge.basis or edge.quotes:
            out[edge.id] = EdgeCertainty(edge.id, "qualitative_only", None, ())
        else:
            out[edge.id] = EdgeCertainty(edge.id, "none", None, ())
    return out
