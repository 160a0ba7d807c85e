"""The Summary of Findings (report/views/sof.py): absolute effects against closed forms and
posterior draws, the assumed control risk and its source, the CSV, and its place on the page."""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np
import pytest

from peerevidence.records.project import load_project
from peerevidence.report.render import render
from peerevidence.report.views.sof import csv_cell, per_1000, risk_with_intervention
from peerevidence.synthesis import synthesise
from projectkit import edit, exact_result, make_project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def test_risk_with_intervention_closed_forms():
    # OR: odds 0.2/0.8 = 0.25, times 0.5 = 0.125, risk 0.125/1.125
    assert risk_with_intervention(0.2, "logOR", 0.5) == pytest.approx(0.125 / 1.125, abs=1e-15)
    assert risk_with_intervention(0.2, "logRR", 0.5) == pytest.approx(0.1, abs=1e-15)
    assert risk_with_intervention(0.6, "logRR", 2.0) == 1.0  # capped
    # HR: survival 0.8 raised to the power 0.5
    assert risk_with_intervention(0.2, "logHR", 0.5) == pytest.approx(1 - math.sqrt(0.8), abs=1e-15)
    with pytest.raises(ValueError, match="accepted"):
        risk_with_intervention(0.2, "SMD", 0.5)
    with pytest.raises(ValueError):
        risk_with_intervention(1.0, "logOR", 0.5)


@pytest.mark.parametrize("measure", ["logOR", "logRR", "logHR"])
def test_interval_from_quantiles_equals_quantiles_of_transformed_draws(measure):
    """The risk is monotone in the ratio, so transforming the ratio's quantiles gives the
    quantiles of the transformed draws (what the SoF shows; checked on simulated draws)."""
    rng = np.random.default_rng(7)
    mu = rng.normal(-0.4, 0.25, 400_000)  # log ratio draws
    cr = 0.3
    risks = np.array([risk_with_intervention(cr, measure, r) for r in np.exp(mu[:40_000])])
    from_draws = np.quantile(risks, [0.025, 0.975])
    q = np.quantile(mu[:40_000], [0.025, 0.975])
    from_quantiles = [risk_with_intervention(cr, measure, math.exp(x)) for x in q]
    assert from_quantiles == pytest.approx(from_draws, abs=2e-4)


def _sof_rows(html: str) -> str:
    start = html.index('id="sof"')
    return html[start : html.index("</section>", start)]


def test_sof_comes_first_with_absolute_effects_from_the_median_control_risk(project):
    result = exact_result(project)
    synthesis = synthesise(result)
    render(result, synthesis)
    html = (project / "reports" / "index.html").read_text("utf-8")
    assert html.index('id="findings"') < html.index('id="sof"') < html.index('id="diagram"')
    sof = _sof_rows(html)
    # readmission: only trial2020 has arm data, control 20/60 -> 333 per 1,000
    fit = next(f for f in result.fits if f.analysis.name == "readmission")
    mu = fit.summary.mu
    odds = (20 / 40) * np.exp(-np.array([mu.q50, mu.q975, mu.q025]))  # lower is better: OR = exp(-mu)
    expected = [round(1000 * o / (1 + o)) for o in odds]
    assert "Risk with control: <strong>333 per 1,000</strong>" in sof
    assert f"<strong>{expected[0]} per 1,000</strong> ({expected[1]} to {expected[2]})" in sof
    assert "median control-arm risk" in sof
    level = synthesis.certainty["readmission"].final
    symbols = {"high": "⊕⊕⊕⊕", "moderate": "⊕⊕⊕◯", "low": "⊕⊕◯◯", "very_low": "⊕◯◯◯"}[level]
    row = sof[sof.index('href="outcomes/readmission.html"') :]
    assert symbols in row[: row.index("</tr>")]
    assert "Trial &amp; Arm 2020: OR" in sof  # k = 2: the studies' own estimates beside the model's


def test_assumed_control_risk_from_analysis_yaml_with_its_source(project):
    edit(
        project,
        "evidence/analysis.yaml",
        'readmission: {prior_tau: "turner2015:resource_use"}',
        'readmission: {prior_tau: "turner2015:resource_use", '
        'assumed_control_risk: {value: 0.25, source: "Registry 2019, Table 1"}}',
    )
    result = exact_result(project)
    render(result, synthesise(result))
    sof = _sof_rows((project / "reports" / "index.html").read_text("utf-8"))
    assert "Risk with control: <strong>250 per 1,000</strong>" in sof
    assert "Registry 2019, Table 1" in sof and "median control-arm risk" not in sof
    rows = list(
        csv.DictReader(io.StringIO((project / "reports" / "summary_of_findings.csv").read_text("utf-8")))
    )
    readmission = next(r for r in rows if r["outcome"] == "Readmission")
    assert readmission["risk_with_comparator_per_1000"] == "250"
    assert readmission["assumed_risk_source"] == "Registry 2019, Table 1"
    assert per_1000(0.25) == 250


def test_assumed_control_risk_outside_0_1_is_a_one_line_error(project):
    edit(
        project,
        "evidence/analysis.yaml",
        'readmission: {prior_tau: "turner2015:resource_use"}',
        'readmission: {assumed_control_risk: {value: 1.5, source: "x"}}',
    )
    _, errors = load_project(project)
    text = [str(e) for e in errors]
    assert len(text) == 1 and "assumed_control_risk" in text[0] and "\n" not in text[0], text


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(project):
    assert [csv_cell(x) for x in ("=1+1", "+1", "-2", "@SUM(A1)", "ok", None)] == [
        "'=1+1", "'+1", "'-2", "'@SUM(A1)", "ok", "",
    ]  # fmt: skip
    edit(project, "evidence/outcomes.yaml", "label: Hope\n", "label: '=HYPERLINK(\"http://x\")'\n")
    result = exact_result(project)
    render(result, synthesise(result))
    text = (project / "reports" / "summary_of_findings.csv").read_text("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["link", "outcome"]
    cells = [c for r in rows[1:] for c in r]
    assert '\'=HYPERLINK("http://x")' in cells
    assert not any(re.match(r"^[=+\-@]", c) for c in cells)


def test_cohen_labels_at_the_conventional_bounds():
    from peerevidence.report.views.sof import cohen_label

    assert [cohen_label(x) for x in (0.19, 0.2, -0.49, 0.5, 0.79, -0.8, 1.4)] == [
        "trivial", "small", "small", "moderate", "moderate", "large", "large",
    ]  # fmt: skip


def test_smd_re_expressed_on_a_familiar_instrument_with_its_sd_and_source(project):
    edit(
        project,
        "evidence/analysis.yaml",
        "  hope: {mid: 0.2}",
        '  hope: {mid: 0.2, representative_sd: {instrument: Herth Hope Index, sd: 5.5, source: "Trial 2020, Table 2"}}',
    )
    result = exact_result(project)
    render(result, synthesise(result))
    mu = next(f for f in result.fits if f.analysis.name == "hope").summary.mu
    sof = _sof_rows((project / "reports" / "index.html").read_text("utf-8"))
    points = f"{mu.q50 * 5.5:.1f} points ({mu.q025 * 5.5:.1f} to {mu.q975 * 5.5:.1f})".replace("-", "\u2212")
    assert f"On the Herth Hope Index: {points} in favour of peer support" in sof
    assert "SD from Trial 2020, Table 2" in sof
