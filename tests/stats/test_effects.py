"""Effect sizes against metafor's escalc numbers and formulas checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerevidence.stats import effects

# dat.bcg 2x2 counts (metafor documentation, ?dat.bcg): tpos, tneg, cpos, cneg
BCG = {
    "tpos": [4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27],
    "tneg": [119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886],
    "cpos": [11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29],
    "cneg": [128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825],
}


def test_log_rr_matches_metafor_escalc_on_bcg(bcg):
    yi, vi = effects.log_rr(BCG["tpos"], BCG["tneg"], BCG["cpos"], BCG["cneg"])
    np.testing.assert_allclose(yi, bcg[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(vi, bcg[1], rtol=0, atol=1e-12)


def test_log_rr_from_totals_equals_from_cells():
    n1 = np.add(BCG["tpos"], BCG["tneg"])
    n2 = np.add(BCG["cpos"], BCG["cneg"])
    cells = effects.table_from_totals(BCG["tpos"], n1, BCG["cpos"], n2)
    np.testing.assert_allclose(
        effects.log_rr(*cells), effects.log_rr(BCG["tpos"], BCG["tneg"], BCG["cpos"], BCG["cneg"])
    )


def test_log_or_by_hand():
    # CORE trial: 64/218 readmitted vs 83/216 -> OR = (64*133)/(154*83)
    yi, vi = effects.log_or(64, 154, 83, 133)
    assert yi == pytest.approx(math.log(64 * 133 / (154 * 83)), abs=1e-15)
    assert vi == pytest.approx(1 / 64 + 1 / 154 + 1 / 83 + 1 / 133, abs=1e-15)


def test_zero_cell_gets_half_added_to_every_cell_only_then():
    yi, vi = effects.log_or([0, 2], [10, 8], [3, 3], [7, 7])
    assert yi[0] == pytest.approx(math.log(0.5 * 7.5 / (10.5 * 3.5)))
    assert vi[0] == pytest.approx(1 / 0.5 + 1 / 10.5 + 1 / 3.5 + 1 / 7.5)
    assert yi[1] == pytest.approx(math.log(2 * 7 / (8 * 3)))  # untouched: no zero cell


def test_hedges_g_by_hand():
    # n1 = n2 = 10, means 10 vs 8, both SDs 2 -> d = 1; exact J(18) = G(9) / (3 G(8.5))
    j = math.gamma(9) / (3 * math.gamma(8.5))
    g, v = effects.smd(10, 2, 10, 8, 2, 10)
    assert g == pytest.approx(j, abs=1e-12)
    assert v == pytest.approx(1 / 10 + 1 / 10 + j**2 / 40, abs=1e-12)
    # the common approximation J ~ 1 - 3/(4m - 1) is close but not exact
    assert 0 < abs(effects.hedges_j(18) - (1 - 3 / 71)) < 2e-4


def test_hedges_g_pooled_sd_with_unequal_arms():
    g, _ = effects.smd(57, 16, 218, 55, 16, 216)  # CORE QPR (Smit dataset row 31)
    sp = 16.0
    assert g == pytest.approx(effects.hedges_j(432) * 2 / sp, abs=1e-12)
    assert g == pytest.approx(0.12478286045165, abs=2e-4)  # the dataset's stored g


def test_md_by_hand():
    y, v = effects.md(5.0, 2.0, 20, 4.0, 3.0, 30)
    assert (y, v) == (pytest.approx(1.0), pytest.approx(4 / 20 + 9 / 30))


def test_from_interval_ratio_uses_the_log_scale():
    y, v = effects.from_interval(1.45, 1.03, 2.04, log=True)  # Olfson 2011 adjusted HR
    assert y == pytest.approx(math.log(1.45))
    se = (math.log(2.04) - math.log(1.03)) / (2 * 1.959963984540054)
    assert v == pytest.approx(se**2, rel=1e-12)


def test_fisher_z():
    y, v = effects.fisher_z(0.5, 28)
    assert (y, v) == (pytest.approx(0.5493061443340549), pytest.approx(1 / 25))


def test_chinn_conversion_round_trip_and_constant():
    y, v = effects.log_or_to_smd(1.0, 0.2)
    assert y == pytest.approx(math.sqrt(3) / math.pi)
    assert v == pytest.approx(0.2 * 3 / math.pi**2)
    back = effects.smd_to_log_or(y, v)
    assert back == (pytest.approx(1.0), pytest.approx(0.2))


arm = st.tuples(
    st.floats(-100, 100),
    st.floats(0.01, 50),
    st.integers(2, 500),
)


@given(arm, arm)
def test_swapping_arms_negates_g_and_keeps_variance(a, b):
    g1, v1 = effects.smd(a[0], a[1], a[2], b[0], b[1], b[2])
    g2, v2 = effects.smd(b[0], b[1], b[2], a[0], a[1], a[2])
    assert g1 == pytest.approx(-g2, abs=1e-9)
    assert v1 == pytest.approx(v2, rel=1e-12)
    assert v1 > 0


counts = st.integers(0, 300)


@given(counts, counts, counts, counts)
def test_log_or_antisymmetric_and_positive_variance(a, b, c, d):
    if (a + b) == 0 or (c + d) == 0:
        return
    y1, v1 = effects.log_or(a, b, c, d)
    y2, v2 = effects.log_or(c, d, a, b)
    assert np.isfinite(y1) and v1 > 0
    assert y1 == pytest.approx(-y2, abs=1e-9)
    assert v1 == pytest.approx(v2)
