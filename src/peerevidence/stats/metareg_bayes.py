"""Bayesian random-effects meta-regression, exact by quadrature over tau (and a PyMC model).

Model: ``y_i ~ N(theta_i, v_i)``, ``theta_i = x_i' beta + u_i``, ``u_i ~ N(0, tau^2)``,
``beta_j ~ N(b_j, s_j^2)`` independently (stated and changeable per coefficient),
``tau ~ p(tau)``. Conditional on tau the model is conjugate in beta (Röver & Friede's
``bmr``; rover2020), so with ``W = diag(1/(v_i + tau^2))``, ``B = diag(s_j^2)``:

* ``beta | tau, y ~ N(m(tau), S(tau))``, ``S^-1 = B^-1 + X'WX``, ``m = b + S X'W (y - X b)``;
* ``p(tau | y) ∝ p(tau) N(y; X b, W^-1 + X B X')``, evaluated with the determinant lemma
  ``|W^-1 + X B X'| = |W^-1| |B| |S^-1|`` and integrated over ``log tau`` exactly as
  :func:`peerevidence.stats.exact.exact_posterior` integrates the intercept-only model;
* every linear combination ``c' beta`` (a coefficient, a subgroup's pooled effect, a
  difference between subgroups) is a mixture of normals over ``p(tau | y)``, and so is a new
  study's effect at covariates x, ``theta_new(x) ~ N(x'm, x'Sx + tau^2)`` given tau.

:meth:`ExactMetaRegression.marginal` returns that mixture as an
:class:`~peerevidence.stats.exact.ExactPosterior`, so its summaries, tail probabilities and
the tau posterior are computed by the same (tested) code as the main model's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from peerevidence.stats.exact import N_PANELS, ExactPosterior, Summary, tau_quadrature
from peerevidence.stats.priors import Prior, parse_mu_prior

if TYPE_CHECKING:
    import pymc as pm

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BetaPrior:
    mean: FloatArray
    sd: FloatArray

    @classmethod
    def from_specs(cls, specs: Sequence[str]) -> BetaPrior:
        """One ``normal:MEAN:SD`` per coefficient (the meta-regression needs proper priors)."""
        priors = [parse_mu_prior(s) for s in specs]
        for spec, p in zip(specs, priors, strict=True):
            if p.family != "normal":
                raise ValueError(f"a meta-regression coefficient needs a normal prior (got {spec!r})")
        return cls(np.array([p.params[0] for p in priors]), np.array([p.params[1] for p in priors]))


def conditionals(
    tau: FloatArray, y: FloatArray, v: FloatArray, X: FloatArray, prior: BetaPrior
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For each tau: (log p(y | tau), E[beta | tau, y] (n, p), Cov[beta | tau, y] (n, p, p))."""
    k = X.shape[0]
    w = 1.0 / (v[None, :] + tau[:, None] ** 2)  # (n, k)
    r = y - X @ prior.mean  # (k,)
    prec = np.einsum("ij,ni,il->njl", X, w, X) + np.diag(1.0 / prior.sd**2)[None, :, :]
    S = np.linalg.inv(prec)
    xwr = np.einsum("ij,ni,i->nj", X, w, r)  # (n, p)
    sx = np.einsum("njl,nl->nj", S, xwr)
    quad = np.einsum("ni,i->n", w, r**2) - np.einsum("nj,nj->n", xwr, sx)
    logdet = -np.sum(np.log(w), axis=1) + np.sum(np.log(prior.sd**2)) + np.linalg.slogdet(prec)[1]
    loglik = -0.5 * (k * math.log(2 * math.pi) + logdet + quad)
    return loglik, prior.mean[None, :] + sx, S


@dataclass
class ExactMetaRegression:
    names: tuple[str, ...]
    tau: FloatArray
    weight: FloatArray
    m: FloatArray  # (nodes, p)
    S: FloatArray  # (nodes, p, p)
    y: FloatArray
    v: FloatArray
    X: FloatArray
    tau_prior: Prior
    beta_prior: BetaPrior
    _edges: FloatArray
    _log_density_s: Callable[[FloatArray], FloatArray]
    _log_max: float
    _norm: float
    _panel_cum: FloatArray

    def _vector(self, c: Sequence[float] | FloatArray | str) -> FloatArray:
        if isinstance(c, str):
            out = np.zeros(len(self.names))
            out[self.names.index(c)] = 1.0
            return out
        out = np.asarray(c, dtype=float)
        if out.shape != (len(self.names),):
            raise ValueError(f"a combination needs {len(self.names)} weights")
        return out

    def marginal(self, c: Sequence[float] | FloatArray | str) -> ExactPosterior:
        """c' beta as an ExactPosterior: ``.mu()`` summarises c' beta, ``.theta_new()`` a new
        study with covariates c, ``.p_mu_gt(x)`` gives P(c' beta > x), ``.tau_summary()`` tau."""
        cv = self._vector(c)
        post = ExactPosterior(
            tau=self.tau,
            weight=self.weight,
            m=self.m @ cv,
            s2=np.einsum("j,njl,l->n", cv, self.S, cv),
            y=self.y,
            v=self.v,
            log_s=np.log(self.tau),
            panel_edges=self._edges,
            tau_prior=self.tau_prior,
            mu_prior=parse_mu_prior(f"normal:0:{float(np.max(self.beta_prior.sd))!r}"),
            moments_exist=True,
        )
        post.panel_cum = self._panel_cum
        post._log_density_s = self._log_density_s
        post._log_max = self._log_max
        post._norm = self._norm
        return post

    def coef(self, name: str) -> Summary:
        return self.marginal(name).mu()

    def p_gt(self, c: Sequence[float] | FloatArray | str, x: float = 0.0) -> float:
        return self.marginal(c).p_mu_gt(x)

    def p_abs_gt(self, c: Sequence[float] | FloatArray | str, mid: float) -> float:
        """P(|c' beta| > mid)."""
        post = self.marginal(c)
        return post.p_mu_gt(mid) + (1.0 - post.p_mu_gt(-mid))


