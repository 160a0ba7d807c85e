"""The collapsed model's log density and gradient as one numba function (the sampler's view).

This is a second, hand-differentiated implementation of the model that
:func:`peerevidence.stats.model.build_model` specifies in PyMC; the tests evaluate the PyMC
model's own ``compile_logp`` / ``compile_dlogp`` at many points for every prior family and
require agreement to 1e-8. The PyMC model stays the definition.

Unconstrained coordinates ``x = (x0, z)``: ``x0 ~ N(0, 1)`` with ``tau = F^-1(Phi(x0))``
through the tau prior's quantile function (half-normal, half-Cauchy, uniform, log-normal),
or ``x0 = log(tau^2) ~ Student-t(5, p1, p2)`` (log-t); ``z ~ N(0, 1)`` and
``mu = M(tau) + S(tau) z``. The log density is ``log p(x0) + log p(z) + log p(y | tau)``
with mu and every shared design bias integrated out.

Marginal likelihood with shared design biases (Welton et al. 2009; Turner et al. 2009):
``y_i = theta_i + beta_g(i) + e_i``, ``beta_g ~ N(m_g, s_g^2)`` shared by the studies of
design g (m_g is subtracted from y beforehand), ``e_i ~ N(0, a_i)`` with ``a_i`` the study's
variance (plus any study-level extra variance). Given ``t = tau^2`` and the per-group sums
``A_g = sum w_i``, ``B_g = sum w_i r_i``, ``C_g = sum w_i r_i^2``, ``L_g = sum log(a_i + t)``
(``w_i = 1/(a_i + t)``), integrating ``beta_g`` out is the Woodbury identity / matrix
determinant lemma for a rank-one term per group, which gives effective sums
``A~ = A/q``, ``B~ = B/q``, ``C~ = C - s^2 B^2/q``, ``L~ = L + log q`` with ``q = 1 + s^2 A``;
mu is then integrated out of the summed effective sums exactly as without bias terms.
O(k) per evaluation for any number of designs.

Data are passed to the C callback as one float64 buffer (see :func:`pack`):
``[k, G, mu_family, tau_family, m0, s0, p1, p2, y (k), a (k), group (k), s2 (G)]``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types

HEADER = 8
MU_FAMILIES = {"normal": 0, "flat": 1}
TAU_FAMILIES = {"halfnormal": 0, "halfcauchy": 1, "uniform": 2, "lognormal2": 3, "logt2": 4}
N_DIM = 2
EXPANDED = ("x0", "z", "tau", "mu")  # x0 is tau_z, or log_tau2 for the log-t prior

_LOG2PI = math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_T5_CONST = math.lgamma(3.0) - math.lgamma(2.5) - 0.5 * math.log(5.0 * math.pi)

_JIT = {"cache": True, "error_model": "numpy", "nogil": True}


@numba.njit(**_JIT)
def _ndtri(p: float) -> float:
    """Inverse of the standard normal CDF (Acklam's rational approximation + one Halley step)."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    a1, a2, a3 = -3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02
    a4, a5, a6 = 1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00
    b1, b2, b3 = -5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02
    b4, b5 = 6.680131188771972e01, -1.328068155288572e01
    c1, c2, c3 = -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00
    c4, c5, c6 = -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00
    d1, d2, d3, d4 = 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) / (
            (((d1 * q + d2) * q + d3) * q + d4) * q + 1.0
        )
    elif p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((c1 * q + c2) * q + c3) * q + c4) * q + c5) * q + c6) / (
            (((d1 * q + d2) * q + d3) * q + d4) * q + 1.0
        )
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((a1 * r + a2) * r + a3) * r + a4) * r + a5) * r + a6)
            * q
            / (((((b1 * r + b2) * r + b3) * r + b4) * r + b5) * r + 1.0)
        )
    for _ in range(2):  # Halley steps on the CDF, from the side where it is accurate
        e = 0.5 * math.erfc(-x / _SQRT2) - p if x < 0 else 1.0 - p - 0.5 * math.erfc(x / _SQRT2)
        u = e * _SQRT2PI * math.exp(0.5 * x * x)
        x = x - u / (1.0 + 0.5 * x * u)
    return x


