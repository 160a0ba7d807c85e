"""Certainty (GRADE-style), sensitivity flips, path arithmetic and gaps (issue 7)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from peerevidence.pooling.fitting import Analysis, AnalysisFit
from peerevidence.records.schema import CertaintyOverride, Outcome, SamplerSettings
from peerevidence.stats.model import FitData, Priors
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior
from peerevidence.stats.summary import Diagnostics, ExactCheck, ExactSummary, FitSummary, RemlLine, Stat
from peerevidence.synthesis import SensitivityRow
from peerevidence.synthesis.certainty import certainty_of, egger_p
from peerevidence.synthesis.paths import split_distance
from peerevidence.synthesis.sensitivity import flips

OUTCOME = Outcome(id="hope", label="Hope", node="hope", measure="SMD", direction="higher_is_better")
ASSOC = Outcome(
    id="link",
    label="Link",
    node="a",
    kind="association",
    exposure="b",
    measure="logHR",
    direction="higher_is_better",
)


def fake_fit(
    rows: dict, mu=(0.1, 0.3, 0.5), new=(0.02, 0.6), i2=0.0, outcome=OUTCOME, reml_pi=(0.05, 0.55), tau2=0.0
) -> AnalysisFit:
    k = len(rows["design"])
    frame = pd.DataFrame({"study": [f"s{i}" for i in range(k)], **rows})
    data = FitData(tuple(frame["study"]), np.full(k, 0.3), np.asarray(frame["vi"], float))
    priors = Priors(parse_mu_prior("normal:0:1"), parse_tau_prior("halfnormal:0.5"))
    analysis = Analysis(outcome.id, outcome, "all", data, priors, SamplerSettings(), frame, 0.1, 5.0)
    stat = Stat(q025=mu[0], q50=mu[1], q975=mu[2])
    summary = FitSummary(
        k=k,
        measure="SMD",
        mu=stat,
        tau=Stat(q025=0.0, q50=0.1, q975=0.5),
        theta_new=Stat(q025=new[0], q975=new[1]),
        p_mu_gt_0=0.9,
        theta=(),
        diagnostics=Diagnostics(1.0, 1000.0, 1000.0, 0),
        exact_check=ExactCheck(0.0, 0.0, "", True, 0.1, 5.0),
        exact=ExactSummary(stat, Stat(q025=0.0, q50=0.1, q975=0.5), Stat(q025=new[0], q975=new[1]), 0.9),
        reml=RemlLine(0.3, 0.1, 0.1, 0.5, tau2, i2, reml_pi[0], reml_pi[1]),
        priors={"mu": "normal:0:1", "tau": "halfnormal:0.5"},
    )
    return AnalysisFit(analysis, "key", True, 0.0, summary)


def rows(k, design="rct", rob="low", n=300.0, vi=0.02, indirect=None):
    return {
        "design": [design] * k,
        "rob": [rob] * k,
        "n": [n] * k,
        "vi": [vi] * k,
        "indirect": [indirect] * k,
    }


def step(c, domain):
    return next(s for s in c.steps if s.domain == domain)


def test_randomised_precise_low_risk_evidence_stays_high():
    c = certainty_of(fake_fit(rows(3)), mid=0.2)
    assert c.start == "high" and c.rating == "high"
    assert all(s.levels == 0 for s in c.steps) and all(s.reason for s in c.steps)


def test_high_risk_of_bias_majority_rates_down_once():
    r = rows(3)
    r["rob"] = ["high", "high", "low"]
    c = certainty_of(fake_fit(r), mid=0.2)
    assert step(c, "risk_of_bias").levels == 1
    assert "67% of the weight from studies at high risk" in step(c, "risk_of_bias").reason
    assert c.rating == "moderate"


def test_imprecision_levels():
    crosses_zero = certainty_of(fake_fit(rows(3), mu=(-0.1, 0.1, 0.15)), mid=0.2)
    assert step(crosses_zero, "imprecision").levels == 1
    both_ways = certainty_of(fake_fit(rows(3), mu=(-0.5, 0.1, 0.6)), mid=0.2)
    assert step(both_ways, "imprecision").levels == 2
    small = certainty_of(fake_fit(rows(2, n=50.0)), mid=0.2)
    assert step(small, "imprecision").levels == 1 and "100 participants" in step(small, "imprecision").reason


def test_inconsistency_from_i2_and_prediction_interval():
    assert step(certainty_of(fake_fit(rows(3), i2=60), mid=0.2), "inconsistency").levels == 1
    assert step(certainty_of(fake_fit(rows(3), i2=80), mid=0.2), "inconsistency").levels == 2
    pi = certainty_of(fake_fit(rows(3), reml_pi=(-0.1, 0.7), tau2=0.02, i2=20), mid=0.2)
    assert step(pi, "inconsistency").levels == 1
    assert "REML 95% prediction interval" in step(pi, "inconsistency").reason
    # a wide Bayesian prediction interval alone (prior uncertainty about tau) is not inconsistency
    prior_only = certainty_of(fake_fit(rows(3), new=(-0.3, 0.9), reml_pi=(0.1, 0.5)), mid=0.2)
    assert step(prior_only, "inconsistency").levels == 0
    single = certainty_of(fake_fit(rows(1), reml_pi=(-0.1, 0.7), tau2=0.02), mid=0.2)
    assert step(single, "inconsistency").levels == 0
    assert "single study" in step(single, "inconsistency").reason


def test_indirectness_and_non_randomised_start():
    c = certainty_of(fake_fit(rows(2, indirect="proxy outcome")), mid=0.2)
    assert step(c, "indirectness").levels == 1 and "proxy outcome" in step(c, "indirectness").reason
    nonrand = certainty_of(fake_fit(rows(3, design="cohort")), mid=0.2)
    assert nonrand.start == "low" and nonrand.rating == "low"
    assoc = certainty_of(fake_fit(rows(1, design="cohort"), outcome=ASSOC), mid=0.2)
    assert assoc.start == "low"


def test_rating_never_goes_below_very_low_and_override_is_kept_beside():
    r = rows(1, rob="high", n=40.0, indirect="x")
    override = CertaintyOverride(
        outcome="hope", rating="low", reason="reviewer judgement", by="A", date="2026-11-23"
    )
    c = certainty_of(fake_fit(r, mu=(-0.9, 0.0, 0.9)), mid=0.2, override=override)
    assert c.rating == "very_low"
    assert (c.override, c.final, c.override_reason) == ("low", "low", "reviewer judgement")


def test_small_study_effects_only_from_ten_studies():
    c9 = certainty_of(fake_fit(rows(9)), mid=0.2)
    assert "k >= 10" in step(c9, "publication_bias").reason


def test_egger_against_scipy_linregress():
    rng = np.random.default_rng(3)
    v = rng.uniform(0.01, 0.2, 15)
    y = 0.2 + 1.5 * np.sqrt(v) + rng.normal(0, np.sqrt(v))  # small studies show larger effects
    se = np.sqrt(v)
    res = stats.linregress(1 / se, y / se)
    p = 2 * stats.t.sf(abs(res.intercept / res.intercept_stderr), 13)
    assert egger_p(y, v) == pytest.approx(p, rel=1e-9)
    assert egger_p(y, v) < 0.1


def test_split_distance_closed_form():
    assert split_distance(0.5) == pytest.approx(stats.norm.pdf(0) / 0.25)
    assert split_distance(0.25) == pytest.approx(stats.norm.pdf(stats.norm.ppf(0.25)) / (0.25 * 0.75))


def srow(p, lo, hi, default=False, tau="halfnormal:0.5"):
    return SensitivityRow("normal:0:1", tau, (lo + hi) / 2, lo, hi, 0.2, p, default)


def test_flips_are_flagged_and_robust_results_are_not():
    robust = [srow(0.99, 0.05, 0.4, True), srow(0.98, 0.02, 0.42, tau="halfcauchy:0.5")]
    assert flips(robust) == ()
    flagged = flips([srow(0.97, 0.01, 0.4, True), srow(0.93, -0.05, 0.45, tau="halfnormal:1")])
    assert any("crosses 0.95" in f for f in flagged)
    assert any("includes no effect" in f for f in flagged)


# --------------------------------------------------------------------------- path signs (issue 12, defect 5)


def _assoc(direction: str, pole: str) -> Outcome:
    return Outcome(
        id="link", label="Link", node="a", kind="association", exposure="b",
        exposure_pole=pole, measure="logOR", direction=direction,
    )  # fmt: skip


def test_implied_ratio_for_a_good_pole_exposure_and_a_harmful_event():
    """Engagement (exposed = engaged) and compulsory admission, OR 0.2 for engaged vs not,
    the intervention raising engagement by 0.3 SD, exposure contrast d = 1: the implied OR is
    0.2 ** 0.3 = 0.617 (fewer admissions: benefit), not 1 / 0.617 = 1.62."""
    from peerevidence.synthesis.paths import implied_ratio

    assoc = _assoc("lower_is_better", "high")
    harmonised = -math.log(0.2)  # lower is better: harmonised = minus the natural log OR
    ratio, harm = implied_ratio(np.array([0.3]), np.array([harmonised]), assoc, 1.0)
    assert ratio[0] == pytest.approx(0.2**0.3, rel=1e-12)
    assert harm


def test_implied_ratio_for_a_bad_pole_exposure_and_a_harmful_event():
    """Isolation (exposed = isolated) and admission, OR 2 for isolated vs not; contacts up by
    0.5 SD with d = 1.6: OR = exp(-log 2 / 1.6 * 0.5) < 1, a benefit."""
    from peerevidence.synthesis.paths import implied_ratio

    assoc = _assoc("higher_is_better", "low")
    ratio, harm = implied_ratio(np.array([0.5]), np.array([math.log(2.0)]), assoc, 1.6)
    assert ratio[0] == pytest.approx(math.exp(-math.log(2.0) / 1.6 * 0.5), rel=1e-12)
    assert harm


def test_implied_ratio_for_a_wanted_event_counts_benefit_above_one():
    """Self-stigma (exposed = high stigma, the bad end) and help-seeking (a wanted event), OR 0.5
    for stigmatised vs not; stigma lowered by 0.4 SD (delta = +0.4 towards the better end),
    d = 1: help-seeking OR = exp(+log 2 * 0.4) > 1, and above 1 is the benefit."""
    from peerevidence.synthesis.paths import implied_ratio

    assoc = _assoc("lower_is_better", "low")
    ratio, harm = implied_ratio(np.array([0.4]), np.array([-math.log(0.5)]), assoc, 1.0)
    assert ratio[0] == pytest.approx(2.0**0.4, rel=1e-12)
    assert not harm
