"""The sampler's R-hat / ESS / MCSE against ArviZ's own functions on several traces."""

from __future__ import annotations

import numpy as np
import pytest

from peerevidence.stats import engine


def _traces():
    rng = np.random.default_rng(20150703)
    white = rng.standard_normal((4, 500))
    ar = np.zeros((4, 700))
    for t in range(1, 700):  # AR(1), phi = 0.9: ESS far below the draw count
        ar[:, t] = 0.9 * ar[:, t - 1] + rng.standard_normal(4)
    stuck = rng.standard_normal((8, 300)) + np.arange(8)[:, None] * 0.3  # chains disagree
    heavy = rng.standard_cauchy((4, 400))
    return {"white": white, "ar": ar, "stuck": stuck, "heavy": heavy}


@pytest.mark.parametrize("name", ["white", "ar", "stuck", "heavy"])
def test_equal_to_arviz(name):
    import arviz as az

    az.Numba.disable_numba()  # ArviZ 0.23.4 + numpy 2.4 + numba: az.mcse(method="sd") trap
    x = _traces()[name]
    assert engine.rhat(x) == pytest.approx(float(az.rhat(x)), rel=1e-12)
    assert engine.ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-10)
    assert engine.ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=1e-10)
    assert engine.mcse_mean(x) == pytest.approx(float(az.mcse(x, method="mean")), rel=1e-10)
    for prob in (0.025, 0.5, 0.975):
        ours = engine.mcse_quantile(x, prob)
        assert ours == pytest.approx(float(az.mcse(x, method="quantile", prob=prob)), rel=1e-10)


def test_diagnostics_see_bad_mixing():
    t = _traces()
    assert engine.rhat(t["stuck"]) > 1.1
    assert engine.ess_bulk(t["ar"]) < 0.2 * t["ar"].size
    assert engine.ess_bulk(t["white"]) > 0.7 * t["white"].size
