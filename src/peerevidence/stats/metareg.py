"""The frequentist line of meta-regression, subgroups and robustness, as metafor computes it.

* :func:`meta_regression` — ``rma(yi, vi, mods = X)`` with tau^2 by REML: coefficients,
  Wald-type z tests and intervals, the omnibus moderator test QM (df, p), the residual
  heterogeneity test QE, residual tau^2 (with its SE), I^2/H^2 and the pseudo-R^2 of
  metafor (``100 * (tau2_0 - tau2) / tau2_0``, tau2_0 from the intercept-only model, >= 0).
* :func:`design_matrix` — numbers as they are, categories as R's treatment contrasts (the
  first level in sorted order is the reference; a column per other level, ``name<level>``).
* :func:`subgroup_test` — the subgroup-difference test of ``rma(yi, vi, mods = ~ factor(g))``
  (common residual tau^2) and a separate REML fit per subgroup.
* :func:`leave_one_out` and :func:`cumulative` — ``leave1out()`` and ``cumul()``.
* :func:`regtest` — ``regtest()``: Egger-type tests with predictor ``sei`` (Egger), ``vi``
  (PEESE), ``ninv`` (Peters: 1/n), ``sqrtninv``; ``model="rma"`` (mixed-effects, z test) or
  ``model="lm"`` (weighted least squares with weights 1/v_i, t test on k - 2 df). The
  intercept is the "limit" estimate (PET with ``sei``, PEESE with ``vi``).

REML is maximised by metafor's Fisher scoring (start at the HE estimate, step
``(y'PPy - tr P) / tr(PP)``, halved while it would go below 0, stop when the change is below
``threshold``), followed by metafor's check that tau^2 = 0 has no higher restricted
likelihood. The restricted log-likelihood includes ``+ log|X'X| / 2`` as metafor's does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from scipy import special

from peerevidence.stats.frequentist import RandomEffects, random_effects

LL0_TOL = np.finfo(float).eps ** 0.25  # metafor's con$tol

FloatArray = npt.NDArray[np.float64]
# numpy's stubs type np.linalg.inv/solve/cholesky of float64 input as floating[Any]; the
# results below are float64 arrays, so they are cast (no runtime effect).


@dataclass(frozen=True)
class MetaRegression:
    names: tuple[str, ...]
    beta: tuple[float, ...]
    se: tuple[float, ...]
    zval: tuple[float, ...]
    pval: tuple[float, ...]
    ci_lb: tuple[float, ...]
    ci_ub: tuple[float, ...]
    vcov: tuple[tuple[float, ...], ...]
    tau2: float
    se_tau2: float
    qm: float
    qm_df: int
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    i2: float
    h2: float
    r2: float | None  # None without an intercept, without moderators, or when undefined
    k: int
    p: int
    ll_reml: float
    converged: bool = True

    def coef(self, name: str) -> dict[str, float]:
        j = self.names.index(name)
        return {
            "estimate": self.beta[j],
            "se": self.se[j],
            "ci_lb": self.ci_lb[j],
            "ci_ub": self.ci_ub[j],
            "pval": self.pval[j],
        }


def _arrays(
    yi: npt.ArrayLike, vi: npt.ArrayLike, x: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    X = np.asarray(x, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if y.ndim != 1 or y.shape != v.shape or X.shape[0] != y.size or y.size == 0:
        raise ValueError("yi, vi and the rows of X must have the same, non-zero length")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0) and np.all(np.isfinite(X))):
        raise ValueError("yi and X must be finite and vi finite and > 0")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("the moderators are collinear (the design matrix is not of full rank)")
    if y.size <= X.shape[1]:
        raise ValueError(f"{y.size} studies cannot estimate {X.shape[1]} coefficients and tau^2")
    return y, v, X


def _projection(X: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(P, (X'WX)^-1) with P = W - W X (X'WX)^-1 X'W."""
    xw = X.T * w
    inv = cast(FloatArray, np.linalg.inv(xw @ X))
    P = np.diag(w) - xw.T @ inv @ xw
    return P, inv


