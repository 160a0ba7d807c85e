"""Robustness of each outcome's result: one sensitivity table, predictive probabilities,
small-study effects, subgroups and meta-regression. Entry point: :func:`analyse`.

The sensitivity table (each row exact by quadrature under the outcome's priors, with
metafor's REML line beside it):

* all studies (the main analysis, bias-adjusted as the main model sees them);
* randomised only (designs rct, cluster_rct, pilot_rct; no bias terms, as the
  ``--randomised`` analysis);
* low risk of bias only (``risk_of_bias`` low, the result's own rating where it has one);
* excluding studies flagged indirect;
* leave-one-out: without each study in turn (REML as metafor's ``leave1out``);
* cumulative by publication year (the year of the study's references.bib entry; ties in
  study order), as metafor's ``cumul``.

A row "changes the conclusion" when its 95% credible interval's verdict — above 0,
below 0, or including 0 — differs from the main analysis's. Leave-one-out rows that do so
name influential studies. A row is omitted when it would hold the same studies as the main
analysis or none.

Predictive: P(theta_new > MID) and P(theta_new < -MID), a new study's effect, exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from peerevidence.records.schema import RANDOMISED_DESIGNS
from peerevidence.stats.exact import exact_posterior
from peerevidence.stats.frequentist import random_effects
from peerevidence.stats.metareg_bayes import predictive_probabilities
from peerevidence.synthesis.certainty import DEFAULT_MID, main_fits
from peerevidence.synthesis.small_studies import SmallStudyEffects, small_study_effects
from peerevidence.synthesis.subgroups import (
    ModeratorAnalysis,
    Skipped,
    SubgroupAnalysis,
    moderator_analysis,
    subgroup_analysis,
)

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RobustnessRow:
    label: str  # "all studies", "randomised only", "without X", "up to X (2004)"
    kind: str  # "main" | "subset" | "leave_one_out" | "cumulative"
    study: str | None  # the study left out (leave_one_out) or added (cumulative)
    k: int
    mu_q50: float
    mu_q025: float
    mu_q975: float
    p_gt_0: float
    reml_mu: float
    reml_ci_lb: float
    reml_ci_ub: float
    reml_tau2: float
    changes_conclusion: bool


@dataclass(frozen=True)
class Predictive:
    mid: float
    p_gt_mid: float  # P(theta_new > MID)
    p_lt_minus_mid: float  # P(theta_new < -MID)


@dataclass(frozen=True)
class OutcomeRobustness:
    outcome: str
    analysis: str
    conclusion: str  # "above 0" | "below 0" | "includes 0" (main analysis, 95% CrI)
    predictive: Predictive
    rows: tuple[RobustnessRow, ...]
    influential: tuple[str, ...]  # studies whose removal changes the conclusion
    small_studies: SmallStudyEffects | None  # None when k < 5
    subgroups: tuple[SubgroupAnalysis | Skipped, ...]
    moderators: ModeratorAnalysis | Skipped | None
    notes: tuple[str, ...]


def verdict(q025: float, q975: float) -> str:
    if q025 > 0:
        return "above 0"
    if q975 < 0:
        return "below 0"
    return "includes 0"


def _year(result: RunResult, study: str) -> int | None:
    if study not in result.base.bib:
        return None
    m = re.search(r"\d{4}", result.base.bib[study].year)
    return int(m.group(0)) if m else None


def _row(
    fit: AnalysisFit,
    y: FloatArray,
    v: FloatArray,
    label: str,
    kind: str,
    study: str | None,
    base_verdict: str | None,
) -> RobustnessRow:
    post = exact_posterior(y, v, fit.analysis.priors.mu, fit.analysis.priors.tau)
    mu = post.mu()
    re_ = random_effects(y, v, "REML")
    changes = base_verdict is not None and verdict(mu.q025, mu.q975) != base_verdict
    return RobustnessRow(
        label, kind, study, int(y.size), mu.q50, mu.q025, mu.q975, post.p_mu_gt(0.0),
        re_.mu, re_.ci_lb, re_.ci_ub, re_.tau2, changes,
    )  # fmt: skip


def _subsets(fit: AnalysisFit) -> list[tuple[str, BoolArray, bool]]:
    """(label, mask, use unadjusted data) of each subset analysis."""
    rows = fit.analysis.rows
    out = [("randomised only", rows["design"].isin(RANDOMISED_DESIGNS).to_numpy(), True)]
    out.append(("low risk of bias only", (rows["rob"] == "low").to_numpy(), False))
    indirect = rows["indirect"].fillna("").astype(str).str.strip() != ""
    out.append(("excluding studies flagged indirect", (~indirect).to_numpy(), False))
    return out


def outcome_robustness(result: RunResult, fit: AnalysisFit) -> OutcomeRobustness:
    config = result.base.analysis
    oid = fit.analysis.outcome.id
    setting = config.outcomes.get(oid)
    mid = setting.mid if setting and setting.mid else DEFAULT_MID
    y, v = fit.analysis.data.adjusted()
    studies = list(fit.analysis.rows["study"])
    notes: list[str] = []
    main = _row(fit, y, v, "all studies", "main", None, None)
    base = verdict(main.mu_q025, main.mu_q975)
    rows = [main]
    for label, mask, raw in _subsets(fit):
        if mask.all() or not mask.any():
            continue
        yy, vv = (fit.analysis.data.yi, fit.analysis.data.vi) if raw else (y, v)
        rows.append(_row(fit, yy[mask], vv[mask], label, "subset", None, base))
    influential = []
    if y.size >= 3:
        for i, s in enumerate(studies):
            keep = np.arange(y.size) != i
            row = _row(fit, y[keep], v[keep], f"without {s}", "leave_one_out", s, base)
            rows.append(row)
            if row.changes_conclusion:
                influential.append(s)
    years = [_year(result, s) for s in studies]
    year_of = {i: yr for i, yr in enumerate(years) if yr is not None}
    dated = list(year_of)
    if len(dated) < len(studies):
        notes.append(
            "cumulative analysis leaves out studies without a year in references.bib: "
            + ", ".join(s for s, yr in zip(studies, years, strict=True) if yr is None)
        )
    if len(dated) >= 2:
        order = sorted(dated, key=lambda i: year_of[i])  # stable: ties keep study order
        for j in range(len(order)):
            idx = np.array(order[: j + 1])
            s = studies[order[j]]
            rows.append(_row(fit, y[idx], v[idx], f"up to {s} ({years[order[j]]})", "cumulative", s, base))
    post = exact_posterior(y, v, fit.analysis.priors.mu, fit.analysis.priors.tau)
    above, below = predictive_probabilities(post, mid)
    subgroups = tuple(subgroup_analysis(result, fit, m, mid) for m in (setting.subgroups if setting else []))
    moderators = (
        moderator_analysis(result, fit, list(setting.moderators)) if setting and setting.moderators else None
    )
    return OutcomeRobustness(
        outcome=oid,
        analysis=fit.analysis.name,
        conclusion=base,
        predictive=Predictive(mid, above, below),
        rows=tuple(rows),
        influential=tuple(influential),
        small_studies=small_study_effects(fit),
        subgroups=subgroups,
        moderators=moderators,
        notes=tuple(notes),
    )


def analyse(result: RunResult) -> dict[str, OutcomeRobustness]:
    """Robustness of every outcome's main (all-designs) analysis, by outcome id."""
    return {oid: outcome_robustness(result, fit) for oid, fit in sorted(main_fits(result).items())}
