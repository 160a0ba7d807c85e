"""Robustness figures as inline SVG (matplotlib, Agg backend), deterministic like
:mod:`peerevidence.report.forest`:

* :func:`funnel_svg` — a contour-enhanced funnel plot (Peters et al. 2008): each study's
  effect against its standard error (0 at the top), with the regions where a study's own
  two-sided p value around 0 would be above 0.10, 0.10 to 0.05, 0.05 to 0.01 and below 0.01
  shaded, and the pooled effect as a dashed line;
* :func:`subgroup_forest_svg` — studies grouped by subgroup, a diamond per subgroup (the
  exact posterior median and 95% CrI of the subgroup's effect).

Every number drawn comes from the view (:mod:`peerevidence.report.views.robustness`), which
takes it from the synthesis stage's objects; nothing is recomputed here except the contour
lines, which are the closed form |y| = z(p) * SE.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from peerevidence.report.forest import _finite, clean_matplotlib_svg, split_label

SALT = "peerevidence-figures"
# two-sided p thresholds of the contours and the matching normal quantiles
CONTOURS = ((0.10, 1.6448536269514722), (0.05, 1.959963984540054), (0.01, 2.5758293035489004))
# lightest (p > 0.10) to darkest (p < 0.01); the regions are also named in the legend
SHADES = ("#ffffff", "#d9d9d9", "#b0b0b0", "#858585")


@dataclass(frozen=True)
class FunnelPoint:
    label: str
    yi: float
    sei: float


@dataclass(frozen=True)
class FunnelData:
    title: str
    axis_label: str
    points: Sequence[FunnelPoint]
    pooled: float | None  # the main analysis's posterior median, on the same axis


def _rc() -> Any:  # a dict of matplotlib rc keys (its stubs type them as a Literal union)
    return {
        "svg.hashsalt": SALT,
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.unicode_minus": True,
    }


def _save(fig: object) -> str:
    from matplotlib import pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return clean_matplotlib_svg(buf.getvalue())


def funnel_svg(data: FunnelData) -> str:
    """The contour-enhanced funnel plot as an SVG string (no XML prolog), deterministic."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    pts = [p for p in data.points if _finite(p.yi, p.sei) and p.sei > 0]
    se_max = max((p.sei for p in pts), default=1.0) * 1.1
    z_out = CONTOURS[-1][1]
    reach = max([abs(p.yi) for p in pts] + [z_out * se_max]) * 1.05
    with plt.rc_context(_rc()):
        fig = plt.figure(figsize=(6.4, 4.8))
        ax = fig.add_axes((0.12, 0.25, 0.84, 0.68))
        ax.set_xlim(-reach, reach)
        ax.set_ylim(se_max, 0.0)  # SE 0 at the top
        # shade from the outside in: p < 0.01 everywhere, then lighter bands inside
        ax.fill_between([-reach, reach], 0, se_max, color=SHADES[3], lw=0, zorder=0)
        for (_, z), shade in zip(reversed(CONTOURS), reversed(SHADES[:3]), strict=True):
            ax.fill([0.0, z * se_max, -z * se_max], [0.0, se_max, se_max], color=shade, lw=0, zorder=1)
        ax.axvline(0.0, color="#333333", lw=0.8, zorder=2)
        if data.pooled is not None and _finite(data.pooled):
            ax.axvline(data.pooled, color="#b5402a", lw=1.1, ls="--", zorder=2)
        ax.scatter(
            [p.yi for p in pts], [p.sei for p in pts], s=26, color="#1f1f1f",
            edgecolor="white", linewidth=0.6, zorder=4,
        )  # fmt: skip
        ax.set_xlabel(data.axis_label, parse_math=False)
        ax.set_ylabel("Standard error", parse_math=False)
        ax.tick_params(labelsize=8)
        handles = [
            Patch(facecolor=SHADES[0], edgecolor="#999999", label="p > 0.10"),
            Patch(facecolor=SHADES[1], edgecolor="#999999", label="0.10 > p > 0.05"),
            Patch(facecolor=SHADES[2], edgecolor="#999999", label="0.05 > p > 0.01"),
            Patch(facecolor=SHADES[3], edgecolor="#999999", label="p < 0.01"),
        ]
        fig.legend(
            handles=handles, loc="lower left", ncol=4, fontsize=7.5, frameon=False, bbox_to_anchor=(0.1, 0.0)
        )
        fig.text(
            0.12, 0.075, "Solid line: no effect (0). Dashed line: pooled effect.",
            fontsize=7.5, color="#333333", parse_math=False,
        )  # fmt: skip
        return _save(fig)


@dataclass(frozen=True)
class SubgroupStudy:
    label: str
    yi: float
    lo: float
    hi: float


@dataclass(frozen=True)
class SubgroupBlock:
    group: str
    studies: Sequence[SubgroupStudy]
    effect: tuple[float, float, float]  # posterior median, 2.5%, 97.5%
    text: str  # the diamond's numbers as printed


