"""Shared pieces of the report's view models: number formatting, scales, the :class:`Context`
every page's view is built from, and the views more than one page shows (an analysis, its
certainty and prior sensitivity, a study's label and reference).

Every reader-facing word about what is compared comes from the project
(:func:`peerevidence.records.project.wording`), never from this package.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from peerevidence.errors import DataError
from peerevidence.records.project import Wording, wording
from peerevidence.records.schema import ChangeModel, Node, Outcome, PooledResult
from peerevidence.report.layout import SAFE_NAME  # noqa: F401  (re-exported)
from peerevidence.synthesis import Synthesis

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult
    from peerevidence.records.bib import Bibliography
    from peerevidence.records.project import EvidenceBase

RATIO = {"logOR": "OR", "logRR": "RR", "logHR": "HR"}
LONG_NAMES = {
    "OR": "odds ratio",
    "RR": "risk ratio",
    "HR": "hazard ratio",
    "SMD": "standardised mean difference, in standard deviations",
    "MD": "mean difference, in the study's own units",
    "r": "correlation",
}
DESIGN_WORDS = {
    "rct": ("randomised trial", "randomised trials"),
    "cluster_rct": ("cluster-randomised trial", "cluster-randomised trials"),
    "pilot_rct": ("pilot randomised trial", "pilot randomised trials"),
    "non_randomised_comparison": ("non-randomised comparison", "non-randomised comparisons"),
    "before_after": ("before-and-after study", "before-and-after studies"),
    "cohort": ("cohort study", "cohort studies"),
    "case_control": ("case-control study", "case-control studies"),
    "cross_sectional": ("cross-sectional survey", "cross-sectional surveys"),
    "qualitative": ("qualitative study", "qualitative studies"),
    "systematic_review": ("systematic review", "systematic reviews"),
}
DESIGN_SHORT = {
    "rct": "RCT",
    "cluster_rct": "cluster RCT",
    "pilot_rct": "pilot RCT",
    "non_randomised_comparison": "non-random.",
    "before_after": "before-after",
    "cohort": "cohort",
    "case_control": "case-control",
    "cross_sectional": "cross-sect.",
    "qualitative": "qualitative",
    "systematic_review": "review",
}
ROB_WORDS = {
    "low": "low",
    "some_concerns": "some concerns",
    "high": "high",
    "unclear": "unclear",
    "not_assessed": "not assessed",
}
BASIS_WORDS = {
    "qualitative_data": "qualitative data (what participants said)",
    "theory": "theory",
    "literature": "published literature",
    "prior_evidence": "earlier studies cited by the paper",
    "author_proposal": "the authors' proposal (not yet evidenced)",
    "trial_secondary_analysis": "a secondary analysis of a trial",
    "site_level_observation": "an observation across study sites",
    "trial_evidence": "randomised trials measuring the outcome",
}
STATUS_WORDS = {
    "quantitative": "Quantitative evidence",
    "qualitative_only": "Qualitative evidence only",
    "none": "No evidence beyond the model's argument",
}
ROUTE_WORDS = {
    "smd": "SMD (Hedges' g) from the arms' means, SDs and sizes",
    "md": "mean difference from the arms' means, SDs and sizes",
    "log_or": "log odds ratio from the arms' events and totals",
    "log_rr": "log risk ratio from the arms' events and totals",
    "2x2_to_smd": "SMD converted from the log odds ratio of the arms' events (Chinn 2000)",
    "se_or_ci": "from the reported estimate and its SE or confidence interval",
    "log_ci": "log ratio from the reported ratio and its SE or confidence interval",
    "or_to_smd": "SMD converted from the reported odds ratio (Chinn 2000)",
    "smd_to_or": "log odds ratio converted from the reported SMD (Chinn 2000)",
    "fisher_z": "Fisher's z from the reported correlation",
}
LEVEL_WORDS = {"high": "high", "moderate": "moderate", "low": "low", "very_low": "very low"}
DOMAIN_WORDS = {
    "risk_of_bias": "risk of bias",
    "inconsistency": "inconsistency",
    "imprecision": "imprecision",
    "indirectness": "indirectness",
    "publication_bias": "publication bias",
}
KIND_WORDS = {
    "intervention": "intervention",
    "mechanism": "mechanism",
    "process_outcome": "process outcome",
    "downstream_outcome": "downstream outcome",
}


# --------------------------------------------------------------------------- numbers


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt(x: Any, digits: int = 2) -> str:
    """A number for people: fixed decimals, a real minus sign, no '-0.00', '–' if missing."""
    if not _finite(x):
        return "–"
    text = f"{float(x):.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "\u2212")


def fmt_p(p: Any) -> str:
    if not _finite(p):
        return "–"
    if p > 0.995:
        return "> 0.99"
    if p < 0.005:
        return "< 0.01"
    return fmt(p)


def fmt_int(x: Any) -> str:
    if not _finite(x):
        return "–"
    return f"{round(float(x)):,}"


def fmt_interval(lo: Any, hi: Any, digits: int = 2) -> str:
    return f"{fmt(lo, digits)} to {fmt(hi, digits)}"


def short_hash(h: str | None, n: int = 12) -> str:
    return (h or "")[:n]


# --------------------------------------------------------------------------- scales


@dataclass(frozen=True)
class Scale:
    """How an outcome's harmonised numbers read on its natural scale."""

    measure: str  # pooled measure: SMD, MD, logOR, logRR, logHR, fisher_z
    sign: float  # +1 if the outcome's direction is higher_is_better, else -1
    association: bool
    exposure_label: str = ""
    intervention: str = "the intervention"
    comparator: str = "control"

    @property
    def natural_name(self) -> str:
        if self.measure in RATIO:
            return RATIO[self.measure]
        return "r" if self.measure == "fisher_z" else self.measure

    @property
    def transformed(self) -> bool:
        """True when the natural scale differs from the harmonised one (ratios, r)."""
        return self.measure in RATIO or self.measure == "fisher_z"

    @property
    def benefit(self) -> str:
        return "supports the link" if self.association else f"favours {self.intervention}"

    @property
    def harmonised_name(self) -> str:
        base = {
            "logOR": "log odds ratio",
            "logRR": "log risk ratio",
            "logHR": "log hazard ratio",
            "fisher_z": "Fisher's z",
            "SMD": "SMD",
            "MD": "mean difference",
        }.get(self.measure, self.measure)
        return f"{base} (positive {self.benefit})"

    @property
    def natural_desc(self) -> str:
        name = self.natural_name
        long = LONG_NAMES.get(name, name)
        if self.measure in RATIO:
            side = "above" if self.sign > 0 else "below"
            if self.association:
                what = "exposed vs unexposed, as each study defines the exposure"
                if self.exposure_label:
                    what += f" ({self.exposure_label})"
            else:
                what = f"{self.intervention} vs {self.comparator}"
            return f"{name} ({long}), {what}; {side} 1 {self.benefit}"
        if self.measure == "fisher_z":
            side = "positive" if self.sign > 0 else "negative"
            return f"r ({long}); {side} {self.benefit}"
        return f"{name} ({long}), harmonised so that positive {self.benefit}"

    def natural(self, x: Any) -> float | None:
        if not _finite(x):
            return None
        value = float(x)
        if self.measure in RATIO:
            return math.exp(min(700.0, self.sign * value))
        if self.measure == "fisher_z":
            return math.tanh(self.sign * value)
        return value

    def interval(self, lo: Any, hi: Any) -> tuple[float | None, float | None]:
        a, b = self.natural(lo), self.natural(hi)
        if a is None or b is None:
            return a, b
        return (a, b) if a <= b else (b, a)

    def text(self, mid: Any, lo: Any, hi: Any, natural: bool = True) -> str:
        """'OR 0.66 (0.43 to 0.99)' on the natural scale, or the harmonised equivalent."""
        if natural and self.transformed:
            m = self.natural(mid)
            a, b = self.interval(lo, hi)
            return f"{self.natural_name} {fmt(m)} ({fmt_interval(a, b)})"
        return f"{fmt(mid)} ({fmt_interval(lo, hi)})"


