"""The Bayesian random-effects model: PyMC as the specification, sampled by nutpie from a
numba density, checked against exact results.

Model (one per outcome), on the harmonised scale::

    y_i ~ Normal(theta_i + beta_g(i) + b_i, v_i * lambda_i)
    beta_g ~ Normal(m_g, s_g^2)      shared by every study of design g     (design bias)
    b_i ~ Normal(0, e_g^2)           optional study-level extra variance
    theta_i ~ Normal(mu, tau^2)
    mu ~ prior_mu,  tau ~ prior_tau

For randomised trials there are no bias terms. For other designs the terms come from
``design_bias`` in ``evidence/analysis.yaml``, one table per scale of the outcome: the
shared bias beta_g is the mean bias of Welton et al. 2009 (welton2009) and the additive bias
of Turner et al. 2009 (turner2009), common to the studies of one design, so that many biased
studies cannot move mu further than the uncertainty about their shared bias allows; e_g^2
is the between-study spread of the bias around beta_g; lambda_i (variance inflation) is in
neither paper and is offered only as a sensitivity option (default 1).

Parametrisation (the same model, sampled where its geometry is easy). theta_i, every beta_g,
b_i and mu are integrated out analytically: given tau the marginal of y is normal with
covariance ``diag(v lambda + e^2 + tau^2) + sum_g s_g^2 d_g d_g' (+ s_mu^2 1 1')`` (d_g: the
indicator of design g), evaluated in O(k) by the Woodbury identity and the matrix
determinant lemma, and ``mu | tau, y ~ Normal(M(tau), S(tau)^2)``. The sampler sees
``tau`` through its prior's quantile function, ``tau = F^-1(Phi(x))`` with ``x ~ Normal(0, 1)``
(the log-t prior keeps ``log(tau^2) ~ Student-t``) and an independent ``z ~ Normal(0, 1)``
with ``mu = M(tau) + S(tau) z``. theta_i are drawn afterwards from their exact conditional
normal given (mu, tau) (and beta_g, drawn first from its conditional), theta_new from
Normal(mu, tau^2), one per draw.

:func:`build_model` writes this model in PyMC with the dense marginal covariance; it is the
specification. The sampler uses :mod:`peerevidence.stats.fastdensity`, a numba function of
the same density and its gradient (tested against the PyMC model's own ``logp``/``dlogp``),
handed to nutpie by :mod:`peerevidence.stats.engine`; neither imports PyMC.

Sampling is ESS-targeted: ``chains`` chains of ``tune + draws`` iterations, topped up with
``chains`` more chains while the bulk ESS is below ``target_ess`` or R-hat above
``target_rhat`` (at most ``max_rounds`` rounds).

Every fit is compared with the exact posterior (:mod:`peerevidence.stats.exact`, itself checked
against brute-force integration of the raw likelihood): for mu, tau and theta_new, the
largest |MCMC - exact| of the mean and the 2.5/50/97.5% quantiles is stored in posterior-SD
units and in Monte Carlo standard errors; a fit whose discrepancy exceeds both
``tolerance_sd`` and ``tolerance_z`` is sampled again with new seeds (twice the draws) and
fails, loudly, only if the re-sampled fit also fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from peerevidence.stats.exact import ExactPosterior, SharedBias, exact_posterior, summarise
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

if TYPE_CHECKING:
    from peerevidence.stats import engine

MODEL_VERSION = "re-shared-bias-3"
STORED_STATS = ("diverging", "n_steps", "step_size", "energy")  # what diagnostics read
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
    @property
    def target_ess(self) -> float: ...
    @property
    def target_rhat(self) -> float: ...
    @property
    def max_rounds(self) -> int: ...
    def model_copy(self, *, update: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class FitData:
    """One analysis: study labels, effects and variances, and the design-bias terms.

    ``bias_mean``, ``bias_var`` (study-level extra variance e^2) and ``inflation`` are per
    study; ``bias_group`` gives each study's shared-bias group (-1: none) and ``group_var``
    the variance s_g^2 of each group's shared bias, ``group_names`` its design.
    """

    labels: tuple[str, ...]
    yi: np.ndarray
    vi: np.ndarray
    bias_mean: np.ndarray | None = None
    bias_var: np.ndarray | None = None
    inflation: np.ndarray | None = None
    measure: str = "GEN"
    bias_group: np.ndarray | None = None
    group_var: np.ndarray | None = None
    group_names: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        return int(self.yi.size)

    def adjusted(self) -> tuple[np.ndarray, np.ndarray]:
        """(y - m, v * lambda + e^2): the data with the study-level terms folded in; the shared
        biases (:meth:`shared`) come on top."""
        m = self.bias_mean if self.bias_mean is not None else 0.0
        s2 = self.bias_var if self.bias_var is not None else 0.0
        lam = self.inflation if self.inflation is not None else 1.0
        return self.yi - m, self.vi * lam + s2

    def shared(self) -> SharedBias | None:
        """The shared design biases, or None when there are none."""
        if self.bias_group is None or self.group_var is None or len(self.group_var) == 0:
            return None
        return SharedBias(np.asarray(self.bias_group, int), np.asarray(self.group_var, float))

    def exact_posterior(self, mu: Prior, tau: Prior) -> ExactPosterior:
        """The exact posterior of this analysis (shared biases included)."""
        y, v = self.adjusted()
        return exact_posterior(y, v, mu, tau, shared=self.shared())

    def packed(self, priors: Priors) -> np.ndarray:
        """The data buffer of :mod:`fastdensity`."""
        from peerevidence.stats import fastdensity  # numba: imported when a fit needs it

        y, a = self.adjusted()
        shared = self.shared()
        return fastdensity.pack(
            y,
            a,
            None if shared is None else shared.group,
            None if shared is None else shared.var,
            priors.mu.family,
            priors.mu.params,
            priors.tau.family,
            priors.tau.params,
        )


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


def build_model(mu_family: str, tau_family: str, k: int, n_groups: int = 0) -> Any:
    """The random-effects model as a PyMC model (the specification) for k studies and
    ``n_groups`` shared design biases, written with the dense marginal covariance.

    Data containers: ``y`` (bias means subtracted), ``v`` (v lambda + e^2), ``membership``
    (k x n_groups indicators), ``group_var`` (s_g^2), ``tau_p1``/``tau_p2``,
    ``mu_loc``/``mu_scale``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if mu_family not in ("normal", "flat"):
        raise ValueError(f"no PyMC prior for mu family {mu_family!r}")
    with pm.Model() as model:
        y = pm.Data("y", np.zeros(k))
        v = pm.Data("v", np.ones(k))
        membership = pm.Data("membership", np.zeros((k, n_groups)))
        group_var = pm.Data("group_var", np.zeros(n_groups))
        tau_p1 = pm.Data("tau_p1", 1.0)
        tau_p2 = pm.Data("tau_p2", 1.0) if tau_family in ("lognormal2", "logt2") else None
        tau = _tau_variable(pm, pt, tau_family, tau_p1, tau_p2)
        z = pm.Normal("z", mu=0.0, sigma=1.0)
        cov = pt.diag(v + tau**2) + (membership * group_var[None, :]) @ membership.T  # type: ignore[no-untyped-call]  # pytensor is untyped
        ones = pt.ones(k)
        if mu_family == "normal":
            m0 = pm.Data("mu_loc", 0.0)
            s0 = pm.Data("mu_scale", 1.0)
            full = cov + s0**2 * pt.outer(ones, ones)  # type: ignore[no-untyped-call]  # pytensor is untyped
            r = y - m0
            prec = pt.linalg.inv(cov)
            _, logdet = pt.linalg.slogdet(full)
            loglik = -0.5 * (k * _LOG2PI + logdet + r @ pt.linalg.solve(full, r))
            p1, pr = ones @ prec @ ones, ones @ prec @ r
            centre, spread = m0 + pr / (1 / s0**2 + p1), pt.sqrt(1 / (1 / s0**2 + p1))
        else:
            prec = pt.linalg.inv(cov)
            _, logdet = pt.linalg.slogdet(cov)
            p1, py, pyy = ones @ prec @ ones, ones @ prec @ y, y @ prec @ y
            loglik = -0.5 * ((k - 1) * _LOG2PI + logdet + pt.log(p1) + pyy - py**2 / p1)
            centre, spread = py / p1, pt.sqrt(1 / p1)
        pm.Potential("marginal_loglik", loglik)
        pm.Deterministic("mu", centre + spread * z)
    return model