@numba.njit(**_JIT)
def tau_of(x0: float, family: int, p1: float, p2: float) -> tuple[float, float]:
    """(tau, d tau^2 / d x0) for the unconstrained coordinate x0."""
    if family == 4:  # logt2: x0 = log tau^2
        t = math.exp(x0)
        return math.sqrt(t), t
    if family == 3:  # lognormal2: log tau^2 = p1 + p2 x0
        t = math.exp(p1 + p2 * x0)
        return math.sqrt(t), p2 * t
    upper = 0.5 * math.erfc(x0 / _SQRT2)  # 1 - Phi(x0)
    log_phi = -0.5 * x0 * x0 - 0.5 * _LOG2PI
    if family == 0:  # half-normal: tau = p1 * Phi^-1(1 - upper / 2)
        tau = -p1 * _ndtri(0.5 * upper)
        dtau = 0.5 * p1 * math.exp(0.5 * ((tau / p1) ** 2 - x0 * x0))
    elif family == 1:  # half-Cauchy: tau = p1 / tan(pi upper / 2)
        tau = p1 / math.tan(0.5 * math.pi * upper)
        r = tau / p1
        log1r2 = 2.0 * math.log(r) + math.log1p(1.0 / (r * r)) if r > 1.0 else math.log1p(r * r)
        dtau = math.exp(log_phi + math.log(0.5 * math.pi * p1) + log1r2)
    else:  # uniform: tau = p1 Phi(x0)
        tau = p1 * (1.0 - upper)
        dtau = p1 * math.exp(log_phi)
    return tau, 2.0 * tau * dtau


@numba.njit(**_JIT)
def _x0_logprior(x0: float, family: int, p1: float, p2: float) -> tuple[float, float]:
    if family == 4:
        r = (x0 - p1) / p2
        return _T5_CONST - math.log(p2) - 3.0 * math.log1p(r * r / 5.0), -6.0 * r / (5.0 + r * r) / p2
    return -0.5 * x0 * x0 - 0.5 * _LOG2PI, -x0


@numba.njit(**_JIT)
def marginal(t, y, a, group, s2, mu_family, m0, s0):
    """log p(y | tau^2 = t), its derivative in t, and the conditional mean and SD of mu."""
    k = y.size
    n_groups = s2.size
    ga = np.zeros(n_groups + 1)  # group n_groups: studies without a shared bias
    gb = np.zeros(n_groups + 1)
    gc = np.zeros(n_groups + 1)
    da = np.zeros(n_groups + 1)
    db = np.zeros(n_groups + 1)
    dc = np.zeros(n_groups + 1)
    lsum = 0.0
    dl = 0.0
    shift = m0 if mu_family == 0 else 0.0
    for i in range(k):
        g = int(group[i])
        if g < 0:
            g = n_groups
        w = 1.0 / (a[i] + t)
        r = y[i] - shift
        wr = w * r
        ga[g] += w
        gb[g] += wr
        gc[g] += wr * r
        da[g] -= w * w
        db[g] -= w * wr
        dc[g] -= wr * wr
        lsum += math.log(a[i] + t)
        dl += w
    A = ga[n_groups]
    B = gb[n_groups]
    C = gc[n_groups]
    dA = da[n_groups]
    dB = db[n_groups]
    dC = dc[n_groups]
    for g in range(n_groups):
        s = s2[g]
        q = 1.0 + s * ga[g]
        A += ga[g] / q
        B += gb[g] / q
        C += gc[g] - s * gb[g] * gb[g] / q
        dA += da[g] / (q * q)
        dB += db[g] / q - gb[g] * s * da[g] / (q * q)
        dC += dc[g] - s * (2.0 * gb[g] * db[g] * q - gb[g] * gb[g] * s * da[g]) / (q * q)
        lsum += math.log(q)
        dl += s * da[g] / q
    if mu_family == 0:
        v0 = s0 * s0
        aa = 1.0 + v0 * A
        daa = v0 * dA
        ll = -0.5 * (k * _LOG2PI + lsum + math.log(aa) + C - v0 * B * B / aa)
        dll = -0.5 * (dl + daa / aa + dC - v0 * (2.0 * B * dB * aa - B * B * daa) / (aa * aa))
        return ll, dll, m0 + v0 * B / aa, math.sqrt(v0 / aa)
    ll = -0.5 * ((k - 1) * _LOG2PI + lsum + math.log(A) + C - B * B / A)
    dll = -0.5 * (dl + dA / A + dC - (2.0 * B * dB * A - B * B * dA) / (A * A))
    return ll, dll, B / A, math.sqrt(1.0 / A)