def scale_for(outcome: Outcome, node_labels: Mapping[str, str], words: Wording | None = None) -> Scale:
    exposure = node_labels.get(outcome.exposure or "", outcome.exposure or "")
    words = words or Wording("the intervention", "control")
    return Scale(
        outcome.measure,
        1.0 if outcome.direction == "higher_is_better" else -1.0,
        outcome.kind == "association",
        exposure,
        words.intervention,
        words.comparator,
    )


# --------------------------------------------------------------------------- helpers


def http_url(url: str | None) -> str | None:
    """Only http(s) links are rendered as links; anything else stays text."""
    if url and re.match(r"^https?://[^\s\"'<>]+$", url.strip(), re.I):
        return url.strip()
    return None


def doi_url(doi: str | None) -> str | None:
    if not doi:
        return None
    return "https://doi.org/" + quote(doi.strip(), safe="/:;()._-")


def design_text(designs: Iterable[str]) -> str:
    counts = Counter(designs)
    parts = []
    for design in sorted(counts, key=lambda d: (-counts[d], d)):
        one, many = DESIGN_WORDS.get(design, (design, design))
        parts.append(f"{counts[design]} {one if counts[design] == 1 else many}")
    return ", ".join(parts) or "–"


def design_word(design: str) -> str:
    return DESIGN_WORDS.get(design, (design, design))[0]