def model_data(data: FitData, priors: Priors) -> dict[str, Any]:
    """The values of :func:`build_model`'s data containers for one analysis."""
    y, v = data.adjusted()
    shared = data.shared()
    n_groups = 0 if shared is None else shared.var.size
    values: dict[str, Any] = {
        "y": y,
        "v": v,
        "membership": np.zeros((data.k, 0)) if shared is None else shared.onehot(),
        "group_var": np.zeros(0) if shared is None else shared.var,
        "tau_p1": float(priors.tau.params[0]),
    }
    if priors.mu.family == "normal":
        values["mu_loc"], values["mu_scale"] = (float(x) for x in priors.mu.params)
    if len(priors.tau.params) > 1:
        values["tau_p2"] = float(priors.tau.params[1])
    assert values["membership"].shape == (data.k, n_groups)
    return values


class CompiledModels:
    """Kept for the callers' signatures: the sampler's density is one numba function compiled
    once per machine (numba's disk cache), so there is nothing to hold per model structure."""

    def __init__(self) -> None:
        self.compiles = 0


# ---------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Group:
    """One group of stored draws: variables ``name -> (dims, values)``, coordinate values per
    dimension, attributes."""

    variables: dict[str, tuple[tuple[str, ...], np.ndarray]]
    coords: dict[str, list[Any]] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def dataset(self) -> Any:
        import xarray as xr

        return xr.Dataset(dict(self.variables), coords=dict(self.coords), attrs=dict(self.attrs))


