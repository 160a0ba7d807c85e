"""Subgroup analyses and meta-regression per outcome, Bayesian and REML side by side.

Declared per outcome in ``evidence/analysis.yaml``::

    outcomes:
      symptoms: {subgroups: [peer_format], moderators: [followup_months]}

A name is a record's ``covariates:`` key or one of the record fields ``design``,
``risk_of_bias`` (overall), ``country`` and ``timepoint_window`` (the result's timepoint,
placed in one of the outcome's ``timepoint_windows``). Studies without the value are left
out of that analysis and listed as ``missing``.

Bayesian model (:mod:`peerevidence.stats.metareg_bayes`): ``theta_i = x_i' beta + u_i``,
exact by quadrature over tau. The intercept's prior is the outcome's prior for mu (a flat
prior becomes normal:0:10); every other coefficient's prior is ``moderator_priors[name]``
or normal:0:1 (per unit of the covariate, or for a subgroup's difference from the reference
subgroup). tau keeps the outcome's prior. The frequentist line is metafor's
``rma(yi, vi, mods = ...)`` (REML; :mod:`peerevidence.stats.metareg`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from peerevidence.stats.metareg import design_matrix, meta_regression, subgroup_test
from peerevidence.stats.metareg_bayes import BetaPrior, exact_metareg

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult
    from peerevidence.records.schema import OutcomeAnalysis
    from peerevidence.stats.exact import ExactPosterior

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_COEF_PRIOR = "normal:0:1"
FLAT_INTERCEPT_PRIOR = "normal:0:10"
_TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(day|week|month|year)s?", re.IGNORECASE)
_PER_MONTH = {"day": 1 / 30.4375, "week": 7 / 30.4375, "month": 1.0, "year": 12.0}


def timepoint_months(text: str) -> float | None:
    """The first ``N days|weeks|months|years`` in a timepoint text, in months (else None)."""
    m = _TIME.search(text or "")
    return float(m.group(1)) * _PER_MONTH[m.group(2).lower()] if m else None


def moderator_values(result: RunResult, fit: AnalysisFit, name: str) -> tuple[list[object], list[str]]:
    """(one value per study of the fit, None where missing; the studies missing it)."""
    setting = result.base.analysis.outcomes.get(fit.analysis.outcome.id)
    values: list[object] = []
    for _, row in fit.analysis.rows.iterrows():
        loaded = result.base.records.get(row["study"])
        rec = loaded.record if loaded else None
        value: object = None
        if name == "design":
            value = row["design"]
        elif name == "risk_of_bias":
            value = row["rob"]
        elif name == "country":
            value = rec.country if rec else None
        elif name == "timepoint_window":
            months = timepoint_months(str(row["timepoint"]))
            windows = setting.timepoint_windows if setting else {}
            if months is not None:
                value = next((w for w, b in windows.items() if b.from_months <= months < b.to_months), None)
        elif rec is not None and name in rec.covariates:
            value = rec.covariates[name].value
        values.append(value)
    missing = [s for s, v in zip(fit.analysis.rows["study"], values, strict=True) if v is None]
    return values, missing


@dataclass(frozen=True)
class Interval:
    """A posterior (exact) summary and the REML line for one quantity."""

    q50: float
    q025: float
    q975: float
    p_gt_0: float
    reml: float
    reml_ci_lb: float
    reml_ci_ub: float


@dataclass(frozen=True)
class GroupEffect:
    group: str
    k: int
    studies: tuple[str, ...]
    effect: Interval  # REML column: the subgroup's own random-effects fit (metafor subset=)


@dataclass(frozen=True)
class GroupDifference:
    group: str
    reference: str
    difference: Interval  # group minus reference (common residual tau^2)
    p_abs_gt_mid: float  # P(|difference| > MID)


@dataclass(frozen=True)
class SubgroupAnalysis:
    outcome: str
    analysis: str
    moderator: str
    k: int
    groups: tuple[GroupEffect, ...]
    differences: tuple[GroupDifference, ...]
    qm: float  # REML test of subgroup differences
    qm_df: int
    qm_p: float
    tau2_residual: float
    tau_q50: float  # Bayesian residual tau, posterior median
    missing: tuple[str, ...]
    priors: tuple[str, ...]


@dataclass(frozen=True)
class Coefficient:
    name: str
    prior: str
    value: Interval
    reml_se: float
    reml_pval: float


@dataclass(frozen=True)
class ModeratorAnalysis:
    outcome: str
    analysis: str
    moderators: tuple[str, ...]
    k: int
    coefficients: tuple[Coefficient, ...]  # slopes per unit of a numeric moderator
    qm: float
    qm_df: int
    qm_p: float
    tau2_residual: float
    r2: float | None
    tau_q50: float
    missing: tuple[str, ...]
    # with one numeric moderator: the intercept and each study's (label, x, yi, vi), for a
    # bubble plot of effect against the moderator
    intercept: Interval | None = None
    points: tuple[tuple[str, float, float, float], ...] = ()


@dataclass(frozen=True)
class Skipped:
    outcome: str
    analysis: str
    what: str  # "subgroups: peer_format" or "moderators: a, b"
    reason: str
    missing: tuple[str, ...] = ()


def _priors(
    fit: AnalysisFit, names: tuple[str, ...], groups: dict[str, list[int]], setting: OutcomeAnalysis | None
) -> list[str]:
    mu = fit.analysis.priors.mu
    out = [mu.spec if mu.family == "normal" else FLAT_INTERCEPT_PRIOR]
    own = setting.moderator_priors if setting else {}
    for mod, cols in groups.items():
        out.extend([own.get(mod, DEFAULT_COEF_PRIOR)] * len(cols))
    if len(out) != len(names):  # pragma: no cover - design_matrix keeps them aligned
        raise AssertionError("priors and columns differ")
    return out


def _data(fit: AnalysisFit, keep: BoolArray) -> tuple[FloatArray, FloatArray]:
    y, v = fit.analysis.data.adjusted()
    return y[keep], v[keep]


def _interval(post: ExactPosterior, reml: float, lb: float, ub: float) -> Interval:
    s = post.mu()
    return Interval(s.q50, s.q025, s.q975, post.p_mu_gt(0.0), reml, lb, ub)


def subgroup_analysis(
    result: RunResult, fit: AnalysisFit, moderator: str, mid: float
) -> SubgroupAnalysis | Skipped:
    values, missing = moderator_values(result, fit, moderator)
    keep = np.array([v is not None for v in values])
    labels = [str(v) for v in values if v is not None]
    studies = [s for s, k in zip(fit.analysis.rows["study"], keep, strict=True) if k]
    what = f"subgroups: {moderator}"
    name, aname = fit.analysis.outcome.id, fit.analysis.name
    levels = sorted(set(labels))
    if len(levels) < 2:
        return Skipped(
            name, aname, what, f"{len(levels)} subgroup(s) among the studies with a value", tuple(missing)
        )
    if len(labels) <= len(levels):
        return Skipped(
            name,
            aname,
            what,
            f"{len(labels)} studies cannot estimate {len(levels)} subgroups and tau",
            tuple(missing),
        )
    y, v = _data(fit, keep)
    test = subgroup_test(y, v, labels, moderator)
    X, names, groups = design_matrix({moderator: labels}, [moderator])
    setting = result.base.analysis.outcomes.get(name)
    specs = _priors(fit, names, groups, setting)
    post = exact_metareg(y, v, X, BetaPrior.from_specs(specs), fit.analysis.priors.tau, names)
    p = len(names)

    def vec(level: str) -> FloatArray:
        c = np.zeros(p)
        c[0] = 1.0
        if level != levels[0]:
            c[names.index(f"{moderator}{level}")] = 1.0
        return c

    effects = []
    for g in test.groups:
        members = tuple(s for s, lab in zip(studies, labels, strict=True) if lab == g.group)
        effects.append(
            GroupEffect(g.group, g.k, members, _interval(post.marginal(vec(g.group)), g.mu, g.ci_lb, g.ci_ub))
        )
    diffs = []
    vc = np.array(test.model.vcov)
    beta = np.array(test.model.beta)
    from scipy import special

    z = float(special.ndtri(0.975))
    for a, b in combinations(levels, 2):
        c = vec(b) - vec(a)
        est = float(c @ beta)
        se = float(np.sqrt(c @ vc @ c))
        diffs.append(
            GroupDifference(
                b, a, _interval(post.marginal(c), est, est - z * se, est + z * se), post.p_abs_gt(c, mid)
            )
        )
    return SubgroupAnalysis(
        outcome=name,
        analysis=aname,
        moderator=moderator,
        k=len(labels),
        groups=tuple(effects),
        differences=tuple(diffs),
        qm=test.qm,
        qm_df=test.qm_df,
        qm_p=test.qm_p,
        tau2_residual=test.tau2_residual,
        tau_q50=post.marginal(vec(levels[0])).tau_summary().q50,
        missing=tuple(missing),
        priors=tuple(f"{n} ~ {s}" for n, s in zip(names, specs, strict=True)),
    )


def moderator_analysis(
    result: RunResult, fit: AnalysisFit, moderators: list[str]
) -> ModeratorAnalysis | Skipped:
    name, aname = fit.analysis.outcome.id, fit.analysis.name
    what = "moderators: " + ", ".join(moderators)
    columns, missing = {}, set()
    for m in moderators:
        values, miss = moderator_values(result, fit, m)
        columns[m] = values
        missing.update(miss)
    keep = np.array([s not in missing for s in fit.analysis.rows["study"]])
    covs = {m: [x for x, k in zip(vals, keep, strict=True) if k] for m, vals in columns.items()}
    k = int(keep.sum())
    try:
        X, names, groups = design_matrix(covs, moderators)
        y, v = _data(fit, keep)
        freq = meta_regression(y, v, X, names)
    except ValueError as exc:
        return Skipped(name, aname, what, str(exc), tuple(sorted(missing)))
    setting = result.base.analysis.outcomes.get(name)
    specs = _priors(fit, names, groups, setting)
    post = exact_metareg(y, v, X, BetaPrior.from_specs(specs), fit.analysis.priors.tau, names)
    coefs = []
    for j, (n, spec) in enumerate(zip(names, specs, strict=True)):
        if j == 0:
            continue
        coefs.append(
            Coefficient(
                n,
                spec,
                _interval(post.marginal(n), freq.beta[j], freq.ci_lb[j], freq.ci_ub[j]),
                freq.se[j],
                freq.pval[j],
            )
        )
    numeric = len(names) == 2 and len(moderators) == 1
    studies = [str(s) for s, kept in zip(fit.analysis.rows["study"], keep, strict=True) if kept]
    return ModeratorAnalysis(
        intercept=_interval(post.marginal(names[0]), freq.beta[0], freq.ci_lb[0], freq.ci_ub[0])
        if numeric
        else None,
        points=tuple((s, float(X[i, 1]), float(y[i]), float(v[i])) for i, s in enumerate(studies))
        if numeric
        else (),
        outcome=name,
        analysis=aname,
        moderators=tuple(moderators),
        k=k,
        coefficients=tuple(coefs),
        qm=freq.qm,
        qm_df=freq.qm_df,
        qm_p=freq.qm_p,
        tau2_residual=freq.tau2,
        r2=freq.r2,
        tau_q50=post.marginal(names[0]).tau_summary().q50,
        missing=tuple(sorted(missing)),
    )
