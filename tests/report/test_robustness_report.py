"""The robustness section of an outcome page (issue 15): every number on the page is the
synthesis stage's :class:`OutcomeRobustness` (formatted, not recomputed), the figures pass
the SVG allow-list, and small projects get the right notes instead of figures.

The 13-study project is tests/synthesis/test_robustness.py's (metafor's dat.bcg as records).
"""

from __future__ import annotations

import html
import re

import pytest

from peerevidence.report.diagram import check_svg
from peerevidence.report.figures import FunnelData, FunnelPoint, funnel_svg
from peerevidence.report.render import render
from peerevidence.report.views.common import context, fmt, fmt_p
from peerevidence.synthesis import synthesise
from projectkit import exact_result, make_project
from synthesis.test_robustness import bcg_studies, build

MARK = "⚠ changes the conclusion"


def _render(root):
    result = exact_result(root)
    synthesis = synthesise(result)
    render(result, synthesis)
    return result, synthesis


def _page(root, name: str) -> str:
    return (root / "reports" / "outcomes" / f"{name}.html").read_text("utf-8")


def _section(page: str) -> str:
    m = re.search(r'<section id="robustness".*?</section>', page, re.S)
    assert m, "no robustness section"
    return m.group(0)


def _svgs(text: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", text, re.S)


@pytest.fixture(scope="module")
def bcg(tmp_path_factory):
    root = build(
        tmp_path_factory.mktemp("bcg"),
        bcg_studies(),
        "  hope: {mid: 0.2, subgroups: [alloc], moderators: [ablat, alloc]}\n",
    )
    result, synthesis = _render(root)
    raw = _page(root, "hope")
    return result, synthesis.robustness["hope"], html.unescape(raw), raw


def test_sensitivity_table_shows_every_row_of_the_robustness_object(bcg):
    _, rob, page, _raw = bcg
    section = _section(page)
    kinds = {r.kind for r in rob.rows}
    assert {"main", "subset", "leave_one_out", "cumulative"} <= kinds
    for title in ("Main analysis and subsets", "Leave one study out", "Cumulative, by year of publication"):
        assert title in section
    table = re.search(r'<table class="robustness">.*?</table>', section, re.S).group(0)
    rows = re.findall(r"<tr(?: class=\"changes\")?>\s*<th scope=\"row\".*?</tr>", table, re.S)
    assert len(rows) == len(rob.rows)
    for r, tr in zip(rob.rows, rows, strict=True):
        cells = re.findall(r'<t[dh][^>]*data-label="([^"]+)">(.*?)</t[dh]>', tr, re.S)
        got = dict(cells)
        assert got["k"] == str(r.k)
        # the scale is the harmonised SMD one: numbers print as they are stored
        assert got["Pooled effect (95% CrI)"] == f"{fmt(r.mu_q50)} ({fmt(r.mu_q025)} to {fmt(r.mu_q975)})"
        assert got["P(benefit)"] == fmt_p(r.p_gt_0)
        assert got["REML (95% CI)"] == f"{fmt(r.reml_mu)} ({fmt(r.reml_ci_lb)} to {fmt(r.reml_ci_ub)})"
        assert got["τ² (REML)"] == fmt(r.reml_tau2, 3)
        assert (MARK in got["Conclusion"]) == r.changes_conclusion
    assert section.count('<strong class="changes-mark">') == sum(r.changes_conclusion for r in rob.rows)


def test_predictive_probabilities_stand_beside_p_benefit(bcg):
    _, rob, page, _raw = bcg
    summary = re.search(r'<section class="summary">.*?</section>', page, re.S).group(0)
    p = rob.predictive
    expected = (
        f"P(θ<sub>new</sub> > MID) {fmt_p(p.p_gt_mid)}; P(θ<sub>new</sub> < −MID) {fmt_p(p.p_lt_minus_mid)}"
    )
    assert expected in summary
    assert "P(benefit)" in summary
    assert f"MID = {fmt(p.mid)}" in _section(page)


def test_funnel_plot_and_small_study_tests(bcg):
    _, rob, page, raw = bcg
    section = _section(page)
    ss = rob.small_studies
    assert ss is not None and ss.k == 13
    assert "Contour-enhanced funnel plot (13 studies)" in section
    assert "cannot be read" not in section  # k >= 10
    assert (
        f"Egger's test: effect on its standard error, weighted regression: t = {fmt(ss.egger.zval)} on {ss.egger.df} df, p = {fmt(ss.egger.pval, 3)}"
        in section
    )
    assert f"PET: meta-regression on the standard error: z = {fmt(ss.pet.zval)}" in section
    assert f"limit estimate (standard error 0) {fmt(ss.peese.est)}" in section
    assert "Peters' test: not run (needs every result as two-arm binary data" in section
    svgs = _svgs(_section(raw))
    assert len(svgs) == 2  # funnel, one subgroup forest
    for svg in svgs:
        check_svg(svg)
    funnel = html.unescape(svgs[0])
    for band in ("p > 0.10", "0.10 > p > 0.05", "0.05 > p > 0.01", "p < 0.01"):
        assert band in funnel


def test_subgroups_and_meta_regression(bcg):
    _, rob, page, raw = bcg
    section = _section(page)
    (sub,) = rob.subgroups
    assert f"QM = {fmt(sub.qm)} on {sub.qm_df} df, p = {fmt(sub.qm_p, 3)}" in section
    for g in sub.groups:
        assert f"{fmt(g.effect.q50)} ({fmt(g.effect.q025)} to {fmt(g.effect.q975)})" in section
    for d in sub.differences:
        row = re.search(rf"<th scope=\"row\">{d.group} minus {d.reference}</th>(.*?)</tr>", section, re.S)
        assert row, d
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
        assert cells[1:3] == [fmt_p(d.difference.p_gt_0), fmt_p(d.p_abs_gt_mid)]
    forest = html.unescape(_svgs(_section(raw))[1])
    assert "Subgroup effect (95% CrI)" in forest and "Test for subgroup differences" in forest
    mod = rob.moderators
    ablat = next(c for c in mod.coefficients if c.name == "ablat")
    assert f"{fmt(ablat.value.q50, 3)} ({fmt(ablat.value.q025, 3)} to {fmt(ablat.value.q975, 3)})" in section
    assert f"QM = {fmt(mod.qm)} on {mod.qm_df} df" in section


def test_influential_study_is_named_and_a_small_funnel_is_flagged(tmp_path):
    studies = [{"key": f"s{i}", "y": 0.3, "se": 0.3, "year": 2000 + i} for i in range(4)] + [
        {"key": "s9", "y": 0.5, "se": 0.05, "year": 2010}
    ]
    root = build(tmp_path, studies, "  hope: {mid: 0.2}\n")
    result, synthesis = _render(root)
    rob = synthesis.robustness["hope"]
    assert rob.influential == ("s9",)
    label = context(result, synthesis, None).labels["s9"]
    raw = _section(_page(root, "hope"))
    section = html.unescape(raw)
    assert f"Influential: without <strong>{label}</strong> the conclusion changes" in section
    assert section.count('<tr class="changes">') == sum(r.changes_conclusion for r in rob.rows) == 5
    assert "With fewer than 10 studies a funnel plot cannot be read" in section
    check_svg(_svgs(raw)[0])


def test_minimal_project_few_studies_no_funnel_and_no_section_on_the_randomised_page(tmp_path):
    root = make_project(tmp_path)
    _, synthesis = _render(root)
    rob = synthesis.robustness["hope"]
    assert rob.small_studies is None
    page = html.unescape(_page(root, "hope"))
    section = _section(page)
    assert "they need at least 5 studies" in section and "<svg" not in section
    assert f"P(θ<sub>new</sub> > MID) = <strong>{fmt_p(rob.predictive.p_gt_mid)}</strong>" in section
    sibling = root / "reports" / "outcomes" / "hope--randomised.html"
    if sibling.exists():
        assert 'id="robustness"' not in sibling.read_text("utf-8")


def test_funnel_svg_draws_the_closed_form_contours():
    data = FunnelData("t", "x", [FunnelPoint("a", 0.1, 0.2), FunnelPoint("b", -0.3, 0.4)], 0.05)
    svg = funnel_svg(data)
    check_svg(svg)
    assert svg == funnel_svg(data)  # deterministic
