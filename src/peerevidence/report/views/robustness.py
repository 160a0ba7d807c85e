"""An outcome page's robustness section: the synthesis stage's
:class:`~peerevidence.synthesis.robustness.OutcomeRobustness` laid out for people.

Every number shown is read from that object (formatted, never recomputed): the sensitivity
table (main analysis, subsets, leave-one-out, cumulative by year), the influential studies,
the predictive probabilities beside P(benefit), small-study effects under a funnel plot,
subgroup analyses and meta-regression. Only the all-designs analysis has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peerevidence.report.views.common import Context, Scale, _finite, fmt, fmt_interval, fmt_p, scale_of
from peerevidence.stats.summary import Z975

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit
    from peerevidence.report.figures import BubbleData, FunnelData, SubgroupForestData
    from peerevidence.stats.metareg import RegTest
    from peerevidence.synthesis.robustness import OutcomeRobustness, RobustnessRow
    from peerevidence.synthesis.subgroups import ModeratorAnalysis, Skipped, SubgroupAnalysis

MIN_READABLE_K = 10  # below this a funnel plot cannot be read (Cochrane Handbook 13.3.5.4)
GROUPS = (
    ("main", "Main analysis and subsets"),
    ("leave_one_out", "Leave one study out"),
    ("cumulative", "Cumulative, by year of publication"),
)
CHANGES = "⚠ changes the conclusion"


@dataclass(frozen=True)
class RowView:
    label: str
    k: int
    effect: str  # posterior median (95% CrI), natural scale
    p_benefit: str
    reml: str  # REML estimate (95% CI)
    tau2: str
    verdict: str  # the 95% CrI's verdict
    changes: bool


@dataclass(frozen=True)
class RowGroup:
    title: str
    rows: tuple[RowView, ...]


@dataclass(frozen=True)
class SubgroupView:
    moderator: str
    k: int
    groups: tuple[dict[str, str], ...]  # group, k, effect, p_benefit, reml
    differences: tuple[dict[str, str], ...]  # label, effect, p_gt_0, p_abs_gt_mid, reml
    test: str  # the test for subgroup differences
    missing: tuple[str, ...]
    forest: str = ""  # SVG, filled in by the renderer


@dataclass(frozen=True)
class RobustnessView:
    conclusion: str
    mid: str
    p_gt_mid: str
    p_lt_minus_mid: str
    groups: tuple[RowGroup, ...]
    influential: tuple[str, ...]  # study labels
    changed: int  # rows that change the conclusion
    funnel_k: int | None  # None: fewer than 5 studies, no funnel
    funnel_readable: bool
    small_study_lines: tuple[str, ...]
    subgroups: tuple[SubgroupView, ...]
    skipped: tuple[str, ...]  # analyses not run, with why
    moderators: tuple[dict[str, str], ...]  # per coefficient
    moderator_test: str
    notes: tuple[str, ...]
    funnel: str = ""  # SVG, filled in by the renderer
    bubble: str = ""  # SVG of effect against a single numeric moderator, filled in by the renderer
    bubble_caption: str = ""


VERDICT_WORDS = {
    "above 0": "95% CrI above 0",
    "below 0": "95% CrI below 0",
    "includes 0": "95% CrI includes 0",
}


def _verdict(q025: float, q975: float) -> str:
    from peerevidence.synthesis.robustness import verdict

    return VERDICT_WORDS[verdict(q025, q975)]


def _row_label(ctx: Context, r: RobustnessRow) -> str:
    if r.study is None:
        return r.label
    name = ctx.labels.get(r.study, r.study)
    if r.kind == "leave_one_out":
        return f"without {name}"
    if r.kind == "cumulative":
        year = r.label[r.label.rfind("(") :] if r.label.endswith(")") else ""
        return f"up to {name} {year}".rstrip()
    return r.label


def _row(ctx: Context, scale: Scale, r: RobustnessRow) -> RowView:
    return RowView(
        label=_row_label(ctx, r),
        k=r.k,
        effect=scale.text(r.mu_q50, r.mu_q025, r.mu_q975),
        p_benefit=fmt_p(r.p_gt_0),
        reml=scale.text(r.reml_mu, r.reml_ci_lb, r.reml_ci_ub),
        tau2=fmt(r.reml_tau2, 3),
        verdict=_verdict(r.mu_q025, r.mu_q975),
        changes=r.changes_conclusion,
    )


def _test_line(name: str, t: RegTest, predictor: str, limit: bool) -> str:
    stat = f"t = {fmt(t.zval)} on {t.df} df" if t.df is not None else f"z = {fmt(t.zval)}"
    line = f"{name}: {predictor}: {stat}, p = {fmt(t.pval, 3)}"
    if limit:
        line += f"; limit estimate (standard error 0) {fmt(t.est)} (95% CI {fmt_interval(t.ci_lb, t.ci_ub)})"
    return line + "."


def _subgroup(ctx: Context, scale: Scale, s: SubgroupAnalysis) -> SubgroupView:
    groups = tuple(
        {
            "group": g.group,
            "k": str(g.k),
            "effect": scale.text(g.effect.q50, g.effect.q025, g.effect.q975),
            "p_benefit": fmt_p(g.effect.p_gt_0),
            "reml": scale.text(g.effect.reml, g.effect.reml_ci_lb, g.effect.reml_ci_ub),
        }
        for g in s.groups
    )
    diffs = tuple(
        {
            "label": f"{d.group} minus {d.reference}",
            "effect": f"{fmt(d.difference.q50)} ({fmt_interval(d.difference.q025, d.difference.q975)})",
            "p_gt_0": fmt_p(d.difference.p_gt_0),
            "p_abs_gt_mid": fmt_p(d.p_abs_gt_mid),
            "reml": f"{fmt(d.difference.reml)} ({fmt_interval(d.difference.reml_ci_lb, d.difference.reml_ci_ub)})",
        }
        for d in s.differences
    )
    test = (
        f"Test for subgroup differences (REML): QM = {fmt(s.qm)} on {s.qm_df} df, p = {fmt(s.qm_p, 3)}; "
        f"residual τ² = {fmt(s.tau2_residual, 3)}; Bayesian residual τ = {fmt(s.tau_q50)} (posterior median)."
    )
    return SubgroupView(
        moderator=s.moderator,
        k=s.k,
        groups=groups,
        differences=diffs,
        test=test,
        missing=tuple(ctx.labels.get(m, m) for m in s.missing),
    )


def _skipped(ctx: Context, s: Skipped) -> str:
    missing = (
        f" (missing the value: {', '.join(ctx.labels.get(m, m) for m in s.missing)})" if s.missing else ""
    )
    return f"{s.what}: not run, {s.reason}{missing}."


def _moderators(m: ModeratorAnalysis) -> tuple[tuple[dict[str, str], ...], str]:
    rows = tuple(
        {
            "name": c.name,
            "prior": c.prior,
            "effect": f"{fmt(c.value.q50, 3)} ({fmt_interval(c.value.q025, c.value.q975, 3)})",
            "p_gt_0": fmt_p(c.value.p_gt_0),
            "reml": f"{fmt(c.value.reml, 3)} ({fmt_interval(c.value.reml_ci_lb, c.value.reml_ci_ub, 3)})",
            "reml_p": fmt(c.reml_pval, 3),
        }
        for c in m.coefficients
    )
    r2 = f"; R² = {fmt(m.r2, 1)}%" if m.r2 is not None and _finite(m.r2) else ""
    test = (
        f"Meta-regression on {', '.join(m.moderators)} (k = {m.k}): QM = {fmt(m.qm)} on {m.qm_df} df, "
        f"p = {fmt(m.qm_p, 3)}; residual τ² = {fmt(m.tau2_residual, 3)}{r2}."
    )
    return rows, test


def robustness_of(ctx: Context, fit: AnalysisFit) -> OutcomeRobustness | None:
    """The synthesis's robustness object of this analysis (the all-designs one only)."""
    rob = ctx.synthesis.robustness.get(fit.analysis.outcome.id)
    if rob is None or rob.analysis != fit.analysis.name:
        return None
    return rob  # type: ignore[no-any-return]


