"""Prior distributions for the pooled effect mu and the heterogeneity tau.

A prior is written as a short string, the same in ``evidence/analysis.yaml`` and on the
command line:

=========================  ==========================================================
``normal:MEAN:SD``         mu ~ Normal(MEAN, SD)
``flat``                   mu ~ improper uniform (the posterior is proper for k >= 1)
``halfnormal:SCALE``       tau ~ HalfNormal(SCALE)
``halfcauchy:SCALE``       tau ~ HalfCauchy(SCALE)  (Gelman 2006, gelman2006)
``uniform:UPPER``          tau ~ Uniform(0, UPPER)
``lognormal2:MU:SIGMA``    log(tau^2) ~ Normal(MU, SIGMA)
``logt2:LOC:SCALE``        log(tau^2) ~ Student-t(5, LOC, SCALE)
``turner2015:TYPE``        named log-normal prior for tau^2, Turner et al. 2015 (turner2015)
``rhodes2015:TYPE``        named log-t(5) prior for tau^2, Rhodes et al. 2015 (rhodes2015)
=========================  ==========================================================

Parameters must be finite and within sane bounds, checked when the prior is read
(:func:`_check_params`): MEAN within +-1000; SD, SCALE and UPPER between 1e-8 and 1000;
the log(tau^2) location MU / LOC within +-50 and its SIGMA / SCALE between 0.01 and 20.

The named priors are for *non-pharmacological intervention vs. placebo/control*
comparisons (e.g. a psychosocial intervention vs. usual care). Turner et al. 2015 (Stat Med 34:984, Table IV)
give predictive distributions of tau^2 for log odds ratios; Rhodes et al. 2015
(J Clin Epidemiol 68:52, Table 3) for standardised mean differences. Parameter values as
tabulated in Table IV / Table 3 of the papers and in the R package bayesmeta
(``TurnerEtAlPrior``, ``RhodesEtAlPrior``; Röver 2020, rover2020).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from scipy import special

from peerevidence.errors import UsageError

# Turner et al. 2015, Table IV, column "non-pharmacological vs. placebo / control":
# log(tau^2) ~ Normal(mu, sigma^2) for log odds ratios.
TURNER2015: dict[str, tuple[float, float]] = {
    "all_cause_mortality": (-4.17, 1.55),
    "obstetric": (-3.74, 1.91),
    "cause_specific_mortality": (-3.93, 1.91),
    "resource_use": (-2.56, 1.91),
    "surgical": (-2.36, 1.91),
    "withdrawals": (-3.21, 1.91),
    "internal_structure": (-2.93, 1.92),
    "general_physical_health": (-2.51, 1.72),
    "adverse_events": (-2.10, 1.71),
    "infection": (-2.71, 1.71),
    "signs_symptoms": (-2.28, 1.71),
    "pain": (-2.05, 1.71),
    "quality_of_life": (-2.77, 1.73),
    "mental_health": (-2.34, 1.72),
    "biological_markers": (-1.99, 1.71),
    "subjective": (-2.92, 1.71),
}

# Rhodes et al. 2015, Table 3, column "non-pharmacological (any)", medical area "other":
# log(tau^2) ~ t_5(location, scale) for standardised mean differences.  "overall" is the
# overall prior (all outcome and intervention-comparison types together), not a
# non-pharmacological one; it was first spelled "any", which is still accepted (ALIASES).
RHODES2015: dict[str, tuple[float, float]] = {
    "obstetric": (-3.99, 2.11),
    "resource_use": (-2.41, 2.57),
    "internal_external_structure": (-2.29, 2.32),
    "general_health_qol_functioning": (-3.02, 2.27),
    "signs_symptoms": (-2.86, 2.33),
    "mental_health": (-3.85, 1.93),
    "biological_marker": (-3.27, 2.66),
    "subjective": (-2.62, 2.41),
    "overall": (-3.44, 2.59),
}
# old spellings kept so that existing analysis.yaml files keep working
RHODES2015_ALIASES: dict[str, str] = {"any": "overall"}

LOGT_DF = 5.0
_LOG_NORM = -0.5 * math.log(2 * math.pi)
_T5_CONST = float(
    special.gammaln((LOGT_DF + 1) / 2) - special.gammaln(LOGT_DF / 2) - 0.5 * math.log(LOGT_DF * math.pi)
)


def _t5_logpdf(z: np.ndarray) -> np.ndarray:
    """Standard Student-t log density with LOGT_DF degrees of freedom."""
    return _T5_CONST - (LOGT_DF + 1) / 2 * np.log1p(z**2 / LOGT_DF)


_NUM = r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"


@dataclass(frozen=True)
class Prior:
    """A parsed prior: ``family`` and its numeric ``params``; ``spec`` is what the user wrote."""

    family: str
    params: tuple[float, ...]
    spec: str

    # ---------------------------------------------------------------- densities (numpy)
    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Log density at ``x`` (mu for mu-priors, tau for tau-priors)."""
        x = np.asarray(x, dtype=float)
        f, p = self.family, self.params
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if f == "normal":
                return _LOG_NORM - math.log(p[1]) - 0.5 * ((x - p[0]) / p[1]) ** 2
            if f == "flat":
                return np.zeros_like(x)
            if f == "halfnormal":
                out = math.log(2) + _LOG_NORM - math.log(p[0]) - 0.5 * (x / p[0]) ** 2
            elif f == "halfcauchy":
                out = math.log(2 / (math.pi * p[0])) - np.log1p((x / p[0]) ** 2)
            elif f == "uniform":
                out = np.where(x <= p[0], -math.log(p[0]), -np.inf)
            elif f == "lognormal2":
                # density of tau when log(tau^2) ~ N(m, s): p(tau) = (2/tau) * phi((2 log tau - m)/s)/s
                z = (2 * np.log(x) - p[0]) / p[1]
                out = math.log(2) - np.log(x) + _LOG_NORM - math.log(p[1]) - 0.5 * z**2
            elif f == "logt2":
                out = math.log(2) - np.log(x) + _t5_logpdf((2 * np.log(x) - p[0]) / p[1]) - math.log(p[1])
            else:  # pragma: no cover - guarded by parse
                raise ValueError(f)
            out = np.where(x < 0, -np.inf, out)
            if f in ("lognormal2", "logt2"):
                out = np.where(x <= 0, -np.inf, out)
            return out

    def quantile(self, q: float) -> float:
        f, p = self.family, self.params
        if f == "normal":
            return float(p[0] + p[1] * special.ndtri(q))
        if f == "halfnormal":
            return float(p[0] * math.sqrt(2) * special.erfinv(q))
        if f == "halfcauchy":
            return float(p[0] * math.tan(math.pi * q / 2))
        if f == "uniform":
            return float(q * p[0])
        if f == "lognormal2":
            return float(math.exp((p[0] + p[1] * special.ndtri(q)) / 2))
        if f == "logt2":
            return float(math.exp((p[0] + p[1] * special.stdtrit(LOGT_DF, q)) / 2))
        raise ValueError(f"no quantiles for a {f} prior")

    @property
    def is_tau(self) -> bool:
        return self.family not in ("normal", "flat")

    @property
    def heavy_tailed(self) -> bool:
        """Tail like tau^-2 (half-Cauchy): posterior moments of tau may not exist for small k."""
        return self.family == "halfcauchy"

    def describe(self) -> str:
        f, p = self.family, self.params
        if f == "normal":
            return f"mu ~ Normal({p[0]:g}, {p[1]:g})"
        if f == "flat":
            return "mu ~ Uniform(-inf, inf) (improper)"
        if f == "halfnormal":
            return f"tau ~ HalfNormal({p[0]:g})"
        if f == "halfcauchy":
            return f"tau ~ HalfCauchy({p[0]:g})"
        if f == "uniform":
            return f"tau ~ Uniform(0, {p[0]:g})"
        named = ""
        if self.spec.startswith(("turner2015:", "rhodes2015:")):
            named = f" [{self.spec}]"
        if f == "lognormal2":
            return f"log(tau^2) ~ Normal({p[0]:g}, {p[1]:g}){named}"
        return f"log(tau^2) ~ Student-t(5, {p[0]:g}, {p[1]:g}){named}"

    def __str__(self) -> str:
        return self.spec


