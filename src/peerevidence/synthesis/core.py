"""What the evidence adds up to: certainty per outcome and edge, prior sensitivity, effects
along change-model paths, and the evidence gaps. Plain data for the report; no PyMC here.

* :func:`certainty` — GRADE-style (guyatt2011): start high for randomised evidence, low for
  non-randomised; rate down for risk of bias, inconsistency, imprecision, indirectness and,
  when k >= 10, small-study effects (Egger's test); each step carries its reason. A reviewer's
  override in ``evidence/certainty.yaml`` is shown beside the computed rating.
* :func:`sensitivity` — every outcome re-analysed by exact quadrature under a grid of
  heterogeneity priors (half-normal 0.25/0.5/1, half-Cauchy 0.5, the Turner 2015 or Rhodes
  2015 empirical prior) and two priors for mu; flags outcomes whose conclusion flips.
* :func:`path_effects` — exploratory: implied downstream effects of peer support through a
  process outcome, propagating posterior draws through both links with stated assumptions.
* :func:`gaps` — edges and outcomes without quantitative evidence, or resting on one study.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEVELS = ("very_low", "low", "moderate", "high")


@dataclass(frozen=True)
class Downgrade:
    domain: str  # risk_of_bias | inconsistency | imprecision | indirectness | publication_bias
    levels: int  # 0 (not rated down), 1 or 2
    reason: str  # always filled, also when not rated down ("why not")


@dataclass(frozen=True)
class Certainty:
    outcome: str
    start: str  # "high" (randomised) or "low" (non-randomised)
    steps: tuple[Downgrade, ...]
    rating: str  # one of LEVELS, computed
    override: str | None = None  # reviewer's rating from evidence/certainty.yaml
    override_reason: str | None = None
    override_by: str | None = None

    @property
    def final(self) -> str:
        return self.override or self.rating


@dataclass(frozen=True)
class EdgeCertainty:
    edge: str
    status: str  # "quantitative" | "qualitative_only" | "none"
    rating: str | None  # best final rating among the edge's outcomes with data
    outcomes: tuple[str, ...]  # outcomes with pooled data on this edge


@dataclass(frozen=True)
class SensitivityRow:
    prior_mu: str
    prior_tau: str
    mu_q50: float
    mu_q025: float
    mu_q975: float
    tau_q50: float
    p_benefit: float
    is_default: bool


@dataclass(frozen=True)
class Sensitivity:
    analysis: str
    rows: tuple[SensitivityRow, ...]
    flips: tuple[str, ...]  # human-readable reasons the conclusion changes; empty = robust


@dataclass(frozen=True)
class PathEffect:
    path: tuple[str, ...]  # node ids: intervention -> process outcome -> downstream
    edges: tuple[str, ...]  # edge ids along the path (may include extensions)
    first: str  # intervention-effect outcome id (e.g. social_functioning)
    second: str  # association outcome id (e.g. social_functioning_admission)
    scale: str  # "HR" or "OR": the implied effect's natural scale
    median: float  # implied ratio, peer support vs control
    q025: float
    q975: float
    p_benefit: float  # P(implied ratio < 1)
    assumptions: tuple[str, ...]
    caveat: str


@dataclass(frozen=True)
class Gaps:
    edges_without_quantitative: tuple[str, ...]
    edges_qualitative_only: tuple[str, ...]
    outcomes_without_data: tuple[str, ...]
    outcomes_single_study: tuple[str, ...]


@dataclass
class Synthesis:
    certainty: dict[str, Certainty] = field(default_factory=dict)  # by outcome id
    edges: dict[str, EdgeCertainty] = field(default_factory=dict)  # by edge id
    sensitivity: dict[str, Sensitivity] = field(default_factory=dict)  # by analysis name
    paths: list[PathEffect] = field(default_factory=list)
    gaps: Gaps | None = None


# =============================================================================== computing

import json  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy import special  # noqa: E402

from peerevidence.stats.exact import exact_posterior  # noqa: E402
from peerevidence.stats.frequentist import random_effects  # noqa: E402
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import FitOutcome, RunResult
    from peerevidence.records.schema import Outcome

RANDOMISED = frozenset({"rct", "cluster_rct", "pilot_rct"})
OIS_PARTICIPANTS = 400  # optimal information size, GRADE rule of thumb (continuous outcomes)
RISK_CONCERN = frozenset({"high", "unclear", "not_assessed"})
CAVEAT = (
    'Gillard et al. 2015 on these downstream links: "Our tentative efforts to model the impact '
    "of peer workers on downstream outcomes were not derived directly from our study data and "
    'are likely to prove simplistic." (L231)'
)


def _main_fits(result: RunResult) -> dict[str, FitOutcome]:
    return {f.analysis.outcome.id: f for f in result.fits if f.analysis.variant == "all"}


def _weights(fit: FitOutcome) -> np.ndarray:
    """REML inverse-variance weights of the studies in a fit (on the bias-adjusted data)."""
    y, v = fit.analysis.data.adjusted()
    tau2 = random_effects(y, v, "REML").tau2
    w = 1.0 / (v + tau2)
    return w / w.sum()


def egger_p(y: np.ndarray, v: np.ndarray) -> float:
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


def _step_risk_of_bias(rows, w) -> Downgrade:
    """At most one level automatically; a reviewer may override to two (evidence/certainty.yaml)."""
    rob = rows["rob"].tolist()
    high = float(sum(wi for wi, r in zip(w, rob, strict=True) if r == "high"))
    concern = float(sum(wi for wi, r in zip(w, rob, strict=True) if r in RISK_CONCERN))
    detail = f"{high:.0%} of the weight from studies at high risk of bias, {concern:.0%} at high, unclear or unassessed risk"
    if concern >= 0.5:
        return Downgrade("risk_of_bias", 1, f"serious: {detail}")
    return Downgrade("risk_of_bias", 0, f"not serious: {detail}")


def _step_inconsistency(summary: dict[str, Any]) -> Downgrade:
    k = summary["k"]
    if k < 2:
        return Downgrade("inconsistency", 0, "not assessable with a single study")
    i2 = summary["reml"]["i2"] or 0.0
    mu, reml = summary["mu"], summary["reml"]
    levels, why = 0, [f"I² = {i2:.0f}% (REML)", f"tau median {summary['tau']['q50']:.2f}"]
    if i2 >= 50:
        levels += 1
    if i2 >= 75:
        levels += 1
    excludes_zero = mu["q025"] > 0 or mu["q975"] < 0
    # the REML prediction interval reflects observed heterogeneity only (the Bayesian one
    # also carries the prior's uncertainty about tau, which is not inconsistency)
    pi_crosses = reml["pi_lb"] < 0 < reml["pi_ub"] and (reml.get("tau2") or 0.0) > 0
    if levels == 0 and k >= 3 and excludes_zero and pi_crosses:
        levels = 1
        why.append(
            "the REML 95% prediction interval includes no effect though the credible interval does not"
        )
    label = {0: "not serious", 1: "serious", 2: "very serious"}[levels]
    return Downgrade("inconsistency", levels, f"{label}: " + "; ".join(why))


def _step_imprecision(summary: dict[str, Any], n_total: float, mid: float) -> Downgrade:
    lo, hi = summary["mu"]["q025"], summary["mu"]["q975"]
    interval = f"95% CrI {lo:.2f} to {hi:.2f} (MID {mid:g})"
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


def _step_indirectness(rows, w) -> Downgrade:
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


def _step_small_studies(fit: FitOutcome) -> Downgrade:
    k = fit.summary["k"]
    if k < 10:
        return Downgrade("publication_bias", 0, f"not assessed: small-study effects need k >= 10 (k = {k})")
    y, v = fit.analysis.data.adjusted()
    p = egger_p(y, v)
    if p < 0.10:
        return Downgrade("publication_bias", 1, f"suspected: Egger's test p = {p:.3f}")
    return Downgrade("publication_bias", 0, f"not detected: Egger's test p = {p:.3f}")


def certainty_of(fit: FitOutcome, mid: float, override=None) -> Certainty:
    outcome = fit.analysis.outcome
    rows = fit.analysis.rows
    designs = set(rows["design"])
    if outcome.kind == "association":
        start, why = "low", "observational association studies"
    elif designs <= RANDOMISED:
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
    for oid, fit in sorted(_main_fits(result).items()):
        own = config.outcomes.get(oid)
        mid = own.mid if own and own.mid else 0.2
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


def empirical_prior_for(outcome: Outcome, config) -> str | None:
    own = config.outcomes.get(outcome.id)
    if own and own.empirical_prior:
        return own.empirical_prior
    return {
        "SMD": "rhodes2015:mental_health",
        "logOR": "turner2015:mental_health",
        "logRR": "turner2015:mental_health",
        "logHR": "turner2015:mental_health",
    }.get(outcome.measure)


def _grid(fit: FitOutcome, config) -> list[tuple[str, str]]:
    default_mu, default_tau = fit.summary["priors"]["mu"], fit.summary["priors"]["tau"]
    taus = [default_tau, *config.sensitivity_tau]
    emp = empirical_prior_for(fit.analysis.outcome, config)
    if emp:
        taus.append(emp)
    mus = [default_mu, *config.sensitivity_mu]
    seen, grid = set(), []
    for mu in mus:
        for tau in taus:
            if (mu, tau) not in seen:
                seen.add((mu, tau))
                grid.append((mu, tau))
    return grid


def _sensitivity_rows(fit: FitOutcome, grid, cache_dir: Path | None) -> list[SensitivityRow]:
    from peerevidence.pooling.store import digest, dumps

    y, v = fit.analysis.data.adjusted()
    key = digest({"y": y, "v": v, "grid": grid, "version": 1})
    path = cache_dir / f"{key}.json" if cache_dir else None
    if path is not None and path.exists():
        raw = json.loads(path.read_text("utf-8"))
    else:
        raw = []
        for mu, tau in grid:
            post = exact_posterior(y, v, parse_mu_prior(mu), parse_tau_prior(tau))
            m, t = post.mu(), post.tau_summary()
            raw.append(
                {
                    "prior_mu": mu,
                    "prior_tau": tau,
                    "mu_q50": m.q50,
                    "mu_q025": m.q025,
                    "mu_q975": m.q975,
                    "tau_q50": t.q50,
                    "p_benefit": post.p_mu_gt(0.0),
                }
            )
        if path is not None:
            from peerevidence.atomic import write_text

            write_text(path, dumps(raw))
    default = grid[0]
    return [SensitivityRow(**r, is_default=(r["prior_mu"], r["prior_tau"]) == default) for r in raw]


def _flips(rows: list[SensitivityRow]) -> tuple[str, ...]:
    base = next(r for r in rows if r.is_default)
    base_prob = base.p_benefit >= 0.95
    base_excl = base.mu_q025 > 0 or base.mu_q975 < 0
    out = []
    for r in rows:
        if r.is_default:
            continue
        label = f"{r.prior_mu}, {r.prior_tau}"
        if (r.p_benefit >= 0.95) != base_prob:
            out.append(f"P(benefit) {base.p_benefit:.2f} -> {r.p_benefit:.2f} (crosses 0.95) under {label}")
        if (r.mu_q025 > 0 or r.mu_q975 < 0) != base_excl:
            state = "excludes" if not base_excl else "includes"
            out.append(f"the 95% interval {state} no effect under {label}, unlike the default")
    return tuple(out)


def sensitivity(result: RunResult) -> dict[str, Sensitivity]:
    cache_dir = result.base.paths.reports / "fits" / "sensitivity"
    out = {}
    for fit in sorted(_main_fits(result).values(), key=lambda f: f.analysis.name):
        rows = _sensitivity_rows(fit, _grid(fit, result.base.analysis), cache_dir)
        out[fit.analysis.name] = Sensitivity(fit.analysis.name, tuple(rows), _flips(rows))
    return out


def _mu_draws(result: RunResult, fit: FitOutcome) -> np.ndarray:
    """The fit's posterior draws of mu (harmonised scale), read from its netCDF file."""
    import xarray as xr

    path = result.base.paths.reports / "fits" / "by-key" / f"{fit.key}.nc"
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
        return np.asarray(ds["mu"].values, float).ravel()


