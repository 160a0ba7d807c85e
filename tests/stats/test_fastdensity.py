"""The sampler's numba density against the PyMC model (the specification) and dense algebra."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from peerevidence.stats import fastdensity
from peerevidence.stats.exact import SharedBias, conditionals
from peerevidence.stats.model import FitData, Priors, build_model, model_data
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

TAU_PRIORS = ["halfnormal:0.5", "halfcauchy:0.3", "uniform:2", "lognormal2:-2.5:1.9", "logt2:-3.4:2.6"]
MU_PRIORS = ["normal:0.1:0.8", "flat"]


def _data(bcg, shared: bool) -> FitData:
    """BCG (log RR, k = 13) with, for the shared variant, two designs of shared bias, a bias
    mean and study-level extra variance on some studies."""
    y, v = bcg
    k = y.size
    if not shared:
        return FitData(tuple(f"s{i}" for i in range(k)), y, v)
    group = np.array([-1] * 5 + [0] * 5 + [1] * 3)
    return FitData(
        tuple(f"s{i}" for i in range(k)),
        y,
        v,
        bias_mean=np.where(group == 0, 0.2, 0.0),
        bias_var=np.where(group == 1, 0.01, 0.0),
        inflation=np.where(group == 1, 1.5, 1.0),
        bias_group=group,
        group_var=np.array([0.0625, 0.09]),
        group_names=("cohort", "before_after"),
    )


def _dense_loglik(y, v, group, group_var, t, mu_prior):
    """log p(y | tau^2 = t) by dense linear algebra (scipy's multivariate normal)."""
    cov = np.diag(v + t)
    for g, s2 in enumerate(group_var):
        d = (group == g).astype(float)
        cov += s2 * np.outer(d, d)
    if mu_prior.family == "normal":
        m0, s0 = mu_prior.params
        return stats.multivariate_normal(np.full(y.size, m0), cov + s0**2).logpdf(y)
    prec = np.linalg.inv(cov)
    one = np.ones(y.size)
    p1, py = one @ prec @ one, one @ prec @ y
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * ((y.size - 1) * math.log(2 * math.pi) + logdet + math.log(p1) + y @ prec @ y - py**2 / p1)


@pytest.mark.parametrize("mu", MU_PRIORS)
def test_woodbury_marginal_equals_dense_covariance(bcg, mu):
    data = _data(bcg, shared=True)
    y, v = data.adjusted()
    shared = data.shared()
    prior = parse_mu_prior(mu)
    taus = np.array([1e-4, 0.05, 0.3, 1.0, 7.0])
    ll, _, _ = conditionals(taus, y, v, prior, shared=shared)
    buf = data.packed(Priors(prior, parse_tau_prior("halfnormal:0.5")))
    for tau, ours in zip(taus, ll, strict=True):
        dense = _dense_loglik(y, v, shared.group, shared.var, tau**2, prior)
        assert ours == pytest.approx(dense, abs=1e-9)
        fast = fastdensity.marginal(
            tau**2, y, v, shared.group.astype(float), shared.var, buf[2], buf[4], buf[5]
        )
        assert fast[0] == pytest.approx(dense, abs=1e-9)
        # derivative in t against a central difference of the dense form
        h = 1e-5 * max(tau**2, 1e-2)
        num = (
            _dense_loglik(y, v, shared.group, shared.var, tau**2 + h, prior)
            - _dense_loglik(y, v, shared.group, shared.var, tau**2 - h, prior)
        ) / (2 * h)
        assert fast[1] == pytest.approx(num, rel=1e-5, abs=1e-6)


def _points(rng, family):
    x0 = rng.uniform(-3.0, 3.0, 25)
    if family == "logt2":
        x0 = rng.uniform(-12.0, 3.0, 25)
    return np.column_stack([x0, rng.uniform(-3, 3, 25)])


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["plain", "shared"])
@pytest.mark.parametrize("mu", MU_PRIORS)
@pytest.mark.parametrize("tau", TAU_PRIORS)
def test_fast_density_equals_the_pymc_model(bcg, variant, mu, tau):
    """The PyMC model's own logp and dlogp (build_model) at 25 points, to 1e-8."""
    data = _data(bcg, shared=variant == "shared")
    priors = Priors(parse_mu_prior(mu), parse_tau_prior(tau))
    shared = data.shared()
    model = build_model(priors.mu.family, priors.tau.family, data.k, 0 if shared is None else shared.var.size)
    import pymc as pm

    with model:
        pm.set_data(model_data(data, priors))
    both = model.compile_fn([model.logp(), model.dlogp()])  # one compile for logp and dlogp
    x0_name = "log_tau2" if priors.tau.family == "logt2" else "tau_z"
    buf = data.packed(priors)
    rng = np.random.default_rng(20150703)
    for x0, z in _points(rng, priors.tau.family):
        point = {x0_name: np.array(x0), "z": np.array(z)}
        ref_logp, grad = both(point)
        ref = float(ref_logp)
        grad = np.asarray(grad)
        order = [v.name for v in model.value_vars]
        ref_grad = dict(zip(order, grad, strict=True))
        ours, g0, g1, _, _ = fastdensity.evaluate(buf, x0, z)
        assert ours == pytest.approx(ref, abs=1e-8, rel=1e-10), (x0, z)
        assert g0 == pytest.approx(ref_grad[x0_name], abs=1e-8, rel=1e-8), (x0, z)
        assert g1 == pytest.approx(ref_grad["z"], abs=1e-8), (x0, z)


@pytest.mark.parametrize("mu", MU_PRIORS)
@pytest.mark.parametrize("tau", TAU_PRIORS)
def test_extreme_proposals_give_finite_or_minus_inf_never_nan(bcg, mu, tau):
    data = _data(bcg, shared=True)
    buf = data.packed(Priors(parse_mu_prior(mu), parse_tau_prior(tau)))
    for x0 in (-1e4, -800.0, -60.0, -38.0, -8.0, 8.0, 38.0, 60.0, 800.0, 1e4, math.inf, -math.inf):
        for z in (-50.0, 0.0, 50.0):
            logp, g0, g1, _, _ = fastdensity.evaluate(buf, x0, z)
            assert not math.isnan(logp), (x0, z)
            assert logp == -math.inf or (math.isfinite(logp) and math.isfinite(g0) and math.isfinite(g1)), (
                x0,
                z,
                logp,
                g0,
            )


def test_one_study_and_single_study_groups(bcg):
    """k = 1 and a group holding one study evaluate like the dense form."""
    y, v = bcg
    prior = parse_mu_prior("normal:0:1")
    for k in (1, 2):
        group = np.zeros(k, int)
        shared = SharedBias(group, np.array([0.04]))
        ll, _, _ = conditionals(np.array([0.2]), y[:k], v[:k], prior, shared=shared)
        assert ll[0] == pytest.approx(_dense_loglik(y[:k], v[:k], group, shared.var, 0.04, prior), abs=1e-10)
