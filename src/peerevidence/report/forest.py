"""Forest plots as inline SVG (matplotlib, Agg backend), byte-for-byte deterministic.

RevMan's conventions: study, design, arm data (events/total or mean (SD) n) where the data
are arm-level, risk of bias, weight (%), the plot, and every estimate with its interval.
Continuous outcomes are drawn on the harmonised scale (positive = benefit); ratio outcomes
on a log axis labelled with the ratio, increasing left to right (so which side is better
follows the outcome's direction). Under the axis "Favours <comparator> | Favours
<intervention>" in the project's own words; under the pooled diamond the prediction
interval and the heterogeneity line (τ², I² and the REML estimate).

Determinism: a fixed ``svg.hashsalt`` (the ids of clip paths), no date in the metadata,
text kept as text (``svg.fonttype = none``) and the metadata block, XML prolog and
comments stripped. Every text is drawn with ``parse_math=False`` (a ``$`` in a BibTeX
name is not TeX) and escaped by matplotlib's SVG writer; :func:`diagram.check_svg`
checks the result before it is embedded.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from peerevidence.report.diagram import check_svg

SALT = "peerevidence-forest"
COLOURS = {"observed": "#1f1f1f", "shrunken": "#3a78b5", "pooled": "#b5402a", "pi": "#d98e7e"}


@dataclass(frozen=True)
class ForestRow:
    label: str
    design: str
    n: str
    rob: str
    yi: float | None  # None (or not finite): no marker is drawn
    lo: float | None
    hi: float | None
    weight: float  # relative marker area, 0..1
    theta: float | None = None  # posterior mean of the study's own effect (shrunken)
    theta_lo: float | None = None
    theta_hi: float | None = None
    text: str = ""  # right-hand column: estimate [95% interval], natural scale
    weight_pct: str = ""  # REML random-effects weight, e.g. "23.4%"
    arm_i: str = ""  # intervention arm: "12/60" or "33.1 (5.2) 58"
    arm_c: str = ""  # comparator arm


@dataclass(frozen=True)
class ForestData:
    title: str
    axis_label: str  # e.g. "SMD (positive favours the intervention)" or the ratio's description
    rows: Sequence[ForestRow]
    pooled: tuple[float | None, float | None, float | None] | None  # median, 2.5%, 97.5%
    pooled_text: str = ""
    pi: tuple[float | None, float | None] | None = None
    pi_text: str = ""
    ratio_axis: bool = False  # x values are log ratios: ticks labelled with the ratio
    natural_label: str = ""
    right_header: str = "Estimate [95% interval]"
    left_note: str = "Favours control"
    right_note: str = "Favours the intervention"
    heterogeneity: str = ""  # the line under the diamond
    arms: bool = False  # show the two arm-data columns
    arm_headers: tuple[str, str] = ("Intervention", "Control")
    arm_units: str = ""  # "Events/total" or "Mean (SD) n"


def _finite(*xs: float | None) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def _finite_values(*xs: float | None) -> list[float] | None:
    """The values as a list when every one is a finite number (see :func:`_finite`), else None."""
    out = [x for x in xs if x is not None and math.isfinite(x)]
    return out if len(out) == len(xs) else None


LABEL_CHARS = 28  # what fits the Study column (0.2 of a 10-inch figure) at 8.5 pt


def split_label(label: str, width: int = LABEL_CHARS) -> tuple[str, str]:
    """A study label on at most two lines of ``width`` characters: cut at the last space that
    fits (or mid-word when none does); a second line still too long ends in an ellipsis."""
    if len(label) <= width:
        return label, ""
    cut = label.rfind(" ", 0, width + 1)
    first, rest = (label[:cut], label[cut + 1 :]) if cut > 0 else (label[:width], label[width:])
    if len(rest) > width:
        rest = rest[: width - 1] + "\u2026"
    return first, rest


def _limits(data: ForestData) -> tuple[float, float]:
    values = [0.0]
    for r in data.rows:
        values += [v for v in (r.lo, r.hi, r.theta_lo, r.theta_hi) if v is not None and _finite(v)]
    if data.pooled:
        values += [v for v in data.pooled if v is not None and _finite(v)]
    if data.pi:
        values += [v for v in data.pi if v is not None and _finite(v)]
    lo, hi = min(values), max(values)
    pad = 0.08 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def _ratio_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    """Positions (log scale) and labels of round ratio values within the axis."""
    candidates = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 10, 20, 50, 100]
    ticks = []
    for r in candidates:
        x = math.log(r)
        if lo <= x <= hi:
            ticks.append((x, f"{r:g}"))
    # keep ticks at least a tenth of the axis apart, always keeping 1 (no effect)
    gap = 0.1 * (hi - lo)
    kept: list[tuple[float, str]] = [t for t in ticks if t[1] == "1"]
    for t in sorted(ticks, key=lambda t: (t[1] not in {"0.1", "0.5", "2", "10"}, abs(t[0]))):
        if all(abs(t[0] - k[0]) >= gap for k in kept):
            kept.append(t)
    return sorted(kept)


# Columns, as fractions of the figure width (the Study column is 0.015 to 0.215 of a
# 10-inch figure: LABEL_CHARS characters at 8.5 pt fit it).
FIG_W = 10.0
COL_STUDY, COL_DESIGN = 0.015, 0.215
COL_ARM_I, COL_ARM_C = 0.272, 0.368
COL_N = 0.29
COL_ROB_ARMS, COL_ROB = 0.462, 0.335
COL_WEIGHT_ARMS, COL_WEIGHT = 0.55, 0.425
AXIS_ARMS, AXIS = (0.61, 0.18), (0.49, 0.235)
COL_TEXT_ARMS, COL_TEXT = 0.80, 0.735


def forest_svg(data: ForestData) -> str:
    """The forest plot as an SVG string (no XML prolog), deterministic."""
    n = len(data.rows)
    extra_rows = (1 if data.pooled else 0) + (1 if data.pi else 0) + (1 if data.heterogeneity else 0)
    height_rows = n * 2 + extra_rows + 3  # each study: observed + shrunken lines; two header lines
    row_h = 0.19
    top_in = 0.3
    fig_h = top_in + 0.95 + row_h * height_rows
    # imported here: pyplot costs half a second, and cached plots never need it
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    arms = data.arms
    axis_x, axis_w = AXIS_ARMS if arms else AXIS
    col_rob = COL_ROB_ARMS if arms else COL_ROB
    col_weight = COL_WEIGHT_ARMS if arms else COL_WEIGHT
    col_text = COL_TEXT_ARMS if arms else COL_TEXT
    with plt.rc_context(
        {
            "svg.hashsalt": SALT,
            "svg.fonttype": "none",
            "font.family": "DejaVu Sans",
            "font.size": 8.5,
            "axes.unicode_minus": True,
        }
    ):
        fig = plt.figure(figsize=(FIG_W, fig_h))
        bottom = 0.82 / fig_h
        top = 1 - top_in / fig_h
        ax = fig.add_axes((axis_x, bottom, axis_w, top - bottom))
        lo, hi = _limits(data)
        ax.set_xlim(lo, hi)
        ymax = height_rows - 1
        ax.set_ylim(-0.8, ymax + 0.7)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.axvline(0.0, color="#555555", lw=0.9, ls="--", zorder=1)
        ax.set_xlabel(
            data.natural_label if data.ratio_axis else data.axis_label, fontsize=8, parse_math=False
        )
        ax.tick_params(axis="x", labelsize=8)
        if data.ratio_axis:
            ticks = _ratio_ticks(lo, hi)
            ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks])
        text_tf = blended_transform_factory(fig.transFigure, ax.transData)

        def text(x: float, y: float, s: str, **kw: Any) -> None:
            fig.text(x, y, s, transform=text_tf, va="center", parse_math=False, **kw)

        header_y = ymax
        heads = [
            (COL_STUDY, "Study"),
            (COL_DESIGN, "Design"),
            (col_rob, "Risk of bias"),
            (col_weight, "Weight"),
        ]
        if arms:
            for x, words in ((COL_ARM_I, data.arm_headers[0]), (COL_ARM_C, data.arm_headers[1])):
                first, rest = split_label(words, 13)
                text(x, header_y, first, fontweight="bold", fontsize=7.5)
                if rest:
                    text(x, header_y - 0.7, rest, fontweight="bold", fontsize=7.5)
            text(COL_ARM_I, header_y - 1.4, data.arm_units, fontsize=7, color="#444444")
        else:
            heads.append((COL_N, "n"))
        for x, s in heads:
            text(x, header_y, s, fontweight="bold", fontsize=8.5)
        text(col_text, header_y, data.right_header, fontweight="bold", fontsize=8.5)

        y = ymax - 2.2
        for r in data.rows:
            first, rest = split_label(r.label)
            text(COL_STUDY, y, first, fontsize=8.5)
            if rest:  # continues on the shrunken-estimate line, clear of the Design column
                text(COL_STUDY, y - 0.7, rest, fontsize=8.5)
            text(COL_DESIGN, y, r.design, fontsize=8)
            if arms:
                text(COL_ARM_I, y, r.arm_i, fontsize=7)
                text(COL_ARM_C, y, r.arm_c, fontsize=7)
            else:
                text(COL_N, y, r.n, fontsize=8)
            text(col_rob, y, r.rob, fontsize=8)
            text(col_weight, y, r.weight_pct, fontsize=8)
            text(col_text, y, r.text, fontsize=8)
            if (interval := _finite_values(r.lo, r.hi)) is not None:
                ax.plot(interval, [y, y], color=COLOURS["observed"], lw=1.1, zorder=3)
            if (point := _finite_values(r.yi)) is not None:
                size = 14 + 70 * max(0.0, min(1.0, r.weight))
                ax.scatter(point, [y], s=size, marker="s", color=COLOURS["observed"], zorder=4)
            if (shrunk := _finite_values(r.theta, r.theta_lo, r.theta_hi)) is not None:
                ys = y - 0.7
                ax.plot(shrunk[1:], [ys, ys], color=COLOURS["shrunken"], lw=0.9, zorder=3)
                ax.scatter(
                    shrunk[:1], [ys], s=16, marker="o", facecolor="white",
                    edgecolor=COLOURS["shrunken"], linewidth=1.0, zorder=4,
                )  # fmt: skip
            y -= 2
        if data.pooled and _finite(*data.pooled):
            med, plo, phi = data.pooled
            ax.fill(
                [plo, med, phi, med], [y, y + 0.45, y, y - 0.45],
                color=COLOURS["pooled"], zorder=5, linewidth=0,
            )  # fmt: skip
            text(COL_STUDY, y, "Pooled effect (posterior median, 95% CrI)", fontweight="bold", fontsize=8.5)
            text(col_weight, y, "100%", fontweight="bold", fontsize=8)
            text(col_text, y, data.pooled_text, fontweight="bold", fontsize=8)
            y -= 1
        if data.pi and (pi := _finite_values(*data.pi)) is not None:
            ax.plot(pi, [y, y], color=COLOURS["pi"], lw=3.2, solid_capstyle="butt", zorder=4)
            text(COL_STUDY, y, "95% prediction interval (a new study's effect)", fontsize=8.5)
            text(col_text, y, data.pi_text, fontsize=8)
            y -= 1
        if data.heterogeneity:
            text(COL_STUDY, y, data.heterogeneity, fontsize=7.5, color="#333333")
            y -= 1
        # direction notes under the axis label, either side of the line of no effect, in the
        # project's words
        note_tf = blended_transform_factory(ax.transData, ax.transAxes)
        for words, ha in ((data.left_note + " \u2190", "right"), ("\u2192 " + data.right_note, "left")):
            ax.annotate(
                words, xy=(0.0, 0.0), xycoords=note_tf, xytext=(-4 if ha == "right" else 4, -36),
                textcoords="offset points", ha=ha, va="top", fontsize=7.5, color="#333333",
                annotation_clip=False,
            )  # fmt: skip
        # legend, in figure coordinates at the bottom left
        legend = [
            ("■", COLOURS["observed"], "observed effect and 95% CI"),
            ("○", COLOURS["shrunken"], "study's shrunken estimate (posterior mean, 95% CrI)"),
            ("◆", COLOURS["pooled"], "pooled effect"),
            ("▬", COLOURS["pi"], "prediction interval"),
        ]
        lx = 0.015
        for mark, colour, words in legend:
            fig.text(lx, 0.08 / fig_h, mark, color=colour, fontsize=8.5, parse_math=False)
            fig.text(lx + 0.015, 0.08 / fig_h, words, fontsize=7.5, color="#333333", parse_math=False)
            lx += 0.03 + 0.0068 * len(words)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return clean_matplotlib_svg(buf.getvalue())


_STRIP = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->|<metadata>.*?</metadata>", re.S)


def clean_matplotlib_svg(svg: str) -> str:
    svg = _STRIP.sub("", svg)
    svg = "\n".join(line.rstrip() for line in svg.strip().splitlines() if line.strip()) + "\n"
    check_svg(svg)
    return svg
