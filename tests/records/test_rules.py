"""`peerevidence validate` on the minimal project: one broken thing -> exactly one located line.

Record rules use the fixtures in tests/data/invalid/ (expected line in each file's first
comment); cross-file rules edit a copy of tests/data/minimal/ in a tmp dir.
"""

from __future__ import annotations

import re
import shutil

import pytest

from projectkit import (
    INVALID,
    PROBLEM_LINE,
    REPO_ROOT,
    SPARE_FILE,
    SPARE_RECORD,
    edit,
    expectation,
    line_no,
    make_project,
    problems,
    read,
    validate,
    write,
)

CM = "evidence/change_model.yaml"
OUTCOMES = "evidence/outcomes.yaml"
ANALYSIS = "evidence/analysis.yaml"
CERTAINTY = "evidence/certainty.yaml"
BIB = "references.bib"

FIXTURES = sorted(INVALID.glob("*.yaml"))


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


def assert_reports(root, *expected: str, code: int = 1, strict: bool = False) -> None:
    """validate prints exactly ``expected`` (in order) on stdout and exits with ``code``."""
    result = validate(root, *(["--strict"] if strict else []))
    assert result.lines == list(expected)
    assert result.code == code, result.text
    assert "Traceback" not in result.text and "internal error" not in result.text


# --------------------------------------------------------------------------- valid projects


def test_minimal_project_is_valid_without_warnings(project):
    result = validate(project, "--strict")
    assert result.code == 0
    assert result.out == ""
    assert result.err.strip() == "valid: 3 records, 0 error(s), 0 warning(s)"


def test_spare_record_is_valid(project):
    write(project, SPARE_FILE, SPARE_RECORD)
    result = validate(project, "--strict")
    assert (result.code, result.out) == (0, "")
    assert result.err.strip() == "valid: 4 records, 0 error(s), 0 warning(s)"


def test_valid_certainty_file(project):
    write(project, CERTAINTY, CERTAINTY_OK)
    assert_reports(project, code=0, strict=True)


def test_shipped_evidence_base_has_no_errors():
    result = validate(REPO_ROOT)
    assert result.code == 0, result.out
    assert all(line.startswith("warning: ") for line in result.lines), result.out
    assert re.search(r"valid: \d+ records, 0 error\(s\)", result.err)


# --------------------------------------------------------------------------- one rule per fixture

REQUIRED_FIXTURES = {
    "wrong_type",
    "unknown_key",
    "unknown_bibkey",
    "study_mismatch",
    "unknown_outcome",
    "ci_excludes_estimate",
    "ci_reversed",
    "ratio_not_positive",
    "events_exceed_total",
    "negative_sd",
    "zero_n",
    "missing_required",
    "unknown_design",
    "unknown_form",
    "snippet_too_long",
    "text_source_without_snippet",
    "pooled_in_trial",
    "continuous_in_review",
    "arm_n_exceeds_sample_size",
    "arms_exceed_sample_size",
    "unmapped_instrument",
    "direction_contradicts_instrument",
    "binary_for_smd_outcome",
    "two_poolable_results",
    "malformed_yaml",
    "yaml_list",
    "empty",
    "not_utf8",
    "duplicate_key",
}


def test_every_rule_has_a_fixture():
    assert {p.stem for p in FIXTURES} >= REQUIRED_FIXTURES


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_invalid_record_gives_exactly_its_expected_line(project, fixture):
    target, expected = expectation(fixture)
    shutil.copyfile(fixture, project / target)
    result = validate(project)
    assert result.lines == [expected]
    assert result.code == 1
    # 3 records when the broken file fails its schema, 4 when only a cross-file rule fails
    assert re.fullmatch(r"invalid: [34] records, 1 error\(s\), 0 warning\(s\)\n", result.err)


def test_zero_byte_record(project):
    write(project, SPARE_FILE, b"")
    assert_reports(project, f"{SPARE_FILE}: expected a mapping of fields, got empty")


def test_directory_named_like_a_record(project):
    (project / SPARE_FILE).mkdir()
    assert_reports(project, f"{SPARE_FILE}: is a directory, not a regular file")


