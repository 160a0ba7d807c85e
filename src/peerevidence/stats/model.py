"""The Bayesian random-effects model: PyMC, sampled with nutpie, checked against exact results.

Model (one per outcome), on the harmonised scale::

    y_i ~ Normal(theta_i + b_i, v_i * lambda_i)     b_i ~ Normal(m_i, s_i^2)   design bias
    theta_i ~ Normal(mu, tau^2)
    mu ~ prior_mu,  tau ~ prior_tau

``b_i`` and ``lambda_i`` are zero / one for randomised trials; for pilot and non-randomised
designs they come from ``design_bias`` in ``evidence/analysis.yaml`` (Turner et al. 2009,
turner2009; Welton et al. 2009, welton2009).

Parametrisation (the same model, sampled where its geometry is easy). theta_i and b_i are
integrated out, ``y_i ~ Normal(mu + m_i, v_i lambda_i + s_i^2 + tau^2)``; conditional on tau
the model is conjugate in mu, ``mu | tau, y ~ Normal(M(tau), S(tau)^2)``, so PyMC samples
``tau`` under the marginal likelihood ``p(y | tau)`` (mu integrated out) together with an
independent ``z ~ Normal(0, 1)``, and ``mu = M(tau) + S(tau) z``: the joint posterior of
(tau, z) is ``p(tau | y) phi(z)``, with no funnel between mu and tau. tau itself is written
through its prior's quantile function, ``tau = F^-1(Phi(x))`` with ``x ~ Normal(0, 1)``
(half-normal, half-Cauchy, uniform, log-normal priors), so that where the data say little,
the sampler sees a standard normal rather than a steep tail on the log scale; the log-t
prior keeps ``log(tau^2) ~ Student-t``. theta_i are drawn afterwards from their exact
conditional normal given (mu, tau), theta_new from Normal(mu, tau^2), one per draw.

Compile once, fit many: the PyMC model is compiled by nutpie once per model structure
(prior families) and padded size, and reused with new data (``with_data``). Studies are
padded to the next size in :data:`SIZES` with a zero-weight likelihood mask.

Every fit is compared with the exact posterior (:mod:`peerevidence.stats.exact`, itself checked
against brute-force integration of the raw likelihood): for mu, tau and theta_new, the
largest |MCMC - exact| of the mean and the 2.5/50/97.5% quantiles is stored in posterior-SD
units and in Monte Carlo standard errors; a fit whose discrepancy exceeds both
``tolerance_sd`` and ``tolerance_z`` fails, loudly.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from peerevidence.stats.exact import ExactPosterior, exact_posterior, summarise
from peerevidence.stats.frequentist import random_effects
from peerevidence.stats.guards import check_fit_inputs, check_prior_parameters
from peerevidence.stats.priors import Prior
from peerevidence.stats.summary import (
    QUANTILES,
    Diagnostics,
    ExactCheck,
    ExactSummary,
    FitSummary,
    RemlLine,
    Stat,
    StudyEstimate,
)

MODEL_VERSION = "re-collapsed-2"
SIZES = (16, 64, 256, 1024, 4096, 16384, 65536)
STORE_THETA_MAX_K = 1000  # above this, theta_i are summarised in chunks, not stored as draws


# ---------------------------------------------------------------------------- data


class SamplerSettings(Protocol):
    """What the sampler needs (``records.schema.SamplerSettings`` is one)."""

    @property
    def draws(self) -> int: ...
    @property
    def tune(self) -> int: ...
    @property
    def chains(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def target_accept(self) -> float: ...


@dataclass(frozen=True)
class FitData:
    """One analysis: study labels, effects and variances, and per-study bias settings."""

    labels: tuple[str, ...]
    yi: np.ndarray
    vi: np.ndarray
    bias_mean: np.ndarray | None = None
    bias_var: np.ndarray | None = None
    inflation: np.ndarray | None = None
    measure: str = "GEN"

    @property
    def k(self) -> int:
        return int(self.yi.size)

    def adjusted(self) -> tuple[np.ndarray, np.ndarray]:
        """(y - m, v * lambda + s^2): the data as the marginal model sees them."""
        m = self.bias_mean if self.bias_mean is not None else 0.0
        s2 = self.bias_var if self.bias_var is not None else 0.0
        lam = self.inflation if self.inflation is not None else 1.0
        return self.yi - m, self.vi * lam + s2


@dataclass(frozen=True)
class Priors:
    mu: Prior
    tau: Prior

    def as_dict(self) -> dict[str, str]:
        return {"mu": self.mu.spec, "tau": self.tau.spec}


# ---------------------------------------------------------------------------- model


_SQRT2 = math.sqrt(2.0)
_LOG2PI = math.log(2.0 * math.pi)


def _tau_variable(pm: Any, pt: Any, family: str, p1: Any, p2: Any) -> Any:
    """tau as a deterministic transform of a standard normal through its prior's quantiles."""
    if family == "logt2":
        log_tau2 = pm.StudentT("log_tau2", nu=5, mu=p1, sigma=p2)
        return pm.Deterministic("tau", pt.exp(log_tau2 / 2))
    x = pm.Normal("tau_z", mu=0.0, sigma=1.0)
    upper = pt.erfc(x / _SQRT2) / 2  # 1 - Phi(x), accurate far in the right tail
    if family == "halfnormal":
        tau = p1 * _SQRT2 * pt.erfcinv(upper)
    elif family == "halfcauchy":
        tau = p1 / pt.tan(math.pi * upper / 2)
    elif family == "uniform":
        tau = p1 * (1 - upper)
    elif family == "lognormal2":
        tau = pt.exp((p1 + p2 * x) / 2)
    else:
        raise ValueError(f"no PyMC prior for tau family {family!r}")
    return pm.Deterministic("tau", tau)


