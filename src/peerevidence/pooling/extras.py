"""What `pool --loo / --mods / --subgroup` add beside the main fit: leave-one-out, a
meta-regression and a subgroup analysis, each exact (quadrature over tau, beta conjugate
given tau) with metafor's REML line beside it.

The numbers come from :mod:`peerevidence.stats.metareg` (equal to metafor's ``leave1out``,
``rma(mods = ...)``) and :mod:`peerevidence.stats.metareg_bayes` / :mod:`peerevidence.stats.exact`
(exact posteriors, checked against brute-force integration in their own tests). Moderators
are columns of the input CSV, one value per study row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from peerevidence.errors import DataError
from peerevidence.stats.exact import exact_posterior
from peerevidence.stats.metareg import design_matrix, leave_one_out, meta_regression, subgroup_test
from peerevidence.stats.metareg_bayes import BetaPrior, exact_metareg
from peerevidence.stats.model import FitData, Priors

BETA_PRIOR = "normal:0:1"  # each meta-regression coefficient, on the yi scale (weakly informative)


def _summary(s: Any) -> dict[str, float | None]:
    return {"q025": s.q025, "q50": s.q50, "q975": s.q975}


def _column(frame: pd.DataFrame, name: str, display: str, k: int) -> list[object]:
    if name not in frame.columns:
        known = ", ".join(c for c in frame.columns if c not in ("study",))
        raise DataError(f"{display}: moderator '{name}' is not a column (accepted: {known})")
    values = frame[name].tolist()
    if len(values) != k:
        raise DataError(f"{display}: moderator '{name}' needs one value per study")
    missing = [
        str(s) for s, v in zip(frame["study"], values, strict=True) if pd.isna(v) or str(v).strip() == ""
    ]
    if missing:
        raise DataError(f"{display}: moderator '{name}' is empty for {', '.join(missing[:5])}")
    cleaned = [v.strip() if isinstance(v, str) else v for v in values]
    try:  # a column of numbers is a continuous moderator (CSV cells arrive as text)
        return [float(v) for v in cleaned]
    except (TypeError, ValueError):
        return [str(v) for v in cleaned]


def leave_one_out_table(data: FitData, priors: Priors) -> list[dict[str, Any]]:
    """Each study dropped in turn: exact posterior of mu and REML (metafor's ``leave1out``)."""
    y, v = data.adjusted()
    if data.k < 3:
        raise DataError(f"leave-one-out needs k >= 3 studies (k = {data.k})")
    rows = []
    for i, fit in enumerate(leave_one_out(y, v)):
        keep = np.arange(data.k) != i
        post = exact_posterior(y[keep], v[keep], priors.mu, priors.tau)
        rows.append(
            {
                "omitted": data.labels[i],
                "mu": _summary(post.mu()),
                "p_mu_gt_0": post.p_mu_gt(0.0),
                "reml": {
                    "mu": fit.mu,
                    "se": fit.se,
                    "ci_lb": fit.ci_lb,
                    "ci_ub": fit.ci_ub,
                    "tau2": fit.tau2,
                },
            }
        )
    return rows


def meta_regression_table(
    frame: pd.DataFrame, data: FitData, priors: Priors, mods: Sequence[str], display: str
) -> dict[str, Any]:
    """``rma(yi, vi, mods = ~ a + b)`` (REML) beside the exact Bayesian meta-regression."""
    y, v = data.adjusted()
    covariates = {m: _column(frame, m, display, data.k) for m in mods}
    X, names, _ = design_matrix(covariates, list(mods))
    if X.shape[1] >= data.k:
        raise DataError(f"{display}: {X.shape[1]} coefficients need more than {data.k} studies")
    reml = meta_regression(y, v, X, names)
    exact = exact_metareg(y, v, X, BetaPrior.from_specs([BETA_PRIOR] * len(names)), priors.tau, names)
    coefficients = []
    for j, name in enumerate(names):
        coefficients.append(
            {
                "name": name,
                "posterior": _summary(exact.coef(name)),
                "p_gt_0": exact.p_gt(name),
                "reml": {
                    "estimate": reml.beta[j],
                    "se": reml.se[j],
                    "ci_lb": reml.ci_lb[j],
                    "ci_ub": reml.ci_ub[j],
                    "pval": reml.pval[j],
                },
            }
        )
    return {
        "moderators": list(mods),
        "prior_beta": BETA_PRIOR,
        "coefficients": coefficients,
        "reml": {
            "tau2": reml.tau2,
            "qm": reml.qm,
            "qm_df": reml.qm_df,
            "qm_p": reml.qm_p,
            "r2": reml.r2,
        },
    }


def subgroup_table(
    frame: pd.DataFrame, data: FitData, priors: Priors, column: str, display: str
) -> dict[str, Any]:
    """Pooled effect per subgroup (exact, common tau) and the test for subgroup differences
    (metafor's ``rma(mods = ~ factor(g))`` QM), with each group's own REML fit beside it."""
    y, v = data.adjusted()
    groups = [str(g) for g in _column(frame, column, display, data.k)]
    levels = sorted(set(groups))
    if len(levels) < 2:
        raise DataError(f"{display}: subgroup '{column}' has one level only ({levels[0]})")
    test = subgroup_test(y, v, groups, column)
    X = np.array([[1.0 if g == level else 0.0 for level in levels] for g in groups])
    exact = exact_metareg(y, v, X, BetaPrior.from_specs([BETA_PRIOR] * len(levels)), priors.tau, levels)
    out_groups = []
    for fit in test.groups:
        out_groups.append(
            {
                "group": fit.group,
                "k": fit.k,
                "posterior": _summary(exact.coef(fit.group)),
                "p_gt_0": exact.p_gt(fit.group),
                "reml": {"mu": fit.mu, "se": fit.se, "ci_lb": fit.ci_lb, "ci_ub": fit.ci_ub},
            }
        )
    differences = []
    for i, a in enumerate(levels):
        for b in levels[i + 1 :]:
            c = [1.0 if lv == b else -1.0 if lv == a else 0.0 for lv in levels]
            differences.append(
                {
                    "contrast": f"{b} - {a}",
                    "posterior": _summary(exact.marginal(c).mu()),
                    "p_gt_0": exact.p_gt(c),
                }
            )
    return {
        "subgroup": column,
        "prior_beta": BETA_PRIOR,
        "groups": out_groups,
        "differences": differences,
        "test": {"qm": test.qm, "qm_df": test.qm_df, "qm_p": test.qm_p, "tau2_residual": test.tau2_residual},
    }


def pool_extras(
    frame: pd.DataFrame,
    *,
    measure: str | None = None,
    prior_mu: str = "normal:0:1",
    prior_tau: str = "halfnormal:0.5",
    columns: str | None = None,
    loo: bool = False,
    mods: Sequence[str] = (),
    subgroup: str | None = None,
    name: str = "<data frame>",
) -> dict[str, Any]:
    """The extra analyses ``pool`` adds on request (keys ``loo``, ``metareg``, ``subgroups``);
    each exact and fast, so they run (and fail on bad input) before any sampling."""
    from peerevidence.pooling.adhoc import effects_from_frame
    from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

    priors = Priors(parse_mu_prior(prior_mu), parse_tau_prior(prior_tau))
    data, _ = effects_from_frame(frame, measure, name, columns, [])
    out: dict[str, Any] = {}
    if loo:
        out["loo"] = leave_one_out_table(data, priors)
    if mods:
        out["metareg"] = meta_regression_table(frame, data, priors, mods, name)
    if subgroup:
        out["subgroups"] = subgroup_table(frame, data, priors, subgroup, name)
    return out
