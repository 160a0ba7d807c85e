"""Sampling the collapsed model with nutpie from the numba density of :mod:`fastdensity`.

nutpie's own PyMC route (``nutpie.compile_pymc_model``) wraps PyTensor's numba translation of
the model in two C callbacks (log density + gradient, and "expand" for the stored values) and
hands their addresses and a user-data pointer to its Rust sampler. This module hands it the
same two callbacks, written once in :mod:`peerevidence.stats.fastdensity` and cached on disk
by numba: no PyTensor graph, no LLVM compile per process, one function for every k and prior.
It builds the sampler from nutpie's compiled extension (``_lib.PyMcModel``, ``LogpFunc``,
``ExpandFunc``, ``PySampler.from_pymc``: what ``CompiledPyMCModel._make_sampler`` does), a
lower-level interface: nutpie's version is pinned in ``pyproject.toml``.

The raw trace (Arrow batches, one per chain) is read into numpy without nutpie's ArviZ
conversion; warm-up draws are not kept.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

STAT_COLUMNS = ("diverging", "n_steps", "step_size", "energy", "depth", "logp", "mean_tree_accept")


@dataclass(frozen=True)
class Draws:
    """Posterior draws as (chain, draw) arrays, and the sampler statistics used downstream."""

    x0: np.ndarray
    z: np.ndarray
    tau: np.ndarray
    mu: np.ndarray
    stats: dict[str, np.ndarray]

    @property
    def divergences(self) -> int:
        return int(np.sum(self.stats["diverging"]))

    def concat(self, other: Draws) -> Draws:
        """Chains of ``self`` followed by the chains of ``other`` (equal draw counts)."""
        x0, z, tau, mu = (
            np.concatenate([getattr(self, n), getattr(other, n)]) for n in ("x0", "z", "tau", "mu")
        )
        return Draws(
            x0, z, tau, mu, stats={k: np.concatenate([v, other.stats[k]]) for k, v in self.stats.items()}
        )


def _nutpie_lib() -> Any:
    """nutpie's compiled extension ``nutpie._lib`` without the package's ``__init__``.

    ``import nutpie`` imports ArviZ, matplotlib and scipy.stats (about 4 s in a fresh
    process) for its Python-side trace conversion, which this module does not use; the
    Rust sampler behind it is all a fit needs. The extension is loaded from nutpie's own
    folder and registered as ``nutpie._lib``, so a later ``import nutpie`` reuses it.
    """
    mod = sys.modules.get("nutpie._lib")
    if mod is not None:
        return mod
    spec = importlib.util.find_spec("nutpie")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nutpie is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_lib{suffix}"
        if path.exists():
            break
    else:
        raise ImportError(f"nutpie's compiled extension not found in {folder}")
    loader = importlib.machinery.ExtensionFileLoader("nutpie._lib", str(path))
    lib_spec = importlib.util.spec_from_loader("nutpie._lib", loader)
    if lib_spec is None:
        raise ImportError(f"cannot load nutpie's compiled extension {path}")
    mod = importlib.util.module_from_spec(lib_spec)
    loader.exec_module(mod)
    sys.modules["nutpie._lib"] = mod
    return mod


class _Model:
    """Keeps the data buffer alive while the Rust sampler holds pointers into it."""

    def __init__(self, buf: np.ndarray) -> None:
        self.buf = np.ascontiguousarray(buf, dtype=np.float64)

    def make(self, lib: Any) -> Any:
        from peerevidence.stats import fastdensity

        names = list(fastdensity.EXPANDED)
        ptr = self.buf.ctypes.data
        expand = lib.ExpandFunc(fastdensity.N_DIM, len(names), fastdensity.expand_cfunc.address, ptr, self)
        logp = lib.LogpFunc(fastdensity.logp_cfunc.address, ptr, self)
        variables = lib.PyVariable.new_variables(names, ["float64"] * len(names), [[]] * len(names), {}, {})

        def initial_point(seed: int | None = None) -> np.ndarray:
            return np.random.default_rng(seed).uniform(-1.0, 1.0, fastdensity.N_DIM)

        def no_adapter(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - only for transform adaptation
            raise NotImplementedError("transform adaptation is not used")

        return lib.PyMcModel(logp, expand, variables, fastdensity.N_DIM, {}, {}, initial_point, no_adapter)


def sample(buf: np.ndarray, draws: int, tune: int, chains: int, seed: int, target_accept: float) -> Draws:
    """Run nutpie's NUTS (diagonal mass matrix) on the packed data ``buf``; return the
    post-warm-up draws."""
    from peerevidence.stats import fastdensity

    lib = _nutpie_lib()
    settings = lib.PyNutsSettings.Diag(seed)
    settings.num_tune = tune
    settings.num_draws = draws
    settings.num_chains = chains
    settings.target_accept = target_accept
    cores = max(1, min(chains, os.cpu_count() or 1))
    holder = _Model(buf)
    sampler = lib.PySampler.from_pymc(
        settings, cores, holder.make(lib), lib.ProgressType.none(), lib.PyStorage.arrow()
    )
    sampler.wait(None)
    draw_batches, stat_batches = sampler.take_results().get_arrow_trace()
    cols: dict[str, list[np.ndarray]] = {n: [] for n in fastdensity.EXPANDED}
    stats: dict[str, list[np.ndarray]] = {n: [] for n in STAT_COLUMNS}
    for d, s in zip(draw_batches, stat_batches, strict=True):
        keep = ~np.asarray(s.column("tuning").to_numpy(), dtype=bool)
        for n in fastdensity.EXPANDED:
            cols[n].append(np.asarray(d.column(n).to_numpy())[keep])
        for n in STAT_COLUMNS:
            stats[n].append(np.asarray(s.column(n).to_numpy())[keep])
    length = min(c.size for c in cols["z"])
    stack = {n: np.stack([c[:length] for c in v]) for n, v in cols.items()}
    return Draws(
        x0=stack["x0"],
        z=stack["z"],
        tau=stack["tau"],
        mu=stack["mu"],
        stats={n: np.stack([c[:length] for c in v]) for n, v in stats.items()},
    )


# ---------------------------------------------------------------------------- diagnostics
# Rank-normalised split R-hat, bulk / tail ESS and MCSE (Vehtari et al. 2021), the same
# arithmetic as ArviZ 0.23 (``az.rhat``, ``az.ess(method="bulk"|"tail")``,
# ``az.mcse(method="mean"|"quantile")``), computed on numpy arrays without InferenceData;
# the tests compare them with ArviZ on several traces.


@numba.njit(cache=True)  # type: ignore[untyped-decorator]  # numba ships no type hints
def _geyer(acov: np.ndarray, chain_mean: np.ndarray, n_draw: int) -> float:
    n_chain = acov.shape[0]
    mean_var = 0.0
    for c in range(n_chain):
        mean_var += acov[c, 0]
    mean_var = mean_var / n_chain * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += np.var(chain_mean) * n_chain / (n_chain - 1.0)

    def lag(t: int) -> float:
        s = 0.0
        for c in range(n_chain):
            s += acov[c, t]
        return float(s / n_chain)

    rho = np.zeros(n_draw)
    rho_even = 1.0
    rho[0] = rho_even
    rho_odd = 1.0 - (mean_var - lag(1)) / var_plus
    rho[1] = rho_odd
    t = 1
    while t < (n_draw - 3) and (rho_even + rho_odd) > 0.0:
        rho_even = 1.0 - (mean_var - lag(t + 1)) / var_plus
        rho_odd = 1.0 - (mean_var - lag(t + 2)) / var_plus
        if (rho_even + rho_odd) >= 0:
            rho[t + 1] = rho_even
            rho[t + 2] = rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:
        if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    ess = n_chain * n_draw
    tau_hat = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau_hat = max(tau_hat, 1 / np.log10(ess))
    if np.isnan(rho).any():
        return np.nan
    return float(ess / tau_hat)


def _ess(ary: np.ndarray) -> float:
    ary = np.asarray(ary, dtype=float)
    if not np.all(np.isfinite(ary)):
        return np.nan
    if (np.max(ary) - np.min(ary)) < np.finfo(float).resolution:
        return float(ary.size)
    n_draw = ary.shape[1]
    m = 2 * n_draw
    from scipy.fft import next_fast_len

    m = next_fast_len(m)
    centred = ary - ary.mean(axis=1, keepdims=True)
    f = np.fft.rfft(centred, n=m, axis=1)
    f *= np.conjugate(f)
    acov = np.fft.irfft(f, n=m, axis=1)[:, :n_draw] / n_draw
    return float(_geyer(np.ascontiguousarray(acov), ary.mean(axis=1), n_draw))


def _split(ary: np.ndarray) -> np.ndarray:
    half = ary.shape[1] // 2
    return np.vstack((ary[:, :half], ary[:, -half:]))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged (``scipy.stats.rankdata(method="average")``)."""
    flat = x.ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    new = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    dense = np.cumsum(new)
    bounds = np.concatenate((np.nonzero(new)[0], [flat.size]))
    ranks = np.empty(flat.size)
    ranks[order] = 0.5 * (bounds[dense] + bounds[dense - 1] + 1)
    return ranks


