"""The typed result of one fitted analysis: the contract between fitting and every later stage.

A :class:`FitSummary` is what :func:`peerevidence.stats.model.fit` returns, what the fit
store writes as ``reports/fits/<analysis>.json`` (:meth:`FitSummary.to_json`) and reads back
(:meth:`FitSummary.from_json`), what ``pool --json`` prints (:meth:`FitSummary.to_dict`
is the projection) and what synthesis and the report read. Everything is frozen.

Schema of the JSON (one object per analysis; keys never renamed, only added)::

    k, measure
    mu, tau, theta_new        {mean, sd, q025, q50, q975[, undefined]}   (theta_new has no q50)
    p_mu_gt_0                 posterior P(mu > 0) on the harmonised scale (positive = benefit)
    theta                     [{study, mean, sd, q025, q975}]             shrunken study effects
    diagnostics               {rhat_max, ess_bulk_min, ess_tail_min, divergences,
                               exact_max_sd_discrepancy, exact_max_z, exact_worst, exact_ok,
                               tolerance_sd, tolerance_z}
    exact                     {mu, tau, theta_new, p_mu_gt_0}            by quadrature
    reml                      {mu, se, ci_lb, ci_ub, tau2, i2, pi_lb, pi_ub, ...}
    priors                    {mu, tau}                                   prior specs
    notes                     [str]
    key, model_version, sampler, versions, data     provenance, added by the fit store
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

QUANTILES = (0.025, 0.5, 0.975)
Z975 = 1.959963984540054  # the 97.5% quantile of the standard normal


def _num(value: Any) -> float | None:
    if value is None:
        return None
    x = float(value)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Stat:
    """Posterior summary of one scalar: moments (None when they do not exist) and quantiles."""

    q025: float
    q975: float
    q50: float | None = None
    mean: float | None = None
    sd: float | None = None
    undefined: str | None = None  # why mean/sd are None, when they are

    @property
    def scale(self) -> float:
        """The SD, or where it does not exist the 95% interval's half-width over 1.96."""
        if self.sd:
            return self.sd
        return (self.q975 - self.q025) / (2 * Z975)

    def to_json(self, with_median: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"mean": self.mean, "sd": self.sd, "q025": self.q025}
        if with_median:
            out["q50"] = self.q50
        out["q975"] = self.q975
        if self.undefined:
            out["undefined"] = self.undefined
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Stat:
        return cls(
            q025=float(d["q025"]),
            q975=float(d["q975"]),
            q50=_num(d.get("q50")),
            mean=_num(d.get("mean")),
            sd=_num(d.get("sd")),
            undefined=d.get("undefined"),
        )


@dataclass(frozen=True)
class StudyEstimate:
    """One study's shrunken effect theta_i given all the data."""

    study: str
    mean: float
    sd: float
    q025: float
    q975: float

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "mean": self.mean, "sd": self.sd, "q025": self.q025, "q975": self.q975}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StudyEstimate:
        return cls(str(d["study"]), float(d["mean"]), float(d["sd"]), float(d["q025"]), float(d["q975"]))


