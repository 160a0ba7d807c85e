"""Imprecision with one or two studies is judged on the data's own interval (REML CI, the
study's CI for k = 1), not on the credible interval the tau prior widens (issue 17)."""

from __future__ import annotations

from peerevidence.synthesis.certainty import certainty_of
from synthesis.test_certainty_paths import fake_fit, rows, step

# fake_fit's REML line: mu 0.3, CI 0.1 to 0.5 (excludes 0, no MID crossed); n 300 per study.
WIDE_CRI = (-0.3, 0.3, 0.9)  # crosses -MID and +MID: two levels if judged on the CrI


def test_single_study_imprecision_uses_the_study_interval():
    c = certainty_of(fake_fit(rows(1, n=500.0), mu=WIDE_CRI), mid=0.2)
    s = step(c, "imprecision")
    assert s.levels == 0, s.reason
    assert "the study's 95% CI 0.10 to 0.50" in s.reason and "tau prior" in s.reason


def test_two_studies_use_the_reml_interval():
    c = certainty_of(fake_fit(rows(2, n=300.0), mu=WIDE_CRI), mid=0.2)
    s = step(c, "imprecision")
    assert s.levels == 0, s.reason
    assert "the REML 95% CI 0.10 to 0.50" in s.reason


def test_three_studies_still_use_the_credible_interval():
    c = certainty_of(fake_fit(rows(3), mu=WIDE_CRI), mid=0.2)
    assert step(c, "imprecision").levels == 2