def raw_data(result: Any) -> str:
    """The numbers a record gives for one result, as extracted (not harmonised)."""
    form: str = result.form
    if form == "continuous":
        i, c = result.intervention, result.control
        return (
            f"intervention n {i.n}, mean {i.mean:g} (SD {i.sd:g}); "
            f"control n {c.n}, mean {c.mean:g} (SD {c.sd:g})"
        )
    if form == "binary":
        i, c = result.intervention, result.control
        return f"{result.event}: intervention {i.events}/{i.total}; control {c.events}/{c.total}"
    if form == "effect":
        text = f"{result.measure} {result.estimate:g}"
        if result.ci_low is not None:
            text += f" ({round(result.ci_level * 100):g}% CI {result.ci_low:g} to {result.ci_high:g})"
        if result.se is not None:
            text += f", SE {result.se:g}"
        if result.n is not None:
            text += f", n {result.n}"
        if result.adjusted:
            text += ", adjusted"
        if result.contrast:
            text += f"; {result.contrast}"
        if result.harmonised:
            text += " (signed by the source: positive = benefit)"
        return text
    if form == "pooled":
        text = f"{result.measure} {result.estimate:g}"
        if result.ci_low is not None:
            text += f" ({result.ci_low:g} to {result.ci_high:g})"
        return text
    if form == "not_reported":
        return "not reported" + (f"; finding: {result.finding}" if result.finding else "")
    return form


# --------------------------------------------------------------------------- the context


@dataclass(frozen=True)
class Context:
    """What every page's view is built from: the run, its synthesis, and lookups over them.

    Built once per render by :func:`context`; read-only apart from a cache of analysis views.
    """

    result: RunResult
    synthesis: Synthesis
    changes: Sequence[Mapping[str, Any]] | None
    model: ChangeModel
    wording: Wording
    nodes: Mapping[str, Node]
    node_labels: Mapping[str, str]
    outcomes: Mapping[str, Outcome]
    fits: Mapping[str, AnalysisFit]
    uncited: Mapping[str, str]
    outcomes_of_edge: Mapping[str, list[str]]
    labels: dict[str, str] = field(default_factory=dict)
    cache: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    @property
    def base(self) -> EvidenceBase:
        return self.result.base

    @property
    def bib(self) -> Bibliography:
        return self.result.base.bib

    @property
    def table(self) -> pd.DataFrame:
        return self.result.table

    @property
    def included(self) -> pd.DataFrame:
        t = self.result.table
        return t[t["included"].astype(bool)] if len(t) else t


def _complete(result: RunResult, synthesis: Synthesis) -> Synthesis:
    """A synthesis with edge statuses and gaps: when a caller passes only part of one (or
    none), the missing parts come from the synthesis stage's own functions, never from the
    views."""
    if synthesis.edges and synthesis.gaps is not None:
        return synthesis
    from dataclasses import replace

    from peerevidence.synthesis import edge_certainty, gaps

    edges = synthesis.edges or edge_certainty(result, synthesis.certainty)
    return replace(synthesis, edges=edges, gaps=synthesis.gaps or gaps(result, edges))