@numba.njit(**_JIT)
def logp_grad(x0, z, buf):
    """(log density, d/dx0, d/dz, tau, mu) at the unconstrained point (x0, z)."""
    k = int(buf[0])
    n_groups = int(buf[1])
    mu_family = int(buf[2])
    tau_family = int(buf[3])
    m0, s0, p1, p2 = buf[4], buf[5], buf[6], buf[7]
    y = buf[HEADER : HEADER + k]
    a = buf[HEADER + k : HEADER + 2 * k]
    group = buf[HEADER + 2 * k : HEADER + 3 * k]
    s2 = buf[HEADER + 3 * k : HEADER + 3 * k + n_groups]
    lp0, g0 = _x0_logprior(x0, tau_family, p1, p2)
    tau, dt = tau_of(x0, tau_family, p1, p2)
    t = tau * tau
    if not (math.isfinite(t) and math.isfinite(dt)):
        return -np.inf, 0.0, 0.0, tau, np.nan
    ll, dll, centre, spread = marginal(t, y, a, group, s2, mu_family, m0, s0)
    logp = lp0 - 0.5 * z * z - _LOG2PI * 0.5 + ll
    return logp, g0 + dll * dt, -z, tau, centre + spread * z


_LOGP_SIG = types.int64(
    types.uint64,
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.voidptr,
)
_EXPAND_SIG = types.int64(
    types.uint64, types.uint64, types.CPointer(types.double), types.CPointer(types.double), types.voidptr
)


@numba.njit(**_JIT)
def _buffer(ptr):
    head = numba.carray(ptr, (HEADER,), np.float64)
    n = HEADER + 3 * int(head[0]) + int(head[1])
    return numba.carray(ptr, (n,), np.float64)


@numba.cfunc(_LOGP_SIG, **_JIT)
def logp_cfunc(dim, x_, out_, logp_, user_data_):  # pragma: no cover - called from Rust
    if dim != N_DIM:
        return -1
    buf = _buffer(user_data_)
    x = numba.carray(x_, (N_DIM,))
    out = numba.carray(out_, (N_DIM,))
    logp, g0, g1, _, _ = logp_grad(x[0], x[1], buf)
    logp_[0] = logp
    out[0] = g0
    out[1] = g1
    if not (math.isfinite(g0) and math.isfinite(g1)):
        return 3
    if not math.isfinite(logp):
        return 4
    return 0


@numba.cfunc(_EXPAND_SIG, **_JIT)
def expand_cfunc(dim, expanded, x_, out_, user_data_):  # pragma: no cover - called from Rust
    if dim != N_DIM or expanded != 4:
        return -1
    buf = _buffer(user_data_)
    x = numba.carray(x_, (N_DIM,))
    out = numba.carray(out_, (4,))
    _, _, _, tau, mu = logp_grad(x[0], x[1], buf)
    out[0] = x[0]
    out[1] = x[1]
    out[2] = tau
    out[3] = mu
    return 0


def pack(
    y: np.ndarray,
    a: np.ndarray,
    group: np.ndarray | None,
    group_var: np.ndarray | None,
    mu_family: str,
    mu_params: tuple[float, ...],
    tau_family: str,
    tau_params: tuple[float, ...],
) -> np.ndarray:
    """The data buffer the C callbacks read (C-contiguous float64)."""
    k = int(np.asarray(y).size)
    s2 = np.zeros(0) if group_var is None else np.asarray(group_var, float)
    g = np.full(k, -1.0) if group is None else np.asarray(group, float)
    m0, s0 = (float(mu_params[0]), float(mu_params[1])) if mu_family == "normal" else (0.0, 1.0)
    p1 = float(tau_params[0])
    p2 = float(tau_params[1]) if len(tau_params) > 1 else 1.0
    head = [k, s2.size, MU_FAMILIES[mu_family], TAU_FAMILIES[tau_family], m0, s0, p1, p2]
    return np.ascontiguousarray(np.concatenate([np.array(head, float), y, a, g, s2]), dtype=np.float64)


def evaluate(buf: np.ndarray, x0: float, z: float) -> tuple[float, float, float, float, float]:
    """Python access to the same numba function (tests, checks)."""
    return logp_grad(float(x0), float(z), buf)