def restricted_loglik(tau2: float, y: FloatArray, v: FloatArray, X: FloatArray) -> float:
    """metafor's REML log-likelihood of ``rma(yi, vi, mods = X)`` at ``tau2``."""
    k, p = X.shape
    w = 1.0 / (v + tau2)
    xwx = (X.T * w) @ X
    beta = np.linalg.solve(xwx, (X.T * w) @ y)
    rss = float(np.sum(w * (y - X @ beta) ** 2))
    return float(
        -0.5 * (k - p) * math.log(2 * math.pi)
        + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        - 0.5 * np.sum(np.log(v + tau2))
        - 0.5 * np.linalg.slogdet(xwx)[1]
        - 0.5 * rss
    )


def _he_tau2(y: FloatArray, v: FloatArray, X: FloatArray) -> float:
    k, p = X.shape
    P = np.eye(k) - X @ np.linalg.inv(X.T @ X) @ X.T
    rss = float(y @ P @ y)
    return max(0.0, (rss - float(np.sum(np.diag(P) * v))) / float(k - p))


def reml_tau2(
    y: FloatArray, v: FloatArray, X: FloatArray, threshold: float = 1e-5, maxiter: int = 100
) -> tuple[float, bool]:
    """Residual tau^2 by metafor's Fisher scoring; returns ``(tau2, converged)``."""
    tau2 = _he_tau2(y, v, X)
    converged = False
    for _ in range(maxiter):
        P, _ = _projection(X, 1.0 / (v + tau2))
        py = P @ y
        adj = (float(py @ py) - float(np.trace(P))) / float(np.sum(P * P))
        if not math.isfinite(adj):
            adj = 0.0
        while tau2 + adj < 0:
            adj /= 2
        old, tau2 = tau2, tau2 + adj
        if abs(old - tau2) <= threshold:
            converged = True
            break
    if not converged:
        from scipy import optimize

        upper = 10 * (float(np.var(y)) + float(np.max(v))) + 1.0
        res = optimize.minimize_scalar(
            lambda t: -restricted_loglik(t, y, v, X),
            bounds=(0.0, upper),
            method="bounded",
            options={"xatol": 1e-12},
        )
        return float(res.x), False
    if tau2 > threshold and restricted_loglik(0.0, y, v, X) - restricted_loglik(tau2, y, v, X) > LL0_TOL:
        tau2 = 0.0
    return float(tau2), True


def _has_intercept(X: FloatArray) -> bool:
    return bool(X.shape[1] > 0 and np.all(X[:, 0] == 1.0))


def meta_regression(
    yi: npt.ArrayLike,
    vi: npt.ArrayLike,
    X: npt.ArrayLike,
    names: Sequence[str] | None = None,
    btt: Sequence[int] | None = None,
    level: float = 0.95,
    threshold: float = 1e-5,
    tau2: float | None = None,
) -> MetaRegression:
    """``rma(yi, vi, mods = X, intercept = FALSE)`` with X the full design matrix (REML).

    ``btt`` are the coefficients QM tests (default: all but an intercept in column 0);
    ``tau2`` fixes tau^2 instead of estimating it."""
    y, v, X = _arrays(yi, vi, X)
    k, p = X.shape
    names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(p))
    if len(names) != p:
        raise ValueError(f"{len(names)} names for {p} columns")
    intercept = _has_intercept(X)
    if btt is None:
        btt = list(range(1, p)) if intercept else list(range(p))
    btt = list(btt)
    if tau2 is None:
        t2, converged = reml_tau2(y, v, X, threshold=threshold)
    else:
        t2, converged = float(tau2), True
    w = 1.0 / (v + t2)
    P, vb = _projection(X, w)
    beta = vb @ ((X.T * w) @ y)
    se = np.sqrt(np.diag(vb))
    z = float(special.ndtri(0.5 + level / 2))
    zval = beta / se
    if btt:
        b = beta[btt]
        qm = float(b @ np.linalg.solve(vb[np.ix_(btt, btt)], b))
        qm_p = float(special.chdtrc(len(btt), qm))
    else:
        qm, qm_p = float("nan"), float("nan")
    # residual heterogeneity (fixed-effect weights), I^2 and H^2 as metafor's i2def "1"
    P0, _ = _projection(X, 1.0 / v)
    qe = max(0.0, float(y @ P0 @ y))
    qe_df = k - p
    qe_p = float(special.chdtrc(qe_df, qe)) if qe_df > 0 else float("nan")
    vt = (k - p) / float(np.trace(P0))
    i2 = 100 * t2 / (vt + t2)
    h2 = t2 / vt + 1
    se_tau2 = math.sqrt(2.0 / float(np.sum(P * P)))
    r2: float | None = None
    if intercept and p > 1 and tau2 is None:
        tau2_0 = random_effects(y, v, "REML", threshold=threshold).tau2
        r2 = 0.0 if tau2_0 == 0 else max(0.0, 100 * (tau2_0 - t2) / tau2_0)
    return MetaRegression(
        names=names,
        beta=tuple(map(float, beta)),
        se=tuple(map(float, se)),
        zval=tuple(map(float, zval)),
        pval=tuple(float(2 * special.ndtr(-abs(zv))) for zv in zval),
        ci_lb=tuple(map(float, beta - z * se)),
        ci_ub=tuple(map(float, beta + z * se)),
        vcov=tuple(tuple(map(float, row)) for row in vb),
        tau2=float(t2),
        se_tau2=se_tau2,
        qm=qm,
        qm_df=len(btt),
        qm_p=qm_p,
        qe=qe,
        qe_df=qe_df,
        qe_p=qe_p,
        i2=float(i2),
        h2=float(h2),
        r2=r2,
        k=k,
        p=p,
        ll_reml=restricted_loglik(t2, y, v, X),
        converged=converged,
    )