def _nums(match: re.Match[str]) -> tuple[float, ...]:
    return tuple(float(g) for g in match.groups())


# Sane bounds for prior parameters (effects are on the SMD / log ratio scale). A value
# outside them (1e999 parses as inf, 1e-320 is denormal) would pass the parser and then
# break the sampler or the exact quadrature, so it is refused when the prior is read.
LOCATION_MAX = 1e3  # |MEAN| of normal:MEAN:SD
SCALE_MIN, SCALE_MAX = 1e-8, 1e3  # SD, SCALE, UPPER (1e-8: a fixed-effect limit)
LOG_LOCATION_MAX = 50.0  # |MU| / |LOC| of log(tau^2) in lognormal2 / logt2
LOG_SCALE_MIN, LOG_SCALE_MAX = 1e-2, 20.0  # SIGMA / SCALE of log(tau^2)
_ROLES = {
    "normal": (("MEAN", "location"), ("SD", "scale")),
    "halfnormal": (("SCALE", "scale"),),
    "halfcauchy": (("SCALE", "scale"),),
    "uniform": (("UPPER", "scale"),),
    "lognormal2": (("MU", "log_location"), ("SIGMA", "log_scale")),
    "logt2": (("LOC", "log_location"), ("SCALE", "log_scale")),
}
_BOUNDS = {
    "location": (-LOCATION_MAX, LOCATION_MAX),
    "scale": (SCALE_MIN, SCALE_MAX),
    "log_location": (-LOG_LOCATION_MAX, LOG_LOCATION_MAX),
    "log_scale": (LOG_SCALE_MIN, LOG_SCALE_MAX),
}