class PosteriorData:
    """A fit's draws in the groups and layout of ArviZ's ``InferenceData`` (``posterior``,
    ``sample_stats``, ``constant_data``), kept as numpy arrays: the xarray views are built on
    first access and :meth:`to_netcdf` writes the groups ``arviz.from_netcdf`` reads without
    importing xarray or ArviZ (seconds per process)."""

    GROUPS = ("posterior", "sample_stats", "constant_data")

    def __init__(self, **groups: Group) -> None:
        self._groups = groups
        self._views: dict[str, Any] = {}

    def groups(self) -> list[str]:
        return list(self.GROUPS)

    def nbytes(self) -> int:
        """Bytes of every stored array (what the netCDF file will hold, before overhead)."""
        return sum(
            int(np.asarray(values).nbytes)
            for g in self._groups.values()
            for _, values in g.variables.values()
        )

    def _view(self, name: str) -> Any:
        if name not in self._views:
            self._views[name] = self._groups[name].dataset()
        return self._views[name]

    @property
    def posterior(self) -> Any:
        return self._view("posterior")

    @property
    def sample_stats(self) -> Any:
        return self._view("sample_stats")

    @property
    def constant_data(self) -> Any:
        return self._view("constant_data")

    def to_netcdf(self, filename: str, engine: str = "h5netcdf") -> str:
        """Write the groups to one netCDF-4 file with h5netcdf directly (a third of the time
        of xarray's writer); ``xarray.open_dataset(..., group=...)`` and
        ``arviz.from_netcdf`` read it. ``engine`` is accepted for ArviZ's signature."""
        import h5netcdf
        import h5py

        def put(group: Any, name: str, dims: tuple[str, ...], values: np.ndarray) -> None:
            values = np.asarray(values)
            if values.dtype.kind in "UO":
                out = group.create_variable(name, dims, h5py.string_dtype("utf-8"))
                out[...] = values.astype(object)
            elif values.dtype == bool:  # as xarray writes booleans: int8 + dtype attribute
                out = group.create_variable(name, dims, np.int8)
                out[...] = values.astype(np.int8)
                out.attrs["dtype"] = "bool"
            else:
                out = group.create_variable(name, dims, values.dtype)
                out[...] = values

        with h5netcdf.File(filename, "w") as fh:
            for name in self.GROUPS:
                spec = self._groups[name]
                group = fh.create_group(name)
                sizes: dict[str, int] = {}
                for dims, values in spec.variables.values():
                    sizes.update(zip(dims, np.shape(values), strict=True))
                group.dimensions = sizes
                for key, value in spec.attrs.items():
                    group.attrs[key] = value
                for dim, coord in spec.coords.items():
                    put(group, dim, (dim,), np.asarray(coord))
                for var_name, (dims, values) in spec.variables.items():
                    put(group, var_name, dims, values)
        return filename

    def to_arviz(self) -> Any:
        """The same data as ``arviz.InferenceData``."""
        import arviz as az

        return az.InferenceData(**{name: self._view(name) for name in self.GROUPS})


