"""The frequentist line beside every Bayesian result: metafor's ``rma()`` and ``predict()``.

Random-effects model ``y_i ~ N(mu, v_i + tau^2)`` with tau^2 by REML (Viechtbauer 2005,
viechtbauer2005) or DerSimonian-Laird (dersimonian1986), Wald-type z tests and intervals,
I^2 and H^2 as metafor defines them (Higgins & Thompson 2002, higgins2002), and the
prediction interval ``mu +/- z sqrt(se^2 + tau^2)`` (``predict.rma``'s default).

REML is maximised by Fisher scoring from the HE estimate with metafor's stopping rule
(default threshold 1e-5 on the change in tau^2), never below 0; if scoring does not
converge, a bounded one-dimensional search of the restricted log-likelihood takes over.
The restricted log-likelihood includes metafor's constant ``+ log|X'X|/2 = log(k)/2``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

Z975 = float(special.ndtri(0.975))


@dataclass(frozen=True)
class RandomEffects:
    method: str
    k: int
    mu: float
    se: float
    ci_lb: float
    ci_ub: float
    zval: float
    pval: float
    tau2: float
    se_tau2: float
    i2: float
    h2: float
    q: float
    q_p: float
    pi_lb: float
    pi_ub: float
    converged: bool = True

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return asdict(self)

    def summary(self) -> dict[str, float | None]:
        """The REML line as stored with a fit: estimate, CI, tau2, I2 (None when undefined), PI."""
        return {
            "mu": self.mu,
            "se": self.se,
            "ci_lb": self.ci_lb,
            "ci_ub": self.ci_ub,
            "tau2": self.tau2,
            "i2": None if math.isnan(self.i2) else self.i2,
            "pi_lb": self.pi_lb,
            "pi_ub": self.pi_ub,
        }


def _check(yi: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim != 1 or y.shape != v.shape or y.size == 0:
        raise ValueError("yi and vi must be 1-d arrays of the same, non-zero length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("yi must be finite and vi finite and > 0")
    return y, v


def restricted_loglik(tau2: float, yi: np.ndarray, vi: np.ndarray) -> float:
    """REML log-likelihood at ``tau2`` (metafor's ``logLik`` for ``method="REML"``)."""
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    k = y.size
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(
        -0.5 * (k - 1) * math.log(2 * math.pi)
        + 0.5 * math.log(k)
        - 0.5 * np.sum(np.log(v + tau2))
        - 0.5 * math.log(np.sum(w))
        - 0.5 * np.sum(w * (y - mu) ** 2)
    )


def _q_stat(y: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    w = 1.0 / v
    mu_fe = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu_fe) ** 2)), float(mu_fe)


def dl_tau2(y: np.ndarray, v: np.ndarray) -> float:
    k = y.size
    if k < 2:
        return 0.0
    w = 1.0 / v
    q, _ = _q_stat(y, v)
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    return float(max(0.0, (q - (k - 1)) / c))


def _p_traces(y: np.ndarray, v: np.ndarray, tau2: float) -> tuple[float, float, float]:
    """(y'PPy, tr P, tr PP) for the intercept-only model, P = W - W 1 1' W / sum(w)."""
    w = 1.0 / (v + tau2)
    sw = np.sum(w)
    mu = np.sum(w * y) / sw
    py = w * (y - mu)  # P y
    tr_p = sw - np.sum(w**2) / sw
    tr_pp = np.sum(w**2) - 2 * np.sum(w**3) / sw + (np.sum(w**2) / sw) ** 2
    return float(np.sum(py**2)), float(tr_p), float(tr_pp)


def he_tau2(y: np.ndarray, v: np.ndarray) -> float:
    """Hedges' (HE) estimator, metafor's starting value for iterative tau^2 estimators."""
    k = y.size
    if k < 2:
        return 0.0
    return float(max(0.0, np.sum((y - y.mean()) ** 2) / (k - 1) - np.mean(v)))


