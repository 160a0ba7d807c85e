"""Record covariates and per-outcome subgroups/moderators: one located line per problem."""

from __future__ import annotations

import pytest

from projectkit import edit, line_no, make_project, problems

TRIAL = "extraction/trial2020.yaml"
ANALYSIS = "evidence/analysis.yaml"
COVARIATES = 'covariates:\n  peer_format: {value: group, source: {locator: Methods, snippet: "group sessions"}}\nresults:\n'


def errors(root):
    return [p for p in problems(root) if not p.startswith("warning")]


def test_a_covariate_with_its_source_is_valid(tmp_path):
    root = make_project(tmp_path)
    edit(root, TRIAL, "results:\n", COVARIATES)
    edit(root, ANALYSIS, "  hope: {mid: 0.2}", "  hope: {mid: 0.2, subgroups: [peer_format, design]}")
    assert errors(root) == []


def test_a_covariate_needs_a_source(tmp_path):
    root = make_project(tmp_path)
    edit(root, TRIAL, "results:\n", "covariates:\n  peer_format: {value: group}\nresults:\n")
    (line,) = errors(root)
    assert line.startswith(f"{TRIAL}:{line_no(root, TRIAL, 'peer_format')}: covariates.peer_format.source")


def test_a_covariate_is_not_true_or_false(tmp_path):
    root = make_project(tmp_path)
    edit(
        root,
        TRIAL,
        "results:\n",
        'covariates:\n  paid: {value: true, source: {locator: Methods, snippet: "paid"}}\nresults:\n',
    )
    (line,) = errors(root)
    assert f"{TRIAL}:{line_no(root, TRIAL, 'paid')}: covariates.paid.value" in line


def test_unknown_moderator_names_the_accepted_ones(tmp_path):
    root = make_project(tmp_path)
    edit(root, TRIAL, "results:\n", COVARIATES)
    edit(root, ANALYSIS, "  hope: {mid: 0.2}", "  hope: {mid: 0.2, moderators: [peer_fromat]}")
    (line,) = errors(root)
    n = line_no(root, ANALYSIS, "peer_fromat")
    assert line.startswith(f"{ANALYSIS}:{n}: outcomes.hope.moderators[0]: 'peer_fromat' is neither")
    assert "did you mean 'peer_format'" in line and "accepted:" in line


def test_a_covariate_is_a_number_everywhere_or_a_label_everywhere(tmp_path):
    root = make_project(tmp_path)
    edit(root, TRIAL, "results:\n", COVARIATES)
    edit(
        root,
        "extraction/cohort2019.yaml",
        "results:\n",
        'covariates:\n  peer_format: {value: 2, source: {locator: Methods, snippet: "two"}}\nresults:\n',
    )
    (line,) = errors(root)
    assert line.startswith(f"{TRIAL}:{line_no(root, TRIAL, 'peer_format')}: covariates.peer_format.value")


@pytest.mark.parametrize(
    "setting, problem",
    [
        ("{moderators: [country], moderator_priors: {country: 'halfnormal:1'}}", "normal"),
        ("{moderators: [country], moderator_priors: {design: 'normal:0:1'}}", "not among"),
        ("{subgroups: [timepoint_window]}", "needs `timepoint_windows:`"),
        ("{timepoint_windows: {short: {from_months: 6, to_months: 3}}}", "must be below"),
    ],
)
def test_analysis_settings(tmp_path, setting, problem):
    root = make_project(tmp_path)
    edit(root, ANALYSIS, "  hope: {mid: 0.2}", f"  hope: {setting}")
    (line,) = errors(root)
    assert line.startswith(f"{ANALYSIS}:") and problem in line