@dataclass(frozen=True)
class Fit:
    """A fitted analysis: the draws (:class:`PosteriorData`) and its typed summary."""

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


def _round_seed(seed: int, round_: int) -> int:
    """A distinct sampler seed for each top-up round (round 0 is the configured seed)."""
    return (int(seed) + 1_000_003 * round_) % (2**63)


def _converged(diagnostics: Diagnostics, settings: SamplerSettings) -> bool:
    rhat = diagnostics.rhat_max if math.isfinite(diagnostics.rhat_max) else 1.0  # one chain
    return diagnostics.ess_bulk_min >= settings.target_ess and rhat <= settings.target_rhat


def sample(
    data: FitData, priors: Priors, settings: SamplerSettings, first_round: int = 0
) -> tuple[engine.Draws, Diagnostics]:
    """ESS-targeted sampling: ``chains`` chains, topped up with ``chains`` more (new seeds)
    while bulk ESS < ``target_ess`` or R-hat > ``target_rhat``, at most ``max_rounds`` times."""
    from peerevidence.stats import engine

    buf = data.packed(priors)

    def one(round_: int) -> engine.Draws:
        return engine.sample(
            buf,
            settings.draws,
            settings.tune,
            settings.chains,
            _round_seed(settings.seed, round_),
            settings.target_accept,
        )

    draws = one(first_round)
    diagnostics = _diagnostics(draws)
    for extra in range(1, settings.max_rounds + 1):
        if _converged(diagnostics, settings):
            break
        draws = draws.concat(one(first_round + extra))
        diagnostics = _diagnostics(draws)
    return draws, diagnostics


def _theta_draws(
    mu: np.ndarray,
    tau: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    rng: np.random.Generator,
    beta: np.ndarray | None = None,
) -> np.ndarray:
    """theta_i | mu, tau, (beta), y_i: normal with shrinkage b = v / (v + tau^2) towards mu;
    ``beta`` (draws x studies) is each study's shared design bias, subtracted from y first."""
    t2 = tau[..., None] ** 2
    b = v / (v + t2)
    target = y if beta is None else y - beta
    mean = (1 - b) * target + b * mu[..., None]
    return np.asarray(mean + np.sqrt(b * t2) * rng.standard_normal(mean.shape), dtype=float)


def _shared_bias_draws(
    mu: np.ndarray,
    tau: np.ndarray,
    y: np.ndarray,
    v: np.ndarray,
    shared: SharedBias,
    rng: np.random.Generator,
) -> np.ndarray:
    """beta_g | mu, tau, y for every group (draws x groups): normal with precision
    1/s_g^2 + A_g and mean (B_g - mu A_g) / precision (A, B: sums of w, w y over the group)."""
    u = shared.onehot()
    w = 1.0 / (v + tau[..., None] ** 2)
    ga = w @ u
    gb = (w * y) @ u
    h = shared.var / (1.0 + shared.var * ga)  # 1 / precision, exact also for s_g = 0
    mean = h * (gb - mu[..., None] * ga)
    return np.asarray(mean + np.sqrt(h) * rng.standard_normal(mean.shape), dtype=float)