def test_yml_twin_of_a_record_is_a_duplicate(project):
    write(project, "extraction/trial2020.yml", read(project, "extraction/trial2020.yaml"))
    assert_reports(project, "extraction/trial2020.yml: duplicate record file for 'trial2020'")


def test_several_problems_in_one_file_are_all_reported_in_line_order(project):
    text = SPARE_RECORD.replace("design: rct", "design: rtc").replace("sd: 5.5}", "sd: 0}")
    write(project, SPARE_FILE, text.replace("    timepoint: 6 months\n", ""))
    result = validate(project)
    assert [line.split(": ", 2)[:2] for line in result.lines] == [
        [f"{SPARE_FILE}:2", "design"],
        [f"{SPARE_FILE}:16", "results[0].timepoint"],
        [f"{SPARE_FILE}:20", "results[0].control.sd"],
    ]
    assert result.code == 1


def test_problems_with_and_without_a_line_in_one_file(project):
    text = SPARE_RECORD.replace("country: England\n", "").replace("sd: 5.5}", "sd: -1.2}")
    write(project, SPARE_FILE, text)
    result = validate(project)
    assert "internal error" not in result.err
    sd_line = line_no(project, SPARE_FILE, "sd: -1.2}")
    assert sorted(result.lines) == [
        f"{SPARE_FILE}: country: required field is missing",
        f"{SPARE_FILE}:{sd_line}: results[0].control.sd: must be > 0 (got -1.2)",
    ]
    assert result.code == 1


def test_a_bad_value_for_a_union_field_is_one_line_at_the_field(project):
    write(
        project,
        SPARE_FILE,
        SPARE_RECORD + "    corrections: [{field: control.sd, original: [1], reason: typo}]\n",
    )
    result = validate(project)
    assert result.code == 1
    assert len(result.lines) == 1, result.out
    assert result.lines[0].startswith(f"{SPARE_FILE}:23: results[0].corrections[0].original: ")


NEWLINE_CASES = {
    # validate.py puts the value into the message as it is: "'gillard2015\nBOGUS' is not a key"
    "value": (
        'source: {locator: Table 2, snippet: "HHI',
        'source: {ref: "gillard2015\\nBOGUS", locator: Table 2, snippet: "HHI',
    ),
    # yamlio.format_path puts the key into the field path as it is
    "key": ("results:\n", '"cited\\nas": x\nresults:\n'),
}


@pytest.mark.parametrize("case", sorted(NEWLINE_CASES))
def test_a_newline_in_the_input_stays_on_one_line(project, case):
    old, new = NEWLINE_CASES[case]
    assert old in SPARE_RECORD
    write(project, SPARE_FILE, SPARE_RECORD.replace(old, new))
    result = validate(project)
    assert result.code == 1
    assert len(result.lines) == 1, result.out
    assert PROBLEM_LINE.match(result.lines[0])


def test_template_placeholders_are_not_accepted(project):
    from projectkit import run_cli

    assert run_cli("new-record", "spare2020", "--project", project).code == 0
    text = read(project, SPARE_FILE)
    for old, new in [
        ("design: TODO", "design: rct"),
        ("  randomised: 0", ""),
        ("  intervention: 0", ""),
        ("  control: 0", ""),
        ('"YYYY-MM-DD"', '"2024-01-01"'),
        ("- outcome: TODO", "- outcome: hope"),
    ]:
        assert old in text
        text = text.replace(old, new)
    write(project, SPARE_FILE, text)
    result = validate(project)
    assert result.code == 1
    assert any("TODO" in line for line in result.lines), result.out


# --------------------------------------------------------------------------- change model


def test_edge_to_unknown_node(project):
    edit(project, CM, "    to: hope\n", "    to: hpoe\n")
    assert_reports(
        project,
        f"{CM}:{line_no(project, CM, 'to: hpoe')}: edges[0].to: 'hpoe' is not a node; "
        "did you mean 'hope'? (accepted: hope, peer_support, readmission, symptoms)",
    )


