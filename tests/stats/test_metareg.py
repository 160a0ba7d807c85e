"""Meta-regression, subgroup test, leave-one-out, cumulative and regtest against metafor 3.8-1.

Reference numbers: tests/data/metafor/metareg_bcg.json, made by
tests/data/metafor/make_metareg_reference.R (dat.bcg, Colditz et al. 1994).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from peerevidence.stats.metareg import (
    cumulative,
    design_matrix,
    leave_one_out,
    meta_regression,
    multilevel,
    regtest,
    subgroup_test,
    vcalc,
)

REF = json.loads((Path(__file__).parents[1] / "data" / "metafor" / "metareg_bcg.json").read_text("utf-8"))
DATA = REF["data"]
Y = np.array(DATA["yi"])
V = np.array(DATA["vi"])
TOL = 1e-6


def close(a, b, tol=TOL):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=tol)


def _check_fit(fit, ref):
    assert list(fit.names) == ref["names"]
    for ours, theirs in (
        ("beta", "beta"),
        ("se", "se"),
        ("zval", "zval"),
        ("pval", "pval"),
        ("ci_lb", "ci_lb"),
        ("ci_ub", "ci_ub"),
    ):
        close(getattr(fit, ours), np.atleast_1d(ref[theirs]))
    close(fit.tau2, ref["tau2"])
    close(fit.se_tau2, ref["se_tau2"])
    close(fit.qm, ref["QM"])
    assert fit.qm_df == ref["QMdf"]
    close(fit.qm_p, ref["QMp"])
    close(fit.qe, ref["QE"])
    close(fit.qe_p, ref["QEp"])
    close(fit.i2, ref["I2"])
    close(fit.h2, ref["H2"])
    close(fit.r2, ref["R2"])
    close(fit.ll_reml, ref["ll_reml"])
    assert (fit.k, fit.p) == (ref["k"], ref["p"])


@pytest.mark.parametrize(
    "case, moderators", [("ablat_alloc", ["ablat", "alloc"]), ("ablat", ["ablat"]), ("alloc", ["alloc"])]
)
def test_meta_regression_matches_metafor(case, moderators):
    X, names, _ = design_matrix({"ablat": DATA["ablat"], "alloc": DATA["alloc"]}, moderators)
    _check_fit(meta_regression(Y, V, X, names), REF[case])


def test_subgroup_test_matches_metafor():
    test = subgroup_test(Y, V, DATA["alloc"], "alloc")
    ref = REF["alloc"]
    close(test.qm, ref["QM"])
    assert test.qm_df == 2
    close(test.qm_p, ref["QMp"])
    close(test.tau2_residual, ref["tau2"])
    assert [g.group for g in test.groups] == [s["group"] for s in REF["subgroups"]]
    for ours, theirs in zip(test.groups, REF["subgroups"], strict=True):
        assert ours.k == theirs["k"]
        close([ours.mu, ours.se, ours.ci_lb, ours.ci_ub], [theirs[x] for x in ("mu", "se", "ci_lb", "ci_ub")])
        close(ours.fit.tau2, theirs["tau2"])


def test_leave_one_out_matches_metafor():
    fits = leave_one_out(Y, V)
    ref = REF["leave1out"]
    close([f.mu for f in fits], ref["estimate"])
    close([f.se for f in fits], ref["se"])
    close([f.ci_lb for f in fits], ref["ci_lb"])
    close([f.ci_ub for f in fits], ref["ci_ub"])
    close([f.tau2 for f in fits], ref["tau2"])
    close([f.q for f in fits], ref["Q"])
    close([f.i2 for f in fits], ref["I2"])


def test_cumulative_matches_metafor():
    order, fits = cumulative(Y, V, DATA["year"])
    ref = REF["cumulative"]
    assert [i + 1 for i in order] == ref["order"]
    # metafor's first row (k = 1) has tau2 = 0 and the study's own estimate
    close([f.mu for f in fits], ref["estimate"])
    close([f.se for f in fits], ref["se"])
    close([f.ci_lb for f in fits], ref["ci_lb"])
    close([f.tau2 for f in fits], ref["tau2"])


@pytest.mark.parametrize(
    "case, model, predictor",
    [
        ("regtest_rma_sei", "rma", "sei"),
        ("regtest_lm_sei", "lm", "sei"),
        ("regtest_rma_vi", "rma", "vi"),
    ],
)
def test_regtest_matches_metafor(case, model, predictor):
    r = regtest(Y, V, model=model, predictor=predictor)
    ref = REF[case]
    close(
        [r.zval, r.pval, r.est, r.ci_lb, r.ci_ub], [ref[x] for x in ("zval", "pval", "est", "ci_lb", "ci_ub")]
    )
    if model == "lm":
        assert r.df == ref["dfs"]


def test_peters_test_matches_metafor():
    r = regtest(DATA["yi_or"], DATA["vi_or"], model="lm", predictor="ninv", ni=DATA["ni"])
    ref = REF["regtest_peters"]
    close(
        [r.zval, r.pval, r.est, r.ci_lb, r.ci_ub], [ref[x] for x in ("zval", "pval", "est", "ci_lb", "ci_ub")]
    )
    assert r.df == 11


def test_design_matrix_treatment_contrasts():
    X, names, groups = design_matrix({"g": ["b", "a", "c", "a"], "x": [1.0, 2.0, 3.0, 4.0]}, ["g", "x"])
    assert names == ("intrcpt", "gb", "gc", "x")
    assert groups == {"g": [1, 2], "x": [3]}
    np.testing.assert_array_equal(X[:, 1], [1, 0, 0, 0])
    np.testing.assert_array_equal(X[:, 2], [0, 0, 1, 0])


@pytest.mark.parametrize(
    "yi, vi, X, message",
    [
        ([0.1, 0.2], [0.1, 0.1], [[1, 0], [1, 1]], "cannot estimate"),
        ([0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.1, 0.1], [[1, 1], [1, 1], [1, 1], [1, 1]], "collinear"),
        ([0.1, 0.2, 0.3], [0.1, -0.1, 0.1], [[1], [1], [1]], "vi finite and > 0"),
    ],
)
def test_bad_input_is_a_clear_value_error(yi, vi, X, message):
    with pytest.raises(ValueError, match=message):
        meta_regression(yi, vi, X)


def test_single_level_moderator_is_rejected():
    with pytest.raises(ValueError, match="single level"):
        design_matrix({"g": ["a", "a", "a"]}, ["g"])


ML = json.loads(
    (Path(__file__).parents[1] / "data" / "metafor" / "metareg_multilevel.json").read_text("utf-8")
)


@pytest.mark.parametrize("fit", ML["fits"], ids=lambda f: f"rho={f['rho']}")
def test_multilevel_matches_rma_mv_with_vcalc(fit):
    """rma.mv(yi, vcalc(vi, district, obs = school, rho), random = ~ 1 | district/school)."""
    d = ML["data"]
    V = vcalc(d["vi"], d["district"], fit["rho"])
    m = multilevel(d["yi"], V, d["district"])
    close([m.beta[0], m.se[0], m.ci_lb[0], m.ci_ub[0]], [fit["beta"], fit["se"], fit["ci_lb"], fit["ci_ub"]])
    close(m.sigma2, fit["sigma2"])
    close(m.ll_reml, fit["ll_reml"])
    assert (m.k, m.clusters) == (56, 11)


def test_vcalc_correlates_results_of_one_cluster_only():
    V = vcalc([0.04, 0.09, 0.01], ["a", "a", "b"], 0.5)
    np.testing.assert_allclose(V, [[0.04, 0.5 * 0.2 * 0.3, 0], [0.03, 0.09, 0], [0, 0, 0.01]])