def exact_metareg(
    yi: npt.ArrayLike,
    vi: npt.ArrayLike,
    X: npt.ArrayLike,
    beta_prior: BetaPrior,
    tau_prior: Prior,
    names: Sequence[str] | None = None,
) -> ExactMetaRegression:
    """Discretise p(tau | y) of the meta-regression (see the module docstring)."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    k, p = X.shape
    if y.size == 0 or y.shape != v.shape or X.shape[0] != k or y.size != k:
        raise ValueError("yi, vi and the rows of X must have the same, non-zero length")
    if not (np.all(np.isfinite(y)) and np.all(v > 0) and np.all(np.isfinite(X))):
        raise ValueError("yi and X must be finite and vi > 0")
    if beta_prior.mean.shape != (p,) or not np.all(beta_prior.sd > 0):
        raise ValueError(f"need a normal prior with positive SD for each of the {p} coefficients")
    names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(p))

    def log_density_s(s: FloatArray) -> FloatArray:
        tau = np.exp(s)
        loglik, _, _ = conditionals(tau, y, v, X, beta_prior)
        return tau_prior.logpdf(tau) + loglik + s

    grid = tau_quadrature(log_density_s, y, v, tau_prior)
    s_nodes, edges, raw, log_max, norm = grid.s_nodes, grid.edges, grid.raw, grid.log_max, grid.norm
    tau = np.exp(s_nodes)
    _, m, S = conditionals(tau, y, v, X, beta_prior)
    weight = raw / norm
    per_panel = weight.reshape(N_PANELS, -1).sum(axis=1)
    return ExactMetaRegression(
        names=names,
        tau=tau,
        weight=weight,
        m=m,
        S=S,
        y=y,
        v=v,
        X=X,
        tau_prior=tau_prior,
        beta_prior=beta_prior,
        _edges=edges,
        _log_density_s=log_density_s,
        _log_max=log_max,
        _norm=norm,
        _panel_cum=np.concatenate([[0.0], np.cumsum(per_panel)]),
    )


def predictive_probabilities(post: ExactPosterior, mid: float) -> tuple[float, float]:
    """(P(theta_new > mid), P(theta_new < -mid)) exactly: theta_new | tau, y ~ N(m, s2 + tau^2)
    mixed over the nodes of p(tau | y)."""
    from scipy import special

    sd = np.sqrt(post.s2 + post.tau**2)
    above = float(np.sum(post.weight * special.ndtr((post.m - mid) / sd)))
    below = float(np.sum(post.weight * special.ndtr((-mid - post.m) / sd)))
    return above, below


def pymc_metareg(
    y: Sequence[float] | FloatArray,
    v: npt.ArrayLike,
    X: npt.ArrayLike,
    beta_prior: BetaPrior,
    tau_prior_spec: str,
) -> pm.Model:
    """The same model in PyMC (non-centred), for checking against :func:`exact_metareg`."""
    import pymc as pm

    from peerevidence.stats.priors import parse_tau_prior

    prior = parse_tau_prior(tau_prior_spec)
    if prior.family != "halfnormal":
        raise ValueError("the PyMC meta-regression check supports halfnormal tau priors")
    X = np.asarray(X, float)
    with pm.Model() as model:
        beta = pm.Normal("beta", mu=beta_prior.mean, sigma=beta_prior.sd, shape=X.shape[1])
        tau = pm.HalfNormal("tau", sigma=prior.params[0])
        z = pm.Normal("z", 0.0, 1.0, shape=len(y))
        theta = pm.Deterministic("theta", pm.math.dot(X, beta) + tau * z)
        pm.Normal("y", mu=theta, sigma=np.sqrt(np.asarray(v, float)), observed=np.asarray(y, float))
    return model


def sample_metareg(
    y: Sequence[float] | FloatArray,
    v: npt.ArrayLike,
    X: npt.ArrayLike,
    beta_prior: BetaPrior,
    tau_prior_spec: str,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 1,
) -> dict[str, FloatArray]:
    """Sample :func:`pymc_metareg` with nutpie; returns draws of ``beta`` (chains, draws, p)
    and ``tau`` (chains, draws)."""
    import os

    import nutpie

    compiled = nutpie.compile_pymc_model(pymc_metareg(y, v, X, beta_prior, tau_prior_spec))
    trace = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        target_accept=0.9,
        progress_bar=False,
        cores=max(1, min(chains, os.cpu_count() or 1)),
    )
    post = trace.posterior
    return {"beta": post["beta"].to_numpy(), "tau": post["tau"].to_numpy()}