def context(
    result: RunResult, synthesis: Synthesis | None, changes: Sequence[Mapping[str, Any]] | None
) -> Context:
    base = result.base
    model = base.change_model
    if model is None or base.outcomes is None:
        raise DataError("the project has no change model or outcome catalogue; run the validate command")
    outcomes = {o.id: o for o in base.outcomes.outcomes}
    outcomes_of_edge: dict[str, list[str]] = {}
    for oid in sorted(outcomes):
        for eid in outcomes[oid].edges:
            outcomes_of_edge.setdefault(eid, []).append(oid)
    ctx = Context(
        result=result,
        synthesis=_complete(result, synthesis if synthesis is not None else Synthesis()),
        changes=changes,
        model=model,
        wording=wording(model),
        nodes={n.id: n for n in model.nodes},
        node_labels={n.id: n.label for n in model.nodes},
        outcomes=outcomes,
        fits={f.analysis.name: f for f in result.fits},
        uncited={u.key: u.reason for u in model.uncited},
        outcomes_of_edge=outcomes_of_edge,
    )
    ctx.labels.update(_study_labels(ctx))
    return ctx


# --------------------------------------------------------------------------- labels and references


def _study_labels(ctx: Context) -> dict[str, str]:
    keys = sorted(set(ctx.base.records) | set(ctx.table["study"]) if len(ctx.table) else ctx.base.records)
    shorts = {k: (ctx.bib[k].short() if k in ctx.bib else k) for k in keys}
    counts = Counter(shorts.values())
    labels = {}
    for k in keys:
        s = shorts[k]
        # two records with the same short citation (Cook et al. 2012, twice): name the key
        if counts[s] > 1:
            m = re.match(r"^[a-z_]+\d{4}([a-z0-9_]+)$", k)
            labels[k] = f"{s} ({m.group(1) if m else k})"
        else:
            labels[k] = s
    return labels


def study(ctx: Context, key: str) -> dict[str, Any]:
    return {"key": key, "label": ctx.labels.get(key, key), "in_bib": key in ctx.bib}


def reference(ctx: Context, key: str) -> dict[str, Any]:
    ref = ctx.bib.references.get(key)
    if ref is None:
        return {"key": key, "short": key, "full": f"{key} (not in references.bib)", "doi": None, "doi_url": None,
                "in_bib": False, "uncited": ctx.uncited.get(key)}  # fmt: skip
    return {
        "key": key,
        "short": ref.short(),
        "full": ref.full(),
        "doi": ref.doi,
        "doi_url": doi_url(ref.doi),
        "url": http_url(ref.get("url")),
        "in_bib": True,
        "uncited": ctx.uncited.get(key),
        "has_record": key in ctx.base.records,
    }


def certainty_view(ctx: Context, outcome_id: str) -> dict[str, Any] | None:
    c = ctx.synthesis.certainty.get(outcome_id)
    if c is None:
        return None
    return {
        "start": LEVEL_WORDS.get(c.start, c.start),
        "rating": LEVEL_WORDS.get(c.rating, c.rating),
        "rating_id": c.rating,
        "final": LEVEL_WORDS.get(c.final, c.final),
        "final_id": c.final,
        "override": LEVEL_WORDS.get(c.override, c.override) if c.override else None,
        "override_reason": c.override_reason,
        "override_by": c.override_by,
        "steps": [
            {
                "domain": DOMAIN_WORDS.get(s.domain, s.domain),
                "levels": s.levels,
                "reason": s.reason,
            }
            for s in c.steps
        ],
    }


