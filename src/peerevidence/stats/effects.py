"""Effect sizes from summary data: pure, vectorised, metafor's names and conventions.

Every function takes numpy arrays (or scalars) and returns ``(yi, vi)``: the effect and
its sampling variance, as ``metafor::escalc`` (Viechtbauer 2010, viechtbauer2010) would.
Arm 1 is the intervention, arm 2 the control, so a positive MD/SMD or a
ratio above 1 means "higher in the intervention arm"; signs are harmonised later
(:mod:`peerevidence.pooling.table`) using each outcome's direction of benefit.

=============  ===========================================================================
measure        formula
=============  ===========================================================================
SMD            Hedges' g = J(m) * (m1 - m2) / s_pooled, m = n1 + n2 - 2, exact
               J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981, hedges1981);
               vi = 1/n1 + 1/n2 + g^2 / (2 (n1 + n2))   (escalc ``vtype="LS"``);
               NaN when n1 + n2 < 4 (J(1) = 0 would give g = 0; escalc gives NA)
MD             m1 - m2; vi = sd1^2/n1 + sd2^2/n2
log OR         log(a d / (b c)); vi = 1/a + 1/b + 1/c + 1/d
log RR         log((a/n1) / (c/n2)); vi = 1/a - 1/n1 + 1/c - 1/n2
               Both add 0.5 to every cell of a 2x2 table that has a zero cell, and only
               then (escalc's default ``add=1/2, to="only0"``).
from CI        ratio measures on the log scale; se = (upper - lower) / (2 z_{(1+level)/2})
Fisher z       atanh(r); vi = 1 / (n - 3)
=============  ===========================================================================

Conversions (only where an outcome declares them; Chinn 2000, chinn2000):
``SMD = log(OR) * sqrt(3) / pi`` and ``var(SMD) = var(log OR) * 3 / pi^2``.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

CHINN = math.sqrt(3.0) / math.pi
CONTINUITY = 0.5


def _arr(*xs: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(x, dtype=float) for x in xs]


def hedges_j(m: ArrayLike) -> np.ndarray:
    """Exact small-sample correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))."""
    (m,) = _arr(m)
    # scipy.special's ufuncs carry no return types
    return cast(
        np.ndarray, np.exp(special.gammaln(m / 2) - 0.5 * np.log(m / 2) - special.gammaln((m - 1) / 2))
    )


def smd(
    m1i: ArrayLike, sd1i: ArrayLike, n1i: ArrayLike, m2i: ArrayLike, sd2i: ArrayLike, n2i: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Hedges' g and its large-sample variance, as ``escalc(measure="SMD")``.

    With n1 + n2 < 4 (one degree of freedom or none) g is undefined: both are NaN, as
    escalc's NA; callers must reject such rows with a clear message.
    """
    m1, s1, n1, m2, s2, n2 = _arr(m1i, sd1i, n1i, m2i, sd2i, n2i)
    df = n1 + n2 - 2
    ok = df >= 2
    safe_df = np.where(ok, df, 2.0)
    sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / safe_df)
    g = np.where(ok, hedges_j(safe_df) * (m1 - m2) / sp, np.nan)
    vi = np.where(ok, 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2)), np.nan)
    return g, vi


def md(
    m1i: ArrayLike, sd1i: ArrayLike, n1i: ArrayLike, m2i: ArrayLike, sd2i: ArrayLike, n2i: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Raw mean difference, as ``escalc(measure="MD")``."""
    m1, s1, n1, m2, s2, n2 = _arr(m1i, sd1i, n1i, m2i, sd2i, n2i)
    return m1 - m2, s1**2 / n1 + s2**2 / n2


def _cells(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike) -> list[np.ndarray]:
    a, b, c, d = _arr(ai, bi, ci, di)
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero, CONTINUITY, 0.0)
    return [a + add, b + add, c + add, d + add]


def log_or(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Log odds ratio from a 2x2 table (a, b = events, non-events in arm 1; c, d in arm 2)."""
    a, b, c, d = _cells(ai, bi, ci, di)
    return np.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d


def log_rr(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Log risk ratio from a 2x2 table (same cells and zero-cell rule as :func:`log_or`)."""
    a, b, c, d = _cells(ai, bi, ci, di)
    n1, n2 = a + b, c + d
    return np.log((a / n1) / (c / n2)), 1 / a - 1 / n1 + 1 / c - 1 / n2


def table_from_totals(ai: ArrayLike, n1i: ArrayLike, ci: ArrayLike, n2i: ArrayLike) -> list[np.ndarray]:
    """``(ai, n1i, ci, n2i)`` -> ``(ai, bi, ci, di)``."""
    a, n1, c, n2 = _arr(ai, n1i, ci, n2i)
    return [a, n1 - a, c, n2 - c]


def z_for(level: ArrayLike) -> np.ndarray:
    (level,) = _arr(level)
    return cast(np.ndarray, special.ndtri((1 + level) / 2))  # scipy.special's ufuncs carry no return types


def from_interval(
    estimate: ArrayLike, lower: ArrayLike, upper: ArrayLike, level: ArrayLike = 0.95, log: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """An estimate with its CI -> (yi, vi); ``log=True`` for OR/RR/HR (work on log scale).

    The SE comes from the width of the interval, so an asymmetric rounded interval still
    gives the variance the authors' interval implies.
    """
    est, lo, hi = _arr(estimate, lower, upper)
    if log:
        est, lo, hi = np.log(est), np.log(lo), np.log(hi)
    se = (hi - lo) / (2 * z_for(level))
    return est, se**2


def from_se(estimate: ArrayLike, se: ArrayLike, log: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An estimate with its SE (on the log scale already, for ratios) -> (yi, vi)."""
    est, se = _arr(estimate, se)
    return (np.log(est) if log else est), se**2


def fisher_z(r: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Fisher's z transform of a correlation, ``escalc(measure="ZCOR")``."""
    r, n = _arr(r, n)
    return np.arctanh(r), 1 / (n - 3)


def log_or_to_smd(yi: ArrayLike, vi: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Chinn 2000: SMD = log OR x sqrt(3)/pi."""
    y, v = _arr(yi, vi)
    return y * CHINN, v * CHINN**2


def smd_to_log_or(yi: ArrayLike, vi: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Chinn 2000, inverted: log OR = SMD x pi/sqrt(3)."""
    y, v = _arr(yi, vi)
    return y / CHINN, v / CHINN**2


def smd_from_d(d: float, n1: int, n2: int) -> tuple[float, float]:
    """Hedges' g and its large-sample variance from Cohen's d and the arm sizes.

    As ``escalc(measure="SMD", di=d, n1i=n1, n2i=n2)``: the same correction and variance
    as :func:`peerevidence.stats.effects.smd`, starting from d instead of means and SDs.
    """
    g = float(hedges_j(n1 + n2 - 2)) * d
    return g, 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