def _z_scale(ary: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    rank = _average_ranks(ary)
    return np.asarray(ndtri((rank - 3 / 8) / (rank.size - 2 * 3 / 8 + 1)), dtype=float).reshape(ary.shape)


def _rhat_plain(ary: np.ndarray) -> float:
    n = ary.shape[1]
    between = n * np.var(ary.mean(axis=1), ddof=1)
    within = np.mean(np.var(ary, axis=1, ddof=1))
    return float(np.sqrt((between / within + n - 1) / n))


def rhat(ary: np.ndarray) -> float:
    """Rank-normalised split R-hat (max of bulk and folded), as ``az.rhat``."""
    split = _split(np.asarray(ary, float))
    bulk = _rhat_plain(_z_scale(split))
    tail = _rhat_plain(_z_scale(np.abs(split - np.median(split))))
    return max(bulk, tail)


def ess_bulk(ary: np.ndarray) -> float:
    return _ess(_z_scale(_split(np.asarray(ary, float))))


def _ess_quantile(ary: np.ndarray, prob: float) -> float:
    q = np.quantile(ary, prob)
    return _ess(_split((ary <= q).astype(float)))


def ess_tail(ary: np.ndarray) -> float:
    ary = np.asarray(ary, float)
    return min(_ess_quantile(ary, 0.05), _ess_quantile(ary, 0.95))


def mcse_mean(ary: np.ndarray) -> float:
    ary = np.asarray(ary, float)
    return float(np.std(ary, ddof=1) / np.sqrt(_ess(_split(ary))))


def mcse_quantile(ary: np.ndarray, prob: float) -> float:
    from scipy.special import betaincinv

    ary = np.asarray(ary, float)
    ess = _ess_quantile(ary, prob)
    probability = np.array([0.1586553, 0.8413447])
    with np.errstate(invalid="ignore"):
        ppf = betaincinv(ess * prob + 1, ess * (1 - prob) + 1, probability)
    sorted_ary = np.sort(ary.ravel())
    size = sorted_ary.size
    ppf_size = ppf * size - 1
    th1 = sorted_ary[int(np.floor(np.nanmax((ppf_size[0], 0))))]
    th2 = sorted_ary[int(np.ceil(np.nanmin((ppf_size[1], size - 1))))]
    return float((th2 - th1) / 2)
