"""View models for the HTML report: fits + synthesis + change model -> plain dicts.

:class:`_Builder` turns a :class:`RunResult` and a :class:`Synthesis` into the dicts the
Jinja2 templates lay out: numbers formatted, scales named (natural OR/HR/SMD and the
harmonised scale), certainty with its reasons, every number with its locator. Computing
stays here; drawing stays in :mod:`peerevidence.report.render` (pages), :mod:`peerevidence.report.forest`
(forest plots) and :mod:`peerevidence.report.diagram` (the change-model diagram).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from peerevidence.errors import DataError
from peerevidence.records.schema import Edge, Outcome
from peerevidence.synthesis import LEVELS, Synthesis

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult

SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*(--[a-z][a-z0-9_]*)?$")
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
        return "supports the link" if self.association else "favours peer support"

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
                what = "peer support vs control"
            return f"{name} ({long}), {what}; {side} 1 {self.benefit}"
        if self.measure == "fisher_z":
            side = "positive" if self.sign > 0 else "negative"
            return f"r ({long}); {side} {self.benefit}"
        return f"{name} ({long}), harmonised so that positive {self.benefit}"

    def natural(self, x: Any) -> float | None:
        if not _finite(x):
            return None
        x = float(x)
        if self.measure in RATIO:
            return math.exp(min(700.0, self.sign * x))
        if self.measure == "fisher_z":
            return math.tanh(self.sign * x)
        return x

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


def scale_for(outcome: Outcome, node_labels: Mapping[str, str]) -> Scale:
    exposure = node_labels.get(outcome.exposure or "", outcome.exposure or "")
    return Scale(
        outcome.measure,
        1.0 if outcome.direction == "higher_is_better" else -1.0,
        outcome.kind == "association",
        exposure,
    )


# --------------------------------------------------------------------------- helpers


def safe_page(reports: Path, name: str) -> Path:
    """``reports/outcomes/<name>.html``, refusing any name that could leave ``reports/``."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise DataError(
            f"refusing to write a report page for analysis {name!r}: analysis names must be "
            "lower-case identifiers (letters, digits, '_', and one '--variant')"
        )
    outcomes_dir = (reports / "outcomes").resolve()
    target = (outcomes_dir / f"{name}.html").resolve()
    if target.parent != outcomes_dir:
        raise DataError(f"refusing to write {target}: outside {outcomes_dir}")
    return reports / "outcomes" / f"{name}.html"


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
    form = result.form
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


# --------------------------------------------------------------------------- the builder