def _study_draws(
    mu: np.ndarray, tau: np.ndarray, data: FitData, seed: int
) -> tuple[np.ndarray, np.ndarray | None, list[StudyEstimate]]:
    """theta_new ~ N(mu, tau^2) and every theta_i from its conditional (one per posterior
    draw): (theta_new, theta draws or None for k > STORE_THETA_MAX_K, per-study summaries)."""
    y, v = data.adjusted()
    rng = np.random.default_rng([seed, 20150703])
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    shared = data.shared()
    beta_all = None
    if shared is not None:
        groups = _shared_bias_draws(mu, tau, y, v, shared, rng)
        g = shared.group
        beta_all = np.where(g >= 0, groups[..., np.maximum(g, 0)], 0.0)
    summaries = []
    stored = []
    chunk = STORE_THETA_MAX_K
    for start in range(0, data.k, chunk):
        stop = min(start + chunk, data.k)
        beta = None if beta_all is None else beta_all[..., start:stop]
        theta = _theta_draws(mu, tau, y[start:stop], v[start:stop], rng, beta)
        flat = theta.reshape(-1, stop - start)
        q = np.quantile(flat, [0.025, 0.975], axis=0, method="hazen")
        mean, sd = flat.mean(axis=0), flat.std(axis=0, ddof=1)
        for j, label in enumerate(data.labels[start:stop]):
            summaries.append(
                StudyEstimate(label, float(mean[j]), float(sd[j]), float(q[0, j]), float(q[1, j]))
            )
        if data.k <= STORE_THETA_MAX_K:
            stored.append(theta)
    return theta_new, (np.concatenate(stored, axis=-1) if stored else None), summaries


def _diagnostics(draws: engine.Draws) -> Diagnostics:
    from peerevidence.stats import engine

    many = draws.mu.shape[0] > 1
    return Diagnostics(
        rhat_max=max(engine.rhat(draws.mu), engine.rhat(draws.tau)) if many else float("nan"),
        ess_bulk_min=min(engine.ess_bulk(draws.mu), engine.ess_bulk(draws.tau)),
        ess_tail_min=min(engine.ess_tail(draws.mu), engine.ess_tail(draws.tau)),
        divergences=draws.divergences,
    )


def _mcse(values: np.ndarray, stat: str) -> float:
    from peerevidence.stats import engine

    if stat == "mean":
        return engine.mcse_mean(values)
    prob = {"q025": 0.025, "q50": 0.5, "q975": 0.975}[stat]
    return engine.mcse_quantile(values, prob)


def compare_with_exact(
    chains: dict[str, np.ndarray],
    mcmc: dict[str, Stat],
    exact: dict[str, Stat],
    tolerance_sd: float,
    tolerance_z: float,
) -> ExactCheck:
    """Largest discrepancy between MCMC and exact summaries, in posterior SDs and MCSEs;
    ``chains`` holds each quantity's (chain, draw) array."""
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
            mcse = _mcse(chains[name], stat)
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