def build_model(mu_family: str, tau_family: str, size: int) -> Any:
    """The random-effects model as a PyMC model with data containers of ``size``."""
    import pymc as pm
    import pytensor.tensor as pt

    if mu_family not in ("normal", "flat"):
        raise ValueError(f"no PyMC prior for mu family {mu_family!r}")
    zeros, ones = np.zeros(size), np.ones(size)
    with pm.Model() as model:
        y = pm.Data("y", zeros)
        v = pm.Data("v", ones)
        mask = pm.Data("mask", ones)
        bias_mean = pm.Data("bias_mean", zeros)
        bias_var = pm.Data("bias_var", zeros)
        inflation = pm.Data("inflation", ones)
        tau_p1 = pm.Data("tau_p1", 1.0)
        tau_p2 = pm.Data("tau_p2", 1.0) if tau_family in ("lognormal2", "logt2") else None
        tau = _tau_variable(pm, pt, tau_family, tau_p1, tau_p2)
        z = pm.Normal("z", mu=0.0, sigma=1.0)
        s2 = v * inflation + bias_var + tau**2
        w = mask / s2
        log_det = (mask * (_LOG2PI + pt.log(s2))).sum()
        if mu_family == "normal":
            m0 = pm.Data("mu_loc", 0.0)
            s0 = pm.Data("mu_scale", 1.0)
            r = y - bias_mean - m0
            sw, swr, swr2 = w.sum(), (w * r).sum(), (w * r * r).sum()
            a = 1 + s0**2 * sw
            loglik = -0.5 * (log_det + pt.log(a) + swr2 - s0**2 * swr**2 / a)
            centre, spread = m0 + s0**2 * swr / a, pt.sqrt(s0**2 / a)
        else:
            r = y - bias_mean
            sw, swr, swr2 = w.sum(), (w * r).sum(), (w * r * r).sum()
            loglik = -0.5 * (log_det - _LOG2PI + pt.log(sw) + swr2 - swr**2 / sw)
            centre, spread = swr / sw, pt.sqrt(1 / sw)
        pm.Potential("marginal_loglik", loglik)
        pm.Deterministic("mu", centre + spread * z)
    return model


