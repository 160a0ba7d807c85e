"""Issue 12: the REML line (Wald, HKSJ, t PI, Q-profile CI) equal to metafor 3.8-1.

Every expected number comes from tests/data/metafor/*.json, written by
tests/data/metafor/make_reference.R (R 4.2.2, metafor 3.8-1); no test needs R.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction as Fr
from pathlib import Path

import numpy as np
import pytest

from peerevidence.stats.frequentist import random_effects

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "metafor"
TOL = 1e-6

WALD = {
    "mu": "mu",
    "se": "se",
    "ci_lb": "ci_lb",
    "ci_ub": "ci_ub",
    "tau2": "tau2",
    "I2": "i2",
    "H2": "h2",
    "QE": "q",
    "pi_lb": "pi_lb",
    "pi_ub": "pi_ub",
    "se_tau2": "se_tau2",
}
KNHA = {
    "se": "hksj_se",
    "ci_lb": "hksj_ci_lb",
    "ci_ub": "hksj_ci_ub",
    "tval": "hksj_tval",
    "pval": "hksj_pval",
    "pi_lb": "pi_t_lb",
    "pi_ub": "pi_t_ub",
}
QP = {"tau2_lb": "tau2_qp_lb", "tau2_ub": "tau2_qp_ub", "I2_lb": "i2_qp_lb", "I2_ub": "i2_qp_ub"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text("utf-8"))


EDGES = {case["name"]: case for case in load("edge_cases.json")["cases"]}


def edges(defect: int) -> list[str]:
    return [name for name, case in EDGES.items() if case["defect"] == defect]


def assert_matches(fit, case: dict, blocks=("reml", "knha", "qp"), tol: float = TOL) -> None:
    mapping = {"reml": WALD, "knha": KNHA, "qp": QP}
    for block in blocks:
        ref = case.get(block)
        if ref is None:
            continue
        for theirs, ours in mapping[block].items():
            if theirs not in ref:
                continue
            value = getattr(fit, ours)
            if ref[theirs] is None:
                assert value is None or math.isnan(value), (block, theirs, value)
            else:
                assert value == pytest.approx(ref[theirs], abs=tol, rel=0), (
                    block,
                    theirs,
                    value,
                    ref[theirs],
                )


# ---------------------------------------------------------------- defect 1: ll0check


def test_fixtures_hold_ll0check_cases():
    names = edges(1)
    assert len(names) >= 2, "make_reference.R found no ll0check case"
    for name in names:
        assert any("local maximum" in w for w in EDGES[name]["warnings"]), name
        assert EDGES[name]["reml"]["tau2"] == 0


@pytest.mark.parametrize("name", edges(1))
def test_ll0check_returns_tau2_zero_like_metafor(name):
    case = EDGES[name]
    fit = random_effects(case["yi"], case["vi"], "REML")
    assert fit.tau2 == 0.0
    assert_matches(fit, case)
    assert any("local maximum" in note for note in fit.notes)


# ---------------------------------------------------------------- defect 2: step-halving


def test_fixtures_hold_step_halving_cases():
    assert len(edges(2)) >= 3


@pytest.mark.parametrize("name", edges(2))
def test_step_halving_near_zero_matches_metafor(name):
    case = EDGES[name]
    fit = random_effects(case["yi"], case["vi"], "REML")
    assert_matches(fit, case)


# ---------------------------------------------------------------- defect 3: tiny vi


@pytest.mark.parametrize("name", [n for n in edges(3) if "1e-12" not in n])
def test_tiny_sampling_variance_matches_metafor(name):
    case = EDGES[name]
    fit = random_effects(case["yi"], case["vi"], "REML")
    assert_matches(fit, case)
    assert any("largest sampling variance" in note for note in fit.notes)
    assert any("extremely large" in w for w in case["warnings"])  # metafor warns too


def exact_rational(y: list[float], v: list[float], tau2: float) -> dict[str, float]:
    """Q, I^2, H^2 and se(tau^2) in exact rational arithmetic (no floating-point loss)."""
    y, v, t2 = [Fr(a) for a in y], [Fr(a) for a in v], Fr(tau2)
    k = len(y)
    w0 = [1 / a for a in v]
    sw0 = sum(w0)
    mu0 = sum(a * b for a, b in zip(w0, y, strict=True)) / sw0
    q = sum(a * (b - mu0) ** 2 for a, b in zip(w0, y, strict=True))
    s2 = (k - 1) * sw0 / (sw0**2 - sum(a * a for a in w0))
    w = [1 / (a + t2) for a in v]
    sw = sum(w)
    tr_pp = sum(((w[i] if i == j else 0) - w[i] * w[j] / sw) ** 2 for i in range(k) for j in range(k))
    return {
        "QE": float(q),
        "I2": float(100 * t2 / (t2 + s2)),
        "H2": float((t2 + s2) / s2),
        "se_tau2": math.sqrt(2 / float(tr_pp)),
        "s2": float(s2),
    }


@pytest.mark.parametrize("name", [n for n in edges(3) if "1e-12" in n])
def test_tiny_variance_1e12_matches_metafor(name):
    """vi = 1e-12: the closed-form traces made tr(PP) = 0 (ZeroDivisionError in ``pool``).

    metafor's own Q, I^2 (and its CI), H^2 and se(tau^2) lose digits here (it forms P = W - w w'/sum w
    and sum(w)^2 - sum(w^2) directly: QE is off by 1.3e-4); those four are checked against
    exact rational arithmetic instead, everything else against metafor to 1e-6.
    """
    case = EDGES[name]
    fit = random_effects(case["yi"], case["vi"], "REML")
    lossy = {"QE", "I2", "H2", "se_tau2"}
    reml = {key: value for key, value in case["reml"].items() if key not in lossy}
    qp = {key: value for key, value in case["qp"].items() if not key.startswith("I2")}
    assert_matches(fit, {**case, "reml": reml, "qp": qp})
    exact = exact_rational(case["yi"], case["vi"], fit.tau2)
    assert fit.q == pytest.approx(exact["QE"], rel=1e-12)
    assert fit.i2 == pytest.approx(exact["I2"], rel=1e-12, abs=1e-12)
    assert fit.h2 == pytest.approx(exact["H2"], rel=1e-12)
    assert fit.se_tau2 == pytest.approx(exact["se_tau2"], rel=1e-12)
    for bound, ours in ((fit.tau2_qp_lb, fit.i2_qp_lb), (fit.tau2_qp_ub, fit.i2_qp_ub)):
        assert ours == pytest.approx(100 * bound / (bound + exact["s2"]), rel=1e-12, abs=1e-12)
    assert abs(case["reml"]["QE"] - exact["QE"]) > 1e-6  # metafor's loss, documented above


def test_ratio_note_only_when_extreme():
    assert random_effects([0.1, 0.2, 0.4], [0.01, 0.02, 0.03]).notes == ()


# ---------------------------------------------------------------- defect 8: k = 1


def test_k1_i2_is_zero_like_metafor():
    case = EDGES["k1"]
    fit = random_effects(case["yi"], case["vi"], "REML")
    assert_matches(fit, case, blocks=("reml", "knha"))
    assert fit.summary()["i2"] == 0.0
    assert case["knha"]["test"] == "z" and case["knha"]["df"] is None  # metafor falls back to z
    assert fit.summary()["hksj_df"] is None


# ---------------------------------------------------------------- HKSJ, t PI, Q-profile


@pytest.mark.parametrize("dataset", ["eight_schools", "bcg"])
def test_reference_sets_all_lines(dataset):
    case = load("reference_sets.json")[dataset]
    fit = random_effects(case["yi"], case["vi"], "REML")
    assert_matches(fit, case)
    assert fit.hksj_df == len(case["yi"]) - 1


def test_cochrane_units_all_lines():
    cases = load("cochrane_knha.json")["cases"]
    assert len(cases) == 40
    for case in cases:
        fit = random_effects(case["yi"], case["vi"], "REML")
        assert_matches(fit, case)


def test_default_qp_tolerance_is_within_metafor_tol():
    """metafor's default confint() tolerance is 1.2e-4: our bounds are within it."""
    for case in load("cochrane_knha.json")["cases"]:
        fit = random_effects(case["yi"], case["vi"], "REML")
        for ours, theirs in ((fit.tau2_qp_lb, "tau2_lb"), (fit.tau2_qp_ub, "tau2_ub")):
            assert ours == pytest.approx(case["qp_default"][theirs], abs=2.5e-4)