def reml_tau2(
    y: np.ndarray, v: np.ndarray, threshold: float = 1e-5, maxiter: int = 100
) -> tuple[float, bool]:
    """REML tau^2 by Fisher scoring exactly as metafor's ``rma()`` does it.

    Start at the HE estimate; step ``(y'PPy - tr P) / tr(PP)``; truncate at 0; stop after
    the step whose size is below ``threshold`` (metafor's default 1e-5; pass 1e-10 for a
    tighter optimum). Returns ``(tau2, converged)``; if scoring fails to converge, a bounded
    search of the restricted likelihood gives the estimate.
    """
    if y.size < 2:
        return 0.0, True
    tau2 = he_tau2(y, v)
    for _ in range(maxiter):
        ypp, tr_p, tr_pp = _p_traces(y, v, tau2)
        new = max(0.0, tau2 + (ypp - tr_p) / tr_pp)
        if abs(new - tau2) < threshold:
            return new, True
        tau2 = new
    upper = 10 * (np.var(y) + np.max(v)) + 1.0
    from scipy import optimize  # only for the rare fallback; slow to import

    res = optimize.minimize_scalar(
        lambda t: -restricted_loglik(t, y, v),
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-14},
    )
    return float(res.x), False


def random_effects(
    yi, vi, method: str = "REML", level: float = 0.95, threshold: float = 1e-5
) -> RandomEffects:
    """Fit ``rma(yi, vi, method=method)`` and ``predict()``; method is "REML" or "DL"."""
    y, v = _check(yi, vi)
    k = y.size
    if method == "REML":
        tau2, converged = reml_tau2(y, v, threshold=threshold)
    elif method == "DL":
        tau2, converged = dl_tau2(y, v), True
    else:
        raise ValueError(f"method must be REML or DL (got {method!r})")
    w = 1.0 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se = float(math.sqrt(1.0 / np.sum(w)))
    z = float(special.ndtri(0.5 + level / 2))
    q, _ = _q_stat(y, v)
    w0 = 1.0 / v
    if k > 1:
        s2 = (k - 1) * np.sum(w0) / (np.sum(w0) ** 2 - np.sum(w0**2))
        i2 = float(100 * tau2 / (tau2 + s2))
        h2 = float((tau2 + s2) / s2)
        q_p = float(special.chdtrc(k - 1, q))
    else:
        i2, h2, q_p = float("nan"), float("nan"), float("nan")
    if method == "REML" and k > 1:
        _, _, tr_pp = _p_traces(y, v, tau2)
        se_tau2 = float(math.sqrt(2.0 / tr_pp))
    elif method == "DL" and k > 1:
        se_tau2 = _dl_se_tau2(y, v, tau2)
    else:
        se_tau2 = float("nan")
    pred = math.sqrt(se**2 + tau2)
    return RandomEffects(
        method=method,
        k=k,
        mu=mu,
        se=se,
        ci_lb=mu - z * se,
        ci_ub=mu + z * se,
        zval=mu / se,
        pval=float(2 * special.ndtr(-abs(mu / se))),
        tau2=float(tau2),
        se_tau2=se_tau2,
        i2=i2,
        h2=h2,
        q=q,
        q_p=q_p,
        pi_lb=mu - z * pred,
        pi_ub=mu + z * pred,
        converged=converged,
    )


def _dl_se_tau2(y: np.ndarray, v: np.ndarray, tau2: float) -> float:
    """metafor's SE of the DL estimate (Knapp & Hartung style variance of Q-based estimator)."""
    w = 1.0 / v
    sw, sw2, sw3 = np.sum(w), np.sum(w**2), np.sum(w**3)
    c = sw - sw2 / sw
    k = y.size
    var_q = 2 * (k - 1) + 4 * (sw - sw2 / sw) * tau2 + 2 * (sw2 - 2 * sw3 / sw + sw2**2 / sw**2) * tau2**2
    return float(math.sqrt(var_q) / c)
