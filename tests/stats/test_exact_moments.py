"""Issue 12, defect 6: posterior moments that do not exist are reported as undefined.

The expected table is worked out by hand from the tails (see ``moments_exist``'s docstring):
p(tau | y) ~ p(tau) tau^-a with a = k (normal mu prior) or k - 1 (flat); half-Cauchy
p ~ tau^-2 gives E tau^r < inf iff r < a + 1; log-t on tau^2, p ~ tau^-1 (log tau)^-6, iff
r <= a; lighter tails always; with a flat mu prior mu's moments follow tau's.  The tail
exponent a is also checked numerically against the likelihood itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from peerevidence.stats.exact import conditionals, exact_posterior, moments_exist, summarise
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

NORMAL, FLAT = "normal:0:1", "flat"
# (k, mu prior, tau prior) -> (mu mean, mu sd, tau mean, tau sd, theta_new mean, theta_new sd)
T, F = True, False
TABLE = [
    (1, NORMAL, "halfcauchy:0.5", (T, T, T, F, T, F)),
    (1, NORMAL, "rhodes2015:overall", (T, T, T, F, T, F)),
    (1, NORMAL, "halfnormal:0.5", (T, T, T, T, T, T)),
    (1, NORMAL, "turner2015:mental_health", (T, T, T, T, T, T)),
    (2, NORMAL, "halfcauchy:0.5", (T, T, T, T, T, T)),
    (2, NORMAL, "logt2:-3:2", (T, T, T, T, T, T)),
    (1, FLAT, "halfcauchy:0.5", (F, F, F, F, F, F)),
    (1, FLAT, "logt2:-3:2", (F, F, F, F, F, F)),
    (2, FLAT, "halfcauchy:0.5", (T, F, T, F, T, F)),
    (2, FLAT, "rhodes2015:mental_health", (T, F, T, F, T, F)),
    (3, FLAT, "halfcauchy:0.5", (T, T, T, T, T, T)),
    (3, FLAT, "logt2:-3:2", (T, T, T, T, T, T)),
    (1, FLAT, "halfnormal:0.5", (T, T, T, T, T, T)),
    (1, FLAT, "uniform:2", (T, T, T, T, T, T)),
]


@pytest.mark.parametrize("k,mu,tau,expected", TABLE)
def test_moments_exist_table(k, mu, tau, expected):
    m = moments_exist(k, parse_mu_prior(mu), parse_tau_prior(tau))
    got = (m.mu_mean, m.mu_sd, m.tau_mean, m.tau_sd, m.theta_new_mean, m.theta_new_sd)
    assert got == expected


@pytest.mark.parametrize("k,mu,a", [(1, NORMAL, 1), (2, NORMAL, 2), (2, FLAT, 1), (3, FLAT, 2), (1, FLAT, 0)])
def test_likelihood_tail_exponent(k, mu, a):
    """d log L / d log tau -> -a for large tau: the a the rule uses."""
    rng = np.random.default_rng(k)
    y, v = rng.normal(size=k), rng.uniform(0.05, 0.5, size=k)
    tau = np.array([1e6, 1e7])
    loglik, _, _ = conditionals(tau, y, v, parse_mu_prior(mu))
    slope = (loglik[1] - loglik[0]) / math.log(10)
    assert slope == pytest.approx(-a, abs=1e-3)


def test_exact_summaries_print_null_for_missing_moments():
    post = exact_posterior([0.3], [0.04], parse_mu_prior(NORMAL), parse_tau_prior("halfcauchy:0.5"))
    s = summarise(post, with_theta=False)
    assert s["tau"]["mean"] is not None and s["tau"]["sd"] is None
    assert s["theta_new"]["sd"] is None
    assert s["mu"]["sd"] is not None


def test_flat_mu_k2_heavy_tail_has_no_mu_sd():
    """The issue's case: a flat mu prior, k = 2 and a half-Cauchy tau gave a mu SD of 1,120."""
    post = exact_posterior([0.2, 0.5], [0.05, 0.08], parse_mu_prior(FLAT), parse_tau_prior("halfcauchy:1"))
    s = summarise(post, with_theta=False)
    assert s["mu"]["mean"] is not None and s["mu"]["sd"] is None
    assert s["tau"]["sd"] is None
    assert not post.moments_exist
    assert post.moments.as_dict()["mu"] == {"mean": True, "sd": False}


def test_rhodes_k1_has_no_tau_sd():
    post = exact_posterior([0.3], [0.04], parse_mu_prior(NORMAL), parse_tau_prior("rhodes2015:mental_health"))
    s = summarise(post, with_theta=False)
    assert s["tau"]["sd"] is None and s["theta_new"]["sd"] is None
