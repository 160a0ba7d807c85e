"""`pool --loo / --mods / --subgroup` on metafor's dat.bcg: the REML lines equal metafor 3.8-1
(tests/data/metafor/metareg_bcg.json, made by tests/data/metafor/make_metareg_reference.R);
the exact leave-one-out posterior equals brute-force 2-D integration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from peerevidence.errors import DataError
from peerevidence.pooling.extras import pool_extras

REF = json.loads((Path(__file__).resolve().parents[1] / "data" / "metafor" / "metareg_bcg.json").read_text())
DATA = REF["data"]


@pytest.fixture
def frame() -> pd.DataFrame:
    # as `pool` reads a CSV: every cell text
    return pd.DataFrame(
        {
            "study": [f"s{t}" for t in DATA["trial"]],
            "yi": [repr(x) for x in DATA["yi"]],
            "vi": [repr(x) for x in DATA["vi"]],
            "ablat": [str(x) for x in DATA["ablat"]],
            "alloc": [str(x) for x in DATA["alloc"]],
        }
    )


def test_leave_one_out_reml_equals_metafor(frame):
    out = pool_extras(frame, measure="GEN", loo=True)["loo"]
    ref = REF["leave1out"]
    np.testing.assert_allclose([r["reml"]["mu"] for r in out], ref["estimate"], atol=1e-6)
    np.testing.assert_allclose([r["reml"]["se"] for r in out], ref["se"], atol=1e-6)
    np.testing.assert_allclose([r["reml"]["tau2"] for r in out], ref["tau2"], atol=1e-6)


def test_leave_one_out_posterior_equals_brute_force_integration(frame):
    """Without study 1, normal(0, 1) on mu and half-normal(0.5) on tau: the posterior
    median of mu by a 2-D grid over (mu, tau) with the raw likelihood."""
    out = pool_extras(frame, measure="GEN", loo=True)["loo"][0]
    y, v = np.array(DATA["yi"])[1:], np.array(DATA["vi"])[1:]
    mu = np.linspace(-3, 2, 1201)
    tau = np.linspace(1e-6, 3, 1200)
    M, T = np.meshgrid(mu, tau, indexing="ij")
    loglik = sum(stats.norm.logpdf(yi, M, np.sqrt(vi + T**2)) for yi, vi in zip(y, v, strict=True))
    logpost = loglik + stats.norm.logpdf(M, 0, 1) + stats.halfnorm.logpdf(T, scale=0.5)
    w = np.exp(logpost - logpost.max()).sum(axis=1)
    cdf = np.cumsum(w) / w.sum()
    assert out["mu"]["q50"] == pytest.approx(float(np.interp(0.5, cdf, mu)), abs=5e-3)


def test_meta_regression_on_latitude_equals_metafor(frame):
    mr = pool_extras(frame, measure="GEN", mods=["ablat"])["metareg"]
    ref = REF["ablat"]
    np.testing.assert_allclose([c["reml"]["estimate"] for c in mr["coefficients"]], ref["beta"], atol=1e-6)
    np.testing.assert_allclose([c["reml"]["se"] for c in mr["coefficients"]], ref["se"], atol=1e-6)
    assert mr["reml"]["qm"] == pytest.approx(ref["QM"], abs=1e-6)
    assert mr["reml"]["tau2"] == pytest.approx(ref["tau2"], abs=1e-6)
    slope = mr["coefficients"][1]
    assert slope["posterior"]["q975"] < 0 and slope["p_gt_0"] < 0.05  # latitude matters, as in metafor


def test_subgroup_test_equals_metafor(frame):
    sg = pool_extras(frame, measure="GEN", subgroup="alloc")["subgroups"]
    ref = REF["alloc"]
    assert sg["test"]["qm"] == pytest.approx(ref["QM"], abs=1e-6)
    assert sg["test"]["qm_df"] == ref["QMdf"]
    assert [g["group"] for g in sg["groups"]] == ["alternate", "random", "systematic"]


def test_bad_moderators_are_located_errors(frame):
    with pytest.raises(DataError, match="moderator 'latitude' is not a column"):
        pool_extras(frame, measure="GEN", mods=["latitude"])
    with pytest.raises(DataError, match="one level only"):
        pool_extras(frame.assign(same="x"), measure="GEN", subgroup="same")


def test_pool_json_carries_the_extras(tmp_path, frame):
    path = tmp_path / "bcg.csv"
    frame.to_csv(path, index=False)
    proc = subprocess.run(
        [sys.executable, "-c", "from peerevidence.cli import main; main()", "pool", str(path),
         "--json", "--mods", "latitude"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and "moderator 'latitude' is not a column" in proc.stderr
    assert proc.stdout == ""  # refused before any sampling
