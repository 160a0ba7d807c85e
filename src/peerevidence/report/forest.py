"""Forest plots as inline SVG (matplotlib, Agg backend), byte-for-byte deterministic.

The plot is drawn on the harmonised scale (positive = benefit of peer support, or = the
direction the change model predicts). For ratio outcomes a second axis along the top
shows the natural scale (OR/RR/HR, intervention vs control or exposed vs not), and the
right-hand column gives every interval on that natural scale.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from peerevidence.report.diagram import check_svg

SALT = "peerevidence-forest"
COLOURS = {"observed": "#1f1f1f", "shrunken": "#3a78b5", "pooled": "#b5402a", "pi": "#d98e7e"}


@dataclass(frozen=True)
class ForestRow:
    label: str
    design: str
    n: str
    rob: str
    yi: float
    lo: float
    hi: float
    weight: float  # relative marker area, 0..1
    theta: float | None = None  # posterior mean of the study's own effect (shrunken)
    theta_lo: float | None = None
    theta_hi: float | None = None
    text: str = ""  # right-hand column: estimate [95% interval], natural scale


@dataclass(frozen=True)
class ForestData:
    title: str
    axis_label: str  # harmonised scale, e.g. "SMD (positive = benefit of peer support)"
    rows: Sequence[ForestRow]
    pooled: tuple[float, float, float] | None  # median, 2.5%, 97.5%
    pooled_text: str = ""
    pi: tuple[float, float] | None = None
    pi_text: str = ""
    natural: Callable[[float], float] | None = None  # harmonised -> natural (ratio outcomes)
    natural_label: str = ""
    right_header: str = "Estimate [95% interval]"
    left_note: str = "favours control"
    right_note: str = "favours peer support"


def _finite(*xs: float | None) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


LABEL_CHARS = 28  # what fits the Study column (0.2 of a 10-inch figure) at 8.5 pt


def _split_label(label: str, width: int = LABEL_CHARS) -> tuple[str, str]:
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
        values += [v for v in (r.lo, r.hi, r.theta_lo, r.theta_hi) if _finite(v)]
    if data.pooled:
        values += [v for v in data.pooled if _finite(v)]
    if data.pi:
        values += [v for v in data.pi if _finite(v)]
    lo, hi = min(values), max(values)
    pad = 0.08 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def _natural_ticks(natural: Callable[[float], float], lo: float, hi: float) -> list[tuple[float, str]]:
    """Positions (harmonised scale) and labels of round ratio values within the axis."""
    candidates = [0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 10, 20]
    sign = 1.0 if natural(1.0) > natural(0.0) else -1.0
    ticks = []
    for r in candidates:
        x = sign * math.log(r)
        if lo <= x <= hi:
            ticks.append((x, f"{r:g}"))
    if len(ticks) > 7:
        keep = {"0.1", "0.25", "0.5", "1", "2", "4", "10"}
        ticks = [t for t in ticks if t[1] in keep]
    return ticks


def forest_svg(data: ForestData) -> str:
    """The forest plot as an SVG string (no XML prolog), deterministic."""
    n = len(data.rows)
    extra_rows = (1 if data.pooled else 0) + (1 if data.pi else 0)
    height_rows = n * 2 + extra_rows + 2  # each study: observed + shrunken lines
    row_h = 0.19
    top_in = 0.75 if data.natural else 0.3
    fig_h = top_in + 0.75 + row_h * height_rows
    fig_w = 10.0
    # imported here: pyplot costs half a second, and cached plots never need it
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    with plt.rc_context(
        {
            "svg.hashsalt": SALT,
            "svg.fonttype": "none",
            "font.family": "DejaVu Sans",
            "font.size": 8.5,
            "axes.unicode_minus": True,
        }
    ):
        fig = plt.figure(figsize=(fig_w, fig_h))
        bottom = 0.62 / fig_h
        top = 1 - top_in / fig_h
        ax = fig.add_axes((0.40, bottom, 0.30, top - bottom))
        lo, hi = _limits(data)
        ax.set_xlim(lo, hi)
        ymax = height_rows - 1
        ax.set_ylim(-0.8, ymax + 0.7)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.axvline(0.0, color="#555555", lw=0.9, ls="--", zorder=1)
        ax.set_xlabel(data.axis_label, fontsize=8.5, parse_math=False)
        ax.tick_params(axis="x", labelsize=8)
        text_tf = blended_transform_factory(fig.transFigure, ax.transData)

        def text(x: float, y: float, s: str, **kw) -> None:
            fig.text(x, y, s, transform=text_tf, va="center", parse_math=False, **kw)

        header_y = ymax
        for x, s in ((0.015, "Study"), (0.215, "Design"), (0.29, "n"), (0.33, "Risk of bias")):
            text(x, header_y, s, fontweight="bold", fontsize=8.5)
        text(0.715, header_y, data.right_header, fontweight="bold", fontsize=8.5)

        y = ymax - 1.2
        for r in data.rows:
            first, rest = _split_label(r.label)
            text(0.015, y, first, fontsize=8.5)
            if rest:  # continues on the shrunken-estimate line, clear of the Design column
                text(0.015, y - 0.7, rest, fontsize=8.5)
            text(0.215, y, r.design, fontsize=8)
            text(0.29, y, r.n, fontsize=8)
            text(0.33, y, r.rob, fontsize=8)
            text(0.715, y, r.text, fontsize=8)
            if _finite(r.lo, r.hi):
                ax.plot([r.lo, r.hi], [y, y], color=COLOURS["observed"], lw=1.1, zorder=3)
            if _finite(r.yi):
                size = 14 + 70 * max(0.0, min(1.0, r.weight))
                ax.scatter([r.yi], [y], s=size, marker="s", color=COLOURS["observed"], zorder=4)
            if _finite(r.theta, r.theta_lo, r.theta_hi):
                ys = y - 0.7
                ax.plot([r.theta_lo, r.theta_hi], [ys, ys], color=COLOURS["shrunken"], lw=0.9, zorder=3)
                ax.scatter(
                    [r.theta], [ys], s=16, marker="o", facecolor="white",
                    edgecolor=COLOURS["shrunken"], linewidth=1.0, zorder=4,
                )  # fmt: skip
            y -= 2
        if data.pooled and _finite(*data.pooled):
            med, plo, phi = data.pooled
            ax.fill(
                [plo, med, phi, med], [y, y + 0.45, y, y - 0.45],
                color=COLOURS["pooled"], zorder=5, linewidth=0,
            )  # fmt: skip
            text(0.015, y, "Pooled effect (posterior median, 95% CrI)", fontweight="bold", fontsize=8.5)
            text(0.715, y, data.pooled_text, fontweight="bold", fontsize=8)
            y -= 1
        if data.pi and _finite(*data.pi):
            ax.plot(list(data.pi), [y, y], color=COLOURS["pi"], lw=3.2, solid_capstyle="butt", zorder=4)
            text(0.015, y, "95% prediction interval (a new study's effect)", fontsize=8.5)
            text(0.715, y, data.pi_text, fontsize=8)
            y -= 1
        # direction notes under the axis
        ax.text(0.0, -0.9, "← " + data.left_note, transform=ax.get_xaxis_transform(), ha="right",
                va="top", fontsize=7.5, color="#555555", parse_math=False)  # fmt: skip
        ax.text(0.0, -0.9, "  " + data.right_note + " →", transform=ax.get_xaxis_transform(),
                ha="left", va="top", fontsize=7.5, color="#555555", parse_math=False)  # fmt: skip
        if data.natural:
            top_ax = ax.twiny()
            top_ax.set_xlim(ax.get_xlim())
            ticks = _natural_ticks(data.natural, lo, hi)
            top_ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks])
            top_ax.tick_params(axis="x", labelsize=8)
            top_ax.set_xlabel(data.natural_label, fontsize=8.5, parse_math=False)
            for side in ("left", "right", "bottom"):
                top_ax.spines[side].set_visible(False)
        # legend, in figure coordinates at the bottom left
        legend = [
            ("■", COLOURS["observed"], "observed effect and 95% CI"),
            ("○", COLOURS["shrunken"], "study's shrunken estimate (posterior mean, 95% CrI)"),
            ("◆", COLOURS["pooled"], "pooled effect"),
            ("▬", COLOURS["pi"], "prediction interval"),
        ]
        lx = 0.015
        for mark, colour, words in legend:
            fig.text(lx, 0.12 / fig_h, mark, color=colour, fontsize=8.5, parse_math=False)
            fig.text(lx + 0.015, 0.12 / fig_h, words, fontsize=7.5, color="#333333", parse_math=False)
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