def test_duplicate_edge_id(project):
    line = line_no(project, CM, "id: E04")
    edit(project, CM, "id: E04", "id: E01")
    assert_reports(project, f"{CM}:{line}: edges[3].id: duplicate edge id 'E01'")


def test_quote_participant_missing(project):
    edit(project, CM, "participant: PAR1PW01", "participant: PAR1PW02")
    node_line, edge_line = [
        i for i, text in enumerate(read(project, CM).splitlines(), 1) if "quotes: [PAR1PW01]" in text
    ]
    assert_reports(
        project,
        f"{CM}:{node_line}: nodes[1].quotes[0]: 'PAR1PW01' has no passage under `quotes:`",
        f"{CM}:{edge_line}: edges[0].quotes[0]: 'PAR1PW01' has no passage under `quotes:`",
    )


def test_quote_on_unknown_node(project):
    edit(project, CM, "    node: hope\n", "    node: hop\n")
    assert_reports(
        project,
        f"{CM}:{line_no(project, CM, 'node: hop')}: quotes[0].node: 'hop' is not a node; "
        "did you mean 'hope'? (accepted: hope, peer_support, readmission, symptoms)",
    )


def test_bad_participant_id_is_a_schema_error(project):
    edit(project, CM, "participant: PAR1PW01", "participant: par1")
    result = validate(project)
    # the change model is then not loaded, so its bib keys also come back as "unused" warnings
    assert [line for line in result.lines if not line.startswith("warning: ")] == [
        f"{CM}:{line_no(project, CM, 'participant: par1')}: quotes[0].participant: must be "
        "a participant identifier such as PAR1PW01 (got 'par1')"
    ]
    assert result.code == 1


def test_broken_record_is_not_reported_as_missing(project):
    edit(project, "extraction/cohort2019.yaml", "design: cohort", "design: cohrot")
    result = validate(project)
    assert len(result.lines) == 1, result.out
    assert result.lines[0].startswith("extraction/cohort2019.yaml:3: design: not an accepted value")


def test_edge_cites_key_with_neither_record_nor_uncited_entry(project):
    edit(
        project,
        CM,
        "uncited:\n  - key: mead2006\n    reason: Conceptual paper; no quantitative result.\n",
        "uncited: []\n",
    )
    line = line_no(project, CM, "cites: [cohort2019, mead2006]")
    warning = (
        f"warning: {CM}:{line}: edges[2].cites[1]: 'mead2006' has neither an extraction "
        "record nor an entry in `uncited` saying why not"
    )
    assert_reports(project, warning, code=0)
    assert_reports(project, warning, code=1, strict=True)


def test_uncited_key_that_has_a_record(project):
    edit(project, CM, "  - key: mead2006\n", "  - key: trial2020\n")
    assert_reports(
        project,  # mead2006 loses its `uncited` entry, too
        f"warning: {CM}:{line_no(project, CM, 'cites: [cohort2019, mead2006]')}: edges[2].cites[1]: "
        "'mead2006' has neither an extraction record nor an entry in `uncited` saying why not",
        f"warning: {CM}:{line_no(project, CM, 'key: trial2020')}: uncited[0].key: 'trial2020' has "
        "an extraction record; remove it from `uncited`",
        code=0,
    )


# --------------------------------------------------------------------------- outcomes


def test_outcome_node_missing(project):
    edit(project, OUTCOMES, "    node: hope\n", "    node: hopes\n")
    assert_reports(
        project,
        f"{OUTCOMES}:{line_no(project, OUTCOMES, 'node: hopes')}: outcomes[0].node: 'hopes' is not "
        "a node; did you mean 'hope'? (accepted: hope, peer_support, readmission, symptoms)",
    )


def test_outcome_edge_missing(project):
    edit(project, OUTCOMES, "edges: [E01]", "edges: [X01]")
    assert_reports(
        project,
        f"{OUTCOMES}:{line_no(project, OUTCOMES, 'X01')}: outcomes[0].edges[0]: 'X01' is not an "
        "edge; did you mean 'E01'?",
    )