def sensitivity_view(ctx: Context, name: str) -> dict[str, Any] | None:
    s = ctx.synthesis.sensitivity.get(name)
    if s is None:
        return None
    fit = ctx.fits.get(name)
    scale = scale_of(ctx, fit.analysis.outcome) if fit else None

    def verdict(lo: float, hi: float) -> str:
        if _finite(lo) and lo > 0:
            return "benefit"
        if _finite(hi) and hi < 0:
            return "harm"
        return "unclear"

    default = next((r for r in s.rows if r.is_default), None)
    base_verdict = verdict(default.mu_q025, default.mu_q975) if default else None
    rows = []
    for r in s.rows:
        v = verdict(r.mu_q025, r.mu_q975)
        rows.append(
            {
                "prior_mu": r.prior_mu,
                "prior_tau": r.prior_tau,
                "mu": f"{fmt(r.mu_q50)} ({fmt_interval(r.mu_q025, r.mu_q975)})",
                "natural": scale.text(r.mu_q50, r.mu_q025, r.mu_q975)
                if scale and scale.transformed
                else None,
                "tau": fmt(r.tau_q50),
                "p_benefit": fmt_p(r.p_benefit),
                "is_default": r.is_default,
                "verdict": {
                    "benefit": "credible interval above 0",
                    "harm": "credible interval below 0",
                    "unclear": "credible interval includes 0",
                }[v],
                "differs": base_verdict is not None and v != base_verdict,
            }
        )
    return {
        "analysis": name,
        "rows": rows,
        "flips": list(s.flips),
        "href": f"outcomes/{name}.html" if fit else None,
        "label": _analysis_label(ctx, name),
        "p_name": "P(in the predicted direction)" if scale and scale.association else "P(benefit)",
    }


def _analysis_label(ctx: Context, name: str) -> str:
    fit = ctx.fits.get(name)
    if fit is None:
        return name
    variant = " (randomised trials only)" if fit.analysis.variant == "randomised" else ""
    return fit.analysis.outcome.label + variant


def scale_of(ctx: Context, outcome: Outcome) -> Scale:
    return scale_for(outcome, ctx.node_labels, ctx.wording)


def analysis_view(ctx: Context, name: str) -> dict[str, Any] | None:
    if name not in ctx.cache:
        fit = ctx.fits.get(name)
        ctx.cache[name] = _analysis_view(ctx, fit) if fit else None
    return ctx.cache[name]


def _analysis_view(ctx: Context, fit: AnalysisFit) -> dict[str, Any]:
    a, s = fit.analysis, fit.summary
    scale = scale_of(ctx, a.outcome)
    mu, tau, new = s.mu.to_json(), s.tau.to_json(), s.theta_new.to_json(with_median=False)
    reml = s.reml.to_json()
    d = {**s.diagnostics.to_json(), **s.exact_check.to_json()}
    prov = s.provenance
    rows = a.rows
    n_values = rows["n"].to_numpy(float) if "n" in rows else np.array([])
    n_known = n_values[np.isfinite(n_values)]
    n_missing = int(len(n_values) - len(n_known))
    designs = [str(x) for x in _first((prov.data if prov else {}).get("design"), rows["design"])]
    nat_mu = scale.interval(mu["q025"], mu["q975"])
    nat_pi = scale.interval(new["q025"], new["q975"])
    i2 = reml.get("i2")
    return {
        "name": a.name,
        "href": f"outcomes/{a.name}.html",
        "outcome": a.outcome.id,
        "label": a.outcome.label,
        "variant": a.variant,
        "variant_label": "randomised trials only" if a.variant == "randomised" else "all designs",
        "k": s.k,
        "n": fmt_int(n_known.sum()) if len(n_known) else "–",
        "n_missing": n_missing,
        "designs": design_text(designs),
        "studies": [study(ctx, k) for k in a.data.labels],
        "scale": scale,
        "effect": f"{fmt(mu['q50'])} ({fmt_interval(mu['q025'], mu['q975'])})",
        "effect_natural": (
            f"{scale.natural_name} {fmt(scale.natural(mu['q50']))} ({fmt_interval(*nat_mu)})"
            if scale.transformed
            else None
        ),
        "tau": f"{fmt(tau['q50'])} ({fmt_interval(tau['q025'], tau['q975'])})",
        "pi": fmt_interval(new["q025"], new["q975"]),
        "pi_natural": f"{scale.natural_name} {fmt_interval(*nat_pi)}" if scale.transformed else None,
        "p_benefit": fmt_p(s.p_mu_gt_0),
        "mu": mu,
        "reml": {
            "mu": fmt(reml.get("mu")),
            "ci": fmt_interval(reml.get("ci_lb"), reml.get("ci_ub")),
            "natural": (
                scale.text(reml.get("mu"), reml.get("ci_lb"), reml.get("ci_ub"))
                if scale.transformed and reml
                else None
            ),
            "tau2": fmt(reml.get("tau2"), 3),
            "i2": (fmt(i2, 0) + "%") if _finite(i2) else "not estimable (k = 1)",
            "pi": fmt_interval(reml.get("pi_lb"), reml.get("pi_ub")),
        }
        if reml
        else None,
        "diagnostics": {
            "rhat": fmt(d.get("rhat_max"), 3),
            "rhat_ok": _finite(d.get("rhat_max")) and d["rhat_max"] <= 1.01,
            "ess_bulk": fmt_int(d.get("ess_bulk_min")),
            "ess_tail": fmt_int(d.get("ess_tail_min")),
            "ess_ok": _finite(d.get("ess_bulk_min")) and min(d["ess_bulk_min"], d["ess_tail_min"]) >= 400,
            "divergences": d.get("divergences", "–"),
            "discrepancy_sd": fmt(d.get("exact_max_sd_discrepancy"), 3),
            "discrepancy_z": fmt(d.get("exact_max_z"), 1),
            "worst": d.get("exact_worst", ""),
            "tolerance_sd": fmt(d.get("tolerance_sd"), 2),
            "tolerance_z": fmt(d.get("tolerance_z"), 1),
            "exact_ok": bool(d.get("exact_ok", False)),
        },
        "exact_ok": bool(d.get("exact_ok", False)),
        "exact": s.exact.to_json(),
        "priors": dict(s.priors),
        "notes": list(s.notes),
        "bias_designs": sorted(
            {design_word(x) for x in designs if x in ctx.base.analysis.design_bias.table(a.outcome.measure)}
        )
        if a.data.bias_mean is not None or a.data.bias_group is not None
        else [],
        "sampler": dict(prov.sampler) if prov else a.sampler.model_dump(),
        "key": short_hash(fit.key),
        "certainty": certainty_view(ctx, a.outcome.id),
    }