def padded_size(k: int) -> int:
    for size in SIZES:
        if k <= size:
            return size
    raise ValueError(f"k = {k} is larger than the largest supported size {SIZES[-1]}")


class CompiledModels:
    """Compiled nutpie models, one per (mu family, tau family, padded size).

    Create one per process (or per worker) and pass it to :func:`fit`; compiling costs
    seconds, sampling with new data a fraction of a second.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, str, int], Any] = {}
        self.compiles = 0

    def get(self, mu_family: str, tau_family: str, size: int) -> Any:
        key = (mu_family, tau_family, size)
        if key not in self._models:
            import nutpie

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._models[key] = nutpie.compile_pymc_model(build_model(*key))
            self.compiles += 1
        return self._models[key]


# ---------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Fit:
    """A fitted analysis: the posterior as ArviZ data and its typed summary."""

    data: FitData
    priors: Priors
    sampler: SamplerSettings
    idata: Any = field(repr=False)
    summary: FitSummary
    exact: ExactPosterior = field(repr=False)


def _stat(x: np.ndarray, exist: tuple[bool, bool] = (True, True), why: str | None = None) -> Stat:
    """Quantiles always; the mean and SD only where they exist (``exist``: mean, sd)."""
    q = np.quantile(x, QUANTILES, method="hazen")
    has_mean, has_sd = exist
    return Stat(
        q025=float(q[0]),
        q50=float(q[1]),
        q975=float(q[2]),
        mean=float(np.mean(x)) if has_mean else None,
        sd=float(np.std(x, ddof=1)) if has_sd else None,
        undefined=None if has_mean and has_sd else why,
    )


def _sample(models: CompiledModels, data: FitData, priors: Priors, settings: SamplerSettings) -> Any:
    import nutpie

    k = data.k
    size = padded_size(k)
    compiled = models.get(priors.mu.family, priors.tau.family, size)
    pad = size - k

    def padded(values: np.ndarray | None, fill: float) -> np.ndarray:
        base = np.full(k, fill) if values is None else np.asarray(values, float)
        return np.concatenate([base, np.full(pad, fill)])

    values: dict[str, Any] = {
        "y": padded(data.yi, 0.0),
        "v": padded(data.vi, 1.0),
        "mask": np.concatenate([np.ones(k), np.zeros(pad)]),
        "bias_mean": padded(data.bias_mean, 0.0),
        "bias_var": padded(data.bias_var, 0.0),
        "inflation": padded(data.inflation, 1.0),
        "tau_p1": float(priors.tau.params[0]),
    }
    if priors.mu.family == "normal":
        values["mu_loc"], values["mu_scale"] = (float(x) for x in priors.mu.params)
    if len(priors.tau.params) > 1:
        values["tau_p2"] = float(priors.tau.params[1])
    model = compiled.with_data(**values)
    return nutpie.sample(
        model,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=settings.seed,
        target_accept=settings.target_accept,
        progress_bar=False,
        cores=max(1, min(settings.chains, os.cpu_count() or 1)),
    )


def _theta_draws(
    mu: np.ndarray, tau: np.ndarray, y: np.ndarray, v: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """theta_i | mu, tau, y_i: normal with shrinkage b = v / (v + tau^2) towards mu."""
    t2 = tau[..., None] ** 2
    b = v / (v + t2)
    mean = (1 - b) * y + b * mu[..., None]
    return mean + np.sqrt(b * t2) * rng.standard_normal(mean.shape)


def _add_study_draws(idata: Any, data: FitData, seed: int) -> list[StudyEstimate]:
    """Draw theta_new ~ N(mu, tau^2) and every theta_i from its conditional (one per posterior
    draw); store the draws (k <= STORE_THETA_MAX_K) and return per-study summaries."""
    import xarray as xr

    y, v = data.adjusted()
    post = idata.posterior
    mu = post["mu"].values
    tau = post["tau"].values
    rng = np.random.default_rng([seed, 20150703])
    dims = ("chain", "draw")
    idata.posterior["theta_new"] = xr.DataArray(mu + tau * rng.standard_normal(mu.shape), dims=dims)
    summaries = []
    chunk = STORE_THETA_MAX_K
    stored = []
    for start in range(0, data.k, chunk):
        stop = min(start + chunk, data.k)
        theta = _theta_draws(mu, tau, y[start:stop], v[start:stop], rng)
        flat = theta.reshape(-1, stop - start)
        q = np.quantile(flat, [0.025, 0.975], axis=0, method="hazen")
        mean, sd = flat.mean(axis=0), flat.std(axis=0, ddof=1)
        for j, label in enumerate(data.labels[start:stop]):
            summaries.append(
                StudyEstimate(label, float(mean[j]), float(sd[j]), float(q[0, j]), float(q[1, j]))
            )
        if data.k <= STORE_THETA_MAX_K:
            stored.append(theta)
    if stored:
        idata.posterior["theta"] = xr.DataArray(
            np.concatenate(stored, axis=-1), dims=(*dims, "study"), coords={"study": list(data.labels)}
        )
    else:
        idata.posterior.attrs["theta_stored"] = f"no: k > {STORE_THETA_MAX_K}; summaries only"
    return summaries


def _diagnostics(idata: Any) -> Diagnostics:
    import arviz as az

    names = ["mu", "tau"]
    rhat = az.rhat(idata, var_names=names)
    bulk = az.ess(idata, var_names=names, method="bulk")
    tail = az.ess(idata, var_names=names, method="tail")
    div = idata.sample_stats.get("diverging")
    return Diagnostics(
        rhat_max=float(max(float(rhat[n]) for n in names)),
        ess_bulk_min=float(min(float(bulk[n]) for n in names)),
        ess_tail_min=float(min(float(tail[n]) for n in names)),
        divergences=int(div.sum()) if div is not None else 0,
    )


def _mcse(idata: Any, name: str, stat: str) -> float:
    import arviz as az

    if stat == "mean":
        return float(az.mcse(idata, var_names=[name], method="mean")[name])
    prob = {"q025": 0.025, "q50": 0.5, "q975": 0.975}[stat]
    return float(az.mcse(idata, var_names=[name], method="quantile", prob=prob)[name])


def compare_with_exact(
    idata: Any, mcmc: dict[str, Stat], exact: dict[str, Stat], tolerance_sd: float, tolerance_z: float
) -> ExactCheck:
    """Largest discrepancy between MCMC and exact summaries, in posterior SDs and MCSEs."""
    worst_sd, worst_z, where, failed = 0.0, 0.0, "", False
    for name in ("mu", "tau", "theta_new"):
        ex = exact[name]
        scale = ex.scale
        if not scale or not math.isfinite(scale):
            continue
        stats = ["q025", "q50", "q975"] + (["mean"] if ex.mean is not None else [])
        for stat in stats:
            ours, theirs = getattr(mcmc[name], stat), getattr(ex, stat)
            if ours is None or theirs is None:
                continue
            delta = abs(ours - theirs)
            in_sd = delta / scale
            mcse = _mcse(idata, name, stat)
            z = delta / mcse if mcse > 0 else math.inf
            if in_sd > worst_sd:
                worst_sd, where = in_sd, f"{name}.{stat}"
            worst_z = max(worst_z, z if math.isfinite(z) else 0.0)
            if in_sd > tolerance_sd and z > tolerance_z:
                failed = True
    return ExactCheck(worst_sd, worst_z, where, not failed, tolerance_sd, tolerance_z)


def undefined_moments_reason(k: int, priors: Priors) -> str:
    """Why some posterior means or SDs do not exist (see ``stats.exact.moments_exist``)."""
    return (
        f"with k = {k}, {priors.mu.spec} on mu and {priors.tau.spec} on tau the posterior "
        "has tails too heavy for this mean or SD to exist; read the quantiles"
    )


def notes_for(k: int, priors: Priors) -> list[str]:
    """Plain-language notes a reader needs when the data say little about heterogeneity."""
    notes = []
    if k == 1:
        notes.append(
            "k = 1: one study cannot show how much effects vary between studies (tau); "
            "tau and the prediction for a new study come from the prior."
        )
    elif k == 2:
        notes.append(
            "k = 2: two studies say little about how much effects vary (tau); "
            "tau and the prediction for a new study are largely prior-driven."
        )
    if priors.tau.heavy_tailed and k <= 1:
        notes.append(
            "With a half-Cauchy prior the posterior SDs of tau and of the prediction "
            "for a new study do not exist; read the quantiles."
        )
    return notes


def fit(
    data: FitData,
    priors: Priors,
    settings: SamplerSettings,
    models: CompiledModels,
    tolerance_sd: float = 0.1,
    tolerance_z: float = 5.0,
) -> Fit:
    """Sample the model, add study draws, summarise, and check against the exact posterior."""
    if data.k < 1:
        raise ValueError("need at least one study")
    check_fit_inputs(data.labels, *data.adjusted())
    for prior in (priors.mu, priors.tau):
        check_prior_parameters(prior.spec, prior.params)
    idata = _sample(models, data, priors, settings)
    theta = _add_study_draws(idata, data, settings.seed)
    y_adj, v_adj = data.adjusted()
    post = exact_posterior(y_adj, v_adj, priors.mu, priors.tau)
    exact = summarise(post, list(data.labels), with_theta=False)
    p = idata.posterior
    m = post.moments
    why = None if post.moments_exist else undefined_moments_reason(data.k, priors)
    mcmc = {
        "mu": _stat(p["mu"].values.ravel(), (m.mu_mean, m.mu_sd), why),
        "tau": _stat(p["tau"].values.ravel(), (m.tau_mean, m.tau_sd), why),
        "theta_new": _stat(p["theta_new"].values.ravel(), (m.theta_new_mean, m.theta_new_sd), why),
    }
    exact_stats = {name: Stat.from_json(exact[name]) for name in ("mu", "tau", "theta_new")}
    reml_line = random_effects(y_adj, v_adj, "REML")
    summary = FitSummary(
        k=data.k,
        measure=data.measure,
        mu=mcmc["mu"],
        tau=mcmc["tau"],
        theta_new=replace(mcmc["theta_new"], q50=None),
        p_mu_gt_0=float(np.mean(p["mu"].values > 0)),
        theta=tuple(theta),
        diagnostics=_diagnostics(idata),
        exact_check=compare_with_exact(idata, mcmc, exact_stats, tolerance_sd, tolerance_z),
        exact=ExactSummary(
            mu=exact_stats["mu"],
            tau=exact_stats["tau"],
            theta_new=replace(exact_stats["theta_new"], q50=None),
            p_mu_gt_0=float(exact["p_mu_gt_0"]),
        ),
        reml=RemlLine.from_json(reml_line.summary()),
        priors=priors.as_dict(),
        notes=(*notes_for(data.k, priors), *reml_line.notes),
    )
    import xarray as xr

    coords = {"study": list(data.labels)}
    idata.add_groups(
        constant_data=xr.Dataset(
            {
                name: ("study", np.asarray(values, float))
                for name, values in (
                    ("y", data.yi),
                    ("v", data.vi),
                    ("y_adjusted", y_adj),
                    ("v_adjusted", v_adj),
                )
            },
            coords=coords,
        )
    )
    idata.posterior.attrs.update(
        {
            "model_version": MODEL_VERSION,
            "prior_mu": priors.mu.spec,
            "prior_tau": priors.tau.spec,
            "seed": settings.seed,
        }
    )
    return Fit(data=data, priors=priors, sampler=settings, idata=idata, summary=summary, exact=post)