def test_outcome_without_data_is_a_warning(project):
    write(
        project,
        OUTCOMES,
        read(project, OUTCOMES)
        + (
            "\n  - id: wellbeing\n    label: Wellbeing\n    node: hope\n"
            "    measure: SMD\n    direction: higher_is_better\n"
        ),
    )
    assert_reports(
        project,
        f"warning: {OUTCOMES}: outcomes: no poolable data in any record for 1 outcome(s): wellbeing",
        code=0,
    )


# --------------------------------------------------------------------------- analysis + certainty


@pytest.mark.parametrize(
    ("old", "new", "path", "problem"),
    [
        (
            "prior_mu: normal:0:1",
            "prior_mu: normal:0",
            "prior_mu",
            "prior for mu 'normal:0' not understood (accepted: normal:MEAN:SD, flat)",
        ),
        (
            "prior_tau: halfnormal:0.5",
            "prior_tau: halfnormal",
            "prior_tau",
            "prior for tau 'halfnormal' not understood (accepted: halfnormal:SCALE, halfcauchy:SCALE, "
            "uniform:UPPER, lognormal2:MU:SIGMA, logt2:LOC:SCALE, turner2015:TYPE, rhodes2015:TYPE)",
        ),
        (
            "prior_tau: halfnormal:0.5",
            "prior_tau: halfnormal:-1",
            "prior_tau",
            "prior 'halfnormal:-1': the scale must be > 0",
        ),
        (
            '"turner2015:resource_use"',
            '"turner2015:pain_relief"',
            "outcomes.readmission.prior_tau",
            "prior 'turner2015:pain_relief': unknown turner2015 type 'pain_relief' (accepted: "
            "adverse_events, all_cause_mortality, biological_markers, cause_specific_mortality, "
            "general_physical_health, infection, internal_structure, mental_health, obstetric, pain, "
            "quality_of_life, resource_use, signs_symptoms, subjective, surgical, withdrawals)",
        ),
    ],
    ids=["mu", "tau", "tau-scale", "outcome-named-tau"],
)
def test_bad_prior_string(project, old, new, path, problem):
    edit(project, ANALYSIS, old, new)
    line = line_no(project, ANALYSIS, new)
    assert_reports(project, f"{ANALYSIS}:{line}: {path}: {problem}")


def test_design_bias_for_a_randomised_design(project):
    edit(project, ANALYSIS, "  cohort: {", "  rct: {")
    assert_reports(
        project,
        f"{ANALYSIS}:{line_no(project, ANALYSIS, 'rct: {')}: design_bias.smd.rct: 'rct' is not a "
        "non-randomised or pilot design (accepted: pilot_rct, non_randomised_comparison, "
        "before_after, cohort, case_control, cross_sectional)",
    )


def test_analysis_setting_for_unknown_outcome(project):
    edit(project, ANALYSIS, "  hope: {mid", "  hopes: {mid")
    assert_reports(
        project,
        f"{ANALYSIS}:{line_no(project, ANALYSIS, 'hopes:')}: outcomes.hopes: 'hopes' is not an "
        "outcome; did you mean 'hope'?",
    )


CERTAINTY_OK = """\
overrides:
  - outcome: hope
    rating: low
    reason: imprecise and indirect
    by: tests
    date: "2024-03-01"
"""


def test_certainty_override_for_unknown_outcome(project):
    write(project, CERTAINTY, CERTAINTY_OK.replace("outcome: hope", "outcome: hopes"))
    assert_reports(
        project,
        f"{CERTAINTY}:2: overrides[0].outcome: 'hopes' is not an outcome; did you mean 'hope'?",
    )


def test_certainty_rating_not_accepted(project):
    write(project, CERTAINTY, CERTAINTY_OK.replace("rating: low", "rating: medium"))
    assert_reports(
        project,
        f"{CERTAINTY}:3: overrides[0].rating: not an accepted value (got 'medium') "
        "(accepted: high, moderate, low, very_low)",
    )


# --------------------------------------------------------------------------- references.bib

ORPHAN = (
    "\n@article{orphan2001,\n  author = {Orphan, O.},\n  title = {Nobody cites me},\n  year = {2001}\n}\n"
)