# --------------------------------------------------------------------------- design matrices


def is_numeric(values: Sequence[object]) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)


def design_matrix(
    covariates: Mapping[str, Sequence[object]], moderators: Sequence[str], intercept: bool = True
) -> tuple[FloatArray, tuple[str, ...], dict[str, list[int]]]:
    """(X, column names, columns of each moderator) as R's ``model.matrix(~ a + b)``.

    A moderator whose values are all numbers enters as one column; any other as treatment
    contrasts against its first level in sorted order (R's default factor levels)."""
    if not moderators and not intercept:
        raise ValueError("a model needs an intercept or a moderator")
    n = {len(covariates[m]) for m in moderators}
    if len(n) > 1:
        raise ValueError("every moderator needs one value per study")
    k = n.pop() if n else (len(next(iter(covariates.values()))) if covariates else 0)
    cols: list[FloatArray] = []
    names: list[str] = []
    groups: dict[str, list[int]] = {}
    if intercept:
        cols.append(np.ones(k))
        names.append("intrcpt")
    for m in moderators:
        values = list(covariates[m])
        start = len(cols)
        if is_numeric(values):
            cols.append(np.asarray(values, dtype=float))
            names.append(m)
        else:
            levels = sorted({str(x) for x in values})
            if len(levels) < 2:
                raise ValueError(f"moderator {m!r} has a single level ({levels[0]!r}) in these studies")
            for lev in levels[1:] if intercept or start > 0 else levels:
                cols.append(np.array([1.0 if str(x) == lev else 0.0 for x in values]))
                names.append(f"{m}{lev}")
        groups[m] = list(range(start, len(cols)))
    return np.column_stack(cols), tuple(names), groups


# --------------------------------------------------------------------------- subgroups


@dataclass(frozen=True)
class SubgroupFit:
    group: str
    k: int
    fit: RandomEffects | None  # None with a single study (no heterogeneity to estimate)
    mu: float
    se: float
    ci_lb: float
    ci_ub: float


@dataclass(frozen=True)
class SubgroupTest:
    moderator: str
    groups: tuple[SubgroupFit, ...]
    qm: float  # test of subgroup differences, common residual tau^2 (metafor mods = ~ factor)
    qm_df: int
    qm_p: float
    tau2_residual: float
    model: MetaRegression