def review_rows(ctx: Context, outcome_id: str) -> list[dict[str, Any]]:
    """Review-level (``form: pooled``) results for an outcome, as the review reports them."""
    rows = []
    sub = ctx.table[(ctx.table["outcome"] == outcome_id) & (ctx.table["form"] == "pooled")]
    for _, row in sub.iterrows():
        loaded = ctx.base.records.get(row["study"])
        if loaded is None:
            continue
        res = loaded.record.results[int(row["result"])]
        assert isinstance(res, PooledResult), "a row of form 'pooled' comes from a pooled result"
        rows.append(
            {
                "study": study(ctx, row["study"]),
                "timepoint": res.timepoint,
                "instrument": res.instrument,
                "measure": res.measure,
                "estimate": fmt(res.estimate),
                "ci": fmt_interval(res.ci_low, res.ci_high) if res.ci_low is not None else "–",
                "k": res.k if res.k is not None else "–",
                "n": fmt_int(res.n) if res.n is not None else "–",
                "i2": (fmt(res.i2, 0) + "%") if res.i2 is not None else "–",
                "sign_convention": res.sign_convention,
                "flags": list(res.flags),
                "locator": res.source.locator,
                "notes": res.notes,
            }
        )
    return rows


def unpooled_rows(ctx: Context, outcome_id: str) -> list[dict[str, Any]]:
    """Studies with a record for the outcome but no poolable data, with the reason."""
    sub = ctx.table[
        (ctx.table["outcome"] == outcome_id)
        & ~ctx.table["included"].astype(bool)
        & (ctx.table["form"] != "pooled")
    ]
    return [
        {
            "study": study(ctx, r["study"]),
            "design": design_word(r["design"]),
            "form": r["form"],
            "reason": r["reason"] or "",
            "locator": r["locator"],
        }
        for _, r in sub.iterrows()
    ]


def _first(value: Any, fallback: Any) -> list[Any]:
    """``value`` as a list unless it is missing (summaries hold lists or NumPy arrays)."""
    return list(fallback) if value is None else list(value)
