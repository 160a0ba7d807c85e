"""Cross-checks that check: each broken fixture (tests/data/crosschecks/, the spare record of
tests/projectkit.py with one defect) gives exactly its expected line.

Expected numbers were worked by hand from the fixture: MD = 30.1 - 28.0 = 2.1; the tolerance
of a reported "8.0" is half a unit in its last digit (0.05) plus the arm means' rounding
(0.05 each, the MD's slope in each mean being 1) = 0.15; Hedges' g of the spare arms =
J(96) x 2.1 / sqrt((49 x 5.2^2 + 47 x 5.5^2) / 96) = 0.3895, and its inputs' rounding propagates as
0.05 x (2 J / s_p + g (49 x 5.2 + 47 x 5.5) / (96 s_p^2)) = 0.02219.
"""

from __future__ import annotations

import shutil

import pytest

from projectkit import DATA, SPARE_FILE, make_project, problems, read, validate, write

FIXTURES = DATA / "crosschecks"
TAIL = 'check both against the source, or document a known discrepancy with `reported.mismatch: "reason"`'

EXPECTED = {
    "reported_md_far_from_arms": [
        "extraction/spare2020.yaml:23: results[0].reported.estimate: the source reports MD = 8 but the arm "
        "data give 2.1 (intervention vs control, the instrument's own scale); the gap 5.9 exceeds the "
        "rounding tolerance 0.15 (half a unit in the last printed digit of the estimate, 0.05, plus the "
        f"inputs' rounding propagated, 0.1); {TAIL}"
    ],
    "reported_g_999": [
        "extraction/spare2020.yaml:23: results[0].reported.estimate: the source reports g = 999 but the arm "
        "data give 0.3895 (intervention vs control, the instrument's own scale); the gap 998.6 exceeds the "
        "rounding tolerance 0.5222 (half a unit in the last printed digit of the estimate, 0.5, plus the "
        f"inputs' rounding propagated, 0.02219); {TAIL}"
    ],
    "reported_md_sign_flipped": [
        "extraction/spare2020.yaml:23: results[0].reported.estimate: the source reports MD = -2.1 but the "
        "arm data give 2.1 (intervention vs control, the instrument's own scale); the gap 4.2 exceeds the "
        "rounding tolerance 0.15 (half a unit in the last printed digit of the estimate, 0.05, plus the "
        "inputs' rounding propagated, 0.1); the sign is opposite: does the source sign the effect so that "
        f"positive means benefit? then set `reported.harmonised: true`; {TAIL}"
    ],
    # 2.2 vs 2.1 is within the 0.15 that rounding allows
    "reported_md_rounded_ok": [],
    # a documented discrepancy is accepted (and shown), never silently
    "reported_mismatch_documented": [],
    "sd_looks_like_se": [
        "warning: extraction/spare2020.yaml:21: results[0].control.sd: SD 0.79 looks like a standard error: "
        "the other arm's SD (5.2) is 6.6 times it, close to sqrt(n) = 6.9; check the source"
    ],
    "g_implausibly_large": [
        "warning: extraction/spare2020.yaml:20: results[0].intervention.sd: Hedges' g = 3.90 from 98 "
        "participants is implausibly large: check that the SDs are not standard errors (SE = SD / sqrt(n))"
    ],
    "timepoint_beyond_duration": [
        "extraction/spare2020.yaml:19: results[0].timepoint: timepoint '6 months' lies beyond the study's "
        "duration '3 months' (26 vs 13 weeks)"
    ],
    "binary_with_means": [
        "extraction/spare2020.yaml:19: results[0].form: form is binary, but this looks like continuous data "
        "(n, mean, sd): use `form: continuous` (accepted: continuous, binary, effect, pooled, not_reported)"
    ],
    "disagree_marker": [
        "extraction/spare2020.yaml:20: results[0].intervention.mean: unresolved disagreement from "
        "`peerevidence reconcile` (DISAGREE: 30.1 (a) vs 30.2 (b)); keep the value the source supports and "
        "note the choice under extraction.provenance"
    ],
    "yaml_indented_too_far": [
        "extraction/spare2020.yaml:5: malformed YAML: this line is indented more than the key above it, "
        "which already has a value; line it up with that key, or give that key no value on its own line "
        "(parser: mapping values are not allowed here)"
    ],
}


def test_every_fixture_has_its_expectation():
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cross_check_fixture_gives_exactly_its_lines(tmp_path, name):
    root = make_project(tmp_path)
    shutil.copyfile(FIXTURES / f"{name}.yaml", root / SPARE_FILE)
    assert problems(root) == EXPECTED[name]


def test_an_sd_like_an_se_is_an_error_under_strict(tmp_path):
    root = make_project(tmp_path)
    shutil.copyfile(FIXTURES / "sd_looks_like_se.yaml", root / SPARE_FILE)
    assert validate(root).code == 0
    strict = validate(root, "--strict")
    assert strict.code == 1
    assert "results[0].control.sd: SD 0.79 looks like a standard error" in strict.out


def test_the_instruments_usual_sd_is_compared_too(tmp_path):
    root = make_project(tmp_path)
    shutil.copyfile(FIXTURES / "sd_looks_like_se.yaml", root / SPARE_FILE)
    outcomes = read(root, "evidence/outcomes.yaml").replace(
        "{name: Herth Hope Index, direction: higher_is_better, aliases: [HHI]}",
        "{name: Herth Hope Index, direction: higher_is_better, aliases: [HHI],"
        " usual_sd: {value: 5.9, source: {locator: Table 1, snippet: 'HHI SD 5.9'}}}",
    )
    write(root, "evidence/outcomes.yaml", outcomes)
    assert problems(root) == [
        "warning: extraction/spare2020.yaml:21: results[0].control.sd: SD 0.79 looks like a standard error: "
        "the other arm's SD (5.2) is 6.6 times it and the instrument's usual SD (5.9) is 7.5 times it, "
        "close to sqrt(n) = 6.9; check the source"
    ]


def test_printed_decimals_read_from_the_line():
    from peerevidence.records.rules import printed_decimals, weeks_in

    assert printed_decimals(0.5, "    reported: {measure: g, estimate: 0.50, se: 0.1}", "estimate") == 2
    assert printed_decimals(8.0, "estimate: 8.0", "estimate") == 1
    assert printed_decimals(8.0, None, None) == 0
    assert printed_decimals(0.113364492552044) == 15
    assert weeks_in("post-intervention (8 weeks) and 6-month follow-up") == pytest.approx(26.0)
    assert weeks_in("end of follow-up") is None


def test_one_pass_reports_schema_and_cross_file_problems_together(tmp_path):
    root = make_project(tmp_path)
    text = (
        read(root, "extraction/spare2020.yaml")
        if (root / SPARE_FILE).exists()
        else __import__("projectkit").SPARE_RECORD
    )
    # a schema error (negative SD) and two cross-file errors (unknown outcome, unknown ref)
    text = text.replace("sd: 5.5}", "sd: -5.5}").replace("outcome: hope", "outcome: hopes")
    text = text.replace("source: {locator: Table 2,", "source: {ref: nosuchkey, locator: Table 2,")
    write(root, SPARE_FILE, text)
    found = problems(root)
    assert any("results[0].control.sd: must be > 0" in p for p in found), found
    assert any("results[0].outcome: 'hopes' is not an outcome" in p for p in found), found
    assert any("results[0].source.ref: 'nosuchkey' is not a key in references.bib" in p for p in found), found
