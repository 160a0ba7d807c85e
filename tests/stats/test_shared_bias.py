"""Shared design bias (issue 12, defect 4): its limits in closed form and by exact quadrature.

Studies of one design share beta ~ N(m, s^2) (Welton et al. 2009; Turner et al. 2009).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from peerevidence.stats.exact import SharedBias, exact_posterior
from peerevidence.stats.model import FitData, Priors
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

PRIORS = Priors(parse_mu_prior("normal:0:1"), parse_tau_prior("halfnormal:0.5"))


def _biased(bcg, s: float, n_biased: int = 4, shift: float = 1.5) -> FitData:
    """BCG plus ``n_biased`` studies of one non-randomised design far above the rest."""
    y, v = bcg
    k = y.size
    extra = np.linspace(-0.2, 0.2, n_biased) + shift
    return FitData(
        tuple(f"s{i}" for i in range(k + n_biased)),
        np.append(y, extra),
        np.append(v, np.full(n_biased, 0.02)),
        bias_group=np.append(np.full(k, -1), np.zeros(n_biased, int)),
        group_var=np.array([s**2]),
        group_names=("cohort",),
    )


def test_vanishing_shared_bias_sd_is_the_plain_model(bcg):
    biased = _biased(bcg, s=1e-9)
    plain = exact_posterior(biased.yi, biased.vi, PRIORS.mu, PRIORS.tau)
    shared = biased.exact_posterior(PRIORS.mu, PRIORS.tau)
    for name in ("mean", "sd", "q025", "q50", "q975"):
        assert getattr(shared.mu(), name) == pytest.approx(getattr(plain.mu(), name), abs=1e-9)
    assert shared.tau_summary().q50 == pytest.approx(plain.tau_summary().q50, abs=1e-9)


def test_huge_shared_bias_sd_stops_the_design_moving_mu(bcg):
    """s -> inf: given tau, mu's conditional mean and variance are those without the biased
    design (closed form), and the design's studies still inform tau only through their
    spread around their own mean."""
    y, v = bcg
    huge = _biased(bcg, s=1e5)
    post = huge.exact_posterior(PRIORS.mu, PRIORS.tau)
    without = exact_posterior(y, v, PRIORS.mu, PRIORS.tau)
    # the conditional of mu given tau, node by node: closed form without the design
    m0, s0 = PRIORS.mu.params
    w = 1.0 / (v[None, :] + post.tau[:, None] ** 2)
    prec = 1 / s0**2 + w.sum(axis=1)
    np.testing.assert_allclose(post.s2, 1 / prec, rtol=1e-8)
    np.testing.assert_allclose(post.m, (m0 / s0**2 + (w * y).sum(axis=1)) / prec, rtol=1e-7, atol=1e-9)
    # the biased design moved mu a lot without the shared bias, and not at all with a huge one
    plain = exact_posterior(huge.yi, huge.vi, PRIORS.mu, PRIORS.tau).mu()
    assert plain.mean - without.mu().mean > 1.0 * without.mu().sd
    assert abs(post.mu().mean - without.mu().mean) < 0.25 * without.mu().sd


def test_one_study_design_with_huge_sd_is_the_analysis_without_it(bcg):
    y, v = bcg
    one = _biased(bcg, s=1e5, n_biased=1)
    without = exact_posterior(y, v, PRIORS.mu, PRIORS.tau)
    post = one.exact_posterior(PRIORS.mu, PRIORS.tau)
    assert post.mu().mean == pytest.approx(without.mu().mean, abs=1e-6)
    assert post.mu().sd == pytest.approx(without.mu().sd, rel=1e-6)
    assert post.tau_summary().q50 == pytest.approx(without.tau_summary().q50, rel=1e-6)


@pytest.mark.parametrize("n_biased", [50, 500])
def test_many_biased_studies_cannot_shrink_mu_below_the_bias_sd(bcg, n_biased):
    """With only biased studies, Var(mu | tau, y) = 1 / (1/s0^2 + A/(1 + s^2 A)) >
    1 / (1/s0^2 + 1/s^2) for every tau, however many studies (A = sum of weights)."""
    s = 0.25
    rng = np.random.default_rng(5)
    data = FitData(
        tuple(f"s{i}" for i in range(n_biased)),
        0.5 + 0.1 * rng.standard_normal(n_biased),
        np.full(n_biased, 0.01),
        bias_group=np.zeros(n_biased, int),
        group_var=np.array([s**2]),
    )
    post = data.exact_posterior(PRIORS.mu, PRIORS.tau)
    floor = math.sqrt(1 / (1 / PRIORS.mu.params[1] ** 2 + 1 / s**2))
    assert np.all(post.s2 >= floor**2 * (1 - 1e-12))
    assert post.mu().sd >= floor
    assert post.mu().sd == pytest.approx(floor, rel=0.02)  # the floor is reached for large k
    independent = exact_posterior(data.yi, data.vi + s**2, PRIORS.mu, PRIORS.tau).mu()
    assert independent.sd < 0.5 * floor  # independent biases would shrink it (the old model)


def test_shared_theta_summaries_match_dense_conditioning(bcg):
    """theta_i | tau, y from the bivariate (mu, beta) conditional equals dense Gaussian
    conditioning of the joint (mu, beta, theta, y) at one tau."""
    data = _biased(bcg, s=0.3, n_biased=3)
    y, v = data.adjusted()
    shared = data.shared()
    post = data.exact_posterior(PRIORS.mu, PRIORS.tau)
    node = post.tau.size // 2
    tau = post.tau[node]
    k = y.size
    m0, s0 = PRIORS.mu.params
    # joint of (mu, beta, theta_1..k) and y: y = theta + D beta + e
    d = shared.onehot()[:, 0]
    n = 2 + k
    mean = np.concatenate([[m0, 0.0], np.full(k, m0)])
    cov = np.zeros((n, n))
    cov[0, 0] = s0**2
    cov[1, 1] = shared.var[0]
    cov[2:, 2:] = np.eye(k) * tau**2 + s0**2
    cov[0, 2:] = cov[2:, 0] = s0**2
    a = np.zeros((k, n))
    a[:, 1] = d
    a[:, 2:] = np.eye(k)
    cov_y = a @ cov @ a.T + np.diag(v)
    gain = cov @ a.T @ np.linalg.inv(cov_y)
    cond_mean = mean + gain @ (y - a @ mean)
    cond_cov = cov - gain @ a @ cov
    t2 = post.tau**2
    b = v[:, None] / (v[:, None] + t2[None, :])
    means = (1 - b) * y[:, None] + b * post.m[None, :]
    variances = b * t2[None, :] + b**2 * post.s2[None, :]
    got_m, got_v = post._shared_theta(np.arange(k), b, means, variances)
    np.testing.assert_allclose(got_m[:, node], cond_mean[2:], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_v[:, node], np.diag(cond_cov)[2:], rtol=1e-8, atol=1e-14)
    assert isinstance(shared, SharedBias)


@pytest.mark.slow
def test_sampled_shared_bias_fit_meets_the_exact_posterior_and_criteria(bcg):
    """The sampler (numba density) on a shared-bias analysis: exact check, ESS, R-hat, no
    divergences, with 200 studies sharing one design bias."""
    from peerevidence.records.schema import SamplerSettings
    from peerevidence.stats.model import fit

    s = 0.25
    data = _biased(bcg, s=s, n_biased=200, shift=0.8)
    result = fit(data, PRIORS, SamplerSettings(seed=3))
    summary = result.summary
    assert summary.ok, summary.exact_check
    d = summary.diagnostics
    assert d.ess_bulk_min >= 1000 and d.rhat_max <= 1.01 and d.divergences == 0
    assert result.idata.constant_data["group_var"].values.tolist() == [s**2]
