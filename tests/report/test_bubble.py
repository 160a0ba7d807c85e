"""The bubble plot of a meta-regression on one numeric moderator: its data come from the
synthesis (not recomputed), the SVG is safe to embed, and the outcome page shows it."""

from __future__ import annotations

import pytest

from peerevidence.report.diagram import check_svg
from peerevidence.report.figures import BubbleData, bubble_svg


def test_bubble_svg_is_deterministic_and_safe():
    data = BubbleData(
        title="t",
        x_label="latitude",
        axis_label="log RR",
        points=(("a <b>", 13.0, 0.1, 0.04), ("b", 44.0, -0.7, 0.3), ("c", 55.0, -1.5, 0.2)),
        line=(0.25, -0.03),
        reml_line=(0.26, -0.029),
        note="k = 3",
    )
    svg = bubble_svg(data)
    check_svg(svg)
    assert svg == bubble_svg(data) and svg.startswith("<svg")


@pytest.mark.slow
def test_outcome_page_shows_the_bubble_plot_of_a_numeric_moderator(tmp_path):
    from peerevidence.report.render import render
    from peerevidence.synthesis import synthesise
    from peerevidence.synthesis.subgroups import ModeratorAnalysis
    from projectkit import exact_result
    from synthesis.test_robustness import bcg_studies, build  # the BCG trials with covariates

    root = build(tmp_path, bcg_studies(), "  hope: {mid: 0.2, moderators: [ablat]}\n")
    result = exact_result(root)
    synthesis = synthesise(result)
    rob = next(iter(synthesis.robustness.values()))
    assert isinstance(rob.moderators, ModeratorAnalysis) and rob.moderators.intercept is not None
    assert len(rob.moderators.points) == rob.moderators.k
    render(result, synthesis)
    page = (root / "reports" / "outcomes" / f"{rob.analysis}.html").read_text("utf-8")
    assert "Bubble plot" in page and page.count("<svg") >= 2
    from peerevidence.report.views.common import fmt

    slope = rob.moderators.coefficients[0].value
    assert f"posterior median {fmt(slope.q50, 3)}" in page  # the synthesis's number, formatted