def robustness_view(ctx: Context, fit: AnalysisFit) -> RobustnessView | None:
    from peerevidence.synthesis.subgroups import ModeratorAnalysis, SubgroupAnalysis

    rob = robustness_of(ctx, fit)
    if rob is None:
        return None
    scale = scale_of(ctx, fit.analysis.outcome)
    groups = []
    for kind, title in GROUPS:
        kinds = {"main", "subset"} if kind == "main" else {kind}
        rows = tuple(_row(ctx, scale, r) for r in rob.rows if r.kind in kinds)
        if rows:
            groups.append(RowGroup(title, rows))
    ss = rob.small_studies
    lines: list[str] = []
    if ss is not None:
        lines.append(
            _test_line("Egger's test", ss.egger, "effect on its standard error, weighted regression", False)
        )
        if ss.peters is not None:
            lines.append(_test_line("Peters' test", ss.peters, "effect on 1/n, weighted regression", False))
        else:
            lines.append(f"Peters' test: not run ({ss.peters_note}).")
        lines.append(_test_line("PET", ss.pet, "meta-regression on the standard error", True))
        lines.append(_test_line("PEESE", ss.peese, "meta-regression on the variance", True))
    subgroups, skipped = [], []
    for s in rob.subgroups:
        if isinstance(s, SubgroupAnalysis):
            subgroups.append(_subgroup(ctx, scale, s))
        else:
            skipped.append(_skipped(ctx, s))
    mod_rows: tuple[dict[str, str], ...] = ()
    mod_test = ""
    if isinstance(rob.moderators, ModeratorAnalysis):
        mod_rows, mod_test = _moderators(rob.moderators)
    elif rob.moderators is not None:
        skipped.append(_skipped(ctx, rob.moderators))
    return RobustnessView(
        conclusion=VERDICT_WORDS.get(rob.conclusion, rob.conclusion),
        mid=fmt(rob.predictive.mid),
        p_gt_mid=fmt_p(rob.predictive.p_gt_mid),
        p_lt_minus_mid=fmt_p(rob.predictive.p_lt_minus_mid),
        groups=tuple(groups),
        influential=tuple(ctx.labels.get(s, s) for s in rob.influential),
        changed=sum(r.changes_conclusion for r in rob.rows),
        funnel_k=ss.k if ss is not None else None,
        funnel_readable=ss is not None and ss.k >= MIN_READABLE_K,
        small_study_lines=tuple(lines),
        subgroups=tuple(subgroups),
        skipped=tuple(skipped),
        moderators=mod_rows,
        moderator_test=mod_test,
        notes=rob.notes,
    )


