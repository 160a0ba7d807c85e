"""The exact posterior (quadrature over tau) against independent computations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from peerevidence.stats.exact import conditionals, exact_posterior, summarise
from peerevidence.stats.frequentist import restricted_loglik
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior


def grid_posterior(y, v, mu_prior, tau_prior, mu_lim, tau_max, n_mu=1501, n_tau=2001):
    """Brute force: the joint density on a (tau, mu) grid, trapezoid rule; no shared code."""
    mu = np.linspace(*mu_lim, n_mu)
    u = np.linspace(0.0, 1.0, n_tau, endpoint=False)  # tau = c u / (1 - u)
    c = tau_max / 20
    tau = c * u / (1 - u)
    dtau = c / (1 - u) ** 2
    logp = np.empty((n_tau, n_mu))
    for j in range(n_tau):
        sd = np.sqrt(v[None, :] + tau[j] ** 2)
        logp[j] = stats.norm.logpdf(y[None, :], mu[:, None], sd).sum(axis=1)
    logp += mu_prior.logpdf(mu)[None, :] + tau_prior.logpdf(tau)[:, None]
    p = np.exp(logp - logp.max()) * dtau[:, None]
    z = np.trapezoid(np.trapezoid(p, mu, axis=1), u)
    p_mu = np.trapezoid(p, u, axis=0) / z
    p_tau = np.trapezoid(p, mu, axis=1) / z
    cdf_mu = np.concatenate([[0], np.cumsum((p_mu[1:] + p_mu[:-1]) / 2 * np.diff(mu))])
    cdf_tau = np.concatenate([[0], np.cumsum((p_tau[1:] + p_tau[:-1]) / 2 * np.diff(u))])
    return {
        "mu_mean": np.trapezoid(p_mu * mu, mu),
        "mu_q": np.interp([0.025, 0.5, 0.975], cdf_mu, mu),
        "tau_mean": np.trapezoid(p_tau * tau, u),
        "tau_q50": np.interp(0.5, cdf_tau, tau),
        "p_pos": 1 - np.interp(0.0, mu, cdf_mu),
    }


@pytest.mark.parametrize("case", ["eight_schools", "bcg"])
def test_quadrature_agrees_with_brute_force_grid(case, eight_schools, bcg):
    if case == "eight_schools":
        (y, v), mp, tp, mu_lim, tau_max = eight_schools, "normal:0:100", "halfcauchy:25", (-60, 80), 400
    else:
        (y, v), mp, tp, mu_lim, tau_max = bcg, "normal:0:1", "halfnormal:0.5", (-3, 2), 3
    mu_prior, tau_prior = parse_mu_prior(mp), parse_tau_prior(tp)
    exact = summarise(exact_posterior(y, v, mu_prior, tau_prior), with_theta=False)
    brute = grid_posterior(y, v, mu_prior, tau_prior, mu_lim, tau_max)
    sd = exact["mu"]["sd"]
    assert abs(exact["mu"]["mean"] - brute["mu_mean"]) < 2e-3 * sd
    for q, b in zip(("q025", "q50", "q975"), brute["mu_q"], strict=True):
        assert abs(exact["mu"][q] - b) < 5e-3 * sd, q
    assert exact["tau"]["mean"] == pytest.approx(brute["tau_mean"], rel=2e-3)
    assert exact["tau"]["q50"] == pytest.approx(brute["tau_q50"], rel=5e-3)
    assert exact["p_mu_gt_0"] == pytest.approx(brute["p_pos"], abs=2e-3)


def test_tau_near_zero_gives_the_conjugate_fixed_effect_posterior(bcg):
    y, v = bcg
    m0, s0 = 0.0, 1.0
    post = exact_posterior(y, v, parse_mu_prior(f"normal:{m0}:{s0}"), parse_tau_prior("halfnormal:1e-7"))
    prec = 1 / s0**2 + np.sum(1 / v)
    mean = (m0 / s0**2 + np.sum(y / v)) / prec
    sd = math.sqrt(1 / prec)
    s = post.mu()
    assert s.mean == pytest.approx(mean, abs=1e-9)
    assert s.sd == pytest.approx(sd, rel=1e-6)
    assert s.q975 == pytest.approx(mean + 1.959963984540054 * sd, abs=1e-7)
    assert post.p_mu_gt(0.0) == pytest.approx(stats.norm.sf(0, mean, sd), abs=1e-9)


def test_single_study_with_flat_mu_leaves_tau_at_its_prior():
    # p(y | tau) = integral N(y; mu, v + tau^2) d mu = 1 for every tau: posterior = prior
    post = exact_posterior(
        np.array([0.3]), np.array([0.04]), parse_mu_prior("flat"), parse_tau_prior("halfnormal:0.5")
    )
    tau = post.tau_summary()
    for q, value in (("q025", 0.025), ("q50", 0.5), ("q975", 0.975)):
        expected = 0.5 * math.sqrt(2) * special.erfinv(value)
        assert getattr(tau, q) == pytest.approx(expected, rel=1e-6), q
    assert tau.mean == pytest.approx(0.5 * math.sqrt(2 / math.pi), rel=1e-6)


def test_flat_mu_marginal_is_the_restricted_likelihood(eight_schools):
    y, v = eight_schools
    taus = np.array([0.5, 2.0, 5.0, 12.0])
    loglik, _, _ = conditionals(taus, y, v, parse_mu_prior("flat"))
    reml = np.array([restricted_loglik(t**2, y, v) for t in taus])
    # equal up to a constant (metafor adds log(k)/2)
    np.testing.assert_allclose(np.diff(loglik), np.diff(reml), atol=1e-10)


def test_theta_new_is_wider_than_mu_and_theta_shrinks(eight_schools):
    y, v = eight_schools
    post = exact_posterior(y, v, parse_mu_prior("normal:0:100"), parse_tau_prior("halfnormal:10"))
    mu, new = post.mu(), post.theta_new()
    assert new.sd > mu.sd
    assert new.mean == pytest.approx(mu.mean)
    school_a = post.theta(0)  # y = 28: shrunk towards mu
    assert mu.mean < school_a.mean < 28


def test_heavy_tails_report_no_moments_for_one_study():
    post = exact_posterior(
        np.array([0.3]), np.array([0.04]), parse_mu_prior("normal:0:1"), parse_tau_prior("halfcauchy:0.5")
    )
    s = summarise(post, with_theta=False)
    assert s["tau"]["sd"] is None and s["theta_new"]["sd"] is None
    assert s["tau"]["q025"] < s["tau"]["q50"] < s["tau"]["q975"]


def test_every_theta_quantile_matches_an_independent_root_finder(eight_schools):
    """The vectorised Newton solver against scipy's Brent on each study's mixture CDF."""
    from scipy import optimize

    y, v = eight_schools
    post = exact_posterior(y, v, parse_mu_prior("normal:0:100"), parse_tau_prior("halfcauchy:25"))
    summaries = post.thetas()
    t2 = post.tau**2
    for i, s in enumerate(summaries):
        b = v[i] / (v[i] + t2)
        means = (1 - b) * y[i] + b * post.m
        sds = np.sqrt(np.maximum(b * t2 + b**2 * post.s2, 1e-300))

        def gap(x, q, means=means, sds=sds):
            return float(np.sum(post.weight * stats.norm.cdf((x - means) / sds))) - q

        for q, got in ((0.025, s.q025), (0.5, s.q50), (0.975, s.q975)):
            want = optimize.brentq(gap, -200, 200, args=(q,), xtol=1e-13)
            assert got == pytest.approx(want, abs=1e-8), (i, q)
