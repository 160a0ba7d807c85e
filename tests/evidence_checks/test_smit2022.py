"""Two checks on the Smit 2022 trial records: the review's published pooled g is reproduced
(issue 4), and every arm-level g agrees with the g the dataset stores (issue 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evidence_checks.smit2022 import PUBLISHED, by_study, reproduce, smit_rows
from peerevidence.pooling.table import evidence_table
from peerevidence.records.project import load_project
from peerevidence.records.schema import SamplerSettings
from peerevidence.stats.model import FitData, Priors, fit
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base():
    project, errors = load_project(ROOT)
    assert not [e for e in errors if not e.warning]
    return project


def test_all_66_rows_of_28_trials_are_recorded(base):
    rows = smit_rows(base)
    assert len(rows) == 66
    assert len({r[0] for r in rows}) == 28


def test_reml_reproduces_published_pooled_g_within_002(base):
    result = reproduce(base)
    assert {c: k for c, (k, _) in result.items()} == {"clinical": 21, "personal": 18, "functional": 24}
    for category, (_, fit_) in result.items():
        assert abs(fit_.mu - PUBLISHED[category][0]) <= 0.02, (category, fit_.mu)


@pytest.mark.slow
def test_bayesian_posterior_median_sits_beside_the_published_g(base, models):
    rows = smit_rows(base)
    priors = Priors(parse_mu_prior("normal:0:1"), parse_tau_prior("halfnormal:0.5"))
    for category, (g, _lo, _hi) in PUBLISHED.items():
        labels, yi, vi = by_study(rows, category)
        f = fit(FitData(tuple(labels), yi, vi), priors, SamplerSettings(seed=2022), models)
        median = f.summary.mu.q50
        assert abs(median - g) <= 0.03, (category, median)
        assert f.summary.ok


def test_arm_level_g_agrees_with_the_datasets_stored_g(base):
    """Recompute g from each row's arm data; every disagreement must be explained in the record."""
    table = evidence_table(base)
    unexplained = []
    for key, loaded in sorted(base.records.items()):
        record = loaded.record
        for i, result in enumerate(record.results):
            rep = result.reported
            if result.form != "continuous" or rep is None or rep.measure != "g":
                continue
            ours = table[(table.study == key) & (table.result == i)].iloc[0]
            g = ours["yi"]
            agrees = abs(g - rep.estimate) <= 0.005 and (np.sign(g) == np.sign(rep.estimate) or abs(g) < 0.01)
            if agrees:
                continue
            explained = (
                result.exclude
                or record.exclude
                or any(
                    "disagree" in n.lower() or "sign" in n.lower() or "round" in n.lower()
                    for n in [*record.notes, *result.flags, result.notes or ""]
                )
            )
            if not explained:
                unexplained.append((key, i, round(float(g), 4), rep.estimate))
    assert unexplained == []


def test_davidson_2004_sign_problem_is_excluded(base):
    davidson = base.records["davidson2004"].record
    assert all(r.exclude for r in davidson.results)
