"""The frequentist line beside every Bayesian result: metafor's ``rma()``, ``predict()``, ``confint()``.

Random-effects model ``y_i ~ N(mu, v_i + tau^2)`` with tau^2 by REML (Viechtbauer 2005,
viechtbauer2005) or DerSimonian-Laird (dersimonian1986), I^2 and H^2 from tau^2 as metafor
defines them (Higgins & Thompson 2002, higgins2002), and three lines side by side:

* Wald (metafor's ``test="z"``): z CI for mu and the PI ``mu +/- z sqrt(se^2 + tau^2)``
  (``predict.rma``'s default) -- the fields ``se, ci_lb, ci_ub, pi_lb, pi_ub``;
* Hartung-Knapp-Sidik-Jonkman (``rma(..., test="knha")``): ``se_hk^2 = se^2 q`` with
  ``q = sum w_i (y_i - mu)^2 / (k - 1)``, a t CI with k - 1 df, and *no* ad-hoc truncation of
  ``q`` at 1 (metafor's default; ``test="adhoc"`` would truncate).  As in metafor, q is set to
  0 when the weighted RSS is <= machine epsilon, and k = 1 falls back to the z line;
* the PI ``predict()`` gives for such a fit: ``mu +/- t_{k-1} sqrt(se_hk^2 + tau^2)``; and
* the Q-profile CI for tau^2 (``confint(rma(...))``, Viechtbauer 2007): the tau^2 values
  where the generalised Q statistic equals the chi^2_{k-1} quantiles, searched on
  ``[0, max(100, 10 tau^2)]`` with metafor's rules at the ends; roots are found to ~1e-14
  (metafor's default ``tol`` is 1.2e-4, so its default bounds agree to that tolerance).
  The I^2 CI is the same transformation of these bounds that I^2 is of tau^2.

REML is maximised by Fisher scoring from the HE estimate exactly as metafor 3.8-1 does it:
a step that would make tau^2 negative is halved until it does not, iteration stops when the
change is <= ``threshold`` (1e-5), at most 100 steps; then metafor's ``ll0check``: if the
restricted log-likelihood at tau^2 = 0 exceeds the one at the solution by more than
``.Machine$double.eps^0.25``, the solution is a local maximum and tau^2 = 0 (with a note).  If
scoring does not converge (metafor stops with an error) a bounded search takes over.

The trace terms are computed through the weights without subtracting large, nearly equal
numbers, so one sampling variance ~1e-12 of the others still gives metafor's answer; metafor's
warning about a variance ratio >= 1e7 becomes an entry in ``notes``.  The restricted
log-likelihood includes metafor's constant ``+ log|X'X|/2 = log(k)/2``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import special

Z975 = float(special.ndtri(0.975))
LL0_TOL = float(np.finfo(float).eps ** 0.25)  # metafor's control$tol
EVTOL = 1e-7  # metafor's control$evtol: warn when max(vi) / min(vi) >= 1 / evtol
NAN = float("nan")


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
    hksj_se: float = NAN
    hksj_ci_lb: float = NAN
    hksj_ci_ub: float = NAN
    hksj_tval: float = NAN
    hksj_pval: float = NAN
    hksj_df: int = 0  # k - 1; 0 at k = 1, where metafor (and this) use z instead of t
    pi_t_lb: float = NAN
    pi_t_ub: float = NAN
    tau2_qp_lb: float = NAN
    tau2_qp_ub: float = NAN
    i2_qp_lb: float = NAN
    i2_qp_ub: float = NAN
    notes: tuple[str, ...] = field(default=())

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> dict[str, float | int | list[str] | None]:
        """The REML line as stored with a fit (None for what is undefined, e.g. a CI at k = 1).

        ``mu, se, ci_*, tau2, i2, pi_*`` are the Wald line; ``hksj_*`` the Hartung-Knapp-
        Sidik-Jonkman CI (t, ``hksj_df`` df), ``pi_t_*`` the t prediction interval,
        ``tau2_qp_*`` / ``i2_qp_*`` the Q-profile CI; ``notes`` what metafor would warn about.
        """
        keys = (
            "mu", "se", "ci_lb", "ci_ub", "tau2", "i2", "pi_lb", "pi_ub",
            "hksj_se", "hksj_ci_lb", "hksj_ci_ub", "hksj_df", "pi_t_lb", "pi_t_ub",
            "tau2_qp_lb", "tau2_qp_ub", "i2_qp_lb", "i2_qp_ub",
        )  # fmt: skip
        out: dict[str, float | int | list[str] | None] = {}
        for key in keys:
            value = getattr(self, key)
            out[key] = None if isinstance(value, float) and math.isnan(value) else value
        if self.k < 2:
            out["hksj_df"] = None  # z, not t: no degrees of freedom
        out["notes"] = list(self.notes)
        return out


def _check(yi: npt.ArrayLike, vi: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim != 1 or y.shape != v.shape or y.size == 0:
        raise ValueError("yi and vi must be 1-d arrays of the same, non-zero length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("yi must be finite and vi finite and > 0")
    return y, v


def _sum_others(x: np.ndarray) -> np.ndarray:
    """``sum_{j != i} x_j`` for each i, by prefix and suffix sums (no ``total - x_i``)."""
    before = np.concatenate(([0.0], np.cumsum(x)[:-1]))
    after = np.concatenate((np.cumsum(x[::-1])[::-1][1:], [0.0]))
    return before + after


def _residuals(y: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """The weighted mean and ``y_i - mu`` as ``sum_j w_j (y_i - y_j) / sum w``.

    Written through pairwise differences so that a study with a dominant weight keeps an
    accurate (tiny) residual; above k = 200 the direct difference (error ~eps |y|, harmless
    once weighted) keeps the cost linear.
    """
    sw = np.sum(w)
    mu = float(np.sum(w * y) / sw)
    r = (y[:, None] - y[None, :]) @ w / sw if y.size <= 200 else y - mu
    return mu, r


def restricted_loglik(tau2: float, yi: np.ndarray, vi: np.ndarray) -> float:
    """REML log-likelihood at ``tau2`` (metafor's ``logLik`` for ``method="REML"``)."""
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    k = y.size
    w = 1.0 / (v + tau2)
    _, r = _residuals(y, w)
    return float(
        -0.5 * (k - 1) * math.log(2 * math.pi)
        + 0.5 * math.log(k)
        - 0.5 * np.sum(np.log(v + tau2))
        - 0.5 * math.log(np.sum(w))
        - 0.5 * np.sum(w * r**2)
    )


def _q_stat(y: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    w = 1.0 / v
    mu_fe, r = _residuals(y, w)
    return float(np.sum(w * r**2)), mu_fe


def _q_gen(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """Generalised Q: ``sum w_i (y_i - mu_w)^2`` with ``w = 1 / (v + tau2)`` (metafor .QE.func)."""
    return _q_gen_d(tau2, y, v)[0]


def _q_gen_d(tau2: float, y: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Generalised Q and its derivative in tau2, ``-sum w_i^2 (y_i - mu_w)^2`` (mu_w minimises)."""
    w = 1.0 / (v + tau2)
    _, r = _residuals(y, w)
    wr2 = w * r * r
    return float(wr2.sum()), float(-(w * wr2).sum())


def dl_tau2(y: np.ndarray, v: np.ndarray) -> float:
    k = y.size
    if k < 2:
        return 0.0
    q, _ = _q_stat(y, v)
    _, c, _ = _p_traces(y, v, 0.0)  # c = sum w - sum w^2 / sum w, without cancellation
    return float(max(0.0, (q - (k - 1)) / c))


def _p_traces(y: np.ndarray, v: np.ndarray, tau2: float) -> tuple[float, float, float]:
    """(y'PPy, tr P, tr PP) for the intercept-only model, P = W - W 1 1' W / sum(w).

    Through the weights: ``P_ii = w_i S_(-i) / S`` and ``sum_{i != j} P_ij^2 =
    sum_i w_i^2 S2_(-i) / S^2`` with ``S_(-i)`` the sum of the other weights (``S2`` of their
    squares), and ``P y = w * (y - mu)`` with stable residuals: no cancellation when one
    weight dwarfs the rest.
    """
    w = 1.0 / (v + tau2)
    sw = np.sum(w)
    _, r = _residuals(y, w)
    py = w * r
    p_diag = w * (_sum_others(w) / sw)
    off = np.sum(w**2 * _sum_others(w**2)) / sw**2
    return float(np.sum(py**2)), float(np.sum(p_diag)), float(np.sum(p_diag**2) + off)


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

    Start at the HE estimate; step ``(y'PPy - tr P) / tr(PP)``, halved while it would take
    tau^2 below 0; stop after the step whose size is <= ``threshold`` (metafor's default
    1e-5; pass 1e-10 for a tighter optimum). Returns ``(tau2, converged)``; if scoring fails
    to converge, a bounded search of the restricted likelihood gives the estimate.  The
    ``ll0check`` is applied by :func:`reml_fit`.
    """
    if y.size < 2:
        return 0.0, True
    tau2 = he_tau2(y, v)
    for _ in range(maxiter):
        ypp, tr_p, tr_pp = _p_traces(y, v, tau2)
        adj = (ypp - tr_p) / tr_pp
        if math.isnan(adj):
            adj = 0.0
        while tau2 + adj < 0.0:
            adj /= 2.0
        new = tau2 + adj
        change = abs(new - tau2)
        tau2 = new
        if change <= threshold:
            return tau2, True
    upper = 10 * (np.var(y) + np.max(v)) + 1.0
    from scipy import optimize  # only for the rare fallback; slow to import

    res = optimize.minimize_scalar(
        lambda t: -restricted_loglik(t, y, v),
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-14},
    )
    return float(res.x), False


def reml_fit(y: np.ndarray, v: np.ndarray, threshold: float = 1e-5) -> tuple[float, bool, list[str]]:
    """:func:`reml_tau2` followed by metafor's ``ll0check``; returns ``(tau2, converged, notes)``."""
    tau2, converged = reml_tau2(y, v, threshold=threshold)
    notes: list[str] = []
    if not converged:
        notes.append(
            "REML: Fisher scoring did not converge in 100 steps (metafor stops with an "
            f"error here); tau2 = {tau2:.6g} maximises the restricted likelihood by a bounded search"
        )
    if converged and y.size > 1 and tau2 > threshold:
        ll0 = restricted_loglik(0.0, y, v)
        ll = restricted_loglik(tau2, y, v)
        if ll0 - ll > LL0_TOL:
            notes.append(
                f"REML: Fisher scoring stopped at a local maximum (tau2 = {tau2:.6g}); the "
                "restricted likelihood is higher at tau2 = 0, so tau2 = 0 (metafor's ll0check)"
            )
            tau2 = 0.0
    return tau2, converged, notes


def _solve_q(target: float, y: np.ndarray, v: np.ndarray, lo: float, hi: float) -> float:
    """The tau2 in ``[lo, hi]`` where the (decreasing) generalised Q equals ``target``.

    Newton steps kept inside a bracket that shrinks with every evaluation (bisection when a
    step leaves it), to ~1e-15 relative: a handful of evaluations instead of ~50 bisections.
    """
    t = lo
    for _ in range(200):
        q, dq = _q_gen_d(t, y, v)
        f = q - target
        if f > 0:
            lo = t
        else:
            hi = t
        if f == 0 or hi - lo <= 1e-15 * max(1.0, hi):
            return t
        step = t - f / dq if dq < 0 else math.nan
        new = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(new - t) <= 1e-15 * max(1.0, abs(t)):
            return new
        t = new
    return t


def q_profile(y: np.ndarray, v: np.ndarray, tau2: float, level: float = 0.95) -> tuple[float, float]:
    """Q-profile CI for tau^2, following ``confint.rma.uni(type="QP")`` of metafor 3.8-1.

    Search interval ``[0, max(100, 10 tau2)]``.  If Q(0) is below the lower chi^2 quantile the
    CI is {0} (both bounds 0); a bound that would lie beyond the upper end is that end.
    """
    k = y.size
    if k < 2:
        return NAN, NAN
    alpha = 1.0 - level
    crit_u = float(special.chdtri(k - 1, alpha / 2))  # upper-tail quantile
    crit_l = float(special.chdtri(k - 1, 1 - alpha / 2))
    t_min, t_max = 0.0, max(100.0, 10 * tau2)
    q_min, q_max = _q_gen(t_min, y, v), _q_gen(t_max, y, v)
    if q_min < crit_l:
        lb = ub = t_min
    elif q_max > crit_l:
        ub = t_max
    else:
        ub = _solve_q(crit_l, y, v, t_min, t_max)
    if q_max > crit_u:
        lb = ub = t_max
    elif q_min < crit_u:
        lb = t_min
    else:
        lb = _solve_q(crit_u, y, v, t_min, t_max)
    return lb, ub


def random_effects(
    yi: npt.ArrayLike, vi: npt.ArrayLike, method: str = "REML", level: float = 0.95, threshold: float = 1e-5
) -> RandomEffects:
    """Fit ``rma(yi, vi, method=method)`` with ``predict()``, the ``test="knha"`` line and
    ``confint()``'s Q-profile tau^2 CI; method is "REML" or "DL"."""
    y, v = _check(yi, vi)
    k = y.size
    notes: list[str] = []
    ratio = float(np.max(v) / np.min(v))
    if ratio >= 1 / EVTOL:
        notes.append(
            f"the largest sampling variance is {ratio:.3g} times the smallest; results may "
            "be unstable (metafor warns at a ratio of 1e7)"
        )
    if method == "REML":
        tau2, converged, more = reml_fit(y, v, threshold=threshold)
        notes += more
    elif method == "DL":
        tau2, converged = dl_tau2(y, v), True
    else:
        raise ValueError(f"method must be REML or DL (got {method!r})")
    w = 1.0 / (v + tau2)
    sw = float(np.sum(w))
    mu, r = _residuals(y, w)
    se = float(math.sqrt(1.0 / sw))
    z = float(special.ndtri(0.5 + level / 2))
    q, _ = _q_stat(y, v)
    w0 = 1.0 / v
    if k > 1:
        # typical within-study variance, (k-1) sum w / ((sum w)^2 - sum w^2), without cancellation
        s2 = (k - 1) * np.sum(w0) / np.sum(w0 * _sum_others(w0))
        i2 = float(100 * tau2 / (tau2 + s2))
        h2 = float((tau2 + s2) / s2)
        q_p = float(special.chdtrc(k - 1, q))
    else:
        s2 = NAN
        i2, h2, q_p = 0.0, 1.0, 1.0  # metafor: I2 = 0, H2 = 1, QE = 0, QEp = 1 at k = 1
    if method == "REML" and k > 1:
        _, _, tr_pp = _p_traces(y, v, tau2)
        se_tau2 = float(math.sqrt(2.0 / tr_pp))
    elif method == "DL" and k > 1:
        se_tau2 = _dl_se_tau2(y, v, tau2)
    else:
        se_tau2 = NAN
    pred = math.sqrt(se**2 + tau2)
    # Hartung-Knapp-Sidik-Jonkman (metafor test="knha"; k = 1 falls back to z as metafor does)
    if k > 1:
        rss = float(np.sum(w * r**2))
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - 1)
        hk_se = math.sqrt(s2w) * se
        crit = float(special.stdtrit(k - 1, 0.5 + level / 2))
        hk_t = mu / hk_se if hk_se > 0 else math.copysign(math.inf, mu) if mu else NAN
        hk_p = float(2 * special.stdtr(k - 1, -abs(hk_t))) if not math.isnan(hk_t) else NAN
        hk_df = k - 1
    else:
        hk_se, crit, hk_t, hk_df = se, z, mu / se, 0
        hk_p = float(2 * special.ndtr(-abs(hk_t)))
    pred_t = math.sqrt(hk_se**2 + tau2)
    tau2_lb, tau2_ub = q_profile(y, v, tau2, level) if k > 1 else (NAN, NAN)
    if k > 1:
        i2_lb, i2_ub = 100 * tau2_lb / (tau2_lb + s2), 100 * tau2_ub / (tau2_ub + s2)
    else:
        i2_lb = i2_ub = NAN
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
        hksj_se=hk_se,
        hksj_ci_lb=mu - crit * hk_se,
        hksj_ci_ub=mu + crit * hk_se,
        hksj_tval=hk_t,
        hksj_pval=hk_p,
        hksj_df=hk_df,
        pi_t_lb=mu - crit * pred_t,
        pi_t_ub=mu + crit * pred_t,
        tau2_qp_lb=float(tau2_lb),
        tau2_qp_ub=float(tau2_ub),
        i2_qp_lb=float(i2_lb),
        i2_qp_ub=float(i2_ub),
        notes=tuple(notes),
    )


def _dl_se_tau2(y: np.ndarray, v: np.ndarray, tau2: float) -> float:
    """metafor's SE of the DL estimate (Knapp & Hartung style variance of Q-based estimator)."""
    _, c, tr_pp = _p_traces(y, v, 0.0)  # tr P and tr PP at tau2 = 0, computed stably
    k = y.size
    var_q = 2 * (k - 1) + 4 * c * tau2 + 2 * tr_pp * tau2**2
    return float(math.sqrt(var_q) / c)
