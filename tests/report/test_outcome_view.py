"""Outcome-page views (report/views/outcome.py): the forest plot's data in RevMan's
conventions and the risk-of-bias figures."""

from __future__ import annotations

import math

import pytest

from peerevidence.report.forest import forest_svg
from peerevidence.report.views.common import context
from peerevidence.report.views.outcome import forest_data, rob_figures
from projectkit import edit, exact_result, make_project


@pytest.fixture
def ctx(tmp_path):
    root = make_project(tmp_path)
    edit(
        root,
        "evidence/change_model.yaml",
        "  locator_convention:",
        "  intervention: a new drug\n  comparator: placebo\n  locator_convention:",
    )
    return context(exact_result(root), None, None)


def test_forest_of_a_ratio_outcome_uses_the_log_ratio_axis_and_the_project_words(ctx):
    fit = ctx.fits["readmission"]
    data = forest_data(ctx, fit)
    assert data.ratio_axis
    # lower is better: the axis is log OR = -yi, so Favours <intervention> sits on the left
    assert (data.left_note, data.right_note) == ("Favours a new drug", "Favours placebo")
    mu = fit.summary.mu
    assert data.pooled == pytest.approx((-mu.q50, -mu.q975, -mu.q025))
    trial = next(r for r in data.rows if r.label.startswith("Trial"))
    assert (trial.arm_i, trial.arm_c) == ("12/60", "20/60")  # events/total, as extracted
    assert math.exp(trial.yi) == pytest.approx((12 / 48) / (20 / 40))  # the trial's OR, 0.5
    weights = [float(r.weight_pct.rstrip("%")) for r in data.rows]
    assert sum(weights) == pytest.approx(100, abs=0.11)
    assert "I² =" in data.heterogeneity and "τ² =" in data.heterogeneity and "REML" in data.heterogeneity
    svg = forest_svg(data)
    assert "Favours a new drug" in svg and "Favours placebo" in svg and ">Weight<" in svg


def test_forest_of_a_continuous_outcome_keeps_the_harmonised_axis(ctx):
    data = forest_data(ctx, ctx.fits["hope"])
    assert not data.ratio_axis
    assert (data.left_note, data.right_note) == ("Favours placebo", "Favours a new drug")
    assert data.rows[0].arm_i == "33.1 (5.2) 58" and data.rows[0].arm_c == "31 (5.5) 57"


def test_risk_of_bias_figures_from_the_records_domains(ctx):
    rob = rob_figures(ctx, ctx.fits["readmission"])
    assert rob.domains == ("D1 randomisation", "D2 deviations")
    by_label = {s.study["key"]: s for s in rob.studies}
    trial = [c.level for c in by_label["trial2020"].cells]
    assert trial == ["low", "some_concerns", "some_concerns"]  # domains, then overall
    cohort = [c.level for c in by_label["cohort2019"].cells]
    assert cohort == ["", "", "high"]  # no domain judgements recorded; overall from the record
    for bar in rob.bars:
        assert sum(p for _, _, p in bar.parts) == pytest.approx(100, abs=0.11)
    overall = dict((lv, p) for lv, _, p in rob.bars[-1].parts)
    assert overall["high"] == pytest.approx(100 * by_label["cohort2019"].weight, abs=0.05)