@dataclass(frozen=True)
class Diagnostics:
    """MCMC convergence diagnostics over mu and tau (worst of the two)."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int

    def to_json(self) -> dict[str, Any]:
        return {
            "rhat_max": self.rhat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": self.ess_tail_min,
            "divergences": self.divergences,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Diagnostics:
        return cls(
            float(d["rhat_max"]), float(d["ess_bulk_min"]), float(d["ess_tail_min"]), int(d["divergences"])
        )


@dataclass(frozen=True)
class ExactCheck:
    """The largest |MCMC - exact| over mean and quantiles of mu, tau and theta_new.

    A fit passes unless the gap exceeds both ``tolerance_sd`` posterior SDs and
    ``tolerance_z`` Monte Carlo standard errors.
    """

    max_sd_discrepancy: float
    max_z: float
    worst: str
    ok: bool
    tolerance_sd: float
    tolerance_z: float

    def to_json(self) -> dict[str, Any]:
        return {
            "exact_max_sd_discrepancy": self.max_sd_discrepancy,
            "exact_max_z": self.max_z,
            "exact_worst": self.worst,
            "exact_ok": self.ok,
            "tolerance_sd": self.tolerance_sd,
            "tolerance_z": self.tolerance_z,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ExactCheck:
        return cls(
            float(d["exact_max_sd_discrepancy"]),
            float(d["exact_max_z"]),
            str(d.get("exact_worst", "")),
            bool(d["exact_ok"]),
            float(d["tolerance_sd"]),
            float(d["tolerance_z"]),
        )


@dataclass(frozen=True)
class ExactSummary:
    """The same posterior by one-dimensional quadrature over tau."""

    mu: Stat
    tau: Stat
    theta_new: Stat
    p_mu_gt_0: float

    def to_json(self) -> dict[str, Any]:
        return {
            "mu": self.mu.to_json(),
            "tau": self.tau.to_json(),
            "theta_new": self.theta_new.to_json(with_median=False),
            "p_mu_gt_0": self.p_mu_gt_0,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ExactSummary:
        return cls(
            Stat.from_json(d["mu"]),
            Stat.from_json(d["tau"]),
            Stat.from_json(d["theta_new"]),
            float(d["p_mu_gt_0"]),
        )


REML_FIELDS = ("mu", "se", "ci_lb", "ci_ub", "tau2", "i2", "pi_lb", "pi_ub")


@dataclass(frozen=True)
class RemlLine:
    """The frequentist line (metafor's ``rma(method="REML")`` and ``predict()``).

    ``extra`` keeps further keys of the stored line (e.g. other CI methods) in order.
    """

    mu: float
    se: float
    ci_lb: float
    ci_ub: float
    tau2: float
    i2: float | None
    pi_lb: float
    pi_ub: float
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in REML_FIELDS}
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RemlLine:
        values = {name: _num(d.get(name)) for name in REML_FIELDS}
        extra = {key: value for key, value in d.items() if key not in REML_FIELDS}
        return cls(**values, extra=extra)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Provenance:
    """What the fit store adds: the content key, model version, sampler settings, versions
    and the data the model saw."""

    key: str
    model_version: str
    sampler: Mapping[str, Any]
    versions: Mapping[str, str]
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "model_version": self.model_version,
            "sampler": dict(self.sampler),
            "versions": dict(self.versions),
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Provenance | None:
        if "key" not in d:
            return None
        return cls(
            str(d["key"]),
            str(d.get("model_version", "")),
            dict(d.get("sampler") or {}),
            dict(d.get("versions") or {}),
            dict(d.get("data") or {}),
        )


@dataclass(frozen=True)
class FitSummary:
    """Every summary of one fitted analysis that later stages read."""

    k: int
    measure: str
    mu: Stat
    tau: Stat
    theta_new: Stat
    p_mu_gt_0: float
    theta: tuple[StudyEstimate, ...]
    diagnostics: Diagnostics
    exact_check: ExactCheck
    exact: ExactSummary
    reml: RemlLine
    priors: Mapping[str, str]
    notes: tuple[str, ...] = ()
    provenance: Provenance | None = None

    @property
    def ok(self) -> bool:
        """True when the MCMC summaries agree with the exact posterior."""
        return self.exact_check.ok

    def with_provenance(self, provenance: Provenance) -> FitSummary:
        return replace(self, provenance=provenance)

    def to_json(self) -> dict[str, Any]:
        """The stored form (``reports/fits/<analysis>.json``)."""
        out: dict[str, Any] = {
            "k": self.k,
            "measure": self.measure,
            "mu": self.mu.to_json(),
            "tau": self.tau.to_json(),
            "theta_new": self.theta_new.to_json(with_median=False),
            "p_mu_gt_0": self.p_mu_gt_0,
            "theta": [t.to_json() for t in self.theta],
            "diagnostics": {**self.diagnostics.to_json(), **self.exact_check.to_json()},
            "exact": self.exact.to_json(),
            "reml": self.reml.to_json(),
            "priors": dict(self.priors),
            "notes": list(self.notes),
        }
        if self.provenance is not None:
            out.update(self.provenance.to_json())
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FitSummary:
        diag = d["diagnostics"]
        return cls(
            k=int(d["k"]),
            measure=str(d["measure"]),
            mu=Stat.from_json(d["mu"]),
            tau=Stat.from_json(d["tau"]),
            theta_new=Stat.from_json(d["theta_new"]),
            p_mu_gt_0=float(d["p_mu_gt_0"]),
            theta=tuple(StudyEstimate.from_json(t) for t in d.get("theta", [])),
            diagnostics=Diagnostics.from_json(diag),
            exact_check=ExactCheck.from_json(diag),
            exact=ExactSummary.from_json(d["exact"]),
            reml=RemlLine.from_json(d["reml"]),
            priors=dict(d["priors"]),
            notes=tuple(d.get("notes", ())),
            provenance=Provenance.from_json(d),
        )

    def to_dict(self) -> dict[str, Any]:
        """The public projection ``pool --json`` prints: the fit without provenance or notes.

        Keys: ``k, measure, mu, tau, theta_new, p_mu_gt_0, theta, diagnostics, exact, reml,
        priors`` (all on the ``yi`` scale).
        """
        stat_keys = ("mean", "sd", "q025", "q50", "q975")
        new_keys = ("mean", "sd", "q025", "q975")

        def pick(stat: Stat, keys: tuple[str, ...]) -> dict[str, Any]:
            full = stat.to_json()
            return {key: full.get(key) for key in keys}

        return {
            "k": self.k,
            "measure": self.measure,
            "mu": pick(self.mu, stat_keys),
            "tau": pick(self.tau, stat_keys),
            "theta_new": pick(self.theta_new, new_keys),
            "p_mu_gt_0": self.p_mu_gt_0,
            "theta": [t.to_json() for t in self.theta],
            "diagnostics": {
                **self.diagnostics.to_json(),
                "exact_max_sd_discrepancy": self.exact_check.max_sd_discrepancy,
            },
            "exact": {
                "mu": pick(self.exact.mu, stat_keys),
                "tau": pick(self.exact.tau, stat_keys),
                "theta_new": pick(self.exact.theta_new, new_keys),
                "p_mu_gt_0": self.exact.p_mu_gt_0,
            },
            "reml": {k: v for k, v in self.reml.to_json().items() if k != "notes"},  # notes: .notes
            "priors": dict(self.priors),
        }