def test_unused_bib_entry_is_a_warning(project):
    write(project, BIB, read(project, BIB) + ORPHAN)
    warning = (
        f"warning: {BIB}:{line_no(project, BIB, '@article{orphan2001')}: orphan2001: BibTeX "
        "entry is not used by any record or edge (keep it with one of keywords = "
        "{methods, related}: kept_bib_keywords in evidence/analysis.yaml)"
    )
    assert_reports(project, warning, code=0)
    assert_reports(project, warning, code=1, strict=True)


def test_unused_bib_entry_kept_with_keyword(project):
    write(project, BIB, read(project, BIB) + ORPHAN.replace("  year", "  keywords = {methods},\n  year"))
    assert_reports(project, code=0, strict=True)


def test_bib_entry_without_title_is_a_warning(project):
    write(project, BIB, read(project, BIB).replace("  title    = {A spare trial},\n", ""))
    assert_reports(
        project,
        f"warning: {BIB}:{line_no(project, BIB, '@article{spare2020')}: spare2020: entry has no title",
        code=0,
    )


def test_duplicate_bib_key(project):
    entry = "\n@article{trial2020,\n  title = {The same key again},\n  year = {2020}\n}\n"
    write(project, BIB, read(project, BIB) + entry)
    line = len(read(project, BIB).splitlines()) - 3  # the line of the second "@article{trial2020,"
    assert_reports(project, f"{BIB}:{line}: trial2020: duplicate BibTeX key")


BROKEN_ENTRY = "\n@article{broken2000,\n  title = {An unclosed brace\n"


def _malformed_bib_line(project) -> tuple[int, list[str]]:
    write(project, BIB, read(project, BIB) + BROKEN_ENTRY)
    result = validate(project)
    assert result.code == 1
    return line_no(project, BIB, "@article{broken2000"), result.lines


def test_malformed_bib_entry_is_reported_with_its_line(project):
    line, lines = _malformed_bib_line(project)
    assert len(lines) == 1
    assert lines[0].startswith(f"{BIB}:{line}: malformed BibTeX:")


def test_malformed_bib_entry_says_what_is_wrong(project):
    line, lines = _malformed_bib_line(project)
    assert lines == [f"{BIB}:{line}: malformed BibTeX: Unexpectedly reached end of file."]


def test_missing_references_bib(project):
    (project / BIB).unlink()
    result = validate(project)
    assert result.code == 1
    assert f"{BIB}: file not found (every project needs references.bib)" in result.lines
    others = [line for line in result.lines if not line.startswith(f"{BIB}:")]
    assert others and all("is not a key in references.bib" in line for line in others), result.out


def test_non_utf8_references_bib(project):
    write(project, BIB, read(project, BIB).encode("utf-8") + b"\n% caf\xe9\n")
    result = validate(project)
    assert f"{BIB}: not UTF-8 text (invalid continuation byte)" in result.lines
    assert result.code == 1


# --------------------------------------------------------------------------- missing files


def test_missing_outcomes_file(project):
    (project / OUTCOMES).unlink()
    (project / ANALYSIS).unlink()  # it names outcomes; see the xfail below
    assert_reports(project, f"{OUTCOMES}: file not found")


def test_missing_outcomes_file_gives_one_line(project):
    (project / OUTCOMES).unlink()
    assert_reports(project, f"{OUTCOMES}: file not found")


def test_missing_change_model(project):
    (project / CM).unlink()
    result = validate(project)
    assert [line for line in result.lines if not line.startswith("warning: ")] == [f"{CM}: file not found"]
    assert result.code == 1


def test_empty_project_directory(tmp_path):
    """Not a project: one usage line (exit 2), not one "file not found" per missing file."""
    result = validate(tmp_path)
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"{tmp_path}: this is not a peerevidence project (no evidence/change_model.yaml); use --project DIR\n"
    )


def test_problems_api_matches_cli(project):
    shutil.copyfile(INVALID / "negative_sd.yaml", project / SPARE_FILE)
    assert problems(project) == validate(project).lines