def split_distance(p: float) -> float:
    """Difference in SD units between the means of a normal variable's lower p and upper 1-p."""
    z = float(special.ndtri(p))
    return float(math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / (p * (1 - p)))


def _cached_path(
    result: RunResult, first: FitOutcome, second: FitOutcome, split: float, compute
) -> PathEffect:
    """Path effects depend only on the two fits and the split: cache them by those keys."""
    from peerevidence.atomic import write_text
    from peerevidence.pooling.store import digest, dumps

    key = digest({"first": first.key, "second": second.key, "split": split, "version": 1})
    path = result.base.paths.reports / "fits" / "paths" / f"{key}.json"
    try:
        raw = json.loads(path.read_text("utf-8"))
        return PathEffect(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    except (OSError, ValueError, TypeError):
        pass
    effect = compute()
    write_text(path, dumps(effect.__dict__))
    return effect


def _path_effect(
    result: RunResult,
    first: FitOutcome,
    second: FitOutcome,
    trial: Outcome,
    assoc: Outcome,
    intervention: str,
    split: float,
    d: float,
) -> PathEffect:
    delta = _mu_draws(result, first)
    link = _mu_draws(result, second)
    n = min(delta.size, link.size)
    sign = 1.0 if assoc.direction == "higher_is_better" else -1.0
    log_ratio_link = sign * link[:n]  # natural log ratio, exposed vs not
    implied = -(log_ratio_link / d) * delta[:n]  # exposure lowered by delta SDs
    ratio = np.exp(implied)
    scale = {"logHR": "HR", "logOR": "OR", "logRR": "RR"}[assoc.measure]
    q = np.quantile(ratio, [0.025, 0.5, 0.975], method="hazen")
    k1, k2 = first.summary["k"], second.summary["k"]
    assumptions = (
        f"Peer support changes {trial.label.lower()} by the pooled SMD of '{trial.id}' "
        f"(k = {k1}); the trials' instruments measure the exposure of the cohort study.",
        f"'{assoc.label}' is a dichotomy of a normally distributed latent score at its "
        f"{split:.0%} quantile, so exposed and unexposed differ by {d:.2f} SD "
        "(set exposure_split in evidence/analysis.yaml).",
        f"The log {scale} is linear in that latent score and the association (k = {k2}) "
        "is causal, unconfounded and transportable to peer-support populations.",
        "The two posteriors are independent; draws are paired index by index.",
        "Implied ratio = exp(-(log ratio per exposure contrast / "
        f"{d:.2f}) x SMD); below 1 = fewer events with peer support.",
    )
    edges = tuple(dict.fromkeys([*trial.edges, *assoc.edges]))
    return PathEffect(
        path=(intervention, assoc.exposure, assoc.node),
        edges=edges,
        first=trial.id,
        second=assoc.id,
        scale=scale,
        median=float(q[1]),
        q025=float(q[0]),
        q975=float(q[2]),
        p_benefit=float(np.mean(ratio < 1)),
        assumptions=assumptions,
        caveat=CAVEAT,
    )


def path_effects(result: RunResult) -> list[PathEffect]:
    fits = _main_fits(result)
    cm = result.base.change_model
    intervention = (
        next((n.id for n in cm.nodes if n.kind == "intervention"), "peer_worker_intervention") if cm else ""
    )
    split = result.base.analysis.exposure_split
    d = split_distance(split)
    out = []
    for second in sorted(
        (f for f in fits.values() if f.analysis.outcome.kind == "association"), key=lambda f: f.analysis.name
    ):
        assoc = second.analysis.outcome
        for first in sorted(
            (
                f
                for f in fits.values()
                if f.analysis.outcome.kind == "intervention_effect"
                and f.analysis.outcome.node == assoc.exposure
            ),
            key=lambda f: f.analysis.name,
        ):
            trial = first.analysis.outcome
            if trial.measure != "SMD" or assoc.measure not in ("logHR", "logOR", "logRR"):
                continue

            def compute(first=first, second=second, trial=trial, assoc=assoc) -> PathEffect:
                return _path_effect(result, first, second, trial, assoc, intervention, split, d)

            out.append(_cached_path(result, first, second, split, compute))
    return out


def gaps(result: RunResult, edges: dict[str, EdgeCertainty]) -> Gaps:
    fits = _main_fits(result)
    catalogue = result.base.outcomes.outcomes if result.base.outcomes else []
    return Gaps(
        edges_without_quantitative=tuple(e for e, c in sorted(edges.items()) if c.status != "quantitative"),
        edges_qualitative_only=tuple(e for e, c in sorted(edges.items()) if c.status == "qualitative_only"),
        outcomes_without_data=tuple(sorted(o.id for o in catalogue if o.id not in fits)),
        outcomes_single_study=tuple(sorted(o for o, f in fits.items() if f.summary["k"] == 1)),
    )


def synthesise(result: RunResult) -> Synthesis:
    ratings = certainty(result)
    edges = edge_certainty(result, ratings)
    return Synthesis(
        certainty=ratings,
        edges=edges,
        sensitivity=sensitivity(result),
        paths=path_effects(result),
        gaps=gaps(result, edges),
    )