def _summarise(
    data: FitData,
    priors: Priors,
    settings: SamplerSettings,
    draws: engine.Draws,
    diagnostics: Diagnostics,
    post: ExactPosterior,
    exact: dict[str, Any],
    tolerance_sd: float,
    tolerance_z: float,
) -> tuple[FitSummary, np.ndarray, np.ndarray | None]:
    mu, tau = draws.mu, draws.tau
    theta_new, theta, studies = _study_draws(mu, tau, data, settings.seed)
    y_adj, v_adj = data.adjusted()
    m = post.moments
    why = None if post.moments_exist else undefined_moments_reason(data.k, priors)
    mcmc = {
        "mu": _stat(mu.ravel(), (m.mu_mean, m.mu_sd), why),
        "tau": _stat(tau.ravel(), (m.tau_mean, m.tau_sd), why),
        "theta_new": _stat(theta_new.ravel(), (m.theta_new_mean, m.theta_new_sd), why),
    }
    exact_stats = {name: Stat.from_json(exact[name]) for name in ("mu", "tau", "theta_new")}
    chains = {"mu": mu, "tau": tau, "theta_new": theta_new}
    reml_line = random_effects(y_adj, v_adj, "REML")
    summary = FitSummary(
        k=data.k,
        measure=data.measure,
        mu=mcmc["mu"],
        tau=mcmc["tau"],
        theta_new=replace(mcmc["theta_new"], q50=None),
        p_mu_gt_0=float(np.mean(mu > 0)),
        theta=tuple(studies),
        diagnostics=diagnostics,
        exact_check=compare_with_exact(chains, mcmc, exact_stats, tolerance_sd, tolerance_z),
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
    return summary, theta_new, theta


def _inference_data(
    data: FitData,
    priors: Priors,
    settings: SamplerSettings,
    draws: engine.Draws,
    theta_new: np.ndarray,
    theta: np.ndarray | None,
    resampled: int,
) -> Any:
    """The stored draws, laid out as ArviZ's InferenceData (no warm-up groups)."""

    n_chain, _n_draw = draws.mu.shape
    coords: dict[str, Any] = {}  # chain and draw are plain dimensions (no coordinate variables)
    dims = ("chain", "draw")
    posterior: dict[str, Any] = {
        "mu": (dims, draws.mu),
        "tau": (dims, draws.tau),
        "theta_new": (dims, theta_new),
    }
    attrs = {
        "model_version": MODEL_VERSION,
        "prior_mu": priors.mu.spec,
        "prior_tau": priors.tau.spec,
        "seed": settings.seed,
        "chains": n_chain,
        "resampled_for_exact_check": resampled,
        "dropped": "warm-up draws and warm-up sample stats; the sampler's own coordinates "
        "(tau_z or log_tau2, z); sample stats other than " + ", ".join(STORED_STATS),
    }
    if theta is not None:
        posterior["theta"] = ((*dims, "study"), theta)
        coords_post = {**coords, "study": list(data.labels)}
    else:
        attrs["theta_stored"] = f"no: k > {STORE_THETA_MAX_K}; summaries only"
        coords_post = coords
    y_adj, v_adj = data.adjusted()
    constant: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        "y": (("study",), np.asarray(data.yi, float)),
        "v": (("study",), np.asarray(data.vi, float)),
        "y_adjusted": (("study",), y_adj),
        "v_adjusted": (("study",), v_adj),
    }
    shared = data.shared()
    if shared is not None:
        constant["bias_group"] = (("study",), shared.group)
        constant["group_var"] = (("group",), shared.var)
    stats: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        name: (dims, draws.stats[name]) for name in STORED_STATS
    }
    constant_coords: dict[str, list[Any]] = {"study": list(data.labels)}
    if shared is not None:
        constant_coords["group"] = list(data.group_names)
    return PosteriorData(
        posterior=Group(posterior, coords_post, attrs),
        sample_stats=Group(stats),
        constant_data=Group(constant, constant_coords),
    )


def fit(
    data: FitData,
    priors: Priors,
    settings: SamplerSettings,
    models: CompiledModels | None = None,
    tolerance_sd: float = 0.1,
    tolerance_z: float = 5.0,
    timings: dict[str, float] | None = None,
) -> Fit:
    """Sample the model, add study draws, summarise, and check against the exact posterior.

    A fit that fails the exact check is sampled again (new seeds, twice the draws) before it is
    reported as failed, so that chance alarms stay rare. ``models`` is accepted for callers'
    signatures and unused. ``timings``, when given, receives the seconds of each step
    (``exact``, ``sampling``, ``summaries``, ``resampling``, ``inference_data``)."""
    import time

    clock = time.perf_counter
    steps: dict[str, float] = {}
    if data.k < 1:
        raise ValueError("need at least one study")
    check_fit_inputs(data.labels, *data.adjusted())
    for prior in (priors.mu, priors.tau):
        check_prior_parameters(prior.spec, prior.params)
    t0 = clock()
    post = data.exact_posterior(priors.mu, priors.tau)
    exact = summarise(post, list(data.labels), with_theta=False)
    t1 = clock()
    draws, diag = sample(data, priors, settings)
    t2 = clock()
    summary, theta_new, theta = _summarise(
        data, priors, settings, draws, diag, post, exact, tolerance_sd, tolerance_z
    )
    t3 = clock()
    steps.update(exact=t1 - t0, sampling=t2 - t1, summaries=t3 - t2, resampling=0.0)
    resampled = 0
    if not summary.exact_check.ok:
        retry = settings.model_copy(update={"draws": 2 * settings.draws})
        draws, diag = sample(data, priors, retry, first_round=settings.max_rounds + 1)
        summary, theta_new, theta = _summarise(
            data, priors, retry, draws, diag, post, exact, tolerance_sd, tolerance_z
        )
        resampled = 1
        steps["resampling"] = clock() - t3
    t4 = clock()
    idata = _inference_data(data, priors, settings, draws, theta_new, theta, resampled)
    steps["inference_data"] = clock() - t4
    if timings is not None:
        timings.update(steps)
    return Fit(data=data, priors=priors, sampler=settings, idata=idata, summary=summary, exact=post)
