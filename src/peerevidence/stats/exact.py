"""Exact posterior of the normal-normal random-effects model by quadrature over tau.

Model: ``y_i ~ N(theta_i, v_i)``, ``theta_i ~ N(mu, tau^2)``, ``mu ~ N(m0, s0^2)`` (or flat),
``tau ~ p(tau)``. Conditional on tau the model is conjugate in mu (Röver 2020, rover2020,
the approach of the R package bayesmeta):

* ``mu | tau, y ~ N(M(tau), S(tau)^2)`` with ``1/S^2 = 1/s0^2 + sum w_i``,
  ``M = S^2 (m0/s0^2 + sum w_i y_i)``, ``w_i = 1/(v_i + tau^2)``;
* ``p(tau | y) ∝ p(tau) N(y; m0 1, diag(v + tau^2) + s0^2 1 1')`` (flat mu prior: the
  restricted likelihood), a one-dimensional density integrated numerically;
* mu, theta_new and every theta_i are then mixtures of normals over ``p(tau | y)``.

Quadrature: composite Gauss-Legendre in ``log tau`` over the region where the log posterior
of ``log tau`` lies within 45 nats of its maximum (located on a dense log grid first).
Integrals of mixtures (CDFs, moments) are sums over the nodes; quantiles solve the CDF by
Brent's method.

Posterior moments that do not exist are reported as ``None`` (:func:`moments_exist`, whose
docstring gives the rule and its derivation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from peerevidence.stats.priors import Prior

FloatArray = npt.NDArray[np.float64]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
N_PANELS = 96
DROP_NATS = 45.0
QUANTILES = (0.025, 0.5, 0.975)


def mixture_quantiles(
    q: float | FloatArray,
    means: FloatArray,
    variances: FloatArray,
    weight: FloatArray,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> FloatArray:
    """The q-quantile of each row's normal mixture (rows: studies; columns: nodes); ``q`` may
    also give one probability per row.

    Newton steps on F(x) - q with the mixture density, kept inside a bracket that shrinks
    with every evaluation (bisection when a step leaves it): converges in a handful of steps
    and never fails.
    """
    sd = np.sqrt(variances)
    lo = np.min(means - 40 * sd, axis=1)
    hi = np.max(means + 40 * sd, axis=1)
    mean = means @ weight
    x = np.clip(mean, lo, hi)
    for _ in range(max_iter):
        z = (x[:, None] - means) / sd
        cdf = special.ndtr(z) @ weight
        pdf = (np.exp(-0.5 * z**2) / (_SQRT_2PI * sd)) @ weight
        above = cdf > q
        hi = np.where(above, x, hi)
        lo = np.where(above, lo, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x - (cdf - q) / pdf
        inside = np.isfinite(step) & (step >= lo) & (step <= hi)
        new = np.where(inside, step, (lo + hi) / 2)
        scale = tol * (sd.min(axis=1) + np.abs(x))
        done = (np.abs(new - x) <= scale) | (hi - lo <= scale) | (np.abs(cdf - q) <= 1e-14)
        if np.all(done):
            return np.where(np.abs(cdf - q) <= 1e-14, x, new)
        x = new
    return x


_SQRT_2PI = math.sqrt(2 * math.pi)


def _brentq(f: Callable[[float], float], lo: float, hi: float) -> float:
    from scipy.optimize import brentq  # imported on first use: scipy.optimize is slow to import

    return float(brentq(f, lo, hi, xtol=1e-14, rtol=1e-12))


@dataclass(frozen=True)
class MomentsExist:
    """Which posterior means and SDs exist (are finite); see :func:`moments_exist`."""

    mu_mean: bool
    mu_sd: bool
    tau_mean: bool
    tau_sd: bool
    theta_new_mean: bool
    theta_new_sd: bool

    @property
    def all(self) -> bool:
        return all(getattr(self, f) for f in self.__dataclass_fields__)

    def as_dict(self) -> dict[str, dict[str, bool]]:
        return {
            name: {"mean": getattr(self, f"{name}_mean"), "sd": getattr(self, f"{name}_sd")}
            for name in ("mu", "tau", "theta_new")
        }


def _tau_moment_exists(r: int, a: int, tau_prior: Prior) -> bool:
    """Is E[tau^r | y] finite when the likelihood decays like tau^-a (see moments_exist)?"""
    if tau_prior.family == "halfcauchy":  # p(tau) ~ tau^-2
        return r < a + 1
    if tau_prior.family == "logt2":  # p(tau) ~ tau^-1 (log tau)^-6
        return r <= a
    return True  # half-normal, uniform, log-normal: lighter than any power


def moments_exist(k: int, mu_prior: Prior, tau_prior: Prior) -> MomentsExist:
    """Which of the posterior mean and SD of mu, tau and theta_new exist, for k studies.

    The rule, from the tails of ``p(tau | y)``.  For large tau the likelihood with mu
    integrated out decays like ``tau^-a``: with a proper normal prior on mu the marginal
    ``N(y; m0 1, diag(v + tau^2) + s0^2 1 1')`` has determinant ~ tau^(2k), so a = k; with a
    flat prior the restricted likelihood ``|D|^-1/2 (sum w)^-1/2`` gives a = k - 1 (at k = 1
    it is constant: the posterior of tau is the prior).  So ``p(tau | y) ~ p(tau) tau^-a``.

    * tau: ``E[tau^r]`` is finite iff ``int^inf tau^r p(tau) tau^-a dtau`` is.  Half-Cauchy,
      ``p ~ tau^-2``: iff ``r < a + 1``.  Log-t on tau^2 (``logt2``, ``rhodes2015``),
      ``p(tau) ~ tau^-1 (log tau)^-6``: iff ``r <= a`` (at ``r = a`` the integrand is
      ``tau^-1 (log tau)^-6``, integrable).  Half-normal, uniform, log-normal tails are lighter
      than any power: all moments exist.
    * mu: ``mu | tau, y ~ N(M(tau), S^2(tau))`` with M a weighted mean of y and the prior mean
      (bounded).  With a normal prior ``S^2 <= s0^2``: all moments exist.  With a flat prior
      ``S^2 = 1 / sum w ~ tau^2 / k``, so ``E|mu|^r`` is finite iff ``E[tau^r]`` is.
    * theta_new ``= mu + tau z``: ``E|theta_new|^r`` is finite iff those of mu and tau are.

    The mean needs r = 1, the SD r = 2.  Examples: k = 1, normal mu prior, half-Cauchy or
    log-t tau prior: the means of tau and theta_new exist, their SDs do not.  Flat mu prior,
    half-Cauchy or log-t: k = 1 no mean or SD of mu, tau, theta_new; k = 2 means only;
    k >= 3 all.  (MCMC or quadrature would otherwise print finite but meaningless numbers.)
    """
    a = k if mu_prior.family == "normal" else k - 1
    tau_ok = [_tau_moment_exists(r, a, tau_prior) for r in (1, 2)]
    mu_ok = tau_ok if mu_prior.family == "flat" else [True, True]
    new_ok = [m and t for m, t in zip(mu_ok, tau_ok, strict=True)]
    return MomentsExist(mu_ok[0], mu_ok[1], tau_ok[0], tau_ok[1], new_ok[0], new_ok[1])


@dataclass(frozen=True)
class Summary:
    mean: float | None
    sd: float | None
    q025: float
    q50: float
    q975: float

    def as_dict(self) -> dict[str, float | None]:
        return {"mean": self.mean, "sd": self.sd, "q025": self.q025, "q50": self.q50, "q975": self.q975}


@dataclass
class ExactPosterior:
    """Discretised p(tau | y) (nodes, weights) with the conditional moments of mu."""

    tau: FloatArray  # nodes
    weight: FloatArray  # posterior probability of each node (sums to 1)
    m: FloatArray  # E[mu | tau, y]
    s2: FloatArray  # Var[mu | tau, y]
    y: FloatArray
    v: FloatArray
    log_s: FloatArray = field(repr=False)  # node positions in log tau
    panel_edges: FloatArray = field(repr=False)
    tau_prior: Prior = field(repr=False)
    mu_prior: Prior = field(repr=False)
    moments_exist: bool = True  # all of moments_exist(k, priors) hold; see .moments for each
    panel_cum: FloatArray | None = field(default=None, repr=False)  # P(tau < panel start)
    shared: SharedBias | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ mixtures
    def _mixture_cdf(self, x: float, means: FloatArray, variances: FloatArray) -> float:
        return float(np.sum(self.weight * special.ndtr((x - means) / np.sqrt(variances))))

    def _mixture_summary(
        self, means: FloatArray, variances: FloatArray, has_mean: bool = True, has_sd: bool = True
    ) -> Summary:
        mean = float(np.sum(self.weight * means))
        var = float(np.sum(self.weight * (variances + means**2)) - mean**2)
        n = len(QUANTILES)  # the three quantiles in one vectorised solve (one row each)
        rows = mixture_quantiles(
            np.array(QUANTILES),
            np.repeat(means[None, :], n, 0),
            np.repeat(variances[None, :], n, 0),
            self.weight,
        )
        qs = [float(x) for x in rows]
        return Summary(mean if has_mean else None, math.sqrt(max(var, 0.0)) if has_sd else None, *qs)

    @property
    def moments(self) -> MomentsExist:
        """Which posterior means and SDs exist for this posterior's priors and k."""
        return moments_exist(self.y.size, self.mu_prior, self.tau_prior)

    # ------------------------------------------------------------------ public summaries
    def mu(self) -> Summary:
        m = self.moments
        return self._mixture_summary(self.m, self.s2, m.mu_mean, m.mu_sd)

    def theta_new(self) -> Summary:
        m = self.moments
        return self._mixture_summary(self.m, self.s2 + self.tau**2, m.theta_new_mean, m.theta_new_sd)

    def theta(self, i: int) -> Summary:
        return self.thetas([i])[0]

    def thetas(self, indices: list[int] | None = None, block: int = 64) -> list[Summary]:
        """Every theta_i's summary at once: moments by sums, quantiles by a vectorised,
        bracketed Newton iteration on the mixture CDFs (studies in blocks of ``block``)."""
        idx = np.arange(self.y.size) if indices is None else np.asarray(indices)
        out: list[Summary] = []
        t2 = self.tau**2
        for start in range(0, idx.size, block):
            sel = idx[start : start + block]
            b = self.v[sel, None] / (self.v[sel, None] + t2[None, :])  # (studies, nodes)
            means = (1 - b) * self.y[sel, None] + b * self.m[None, :]
            variances = np.maximum(b * t2[None, :] + b**2 * self.s2[None, :], 1e-300)
            if self.shared is not None and self.shared.var.size:
                means, variances = self._shared_theta(sel, b, means, variances)
            mean = means @ self.weight
            var = (variances + means**2) @ self.weight - mean**2
            qs = np.column_stack([mixture_quantiles(q, means, variances, self.weight) for q in QUANTILES])
            for j in range(sel.size):
                out.append(Summary(float(mean[j]), math.sqrt(max(float(var[j]), 0.0)), *map(float, qs[j])))
        return out

    def _shared_theta(
        self, sel: npt.NDArray[np.intp], b: FloatArray, means: FloatArray, variances: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """theta_i | tau, y when study i shares a design bias beta_g with others: given
        (mu, beta_g) theta_i is normal with shrinkage b; (mu, beta_g) | tau, y is bivariate
        normal with beta_g | mu ~ N(h (B_g - mu A_g), h), h = s_g^2 / (1 + s_g^2 A_g)."""
        sh = self.shared
        assert sh is not None  # called only when there is a shared bias
        w = 1.0 / (self.v[None, :] + self.tau[:, None] ** 2)  # (nodes, k)
        u = sh.onehot()
        ga, gb = w @ u, (w * self.y[None, :]) @ u  # (nodes, G)
        h = sh.var[None, :] / (1.0 + sh.var[None, :] * ga)
        e_beta = h * (gb - self.m[:, None] * ga)
        v_beta = h + (h * ga) ** 2 * self.s2[:, None]
        c_mu_beta = -h * ga * self.s2[:, None]
        g = np.asarray(sh.group, int)[sel]
        has = g >= 0
        if not np.any(has):
            return means, variances
        gi = np.where(has, g, 0)
        eb, vb, cb = e_beta[:, gi].T, v_beta[:, gi].T, c_mu_beta[:, gi].T  # (studies, nodes)
        new_means = means - np.where(has[:, None], (1 - b) * eb, 0.0)
        extra = (1 - b) ** 2 * vb - 2 * b * (1 - b) * cb
        new_var = np.maximum(variances + np.where(has[:, None], extra, 0.0), 1e-300)
        return new_means, new_var

    def p_mu_gt(self, x: float = 0.0) -> float:
        return 1.0 - self._mixture_cdf(x, self.m, self.s2)

    def tau_cdf(self, t: float) -> float:
        """P(tau <= t | y): whole panels below log t, plus Gauss-Legendre on the partial one."""
        if t <= 0:
            return 0.0
        s = math.log(t)
        edges = self.panel_edges
        j = int(np.searchsorted(edges, s, side="right")) - 1
        if j < 0:
            return 0.0
        if j >= edges.size - 1:
            return 1.0
        assert self.panel_cum is not None, "set by exact_posterior"
        below = float(self.panel_cum[j])
        return min(max(below + self._panel_mass(float(edges[j]), s) / self._norm, 0.0), 1.0)

    def _panel_mass(self, a: float, b: float) -> float:
        half = (b - a) / 2
        assert self._log_density_s is not None, "set by exact_posterior"
        s = (a + b) / 2 + half * _GL_X
        return float(np.sum(half * _GL_W * np.exp(self._log_density_s(s) - self._log_max)))

    def tau_summary(self) -> Summary:
        qs: list[float] = []
        for q in QUANTILES:
            lo, hi = float(np.exp(self.panel_edges[0])), float(np.exp(self.panel_edges[-1]))
            if self.tau_cdf(lo) >= q:
                qs.append(0.0)
                continue
            # bracket: the panel whose cumulative mass passes q (one panel, not the whole range)
            assert self.panel_cum is not None, "set by exact_posterior"
            j = int(np.searchsorted(self.panel_cum, q, side="right")) - 1
            j = min(max(j, 0), self.panel_edges.size - 2)
            a, b = float(np.exp(self.panel_edges[j])), float(np.exp(self.panel_edges[j + 1]))
            if not (self.tau_cdf(a) <= q <= self.tau_cdf(b)):
                a, b = lo, hi

            def gap(t: float, q: float = q) -> float:
                return self.tau_cdf(t) - q

            qs.append(float(_brentq(gap, a, b)))
        m = self.moments
        mean = float(np.sum(self.weight * self.tau))
        var = float(np.sum(self.weight * self.tau**2) - mean**2)
        return Summary(mean if m.tau_mean else None, math.sqrt(max(var, 0.0)) if m.tau_sd else None, *qs)

    # set by exact_posterior
    _log_density_s: Callable[[FloatArray], FloatArray] | None = field(default=None, repr=False)
    _log_max: float = 0.0
    _norm: float = 1.0


def conditionals(
    tau: FloatArray,
    y: FloatArray,
    v: FloatArray,
    mu_prior: Prior,
    cells: int = 2_000_000,
    shared: SharedBias | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For each tau: (log marginal likelihood of y, E[mu|tau,y], Var[mu|tau,y]).

    Evaluated in blocks of tau values so that no intermediate array exceeds ``cells``
    numbers (k = 10,000 studies would otherwise need gigabytes)."""
    block = max(1, cells // max(y.size, 1))
    if tau.size > block:
        parts = [
            _conditionals_block(tau[i : i + block], y, v, mu_prior, shared) for i in range(0, tau.size, block)
        ]
        loglik, m, s2 = (np.concatenate([p[j] for p in parts]) for j in range(3))
        return loglik, m, s2
    return _conditionals_block(tau, y, v, mu_prior, shared)


@dataclass(frozen=True)
class SharedBias:
    """Biases shared by the studies of one design: ``beta_g ~ N(0, var[g])`` added to every
    study with ``group == g`` (``-1``: none); the bias means are already subtracted from y."""

    group: np.ndarray  # (k,) int
    var: np.ndarray  # (G,)

    def onehot(self) -> np.ndarray:
        g = np.asarray(self.group, int)
        out = np.zeros((g.size, self.var.size))
        rows = np.nonzero(g >= 0)[0]
        out[rows, g[rows]] = 1.0
        return out


def _group_sums(
    w: FloatArray, wr: FloatArray, wr2: FloatArray, shared: SharedBias | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | float]:
    """Effective (A, B, C, log q) after integrating out every shared bias (Woodbury identity and
    matrix determinant lemma for one rank-one term per design); A, B, C are the sums of
    w, w r, w r^2 over studies (rows: tau values)."""
    if shared is None or shared.var.size == 0:
        return w.sum(axis=1), wr.sum(axis=1), wr2.sum(axis=1), 0.0
    u = shared.onehot()  # (k, G)
    ga, gb = w @ u, wr @ u  # (n_tau, G)
    q = 1.0 + shared.var[None, :] * ga
    free = 1.0 - u.sum(axis=1)  # studies without a shared bias
    a = w @ free + (ga / q).sum(axis=1)
    b = wr @ free + (gb / q).sum(axis=1)
    c = wr2.sum(axis=1) - (shared.var[None, :] * gb**2 / q).sum(axis=1)
    return a, b, c, np.log(q).sum(axis=1)


def _conditionals_block(
    tau: FloatArray, y: FloatArray, v: FloatArray, mu_prior: Prior, shared: SharedBias | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    t2 = tau[:, None] ** 2
    s2i = v[None, :] + t2  # (n_tau, k)
    w = 1.0 / s2i
    log_det_d = np.log(s2i).sum(axis=1)
    k = y.size
    if mu_prior.family == "normal":
        m0, s0 = mu_prior.params
        r = y[None, :] - m0
        sw, swr, swr2, log_q = _group_sums(w, w * r, w * r**2, shared)
        a = 1.0 + s0**2 * sw
        quad = swr2 - s0**2 * swr**2 / a
        loglik = -0.5 * (k * math.log(2 * math.pi) + log_det_d + log_q + np.log(a) + quad)
        prec = 1.0 / s0**2 + sw
        m = m0 + swr / prec
        return loglik, m, 1.0 / prec
    # flat prior on mu: integrate mu out of the likelihood
    r = np.broadcast_to(y[None, :], w.shape)
    sw, swy, swy2, log_q = _group_sums(w, w * r, w * r**2, shared)
    m = swy / sw
    quad = swy2 - swy**2 / sw
    loglik = -0.5 * ((k - 1) * math.log(2 * math.pi) + log_det_d + log_q + np.log(sw) + quad)
    return loglik, m, 1.0 / sw


@dataclass(frozen=True)
class TauQuadrature:
    """Gauss-Legendre nodes over s = log tau covering the posterior's mass, and the
    unnormalised weights ``raw`` (density x quadrature weight, scaled by ``exp(-log_max)``)."""

    s_nodes: FloatArray
    edges: FloatArray  # panel edges on the log tau scale
    raw: FloatArray
    log_max: float
    norm: float  # raw.sum()


def tau_quadrature(
    log_density_s: Callable[[FloatArray], FloatArray], y: FloatArray, v: FloatArray, tau_prior: Prior
) -> TauQuadrature:
    """Locate the posterior of s = log tau on a coarse grid, then integrate it with
    Gauss-Legendre panels over the region within ``DROP_NATS`` of its maximum (bayesmeta's
    approach; shared by the random-effects model and the meta-regression)."""
    # a scale for tau that the data or the prior make plausible: the search grid spans
    # e^-25 to e^15 times it, and the posterior's 45-nat region is then integrated.
    scale = float(np.sqrt(np.median(v)) + np.std(y) + 1e-12)
    scale = max(scale, tau_prior.quantile(0.5))
    grid = np.linspace(math.log(scale) - 25.0, math.log(scale) + 15.0, 4001)
    dens = log_density_s(grid)
    dens = np.where(np.isfinite(dens), dens, -np.inf)
    top = float(np.max(dens))
    if not np.isfinite(top):
        raise ValueError("the posterior of tau could not be evaluated")
    keep = np.nonzero(dens > top - DROP_NATS)[0]
    lo, hi = float(grid[max(keep[0] - 2, 0)]), float(grid[min(keep[-1] + 2, grid.size - 1)])
    edges = np.linspace(lo, hi, N_PANELS + 1)
    half = (edges[1:] - edges[:-1]) / 2
    mids = (edges[1:] + edges[:-1]) / 2
    s_nodes = (mids[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    s_weights = (half[:, None] * _GL_W[None, :]).ravel()
    log_d = log_density_s(s_nodes)
    log_max = float(np.max(log_d))
    raw = s_weights * np.exp(log_d - log_max)
    return TauQuadrature(s_nodes, edges, raw, log_max, float(raw.sum()))


def exact_posterior(
    yi: npt.ArrayLike, vi: npt.ArrayLike, mu_prior: Prior, tau_prior: Prior, shared: SharedBias | None = None
) -> ExactPosterior:
    """Discretise the posterior of tau; see the module docstring for the method.

    ``shared``: biases shared by the studies of a design, integrated out analytically."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.size == 0 or y.shape != v.shape or np.any(~np.isfinite(y)) or np.any(~(v > 0)):
        raise ValueError("need k >= 1 finite yi and positive vi")
    if mu_prior.family == "flat" and y.size < 1:
        raise ValueError("a flat prior on mu needs k >= 1")

    def log_density_s(s: FloatArray) -> FloatArray:
        """log posterior density of s = log tau (unnormalised): log p(tau) + log L + s."""
        tau = np.exp(s)
        loglik, _, _ = conditionals(tau, y, v, mu_prior, shared=shared)
        return tau_prior.logpdf(tau) + loglik + s

    grid = tau_quadrature(log_density_s, y, v, tau_prior)
    s_nodes, edges, raw, log_max, norm = grid.s_nodes, grid.edges, grid.raw, grid.log_max, grid.norm
    tau = np.exp(s_nodes)
    _, m, s2 = conditionals(tau, y, v, mu_prior, shared=shared)
    k = y.size
    moments = moments_exist(k, mu_prior, tau_prior).all  # every mean and SD exists
    post = ExactPosterior(
        tau=tau,
        weight=raw / norm,
        m=m,
        s2=s2,
        y=y,
        v=v,
        log_s=s_nodes,
        panel_edges=edges,
        tau_prior=tau_prior,
        mu_prior=mu_prior,
        moments_exist=moments,
        shared=shared,
    )
    per_panel = (raw / norm).reshape(N_PANELS, -1).sum(axis=1)
    post.panel_cum = np.concatenate([[0.0], np.cumsum(per_panel)])
    post._log_density_s = log_density_s
    post._log_max = log_max
    post._norm = norm
    return post


def summarise(
    post: ExactPosterior, labels: list[str] | None = None, with_theta: bool = True
) -> dict[str, Any]:
    """All exact summaries in the shape of ``pool --json``'s ``exact`` block (plus theta)."""
    out: dict[str, Any] = {
        "mu": post.mu().as_dict(),
        "tau": post.tau_summary().as_dict(),
        "theta_new": post.theta_new().as_dict(),
        "p_mu_gt_0": post.p_mu_gt(0.0),
    }
    if with_theta:
        labels = labels or [str(i) for i in range(post.y.size)]
        out["theta"] = [{"study": lab, **s.as_dict()} for lab, s in zip(labels, post.thetas(), strict=True)]
    return out