@dataclass(frozen=True)
class SubgroupForestData:
    title: str
    axis_label: str
    blocks: Sequence[SubgroupBlock]
    test: str  # the test for subgroup differences, written under the plot


def subgroup_forest_svg(data: SubgroupForestData) -> str:
    """Studies grouped by subgroup, a diamond per subgroup; deterministic SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    lines = sum(len(b.studies) + 2 for b in data.blocks)
    fig_h = 1.3 + 0.22 * lines
    values = [0.0]
    for b in data.blocks:
        values += [v for s in b.studies for v in (s.lo, s.hi) if _finite(v)]
        values += [v for v in b.effect if _finite(v)]
    lo, hi = min(values), max(values)
    pad = 0.08 * (hi - lo or 1.0)
    with plt.rc_context(_rc()):
        fig = plt.figure(figsize=(8.0, fig_h))
        bottom, top = 0.85 / fig_h, 1 - 0.15 / fig_h
        ax = fig.add_axes((0.36, bottom, 0.34, top - bottom))
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-0.8, lines)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.axvline(0.0, color="#555555", lw=0.9, ls="--", zorder=1)
        ax.set_xlabel(data.axis_label, fontsize=8, parse_math=False)
        ax.tick_params(axis="x", labelsize=8)
        tf = blended_transform_factory(fig.transFigure, ax.transData)

        def text(x: float, y: float, s: str, **kw: object) -> None:
            fig.text(x, y, s, transform=tf, va="center", parse_math=False, **kw)  # type: ignore[arg-type]

        y = lines - 0.5
        for b in data.blocks:
            text(0.015, y, split_label(b.group, 40)[0], fontweight="bold", fontsize=8.5)
            y -= 1
            for s in b.studies:
                text(0.03, y, split_label(s.label, 38)[0], fontsize=8)
                if _finite(s.lo, s.hi):
                    ax.plot([s.lo, s.hi], [y, y], color="#1f1f1f", lw=1.0, zorder=3)
                if _finite(s.yi):
                    ax.scatter([s.yi], [y], s=18, marker="s", color="#1f1f1f", zorder=4)
                y -= 1
            med, plo, phi = b.effect
            if _finite(med, plo, phi):
                ax.fill(
                    [plo, med, phi, med], [y, y + 0.4, y, y - 0.4],
                    color="#b5402a", zorder=5, linewidth=0,
                )  # fmt: skip
            text(0.03, y, "Subgroup effect (95% CrI)", fontsize=8, fontstyle="italic")
            text(0.72, y, b.text, fontsize=8, fontweight="bold")
            y -= 1
        fig.text(0.015, 0.12 / fig_h, data.test, fontsize=7.5, color="#333333", parse_math=False)
        return _save(fig)


@dataclass(frozen=True)
class BubbleData:
    """Effect against a numeric moderator: one bubble per study (area by inverse variance),
    the posterior-median regression line and the REML line."""

    title: str
    x_label: str
    axis_label: str
    points: tuple[tuple[str, float, float, float], ...]  # (study, x, yi, vi)
    line: tuple[float, float]  # posterior medians (intercept, slope)
    reml_line: tuple[float, float]
    note: str


def bubble_svg(data: BubbleData) -> str:
    """Bubble plot of a meta-regression on one numeric moderator; deterministic SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    xs = [p[1] for p in data.points]
    ys = [p[2] for p in data.points]
    w = [1.0 / p[3] if p[3] > 0 else 0.0 for p in data.points]
    wmax = max(w) if w else 1.0
    with plt.rc_context(_rc()):
        fig = plt.figure(figsize=(7.0, 4.2))
        ax = fig.add_axes((0.11, 0.2, 0.86, 0.72))
        ax.axhline(0.0, color="#555555", lw=0.9, ls="--", zorder=1)
        ax.scatter(
            xs, ys, s=[20 + 380 * wi / wmax for wi in w], facecolor="#9ecae1", edgecolor="#1f4e79",
            linewidth=0.8, alpha=0.85, zorder=3,
        )  # fmt: skip
        lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
        grid = [lo, hi]
        a, b = data.line
        ax.plot(grid, [a + b * x for x in grid], color="#b5402a", lw=1.6, zorder=4, label="posterior median")
        ra, rb = data.reml_line
        ax.plot(grid, [ra + rb * x for x in grid], color="#333333", lw=1.0, ls=":", zorder=4, label="REML")
        ax.set_xlabel(data.x_label, fontsize=8, parse_math=False)
        ax.set_ylabel(data.axis_label, fontsize=8, parse_math=False)
        ax.tick_params(labelsize=8)
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
        ax.legend(fontsize=7.5, frameon=False, loc="best")
        fig.text(0.015, 0.03, data.note, fontsize=7.5, color="#333333", parse_math=False)
        return _save(fig)
