"""Prior sensitivity: every outcome re-analysed by exact quadrature under a grid of priors.

The grid: the default priors, ``sensitivity_tau`` x ``sensitivity_mu`` of
``evidence/analysis.yaml`` and an empirical heterogeneity prior meant for the outcome's
measure (Rhodes 2015 for SMD, Turner 2015 for log ratios). Flags analyses whose conclusion
flips.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerevidence.records.schema import AnalysisConfig, Outcome
from peerevidence.stats.exact import exact_posterior
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior
from peerevidence.synthesis.certainty import main_fits
from peerevidence.synthesis.types import Sensitivity, SensitivityRow

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult


def empirical_prior_for(outcome: Outcome, config: AnalysisConfig) -> str | None:
    own = config.outcomes.get(outcome.id)
    if own and own.empirical_prior:
        return own.empirical_prior
    return {
        "SMD": "rhodes2015:mental_health",
        "logOR": "turner2015:mental_health",
        "logRR": "turner2015:mental_health",
        "logHR": "turner2015:mental_health",
    }.get(outcome.measure)


def _grid(fit: AnalysisFit, config: AnalysisConfig) -> list[tuple[str, str]]:
    default_mu, default_tau = fit.summary.priors["mu"], fit.summary.priors["tau"]
    taus = [default_tau, *config.sensitivity_tau]
    emp = empirical_prior_for(fit.analysis.outcome, config)
    if emp:
        taus.append(emp)
    mus = [default_mu, *config.sensitivity_mu]
    seen: set[tuple[str, str]] = set()
    grid: list[tuple[str, str]] = []
    for mu in mus:
        for tau in taus:
            if (mu, tau) not in seen:
                seen.add((mu, tau))
                grid.append((mu, tau))
    return grid


def _sensitivity_rows(
    fit: AnalysisFit, grid: Sequence[tuple[str, str]], cache_dir: Path | None
) -> list[SensitivityRow]:
    from peerevidence.pooling.store import digest, dumps

    y, v = fit.analysis.data.adjusted()
    shared = fit.analysis.data.shared()
    key = digest(
        {"y": y, "v": v, "grid": grid, "version": 1}
        | ({} if shared is None else {"group": shared.group, "group_var": shared.var})
    )
    path = cache_dir / f"{key}.json" if cache_dir else None
    raw: list[dict[str, Any]]
    if path is not None and path.exists():
        raw = json.loads(path.read_text("utf-8"))
    else:
        raw = []
        for mu, tau in grid:
            post = exact_posterior(y, v, parse_mu_prior(mu), parse_tau_prior(tau), shared=shared)
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


def flips(rows: list[SensitivityRow]) -> tuple[str, ...]:
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
    for fit in sorted(main_fits(result).values(), key=lambda f: f.analysis.name):
        rows = _sensitivity_rows(fit, _grid(fit, result.base.analysis), cache_dir)
        out[fit.analysis.name] = Sensitivity(fit.analysis.name, tuple(rows), flips(rows))
    return out
