"""The REML / DL line against metafor 3.8.1 (tests/data: reference sets and a Cochrane subset)."""

from __future__ import annotations

import numpy as np
import pytest

from peerevidence.stats.frequentist import random_effects, restricted_loglik

FIELDS = {
    "mu": "mu",
    "se": "se",
    "ci_lb": "ci_lb",
    "ci_ub": "ci_ub",
    "tau2": "tau2",
    "I2": "i2",
    "H2": "h2",
    "QE": "q",
    "QEp": "q_p",
    "pi_lb": "pi_lb",
    "pi_ub": "pi_ub",
    "se_tau2": "se_tau2",
    "pval": "pval",
    "zval": "zval",
}


@pytest.mark.parametrize("dataset", ["eight_schools", "bcg"])
@pytest.mark.parametrize("method", ["REML", "DL"])
def test_matches_metafor_to_1e6(metafor_ref, dataset, method):
    d = metafor_ref[dataset]
    fit = random_effects(d["yi"], d["vi"], method).as_dict()
    ref = d[method]
    for theirs, ours in FIELDS.items():
        assert fit[ours] == pytest.approx(ref[theirs], abs=1e-6, rel=0), theirs


@pytest.mark.parametrize("dataset", ["eight_schools", "bcg"])
def test_restricted_loglik_matches_metafor(metafor_ref, dataset):
    d = metafor_ref[dataset]
    table = d["REML_ll_fixed_tau"]
    for tau, ll in zip(table["tau"], table["ll"], strict=True):
        assert restricted_loglik(tau**2, np.array(d["yi"]), np.array(d["vi"])) == pytest.approx(ll, abs=1e-9)


def test_reml_at_tight_threshold_matches_cochrane_corpus(cochrane_subset):
    worst = 0.0
    for case in cochrane_subset:
        fit = random_effects(case["yi"], case["vi"], "REML", threshold=1e-10)
        for key, ours in (
            ("mu", fit.mu),
            ("se", fit.se),
            ("tau2", fit.tau2),
            ("pi_lb", fit.pi_lb),
            ("pi_ub", fit.pi_ub),
            ("ci_lb", fit.ci_lb),
            ("I2", fit.i2),
            ("Q", fit.q),
        ):
            diff = abs(ours - case["reml"][key])
            worst = max(worst, diff)
            assert diff < 1e-6, (case["analysis_key"], key, ours, case["reml"][key])
    assert worst < 1e-6


def test_dl_matches_cochrane_corpus(cochrane_subset):
    for case in cochrane_subset:
        fit = random_effects(case["yi"], case["vi"], "DL")
        for key, ours in (("mu", fit.mu), ("tau2", fit.tau2), ("pi_lb", fit.pi_lb), ("I2", fit.i2)):
            assert ours == pytest.approx(case["dl"][key], abs=1e-8), (case["analysis_key"], key)


def test_single_study():
    fit = random_effects([0.3], [0.04])
    assert (fit.mu, fit.se, fit.tau2) == (0.3, 0.2, 0.0)
    assert fit.i2 == 0.0  # metafor: I2 = 0 at k = 1 (tests/data/metafor/edge_cases.json "k1")
    assert fit.pi_lb == pytest.approx(0.3 - 1.959963984540054 * 0.2)


@pytest.mark.parametrize(
    "yi, vi", [([], []), ([1.0], [0.0]), ([1.0, float("nan")], [1.0, 1.0]), ([1.0, 2.0], [1.0])]
)
def test_bad_input_is_rejected(yi, vi):
    with pytest.raises(ValueError):
        random_effects(yi, vi)