def _check_params(spec: str, family: str, params: tuple[float, ...], written: tuple[str, ...]) -> None:
    """Every parameter finite and within its documented bounds, else a UsageError."""
    for (name, role), value, text in zip(_ROLES[family], params, written, strict=True):
        low, high = _BOUNDS[role]
        if not math.isfinite(value):
            raise UsageError(f"prior '{spec}': {name} must be a finite number (got {text})")
        if not low <= value <= high:
            raise UsageError(f"prior '{spec}': {name} must be between {low:g} and {high:g} (got {text})")


_PATTERNS_MU = {
    "normal": re.compile(rf"^normal:{_NUM}:{_NUM}$"),
    "flat": re.compile(r"^flat$"),
}
_PATTERNS_TAU = {
    "halfnormal": re.compile(rf"^halfnormal:{_NUM}$"),
    "halfcauchy": re.compile(rf"^halfcauchy:{_NUM}$"),
    "uniform": re.compile(rf"^uniform:{_NUM}$"),
    "lognormal2": re.compile(rf"^lognormal2:{_NUM}:{_NUM}$"),
    "logt2": re.compile(rf"^logt2:{_NUM}:{_NUM}$"),
}
MU_FORMS = "normal:MEAN:SD, flat"
TAU_FORMS = (
    "halfnormal:SCALE, halfcauchy:SCALE, uniform:UPPER, lognormal2:MU:SIGMA, logt2:LOC:SCALE, "
    "turner2015:TYPE, rhodes2015:TYPE"
)


def parse_mu_prior(spec: str) -> Prior:
    """Parse a prior for mu; raise :class:`UsageError` naming the accepted forms."""
    text = spec.strip()
    for family, pattern in _PATTERNS_MU.items():
        m = pattern.match(text)
        if m:
            params = _nums(m)
            if family == "normal" and not params[1] > 0:
                raise UsageError(f"prior '{spec}': the SD must be > 0")
            if family == "normal":
                _check_params(spec, family, params, m.groups())
            return Prior(family, params, text)
    raise UsageError(f"prior for mu '{spec}' not understood (accepted: {MU_FORMS})")


def parse_tau_prior(spec: str) -> Prior:
    """Parse a prior for tau; raise :class:`UsageError` naming the accepted forms."""
    text = spec.strip()
    if text.startswith("turner2015:") or text.startswith("rhodes2015:"):
        table_name, _, kind = text.partition(":")
        table = TURNER2015 if table_name == "turner2015" else RHODES2015
        if table_name == "rhodes2015":
            kind = RHODES2015_ALIASES.get(kind, kind)
        if kind not in table:
            raise UsageError(
                f"prior '{spec}': unknown {table_name} type '{kind}' (accepted: {', '.join(sorted(table))})"
            )
        family = "lognormal2" if table_name == "turner2015" else "logt2"
        return Prior(family, table[kind], text)
    for family, pattern in _PATTERNS_TAU.items():
        m = pattern.match(text)
        if m:
            params = _nums(m)
            scale = params[-1]
            if not scale > 0:
                raise UsageError(f"prior '{spec}': the scale must be > 0")
            _check_params(spec, family, params, m.groups())
            return Prior(family, params, text)
    raise UsageError(f"prior for tau '{spec}' not understood (accepted: {TAU_FORMS})")
