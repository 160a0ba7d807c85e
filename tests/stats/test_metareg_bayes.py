"""The exact Bayesian meta-regression against (1) the intercept-only exact posterior of
peerevidence.stats.exact (itself checked against MCMC) and (2) brute-force integration over a
3-D grid of (beta_0, beta_1, tau), which shares no code with the conjugate quadrature.

Data: dat.bcg log risk ratios and absolute latitude (tests/data/metafor/metareg_bcg.json,
from metafor's metadat package; see make_metareg_reference.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from peerevidence.stats.exact import exact_posterior
from peerevidence.stats.metareg_bayes import BetaPrior, exact_metareg, predictive_probabilities
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

REF = json.loads((Path(__file__).parents[1] / "data" / "metafor" / "metareg_bcg.json").read_text("utf-8"))
Y = np.array(REF["data"]["yi"])
V = np.array(REF["data"]["vi"])
LAT = (np.array(REF["data"]["ablat"]) - 33.0) / 10.0  # centred, per 10 degrees
TAU = parse_tau_prior("halfnormal:0.5")


def test_intercept_only_equals_the_exact_posterior():
    X = np.ones((Y.size, 1))
    reg = exact_metareg(Y, V, X, BetaPrior.from_specs(["normal:0:1"]), TAU, ["intrcpt"])
    ref = exact_posterior(Y, V, parse_mu_prior("normal:0:1"), TAU)
    ours, theirs = reg.coef("intrcpt"), ref.mu()
    for field in ("mean", "sd", "q025", "q50", "q975"):
        assert getattr(ours, field) == pytest.approx(getattr(theirs, field), abs=1e-9)
    assert reg.marginal("intrcpt").tau_summary().q50 == pytest.approx(ref.tau_summary().q50, abs=1e-9)
    assert reg.p_gt("intrcpt", 0.0) == pytest.approx(ref.p_mu_gt(0.0), abs=1e-12)


@pytest.fixture(scope="module")
def grid_posterior():
    """p(beta0, beta1, tau | y) on a dense grid (tau in log space), normalised numerically."""
    b0 = np.linspace(-1.6, 0.4, 161)
    b1 = np.linspace(-0.9, 0.3, 161)
    s = np.linspace(np.log(1e-4), np.log(2.5), 300)
    tau = np.exp(s)
    B0, B1, T = np.meshgrid(b0, b1, tau, indexing="ij")
    log_post = TAU.logpdf(T) + np.log(T)  # density of s = log tau
    log_post += -0.5 * (B0**2 + B1**2)  # normal(0, 1) priors (constants cancel)
    for y, v, x in zip(Y, V, LAT, strict=True):
        var = v + T**2
        log_post += -0.5 * np.log(var) - 0.5 * (y - B0 - B1 * x) ** 2 / var
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    return B0, B1, T, w


def test_slope_matches_brute_force_integration(grid_posterior):
    B0, B1, T, w = grid_posterior
    X = np.column_stack([np.ones_like(LAT), LAT])
    reg = exact_metareg(Y, V, X, BetaPrior.from_specs(["normal:0:1", "normal:0:1"]), TAU, ["intrcpt", "lat"])
    slope = reg.coef("lat")
    mean = float(np.sum(w * B1))
    sd = float(np.sqrt(np.sum(w * B1**2) - mean**2))
    assert slope.mean == pytest.approx(mean, abs=1e-4)
    assert slope.sd == pytest.approx(sd, abs=1e-4)
    assert reg.p_gt("lat", -0.2) == pytest.approx(float(np.sum(w * (B1 > -0.2))), abs=3e-3)
    # a linear combination: the effect at latitude 43 (x = 1)
    at43 = reg.marginal([1.0, 1.0]).mu()
    assert at43.mean == pytest.approx(float(np.sum(w * (B0 + B1))), abs=1e-4)
    tau_mean = float(np.sum(w * T))
    assert reg.marginal("lat").tau_summary().mean == pytest.approx(tau_mean, abs=1e-4)


def test_predictive_probabilities_match_brute_force(grid_posterior):
    B0, _B1, T, w = grid_posterior
    X = np.column_stack([np.ones_like(LAT), LAT])
    reg = exact_metareg(Y, V, X, BetaPrior.from_specs(["normal:0:1", "normal:0:1"]), TAU, ["intrcpt", "lat"])
    above, below = predictive_probabilities(reg.marginal([1.0, 0.0]), 0.2)
    assert above == pytest.approx(float(np.sum(w * special.ndtr((B0 - 0.2) / T))), abs=1e-3)
    assert below == pytest.approx(float(np.sum(w * special.ndtr((-0.2 - B0) / T))), abs=1e-3)


def test_predictive_probabilities_agree_with_theta_new_quantiles():
    post = exact_posterior(Y, V, parse_mu_prior("normal:0:1"), TAU)
    q = post.theta_new()
    above, _ = predictive_probabilities(post, q.q975)
    _, below = predictive_probabilities(post, -q.q025)
    assert above == pytest.approx(0.025, abs=1e-8)
    assert below == pytest.approx(0.025, abs=1e-8)


def test_a_flat_coefficient_prior_is_refused():
    with pytest.raises(ValueError, match="normal prior"):
        BetaPrior.from_specs(["flat"])


@pytest.fixture(scope="session")
def mcmc_metareg():
    X = np.column_stack([np.ones_like(LAT), LAT])
    prior = BetaPrior.from_specs(["normal:0:1", "normal:0:1"])
    from peerevidence.stats.metareg_bayes import sample_metareg

    draws = sample_metareg(Y, V, X, prior, "halfnormal:0.5", draws=2000, tune=1000, chains=4, seed=20150703)
    return exact_metareg(Y, V, X, prior, TAU, ["intrcpt", "lat"]), draws


@pytest.mark.slow
def test_pymc_meta_regression_agrees_with_the_exact_posterior(mcmc_metareg):
    """The main model's rule (evidence/analysis.yaml tolerance_sd / tolerance_z): a summary
    fails when it is both more than 0.1 posterior SD and more than 5 Monte Carlo SEs away
    from the exact value."""
    import arviz as az

    exact, draws = mcmc_metareg

    def check(x, label, mean, sd, quantiles):
        err = abs(float(np.mean(x)) - mean)
        mcse = float(np.ravel(az.mcse(x, method="mean"))[0])
        assert not (err > 0.1 * sd and err > 5 * mcse), (label, "mean", err, mcse)
        for q, ref in quantiles:
            err = abs(float(np.quantile(x, q)) - ref)
            mcse = float(np.ravel(az.mcse(x, method="quantile", prob=q))[0])
            assert not (err > 0.1 * sd and err > 5 * mcse), (label, q, err, mcse)

    for j, name in enumerate(("intrcpt", "lat")):
        ex = exact.coef(name)
        check(
            draws["beta"][..., j], name, ex.mean, ex.sd, ((0.025, ex.q025), (0.5, ex.q50), (0.975, ex.q975))
        )
    t = exact.marginal("lat").tau_summary()
    check(draws["tau"], "tau", t.mean, t.sd, ((0.025, t.q025), (0.5, t.q50), (0.975, t.q975)))
