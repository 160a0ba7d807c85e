"""peerevidence reconcile: two extractions of one study compared field by field; Cohen's kappa.

Fixtures (tests/data/reconcile/a, b): reviewer B differs from A in a number (the BPRS
intervention mean, 1.8 vs 1.9), a category (design, rct vs cluster_rct) and a missing result
(B has no hope result); B lists its results in another order, and writes 2.10 where A writes
2.1 (the same number).
"""

from __future__ import annotations

import shutil

import pytest

from peerevidence.records.reconcile import compare_dirs, compare_files, kappa
from projectkit import DATA, SPARE_FILE, make_project, problems, run_cli

A = DATA / "reconcile" / "a" / "spare2020.yaml"
B = DATA / "reconcile" / "b" / "spare2020.yaml"


def test_a_pair_differing_in_a_number_a_category_and_a_missing_result():
    comp = compare_files(A, B, "a.yaml", "b.yaml")
    assert comp.lines() == [
        "a.yaml:3 / b.yaml:3: design: 'rct' vs 'cluster_rct'",
        "a.yaml:17 / b.yaml:16: results[0]: result (hope, 6 months, Herth Hope Index) vs missing",
        "a.yaml:28 / b.yaml:21: results[1].intervention.mean (b: results[0].intervention.mean): 1.8 vs 1.9",
    ]
    assert not comp.agree


def test_the_cli_exits_1_when_they_differ_and_0_when_they_agree():
    differ = run_cli("reconcile", A, B)
    assert differ.code == 1
    assert len(differ.out.splitlines()) == 3
    same = run_cli("reconcile", A, A)
    assert (same.code, same.out) == (0, "")


def test_numbers_are_compared_exactly(tmp_path):
    b = tmp_path / "b.yaml"
    b.write_text(A.read_text().replace("mean: 30.1,", "mean: 30.10000001,"))
    assert compare_files(A, b, "a", "b").lines() == [
        "a:21 / b:21: results[0].intervention.mean: 30.1 vs 30.10000001"
    ]


def test_cohen_kappa_hand_computed():
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15:
    # p_o = 35/50 = 0.7; p_e = 0.5 x 0.6 + 0.5 x 0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    k = kappa("x", pairs)
    assert (k.n, k.observed, k.expected) == (50, pytest.approx(0.7), pytest.approx(0.5))
    assert k.kappa == pytest.approx(0.4)
    assert kappa("x", [("a", "a"), ("a", "a")]).kappa is None  # one category: undefined


def test_kappa_per_categorical_field_across_a_batch(tmp_path):
    # design over five studies: (rct, rct) x2, (rct, cohort), (cohort, cohort), (cohort, rct)
    # p_o = 3/5; marginals A: rct 3, cohort 2; B: rct 3, cohort 2; p_e = (9 + 4)/25 = 0.52;
    # kappa = (0.6 - 0.52) / 0.48 = 1/6
    designs = [("rct", "rct"), ("rct", "rct"), ("rct", "cohort"), ("cohort", "cohort"), ("cohort", "rct")]
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    for i, (da, db) in enumerate(designs):
        text = A.read_text()
        (tmp_path / "a" / f"s{i}.yaml").write_text(text.replace("design: rct", f"design: {da}"))
        (tmp_path / "b" / f"s{i}.yaml").write_text(text.replace("design: rct", f"design: {db}"))
    (tmp_path / "a" / "only_a.yaml").write_text(A.read_text())
    batch = compare_dirs(tmp_path / "a", tmp_path / "b")
    assert batch.only_a == ["only_a.yaml"] and not batch.agree
    ks = {k.field: k for k in batch.kappas()}
    assert ks["design"].kappa == pytest.approx(1 / 6)
    assert ks["design"].n == 5
    result = run_cli("reconcile", tmp_path / "a", tmp_path / "b")
    assert result.code == 1
    assert "kappa design: 0.167 (n = 5, observed agreement 0.600, expected 0.520)" in result.out


def test_the_consensus_record_marks_each_disagreement_and_does_not_validate(tmp_path):
    root = make_project(tmp_path)
    result = run_cli("reconcile", A, B, "--out", root / SPARE_FILE)
    assert result.code == 1
    text = (root / SPARE_FILE).read_text()
    assert "mean: 'DISAGREE: 1.8 (a) vs 1.9 (b)'" in text
    assert "extracted_by:\n  - reviewer A\n  - reviewer B" in text
    assert "provenance:" in text and "reconciled_by:" in text
    found = problems(root)
    assert any(
        p.startswith(f"{SPARE_FILE}:")
        and "results[1].intervention.mean: unresolved disagreement from `peerevidence reconcile` "
        "(DISAGREE: 1.8 (a) vs 1.9 (b))"
        in p
        for p in found
    ), found
    assert any("design: unresolved disagreement" in p for p in found), found
    assert any("extraction.reconciled_by: placeholder 'TODO'" in p for p in found), found


def test_a_resolved_consensus_validates(tmp_path):
    root = make_project(tmp_path)
    run_cli("reconcile", A, A, "--out", root / SPARE_FILE)
    text = (root / SPARE_FILE).read_text().replace("'TODO: who resolved the disagreements'", "tests")
    (root / SPARE_FILE).write_text(text)
    assert problems(root) == []


def test_bad_input_is_one_located_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\n  design: rct\n")
    result = run_cli("reconcile", bad, A)
    assert result.code == 1
    assert result.err.startswith(f"{bad}:2: malformed YAML: ")
    assert "Traceback" not in result.err
    shutil.rmtree(tmp_path)
