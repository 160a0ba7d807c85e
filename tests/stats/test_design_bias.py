"""Design-aware pooling (issue 7): the bias terms' two limits, exactly and in the PyMC model."""

from __future__ import annotations

import numpy as np
import pytest

from peerevidence.records.schema import SamplerSettings
from peerevidence.stats.exact import exact_posterior
from peerevidence.stats.model import FitData, Priors, fit
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

PRIORS = Priors(parse_mu_prior("normal:0:1"), parse_tau_prior("halfnormal:0.5"))


def with_outlier(bcg, bias_sd: float, inflation: float = 1.0, bias_mean: float = 0.0) -> FitData:
    """BCG plus one 'non-randomised' study far from the rest (log RR = +3)."""
    y, v = bcg
    k = y.size
    return FitData(
        labels=tuple(f"s{i}" for i in range(k + 1)),
        yi=np.append(y, 3.0),
        vi=np.append(v, 0.01),
        bias_mean=np.append(np.zeros(k), bias_mean),
        bias_var=np.append(np.zeros(k), bias_sd**2),
        inflation=np.append(np.ones(k), inflation),
    )


def exact_mu(data: FitData):
    y, v = data.adjusted()
    return exact_posterior(y, v, PRIORS.mu, PRIORS.tau).mu()


def test_zero_bias_and_no_inflation_is_the_plain_model_exactly(bcg):
    biased = exact_mu(with_outlier(bcg, bias_sd=1e-9))
    y, v = bcg
    plain = exact_posterior(np.append(y, 3.0), np.append(v, 0.01), PRIORS.mu, PRIORS.tau).mu()
    assert biased.mean == pytest.approx(plain.mean, abs=1e-9)
    assert biased.q975 == pytest.approx(plain.q975, abs=1e-9)


def test_huge_bias_sd_removes_the_studys_influence_exactly(bcg):
    without = exact_posterior(*bcg, PRIORS.mu, PRIORS.tau).mu()
    huge = exact_mu(with_outlier(bcg, bias_sd=1e4))
    none = exact_mu(with_outlier(bcg, bias_sd=0.0))
    assert abs(none.mean - without.mean) > 0.5 * without.sd  # the outlier matters...
    assert huge.mean == pytest.approx(without.mean, abs=1e-6 * without.sd)  # ...until its bias is vague
    assert huge.sd == pytest.approx(without.sd, rel=1e-6)


def test_inflation_and_bias_mean_shift_and_downweight(bcg):
    shifted = exact_mu(with_outlier(bcg, bias_sd=0.0, bias_mean=3.0))  # bias explains the outlier fully
    without = exact_posterior(*bcg, PRIORS.mu, PRIORS.tau).mu()
    assert shifted.mean < exact_mu(with_outlier(bcg, bias_sd=0.0)).mean
    inflated = exact_mu(with_outlier(bcg, bias_sd=0.0, inflation=100.0))
    plain = exact_mu(with_outlier(bcg, bias_sd=0.0))
    assert abs(inflated.mean - without.mean) < abs(plain.mean - without.mean)


@pytest.mark.slow
def test_pymc_model_limits_agree(models, bcg):
    settings = SamplerSettings(seed=11)
    y, v = bcg
    plain_data = FitData(tuple(f"s{i}" for i in range(y.size + 1)), np.append(y, 3.0), np.append(v, 0.01))
    plain = fit(plain_data, PRIORS, settings, models)
    tiny = fit(with_outlier(bcg, bias_sd=1e-9), PRIORS, settings, models)
    for stat in ("q025", "q50", "q975"):
        assert getattr(tiny.summary.mu, stat) == pytest.approx(
            getattr(plain.summary.mu, stat), abs=0.05 * plain.summary.mu.sd
        )
    huge = fit(with_outlier(bcg, bias_sd=1e4), PRIORS, settings, models)
    without = exact_posterior(y, v, PRIORS.mu, PRIORS.tau).mu()
    assert abs(huge.summary.mu.mean - without.mean) < 0.1 * without.sd
    assert huge.summary.ok and huge.summary.diagnostics.divergences == 0