def subgroup_test(
    yi: npt.ArrayLike, vi: npt.ArrayLike, groups: Sequence[object], moderator: str = "group"
) -> SubgroupTest:
    """``rma(yi, vi, mods = ~ factor(groups))`` and ``rma(yi, vi, subset = groups == g)``."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    labels = [str(g) for g in groups]
    X, names, _ = design_matrix({moderator: labels}, [moderator])
    model = meta_regression(y, v, X, names)
    fits = []
    for g in sorted(set(labels)):
        sel = np.array([lab == g for lab in labels])
        if sel.sum() == 1:
            se = math.sqrt(float(v[sel][0]))
            z = float(special.ndtri(0.975))
            mu = float(y[sel][0])
            fits.append(SubgroupFit(g, 1, None, mu, se, mu - z * se, mu + z * se))
        else:
            re = random_effects(y[sel], v[sel], "REML")
            fits.append(SubgroupFit(g, re.k, re, re.mu, re.se, re.ci_lb, re.ci_ub))
    return SubgroupTest(moderator, tuple(fits), model.qm, model.qm_df, model.qm_p, model.tau2, model)


# --------------------------------------------------------------------------- robustness


def leave_one_out(yi: npt.ArrayLike, vi: npt.ArrayLike, threshold: float = 1e-5) -> list[RandomEffects]:
    """``leave1out(rma(yi, vi))``: the REML fit without study i, for each i (k >= 3)."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.size < 3:
        raise ValueError("leave-one-out needs k >= 3 studies")
    keep = ~np.eye(y.size, dtype=bool)
    return [random_effects(y[m], v[m], "REML", threshold=threshold) for m in keep]


def cumulative(
    yi: npt.ArrayLike, vi: npt.ArrayLike, order: Sequence[float], threshold: float = 1e-5
) -> tuple[list[int], list[RandomEffects]]:
    """``cumul(rma(yi, vi), order = order)``: (the order used, the REML fit of each prefix).

    Ties keep the data order (a stable sort, as R's ``order()``)."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    idx = [int(i) for i in np.argsort(np.asarray(order, dtype=float), kind="stable")]
    fits = [
        random_effects(y[idx[: j + 1]], v[idx[: j + 1]], "REML", threshold=threshold) for j in range(len(idx))
    ]
    return idx, fits


# --------------------------------------------------------------------------- small-study tests


@dataclass(frozen=True)
class RegTest:
    model: str  # "rma" or "lm"
    predictor: str  # "sei" | "vi" | "ninv" | "sqrtninv"
    zval: float  # z (rma) or t (lm) of the predictor's coefficient
    pval: float
    df: int | None  # residual df of the t test (lm); None for z
    est: float  # the intercept: the limit estimate as the predictor goes to 0
    ci_lb: float
    ci_ub: float


PREDICTORS = ("sei", "vi", "ninv", "sqrtninv")


def regtest(
    yi: npt.ArrayLike,
    vi: npt.ArrayLike,
    model: str = "rma",
    predictor: str = "sei",
    ni: npt.ArrayLike | None = None,
    level: float = 0.95,
) -> RegTest:
    """metafor's ``regtest()`` for an intercept-only model."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {', '.join(PREDICTORS)} (got {predictor!r})")
    if predictor in ("ninv", "sqrtninv"):
        if ni is None:
            raise ValueError(f"predictor {predictor!r} needs the sample sizes ni")
        n = np.asarray(ni, dtype=float)
        if n.shape != y.shape or not np.all(n > 0):
            raise ValueError("ni must be positive, one per study")
        x = 1.0 / n if predictor == "ninv" else 1.0 / np.sqrt(n)
    else:
        x = np.sqrt(v) if predictor == "sei" else v
    X = np.column_stack([np.ones(y.size), x])
    if model == "rma":
        fit = meta_regression(y, v, X, ("intrcpt", predictor), level=level)
        return RegTest(
            model, predictor, fit.zval[1], fit.pval[1], None, fit.beta[0], fit.ci_lb[0], fit.ci_ub[0]
        )
    if model != "lm":
        raise ValueError(f"model must be 'rma' or 'lm' (got {model!r})")
    y, v, X = _arrays(y, v, X)
    w = 1.0 / v
    xw = X.T * w
    inv = np.linalg.inv(xw @ X)
    beta = inv @ (xw @ y)
    df = y.size - 2
    s2 = float(np.sum(w * (y - X @ beta) ** 2)) / df
    se = np.sqrt(np.diag(inv) * s2)
    t = float(beta[1] / se[1])
    crit = float(special.stdtrit(df, 0.5 + level / 2))
    return RegTest(
        model,
        predictor,
        t,
        float(2 * special.stdtr(df, -abs(t))),
        df,
        float(beta[0]),
        float(beta[0] - crit * se[0]),
        float(beta[0] + crit * se[0]),
    )


