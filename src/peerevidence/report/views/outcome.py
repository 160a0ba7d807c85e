"""An outcome page's view: the analysis, its forest plot's data, the studies with their
locators, risk of bias, certainty and prior sensitivity."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from peerevidence.report.views.common import (
    DESIGN_SHORT,
    LONG_NAMES,
    RATIO,
    ROB_WORDS,
    ROUTE_WORDS,
    Context,
    Scale,
    _finite,
    _first,
    analysis_view,
    design_word,
    fmt,
    fmt_int,
    fmt_interval,
    http_url,
    raw_data,
    review_rows,
    scale_of,
    sensitivity_view,
    study,
)
from peerevidence.stats.summary import Z975

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit
    from peerevidence.report.forest import ForestData


@dataclass(frozen=True)
class OutcomeView:
    """Everything ``outcome.html.j2`` lays out."""

    analysis: dict[str, Any]
    outcome: Any
    scale: Scale
    forest: str
    data: list[dict[str, Any]]
    other: list[dict[str, Any]]
    edges: list[dict[str, str]]
    sensitivity: dict[str, Any] | None
    sibling: dict[str, Any] | None
    reviews: list[dict[str, Any]]
    design_bias: list[dict[str, str]]
    sof: Any = None  # this outcome's Summary of Findings row
    rob: Any = None  # risk-of-bias figures


def arm_text(result: Any) -> tuple[str, str]:
    """The intervention and comparator arms as a forest plot shows them (RevMan's columns):
    events/total, or mean (SD) n; empty for other forms."""
    if result is None:
        return "", ""
    if result.form == "binary":
        i, c = result.intervention, result.control
        return f"{i.events}/{i.total}", f"{c.events}/{c.total}"
    if result.form == "continuous":
        i, c = result.intervention, result.control
        # four significant digits at most: an SD derived from an SE can carry many
        return f"{i.mean:.4g} ({i.sd:.4g}) {i.n}", f"{c.mean:.4g} ({c.sd:.4g}) {c.n}"
    return "", ""


def _result_of(ctx: Context, key: str, rows: pd.DataFrame) -> Any:
    loaded = ctx.base.records.get(key)
    if loaded is None or not len(rows):
        return None
    index = int(rows["result"].iloc[0])
    return loaded.record.results[index]


def forest_data(ctx: Context, fit: AnalysisFit) -> ForestData:
    """The forest plot of one analysis, RevMan's conventions: weights (%), arm data, the
    project's words under the axis, heterogeneity under the diamond."""
    from peerevidence.report.forest import ForestData, ForestRow

    a, s = fit.analysis, fit.summary
    scale = scale_of(ctx, a.outcome)
    data = s.provenance.data if s.provenance else {}
    studies = [str(x) for x in _first(data.get("study"), a.data.labels)]
    yi = [float(x) for x in _first(data.get("yi"), a.data.yi)]
    vi = [float(x) for x in _first(data.get("vi"), a.data.vi)]
    designs = [str(x) for x in _first(data.get("design"), a.rows["design"])]
    theta = {t.study: t for t in s.theta}
    rows_by_study = {r["study"]: r for _, r in a.rows.iterrows()}
    # REML random-effects weights (%), as RevMan and metafor report them
    tau2 = s.reml.tau2 if s.reml.tau2 is not None else 0.0
    raw_w = [1.0 / (v + tau2) if _finite(v) and v > 0 else 0.0 for v in vi]
    total = sum(raw_w) or 1.0
    weights = [w / total for w in raw_w]
    wmax = max(weights) if weights else 1.0
    arms = any(r.get("form") in ("binary", "continuous") for r in rows_by_study.values())
    forms = {r.get("form") for r in rows_by_study.values()}
    # ratio outcomes are drawn on the log-ratio axis (increasing left to right), others on
    # the harmonised scale
    flip = scale.sign if scale.measure in RATIO else 1.0

    def x(v: float | None) -> float | None:
        return None if v is None else flip * v

    def span(a: float | None, b: float | None) -> tuple[float | None, float | None]:
        p, q = x(a), x(b)
        return (p, q) if p is None or q is None or p <= q else (q, p)

    rows = []
    for i, key in enumerate(studies):
        y, v = yi[i], vi[i]
        se = math.sqrt(v) if _finite(v) and v > 0 else float("nan")
        lo, hi = y - Z975 * se, y + Z975 * se
        t = theta.get(key)
        row = rows_by_study.get(key)
        res = _result_of(ctx, key, a.rows[a.rows["study"] == key]) if arms else None
        arm_i, arm_c = arm_text(res)
        rows.append(
            ForestRow(
                label=ctx.labels.get(key, key),
                design=DESIGN_SHORT.get(designs[i], designs[i]) if i < len(designs) else "",
                n=fmt_int(row["n"]) if row is not None else "–",
                rob=ROB_WORDS.get(row["rob"], str(row["rob"])) if row is not None else "–",
                yi=x(y),
                lo=span(lo, hi)[0],
                hi=span(lo, hi)[1],
                weight=(weights[i] / wmax) if wmax else 0.0,
                theta=x(t.mean) if t else None,
                theta_lo=span(t.q025, t.q975)[0] if t else None,
                theta_hi=span(t.q025, t.q975)[1] if t else None,
                text=scale.text(y, lo, hi),
                weight_pct=f"{100 * weights[i]:.1f}%",
                arm_i=arm_i,
                arm_c=arm_c,
            )
        )
    mu, new = s.mu, s.theta_new
    reml = s.reml
    i2 = f"{reml.i2:.0f}%" if _finite(reml.i2) else "not estimable"
    heterogeneity = (
        f"Heterogeneity: τ² = {fmt(reml.tau2, 3)} (REML), I² = {i2}; "
        f"Bayesian τ = {fmt(s.tau.q50)} ({fmt_interval(s.tau.q025, s.tau.q975)}). "
        f"REML: {scale.text(reml.mu, reml.ci_lb, reml.ci_ub)}"
    )
    if scale.association:
        left, right = "Against the link", "Supports the link"
    else:
        left, right = f"Favours {ctx.wording.comparator}", f"Favours {ctx.wording.intervention}"
    ratio = scale.measure in RATIO
    if ratio and scale.sign < 0:  # lower is better: the log-ratio axis runs the other way
        left, right = right, left
    return ForestData(
        title=a.outcome.label,
        axis_label="Harmonised scale: " + scale.harmonised_name,
        rows=rows,
        pooled=(x(mu.q50), *span(mu.q025, mu.q975)),
        pooled_text=scale.text(mu.q50, mu.q025, mu.q975),
        pi=span(new.q025, new.q975),
        pi_text=(f"{scale.natural_name} " if scale.transformed else "")
        + fmt_interval(*scale.interval(new.q025, new.q975) if scale.transformed else (new.q025, new.q975)),
        ratio_axis=ratio,
        natural_label=f"{scale.natural_name} ({LONG_NAMES.get(scale.natural_name, '')}), log scale"
        if ratio
        else "",
        right_header=f"{scale.natural_name} [95% interval]",
        left_note=left,
        right_note=right,
        heterogeneity=heterogeneity,
        arms=arms,
        arm_headers=(ctx.wording.intervention, ctx.wording.comparator),
        arm_units="Events/total"
        if forms == {"binary"}
        else "Mean (SD) n"
        if forms == {"continuous"}
        else "Arm data",
    )


def data_rows(ctx: Context, rows: pd.DataFrame, scale: Scale) -> list[dict[str, Any]]:
    out = []
    for _, r in rows.iterrows():
        loaded = ctx.base.records.get(r["study"])
        res = loaded.record.results[int(r["result"])] if loaded else None
        yi, vi = r["yi"], r["vi"]
        se = math.sqrt(vi) if _finite(vi) and vi > 0 else None
        lo = yi - Z975 * se if se is not None and _finite(yi) else None
        hi = yi + Z975 * se if se is not None and _finite(yi) else None
        out.append(
            {
                "study": study(ctx, r["study"]),
                "design": design_word(r["design"]),
                "form": r["form"],
                "instrument": r["instrument"] if isinstance(r["instrument"], str) else "",
                "timepoint": r["timepoint"],
                "raw": raw_data(res) if res is not None else "",
                "route": ROUTE_WORDS.get(r["route"], r["route"]) if isinstance(r["route"], str) else "",
                "yi": fmt(yi),
                "se": fmt(se),
                "ci": fmt_interval(lo, hi) if lo is not None else "–",
                "natural": scale.text(yi, lo, hi) if scale.transformed and lo is not None else None,
                "n": fmt_int(r["n"]),
                "rob": ROB_WORDS.get(r["rob"], str(r["rob"])),
                "included": bool(r["included"]),
                "reason": r["reason"] if isinstance(r["reason"], str) else "",
                "flags": r["flags"] if isinstance(r["flags"], str) else "",
                "indirect": r["indirect"] if isinstance(r["indirect"], str) else "",
                "locator": r["locator"],
                "snippet": r["snippet"] if isinstance(r["snippet"], str) else "",
                "url": http_url(getattr(res.source, "url", None)) if res is not None else None,
                "file": r["file"],
                "line": int(r["line"]) if _finite(r["line"]) else None,
                "notes": getattr(res, "notes", None) if res is not None else None,
            }
        )
    return out


def design_bias_rows(ctx: Context, analysis: Any) -> list[dict[str, str]]:
    out = []
    seen = set()
    for design in analysis.rows["design"]:
        b = ctx.base.analysis.design_bias.table(analysis.outcome.measure).get(design)
        if b is None or design in seen:
            continue
        seen.add(design)
        out.append(
            {
                "design": design_word(design),
                "mean": fmt(b.mean),
                "sd": fmt(b.sd),
                "study_sd": fmt(b.study_sd),
                "inflation": fmt(b.inflation),
            }
        )
    return out


def outcome_view(
    ctx: Context, fit: AnalysisFit, forest: str, sof: Any = None, rob: Any = None
) -> OutcomeView:
    a = fit.analysis
    scale = scale_of(ctx, a.outcome)
    in_analysis = set(a.data.labels)
    own = ctx.table[ctx.table["outcome"] == a.outcome.id]
    used = own[own["included"].astype(bool) & own["study"].isin(in_analysis)]
    other = own[~(own["included"].astype(bool) & own["study"].isin(in_analysis)) & (own["form"] != "pooled")]
    other_rows = data_rows(ctx, other, scale)
    for row in other_rows:
        if row["included"]:
            row["reason"] = "not a randomised trial: pooled in the all-designs analysis only"
    sibling = f"{a.outcome.id}--randomised" if a.variant == "all" else a.outcome.id
    biased = a.data.bias_mean is not None or a.data.inflation is not None
    analysis = analysis_view(ctx, a.name)
    assert analysis is not None, "ctx.fits is keyed by analysis name, so this fit is among them"
    return OutcomeView(
        analysis=analysis,
        outcome=a.outcome,
        scale=scale,
        forest=forest,
        data=data_rows(ctx, used, scale),
        other=other_rows,
        edges=[{"id": e, "anchor": f"edge-{e}"} for e in a.outcome.edges],
        sensitivity=sensitivity_view(ctx, a.name),
        sibling=analysis_view(ctx, sibling),
        reviews=review_rows(ctx, a.outcome.id),
        design_bias=design_bias_rows(ctx, a) if biased else [],
        sof=sof,
        rob=rob,
    )


# --------------------------------------------------------------------------- risk of bias

ROB_ORDER = ("low", "some_concerns", "high", "unclear", "not_assessed")
ROB_SYMBOL = {"low": "+", "some_concerns": "−", "high": "×", "unclear": "?", "not_assessed": "·"}


@dataclass(frozen=True)
class RobCell:
    level: str  # one of ROB_ORDER, or "" when the record gives no judgement for the domain
    words: str
    symbol: str


@dataclass(frozen=True)
class RobStudy:
    study: dict[str, Any]
    tool: str
    cells: tuple[RobCell, ...]  # one per domain, then the overall judgement
    weight: float  # share of the analysis's REML weight


@dataclass(frozen=True)
class RobBar:
    domain: str
    parts: tuple[tuple[str, str, float], ...]  # (level, words, percent of the weight)


@dataclass(frozen=True)
class RobFigures:
    """A robvis-style traffic-light table (study x domain) and a summary bar per domain,
    weighted by each study's share of the analysis's REML weight."""

    domains: tuple[str, ...]
    studies: tuple[RobStudy, ...]
    bars: tuple[RobBar, ...]
    tools: tuple[str, ...]


def _cell(level: str | None) -> RobCell:
    if not level:
        return RobCell("", "no judgement recorded", "")
    return RobCell(level, ROB_WORDS.get(level, level), ROB_SYMBOL.get(level, "?"))


def _domain_label(key: str) -> str:
    return key.replace("_", " ", 1).replace("_", " ")


def rob_figures(ctx: Context, fit: AnalysisFit) -> RobFigures | None:
    a = fit.analysis
    rows = a.rows
    if not len(rows):
        return None
    v = [float(x) for x in a.data.vi]
    tau2 = fit.summary.reml.tau2 or 0.0
    raw = [1.0 / (x + tau2) if x > 0 else 0.0 for x in v]
    total = sum(raw) or 1.0
    share = {k: w / total for k, w in zip(a.data.labels, raw, strict=True)}
    records = []
    domains: list[str] = []
    for _, row in rows.iterrows():
        loaded = ctx.base.records.get(row["study"])
        rob = loaded.record.risk_of_bias if loaded else None
        own = dict(rob.domains) if rob else {}
        for d in own:
            if d not in domains:
                domains.append(d)
        records.append((str(row["study"]), rob, own, str(row["rob"])))
    domains = sorted(domains)
    studies = []
    for key, rob, own, overall in records:
        studies.append(
            RobStudy(
                study=study(ctx, key),
                tool=rob.tool if rob else "",
                cells=(*(_cell(own.get(d)) for d in domains), _cell(overall)),
                weight=share.get(key, 0.0),
            )
        )
    bars = []
    for i, name in enumerate([*map(_domain_label, domains), "Overall"]):
        weights: dict[str, float] = {}
        for s in studies:
            level = s.cells[i].level or "not_assessed"
            weights[level] = weights.get(level, 0.0) + s.weight
        bars.append(
            RobBar(
                name,
                tuple(
                    (lv, ROB_WORDS.get(lv, lv), round(100 * weights[lv], 1))
                    for lv in ROB_ORDER
                    if weights.get(lv)
                ),
            )
        )
    return RobFigures(
        domains=tuple(_domain_label(d) for d in domains),
        studies=tuple(studies),
        bars=tuple(bars),
        tools=tuple(sorted({s.tool for s in studies if s.tool})),
    )
