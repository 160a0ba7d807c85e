"""Defect 3: `validate` accepted infinite or denormal prior parameters that then crashed `run`."""

from __future__ import annotations

import pytest

from peerevidence.errors import UsageError
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior
from projectkit import edit, line_no, make_project, problems

BAD_TAU = ["halfnormal:1e999", "halfnormal:1e-320", "halfcauchy:1e999", "uniform:1e400", "lognormal2:1e999:1",
           "lognormal2:0:1e-320", "logt2:-1e999:2", "halfnormal:1e-9", "halfcauchy:1e4", "logt2:0:100"]  # fmt: skip
BAD_MU = ["normal:0:1e999", "normal:1e999:1", "normal:0:1e-320", "normal:-1e999:1", "normal:5000:1"]


@pytest.mark.parametrize("spec", BAD_TAU)
def test_tau_prior_out_of_bounds_is_refused(spec):
    with pytest.raises(UsageError, match=r"must be (a finite number|between)"):
        parse_tau_prior(spec)


@pytest.mark.parametrize("spec", BAD_MU)
def test_mu_prior_out_of_bounds_is_refused(spec):
    with pytest.raises(UsageError, match=r"must be (a finite number|between)"):
        parse_mu_prior(spec)


@pytest.mark.parametrize(
    "spec", ["halfnormal:0.5", "halfnormal:1e-7", "halfcauchy:25", "uniform:10", "lognormal2:-2.56:1.91",
             "logt2:-3.44:2.59", "turner2015:mental_health", "rhodes2015:any"],
)  # fmt: skip
def test_ordinary_tau_priors_still_parse(spec):
    assert parse_tau_prior(spec).spec == spec


@pytest.mark.parametrize("spec", ["normal:0:1", "normal:0:100", "normal:-0.5:2", "flat"])
def test_ordinary_mu_priors_still_parse(spec):
    assert parse_mu_prior(spec).spec == spec


def test_message_names_the_bounds():
    with pytest.raises(UsageError) as info:
        parse_tau_prior("halfnormal:1e-320")
    assert str(info.value) == "prior 'halfnormal:1e-320': SCALE must be between 1e-08 and 1000 (got 1e-320)"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("prior_tau: halfnormal:0.5", "prior_tau: halfnormal:1e999", "prior_tau"),
        ("prior_tau: halfnormal:0.5", "prior_tau: halfnormal:1e-320", "prior_tau"),
        ("prior_mu: normal:0:1", "prior_mu: normal:0:1e999", "prior_mu"),
    ],
)
def test_validate_reports_bad_prior_in_analysis_yaml(tmp_path, old, new, field):
    root = make_project(tmp_path)
    edit(root, "evidence/analysis.yaml", old, new)
    line = line_no(root, "evidence/analysis.yaml", new)
    found = [p for p in problems(root) if p.startswith(f"evidence/analysis.yaml:{line}: {field}: ")]
    assert found and ("finite" in found[0] or "between" in found[0]), problems(root)