# --------------------------------------------------------------------------- several results per study


def vcalc(vi: npt.ArrayLike, cluster: Sequence[object], rho: float) -> FloatArray:
    """metafor's ``vcalc(vi, cluster, obs, rho)`` for distinct observations: results of one
    cluster (study) correlate ``rho``, ``V_ij = rho sqrt(v_i v_j)``; results of different
    clusters are independent."""
    v = np.asarray(vi, dtype=float)
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie in (-1, 1) (got {rho})")
    same = np.array([[a == b for b in cluster] for a in cluster])
    V: FloatArray = rho * np.sqrt(np.outer(v, v)) * same
    np.fill_diagonal(V, v)
    return V


@dataclass(frozen=True)
class Multilevel:
    beta: tuple[float, ...]
    se: tuple[float, ...]
    ci_lb: tuple[float, ...]
    ci_ub: tuple[float, ...]
    sigma2: tuple[float, float]  # between clusters, between results within a cluster
    ll_reml: float
    k: int
    clusters: int


def _ml_parts(
    y: FloatArray, V: FloatArray, X: FloatArray, Z: FloatArray, s2: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    M: FloatArray = V + s2[0] * Z + s2[1] * np.eye(y.size)
    c = cast(FloatArray, np.linalg.cholesky(M))
    mi = cast(FloatArray, np.linalg.inv(M))
    xmx = X.T @ mi @ X
    beta = cast(FloatArray, np.linalg.solve(xmx, X.T @ mi @ y))
    r = y - X @ beta
    return M, c, mi, xmx, beta, r


def _ml_reml(y: FloatArray, V: FloatArray, X: FloatArray, Z: FloatArray, s2: FloatArray) -> float:
    k, p = X.shape
    try:
        _, c, mi, xmx, _, r = _ml_parts(y, V, X, Z, s2)
    except np.linalg.LinAlgError:
        return -np.inf
    return float(
        -0.5 * (k - p) * math.log(2 * math.pi)
        + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        - np.sum(np.log(np.diag(c)))
        - 0.5 * np.linalg.slogdet(xmx)[1]
        - 0.5 * float(r @ mi @ r)
    )


def multilevel(
    yi: npt.ArrayLike,
    V: npt.ArrayLike,
    cluster: Sequence[object],
    X: npt.ArrayLike | None = None,
    level: float = 0.95,
) -> Multilevel:
    """``rma.mv(yi, V, random = ~ 1 | cluster/result)`` by REML: a random effect per cluster
    (study) and per result within it, V the sampling covariance (e.g. from :func:`vcalc`)."""
    from scipy import optimize

    y = np.asarray(yi, dtype=float)
    V = np.asarray(V, dtype=float)
    X = np.ones((y.size, 1)) if X is None else np.asarray(X, dtype=float)
    if V.shape != (y.size, y.size) or X.shape[0] != y.size:
        raise ValueError("V must be k x k and X must have k rows")
    Z = np.array([[float(a == b) for b in cluster] for a in cluster])
    start = max(float(np.var(y)) - float(np.mean(np.diag(V))), 0.01) / 2

    def neg(t: FloatArray) -> float:
        return -_ml_reml(y, V, X, Z, np.exp(t))

    best = optimize.minimize(neg, np.log([start, start]), method="Nelder-Mead",
                             options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20000})  # fmt: skip
    best = optimize.minimize(neg, best.x, method="BFGS", options={"gtol": 1e-12})
    s2 = np.exp(best.x)
    _, _, _, xmx, beta, _ = _ml_parts(y, V, X, Z, s2)
    se = np.sqrt(np.diag(np.linalg.inv(xmx)))
    z = float(special.ndtri(0.5 + level / 2))
    return Multilevel(
        beta=tuple(map(float, beta)),
        se=tuple(map(float, se)),
        ci_lb=tuple(map(float, beta - z * se)),
        ci_ub=tuple(map(float, beta + z * se)),
        sigma2=(float(s2[0]), float(s2[1])),
        ll_reml=_ml_reml(y, V, X, Z, s2),
        k=int(y.size),
        clusters=len(set(map(str, cluster))),
    )