class _Builder:
    def __init__(self, result: RunResult, synthesis: Synthesis, changes: list[dict] | None):
        self.result = result
        self.base = result.base
        self.synthesis = synthesis if synthesis is not None else Synthesis()
        self.changes = changes
        self.table: pd.DataFrame = result.table
        self.model = self.base.change_model
        if self.model is None or self.base.outcomes is None:
            raise DataError(
                "the project has no change model or outcome catalogue; run `peerevidence validate`"
            )
        self.nodes = {n.id: n for n in self.model.nodes}
        self.node_labels = {n.id: n.label for n in self.model.nodes}
        self.outcomes = {o.id: o for o in self.base.outcomes.outcomes}
        self.fits: dict[str, AnalysisFit] = {f.analysis.name: f for f in result.fits}
        self.bib = self.base.bib
        self.uncited = {u.key: u.reason for u in self.model.uncited}
        self.labels = self._study_labels()
        self.included = self.table[self.table["included"].astype(bool)] if len(self.table) else self.table
        self.edges_of_outcome = {o.id: list(o.edges) for o in self.outcomes.values()}
        self.outcomes_of_edge: dict[str, list[str]] = {}
        for oid in sorted(self.outcomes):
            for eid in self.outcomes[oid].edges:
                self.outcomes_of_edge.setdefault(eid, []).append(oid)
        self._analysis_cache: dict[str, dict | None] = {}

    # ---- labels and references

    def _study_labels(self) -> dict[str, str]:
        keys = sorted(
            set(self.base.records) | set(self.table["study"]) if len(self.table) else self.base.records
        )
        shorts = {k: (self.bib[k].short() if k in self.bib else k) for k in keys}
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

    def study(self, key: str) -> dict[str, Any]:
        return {"key": key, "label": self.labels.get(key, key), "in_bib": key in self.bib}

    def reference(self, key: str) -> dict[str, Any]:
        ref = self.bib.references.get(key)
        if ref is None:
            return {"key": key, "short": key, "full": f"{key} (not in references.bib)", "doi": None, "doi_url": None,
                    "in_bib": False, "uncited": self.uncited.get(key)}  # fmt: skip
        return {
            "key": key,
            "short": ref.short(),
            "full": ref.full(),
            "doi": ref.doi,
            "doi_url": doi_url(ref.doi),
            "url": http_url(ref.get("url")),
            "in_bib": True,
            "uncited": self.uncited.get(key),
            "has_record": key in self.base.records,
        }

    def references(self) -> list[dict[str, Any]]:
        return [self.reference(k) for k in sorted(self.bib.references)]

    # ---- synthesis pieces

    def certainty(self, outcome_id: str) -> dict[str, Any] | None:
        c = self.synthesis.certainty.get(outcome_id)
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

    def sensitivity(self, name: str) -> dict[str, Any] | None:
        s = self.synthesis.sensitivity.get(name)
        if s is None:
            return None
        fit = self.fits.get(name)
        scale = self.scale(fit.analysis.outcome) if fit else None

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
                    }[v],  # fmt: skip
                    "differs": base_verdict is not None and v != base_verdict,
                }
            )
        return {
            "analysis": name,
            "rows": rows,
            "flips": list(s.flips),
            "href": f"outcomes/{name}.html" if fit else None,
            "label": self._analysis_label(name),
            "p_name": "P(in the predicted direction)" if scale and scale.association else "P(benefit)",
        }

    def _analysis_label(self, name: str) -> str:
        fit = self.fits.get(name)
        if fit is None:
            return name
        variant = " (randomised trials only)" if fit.analysis.variant == "randomised" else ""
        return fit.analysis.outcome.label + variant

    # ---- analyses

    def scale(self, outcome: Outcome) -> Scale:
        return scale_for(outcome, self.node_labels)

    def analysis(self, name: str) -> dict[str, Any] | None:
        if name not in self._analysis_cache:
            fit = self.fits.get(name)
            self._analysis_cache[name] = self._analysis(fit) if fit else None
        return self._analysis_cache[name]

    def _analysis(self, fit: AnalysisFit) -> dict[str, Any]:
        a, s = fit.analysis, fit.summary
        scale = self.scale(a.outcome)
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
            "studies": [self.study(k) for k in a.data.labels],
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
                {
                    design_word(x)
                    for x in designs
                    if x in self.base.analysis.design_bias.table(a.outcome.measure)
                }
            )
            if a.data.bias_mean is not None or a.data.bias_var is not None or a.data.inflation is not None
            else [],
            "sampler": dict(prov.sampler) if prov else a.sampler.model_dump(),
            "key": short_hash(fit.key),
            "certainty": self.certainty(a.outcome.id),
        }

    # ---- per outcome evidence

    def review_rows(self, outcome_id: str) -> list[dict[str, Any]]:
        """Review-level (``form: pooled``) results for an outcome, as the review reports them."""
        rows = []
        sub = self.table[(self.table["outcome"] == outcome_id) & (self.table["form"] == "pooled")]
        for _, row in sub.iterrows():
            loaded = self.base.records.get(row["study"])
            if loaded is None:
                continue
            res = loaded.record.results[int(row["result"])]
            rows.append(
                {
                    "study": self.study(row["study"]),
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

    def unpooled_rows(self, outcome_id: str) -> list[dict[str, Any]]:
        """Studies with a record for the outcome but no poolable data, with the reason."""
        sub = self.table[
            (self.table["outcome"] == outcome_id)
            & ~self.table["included"].astype(bool)
            & (self.table["form"] != "pooled")
        ]
        return [
            {
                "study": self.study(r["study"]),
                "design": design_word(r["design"]),
                "form": r["form"],
                "reason": r["reason"] or "",
                "locator": r["locator"],
            }
            for _, r in sub.iterrows()
        ]

    def outcome_evidence(self, oid: str, edge: Edge | None = None) -> dict[str, Any]:
        outcome = self.outcomes[oid]
        all_view = self.analysis(oid)
        rand_view = self.analysis(f"{oid}--randomised")
        # one fit serves both when the data, priors and bias terms are identical (same key)
        same = rand_view is not None and all_view is not None and rand_view["key"] == all_view["key"]
        path_note = None
        if edge is not None and outcome.kind == "intervention_effect":
            source = self.nodes.get(edge.from_)
            if source is not None and source.kind != "intervention":
                path_note = (
                    f"These trials measure the effect of peer support on “{self.node_labels.get(outcome.node, outcome.node)}”, "
                    "that is the whole path that ends in this link, not the link "
                    f"from “{source.label}” in isolation."
                )
        return {
            "id": oid,
            "label": outcome.label,
            "kind": outcome.kind,
            "kind_words": "association between two nodes (observational)"
            if outcome.kind == "association"
            else "effect of peer support (intervention vs control)",
            "scale": self.scale(outcome),
            "all": all_view,
            "randomised": rand_view,
            "randomised_same": same,
            "has_data": all_view is not None,
            "n_poolable": int((self.included["outcome"] == oid).sum()) if len(self.included) else 0,
            "certainty": self.certainty(oid),
            "reviews": self.review_rows(oid),
            "unpooled": self.unpooled_rows(oid),
            "path_note": path_note,
            "description": outcome.description,
        }

    # ---- edges

    def edge_status(self, edge: Edge) -> tuple[str, str | None, bool]:
        """(status, certainty rating, whether the synthesis supplied it)."""
        given = self.synthesis.edges.get(edge.id)
        if given is not None:
            return given.status, given.rating, True
        with_data = [
            o for o in self.outcomes_of_edge.get(edge.id, []) if (self.included["outcome"] == o).any()
        ]
        if with_data:
            ratings = [self.synthesis.certainty[o].final for o in with_data if o in self.synthesis.certainty]
            best = max(ratings, key=LEVELS.index) if ratings else None
            return "quantitative", best, False
        if "qualitative_data" in edge.basis or edge.quotes:
            return "qualitative_only", None, False
        return "none", None, False

    def quotes_for(self, edge: Edge) -> list[dict[str, Any]]:
        wanted = list(dict.fromkeys(edge.quotes))
        near = {edge.from_, edge.to}
        for nid in (edge.from_, edge.to):
            near |= {n.id for n in self.model.nodes if n.parent == nid}
            if self.nodes.get(nid) and self.nodes[nid].parent:
                near.add(self.nodes[nid].parent)
        out = []
        for pid in wanted:
            mine = [q for q in self.model.quotes if q.participant == pid]
            close = [q for q in mine if q.node in near] or mine
            for q in close:
                out.append(
                    {
                        "participant": q.participant,
                        "theme": self.node_labels.get(q.node, q.node),
                        "text": q.text,
                        "locator": q.locator,
                    }
                )
        return out

    def edge(self, edge: Edge) -> dict[str, Any]:
        status, rating, given = self.edge_status(edge)
        src, dst = self.nodes.get(edge.from_), self.nodes.get(edge.to)
        origin = self.model.meta.source
        extension_nodes = [n for n in (src, dst) if n is not None and n.model_source == "peerevidence"]
        is_extension = edge.source == "peerevidence" or bool(extension_nodes)
        later = edge.source not in (origin, "peerevidence")
        source_ref = self.reference(edge.source) if edge.source in self.bib else None
        if edge.source == "peerevidence":
            wording_note = "Extension, not an edge of the source model: the wording is ours, not the paper's."
        elif is_extension:
            wording_note = (
                "Extension, not an edge of the source model (it leads to a node we added); "
                f"the wording is quoted from {source_ref['short'] if source_ref else edge.source}."
            )
        elif later:
            wording_note = f"Not part of the 2015 model: wording from {source_ref['short'] if source_ref else edge.source}."
        else:
            wording_note = f"The paper's wording ({source_ref['short'] if source_ref else edge.source})."
        quotes = self.quotes_for(edge)
        outcome_ids = self.outcomes_of_edge.get(edge.id, [])
        outcomes = [self.outcome_evidence(o, edge) for o in outcome_ids]
        with_data = [o for o in outcomes if o["has_data"] or o["n_poolable"]]
        if not outcome_ids:
            gap = (
                "No quantitative evidence: no outcome in evidence/outcomes.yaml measures this link, "
                "so no study result bears on it (evidence gap)."
            )
        elif not with_data:
            labels = ", ".join(o["label"] for o in outcomes)
            gap = f"No quantitative evidence: no study gives poolable data for {labels} (evidence gap)."
        else:
            gap = None
        themes = []
        for nid in (edge.from_, edge.to):
            if nid in self.node_labels and self.node_labels[nid] not in themes:
                themes.append(self.node_labels[nid])
        for q in quotes:
            if q["theme"] not in themes:
                themes.append(q["theme"])
        return {
            "id": edge.id,
            "anchor": f"edge-{edge.id}",
            "from_id": edge.from_,
            "to_id": edge.to,
            "from_label": self.node_labels.get(edge.from_, edge.from_),
            "to_label": self.node_labels.get(edge.to, edge.to),
            "from_kind": KIND_WORDS.get(src.kind, "") if src else "",
            "to_kind": KIND_WORDS.get(dst.kind, "") if dst else "",
            "wording": edge.wording,
            "wording_note": wording_note,
            "locator": edge.locator,
            "source": source_ref,
            "is_extension": is_extension,
            "basis": [BASIS_WORDS.get(b, b) for b in edge.basis],
            "status": status,
            "status_words": STATUS_WORDS.get(status, status),
            "rating": rating,
            "rating_words": LEVEL_WORDS.get(rating, rating) if rating else None,
            "status_from_synthesis": given,
            "quotes": quotes,
            "participants": list(dict.fromkeys(edge.quotes)),
            "themes": themes,
            "cites": [self.reference(k) for k in edge.cites],
            "notes": list(edge.notes),
            "outcomes": outcomes,
            "gap": gap,
        }

    # ---- sections

    def gaps(self, edges: list[dict[str, Any]]) -> dict[str, Any]:
        g = self.synthesis.gaps
        by_id = {e["id"]: e for e in edges}

        def edge_refs(ids: Iterable[str]) -> list[dict[str, str]]:
            return [
                {"id": i, "anchor": f"edge-{i}",
                 "text": f"{by_id[i]['from_label']} → {by_id[i]['to_label']}" if i in by_id else i}
                for i in ids
            ]  # fmt: skip

        def outcome_refs(ids: Iterable[str]) -> list[dict[str, str]]:
            return [
                {"id": i, "label": self.outcomes[i].label if i in self.outcomes else i,
                 "href": f"outcomes/{i}.html" if i in self.fits else None}
                for i in ids
            ]  # fmt: skip

        if g is not None:
            return {
                "derived": False,
                "edges_without_quantitative": edge_refs(g.edges_without_quantitative),
                "edges_qualitative_only": edge_refs(g.edges_qualitative_only),
                "outcomes_without_data": outcome_refs(g.outcomes_without_data),
                "outcomes_single_study": outcome_refs(g.outcomes_single_study),
            }
        no_data = [o for o in sorted(self.outcomes) if not (self.included["outcome"] == o).any()]
        single = [o for o in sorted(self.outcomes) if o in self.fits and self.fits[o].summary.k == 1]
        return {
            "derived": True,
            "edges_without_quantitative": edge_refs(e["id"] for e in edges if e["status"] != "quantitative"),
            "edges_qualitative_only": edge_refs(e["id"] for e in edges if e["status"] == "qualitative_only"),
            "outcomes_without_data": outcome_refs(no_data),
            "outcomes_single_study": outcome_refs(single),
        }

    def paths(self) -> list[dict[str, Any]]:
        out = []
        for p in self.synthesis.paths:
            out.append(
                {
                    "nodes": [self.node_labels.get(n, n) for n in p.path],
                    "edges": [{"id": e, "anchor": f"edge-{e}"} for e in p.edges],
                    "first": self.outcomes[p.first].label if p.first in self.outcomes else p.first,
                    "first_href": f"outcomes/{p.first}.html" if p.first in self.fits else None,
                    "second": self.outcomes[p.second].label if p.second in self.outcomes else p.second,
                    "second_href": f"outcomes/{p.second}.html" if p.second in self.fits else None,
                    "scale": p.scale,
                    "effect": f"{p.scale} {fmt(p.median)} ({fmt_interval(p.q025, p.q975)})",
                    "p_benefit": fmt_p(p.p_benefit),
                    "assumptions": list(p.assumptions),
                    "caveat": p.caveat,
                }
            )
        return out

    def change_rows(self) -> dict[str, list[dict[str, Any]]] | None:
        """Changed, added and removed analyses as rows; unchanged ones only by name."""
        if self.changes is None:
            return None
        rows = []
        for c in self.changes:
            name = str(c.get("analysis", ""))
            added = c.get("studies_added") or []
            removed = c.get("studies_removed") or []
            rows.append(
                {
                    "analysis": name,
                    "label": self._analysis_label(name),
                    "href": f"outcomes/{name}.html"
                    if name in self.fits and SAFE_NAME.fullmatch(name)
                    else None,
                    "status": str(c.get("status", "")),
                    "added": [self.study(str(k)) for k in added],
                    "removed": [self.study(str(k)) for k in removed],
                    "d_mu": fmt(c.get("d_mu")) if _finite(c.get("d_mu")) else "–",
                    "d_width": fmt(c.get("d_width")) if _finite(c.get("d_width")) else "–",
                    "certainty_before": LEVEL_WORDS.get(c.get("certainty_before"), c.get("certainty_before"))
                    or "–",
                    "certainty_after": LEVEL_WORDS.get(c.get("certainty_after"), c.get("certainty_after"))
                    or "–",
                }
            )
        return {
            "rows": [r for r in rows if r["status"] != "unchanged"],
            "unchanged": [r["analysis"] for r in rows if r["status"] == "unchanged"],
        }

    def overview(self) -> dict[str, list[dict[str, Any]]]:
        """One line per outcome of the catalogue: the headline numbers and where to read more.

        Two groups (effects of peer support; associations between nodes), outcomes with
        pooled data first, then by label.
        """
        rows = []
        for oid in sorted(
            self.outcomes, key=lambda o: (o not in self.fits, self.outcomes[o].label.casefold(), o)
        ):
            o = self.outcomes[oid]
            all_view, rand = self.analysis(oid), self.analysis(f"{oid}--randomised")
            rows.append(
                {
                    "id": oid,
                    "label": o.label,
                    "kind": o.kind,
                    "edges": [{"id": e, "anchor": f"edge-{e}"} for e in o.edges],
                    "all": all_view,
                    "randomised": rand,
                    "certainty": self.certainty(oid),
                    "n_records": int((self.table["outcome"] == oid).sum()),
                    "scale": self.scale(o),
                }
            )
        return {
            "effects": [r for r in rows if r["kind"] != "association"],
            "associations": [r for r in rows if r["kind"] == "association"],
        }

    def manifest(self) -> dict[str, Any]:
        from peerevidence.pooling.fitting import input_hashes
        from peerevidence.pooling.store import versions

        m = self.result.manifest or {}
        inputs = input_hashes(self.base)
        sampler = m.get("sampler") or self.base.analysis.sampler.model_dump()
        fits = []
        for name in sorted(self.fits):
            f = self.fits[name]
            prov = f.summary.provenance
            smp = dict(prov.sampler) if prov else {}
            fits.append(
                {
                    "name": name,
                    "href": f"outcomes/{name}.html",
                    "key": short_hash(f.key),
                    "seed": smp.get("seed", f.analysis.sampler.seed),
                    "draws": smp.get("draws", "–"),
                    "tune": smp.get("tune", "–"),
                    "chains": smp.get("chains", "–"),
                    "model": prov.model_version if prov else "",
                }
            )
        return {
            "inputs": [{"file": k, "hash": short_hash(v)} for k, v in sorted(inputs.items())],
            "versions": sorted((m.get("versions") or versions()).items()),
            "sampler": sampler,
            "fits": fits,
        }


# --------------------------------------------------------------------------- outcome pages


def _first(value: Any, fallback: Any) -> list:
    """``value`` as a list unless it is missing (summaries hold lists or NumPy arrays)."""
    return list(fallback) if value is None else list(value)