# --------------------------------------------------------------------------- figure data


def funnel_data(ctx: Context, fit: AnalysisFit) -> FunnelData | None:
    """The funnel plot's points (from the small-study object), None when k < 5."""
    from peerevidence.report.figures import FunnelData, FunnelPoint

    rob = robustness_of(ctx, fit)
    if rob is None or rob.small_studies is None:
        return None
    scale = scale_of(ctx, fit.analysis.outcome)
    main = rob.rows[0]
    return FunnelData(
        title=f"Funnel plot: {fit.analysis.outcome.label}",
        axis_label="Harmonised scale: " + scale.harmonised_name,
        points=tuple(
            FunnelPoint(ctx.labels.get(p.study, p.study), p.yi, p.sei) for p in rob.small_studies.funnel
        ),
        pooled=main.mu_q50,
    )


def subgroup_forest_data(
    ctx: Context, fit: AnalysisFit, s: SubgroupAnalysis, test: str
) -> SubgroupForestData:
    """Studies grouped by subgroup (the data the model sees), a diamond per subgroup."""
    from peerevidence.report.figures import SubgroupBlock, SubgroupForestData, SubgroupStudy

    scale = scale_of(ctx, fit.analysis.outcome)
    y, v = fit.analysis.data.adjusted()
    by_study: dict[str, tuple[float, float]] = {
        str(k): (float(a), float(b)) for k, a, b in zip(fit.analysis.rows["study"], y, v, strict=True)
    }
    blocks = []
    for g in s.groups:
        studies = []
        for key in g.studies:
            yi, vi = by_study.get(key, (math.nan, math.nan))
            se = math.sqrt(vi) if _finite(vi) and vi > 0 else math.nan
            studies.append(SubgroupStudy(ctx.labels.get(key, key), yi, yi - Z975 * se, yi + Z975 * se))
        e = g.effect
        blocks.append(
            SubgroupBlock(
                f"{s.moderator}: {g.group} (k = {g.k})",
                tuple(studies),
                (e.q50, e.q025, e.q975),
                scale.text(e.q50, e.q025, e.q975),
            )
        )
    return SubgroupForestData(
        title=f"Subgroups by {s.moderator}: {fit.analysis.outcome.label}",
        axis_label="Harmonised scale: " + scale.harmonised_name,
        blocks=tuple(blocks),
        test=test,
    )


def bubble_data(ctx: Context, fit: AnalysisFit, m: ModeratorAnalysis) -> BubbleData | None:
    """The bubble plot of a meta-regression on one numeric moderator (None otherwise)."""
    from peerevidence.report.figures import BubbleData

    if m.intercept is None or not m.points or len(m.coefficients) != 1:
        return None
    scale = scale_of(ctx, fit.analysis.outcome)
    slope = m.coefficients[0]
    labels = {str(k): ctx.labels.get(str(k), str(k)) for k, _, _, _ in m.points}
    return BubbleData(
        title=f"Meta-regression on {m.moderators[0]}: {fit.analysis.outcome.label}",
        x_label=m.moderators[0],
        axis_label="Harmonised scale: " + scale.harmonised_name,
        points=tuple((labels[s], x, y, v) for s, x, y, v in m.points),
        line=(m.intercept.q50, slope.value.q50),
        reml_line=(m.intercept.reml, slope.value.reml),
        note=(
            f"Bubble area by inverse variance (k = {m.k}). Slope per unit: posterior median "
            f"{fmt(slope.value.q50, 3)} ({fmt_interval(slope.value.q025, slope.value.q975, 3)}); "
            f"REML {fmt(slope.value.reml, 3)}."
        ),
    )