def test_random_sets_sample():
    """Every 8th of the 4,000 random sets (the benchmark runs them all)."""
    sets = load("random_sets.json")["sets"][::8]
    for case in sets:
        fit = random_effects(case["yi"], case["vi"], "REML")
        assert_matches(fit, case)


@pytest.mark.slow
def test_random_sets_all():
    for case in load("random_sets.json")["sets"]:
        fit = random_effects(case["yi"], case["vi"], "REML")
        assert_matches(fit, case)


def test_summary_keeps_old_keys_and_adds_new():
    case = load("reference_sets.json")["bcg"]
    s = random_effects(case["yi"], case["vi"], "REML").summary()
    old = {"mu", "se", "ci_lb", "ci_ub", "tau2", "i2", "pi_lb", "pi_ub"}
    new = {"hksj_se", "hksj_ci_lb", "hksj_ci_ub", "hksj_df", "pi_t_lb", "pi_t_ub"}
    new |= {"tau2_qp_lb", "tau2_qp_ub", "i2_qp_lb", "i2_qp_ub", "notes"}
    assert set(s) == old | new
    assert s["pi_t_lb"] == pytest.approx(case["knha"]["pi_lb"], abs=TOL)
    json.dumps(s)  # plain JSON types


def test_hksj_is_not_truncated():
    """metafor's knha: q = RSS/(k-1) may be < 1, which narrows the CI below Wald's."""
    y = np.array([0.10, 0.11, 0.12, 0.105])
    v = np.array([0.04, 0.05, 0.03, 0.06])
    fit = random_effects(y, v, "REML")
    rss = float(np.sum((y - fit.mu) ** 2 / (v + fit.tau2)))
    assert rss / 3 < 1
    assert fit.hksj_se == pytest.approx(fit.se * math.sqrt(rss / 3), rel=1e-12)


def test_where_metafor_does_not_converge_ours_is_the_global_maximum():
    """8 random sets make metafor's Fisher scoring oscillate (rma() errors): our fallback
    must be the maximiser of the restricted likelihood on a fine grid, and say so."""
    from peerevidence.stats.frequentist import restricted_loglik

    failed = [s for s in load("random_sets.json")["sets"] if "reml" not in s]
    assert failed and all("did not converge" in s["error"] for s in failed)
    for s in failed:
        y, v = np.array(s["yi"]), np.array(s["vi"])
        fit = random_effects(y, v, "REML")
        assert not fit.converged
        assert any("did not converge" in note for note in fit.notes)
        grid = np.linspace(0.0, 2.0, 4001)
        best = max(restricted_loglik(t, y, v) for t in grid)
        assert restricted_loglik(fit.tau2, y, v) >= best - 1e-12
