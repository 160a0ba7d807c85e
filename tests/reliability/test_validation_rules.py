"""Defect 11 (accepted without error) and the per-outcome "no data" warnings.

11: a self-loop edge; a node that is its own parent (it vanished from the diagram); two
conflicting certainty overrides for one outcome; the date 2026-13-45.
Also: one warning per outcome without data contradicted the report; now one summary line
says "no poolable data" and lists the outcomes.
"""

from __future__ import annotations

from projectkit import SPARE_FILE, SPARE_RECORD, edit, line_no, make_project, problems, read, write

CM = "evidence/change_model.yaml"
OVERRIDE = """\
  - outcome: hope
    rating: {rating}
    reason: reviewers' judgement
    by: tests
    date: "2024-0{month}-01"
"""


def test_self_loop_edge_is_an_error(tmp_path):
    root = make_project(tmp_path)
    edit(root, CM, "    from: hope\n    to: symptoms\n", "    from: hope\n    to: hope\n")
    line = [i for i, t in enumerate(read(root, CM).splitlines(), 1) if t == "    to: hope"][1]
    assert f"{CM}:{line}: edges[1].to: edge 'E02' goes from 'hope' to itself" in problems(root)


def test_node_that_is_its_own_parent_is_an_error(tmp_path):
    root = make_project(tmp_path)
    edit(root, CM, "    kind: process_outcome\n", "    kind: process_outcome\n    parent: hope\n")
    line = line_no(root, CM, "parent: hope")
    assert f"{CM}:{line}: nodes[1].parent: node 'hope' is its own parent" in problems(root)


def test_parent_cycle_is_an_error(tmp_path):
    root = make_project(tmp_path)
    edit(root, CM, "    label: Symptoms\n", "    label: Symptoms\n    parent: readmission\n")
    edit(root, CM, "    label: Readmission\n", "    label: Readmission\n    parent: symptoms\n")
    found = [p for p in problems(root) if "cycle" in p]
    assert len(found) == 2
    assert found[0].endswith("nodes[2].parent: parents form a cycle (symptoms -> readmission -> symptoms)")


def test_two_overrides_for_one_outcome_are_an_error(tmp_path):
    root = make_project(tmp_path)
    text = "overrides:\n" + OVERRIDE.format(rating="low", month=1) + OVERRIDE.format(rating="high", month=2)
    write(root, "evidence/certainty.yaml", text)
    lines = [
        i for i, t in enumerate(read(root, "evidence/certainty.yaml").splitlines(), 1) if "outcome:" in t
    ]
    assert (
        f"evidence/certainty.yaml:{lines[1]}: overrides[1].outcome: a second override for outcome 'hope' "
        "(first: overrides[0]); keep one"
    ) in problems(root)


def test_one_override_is_fine(tmp_path):
    root = make_project(tmp_path)
    write(root, "evidence/certainty.yaml", "overrides:\n" + OVERRIDE.format(rating="low", month=1))
    assert problems(root) == []


def test_impossible_date_in_a_record_is_an_error(tmp_path):
    root = make_project(tmp_path)
    write(root, SPARE_FILE, SPARE_RECORD.replace('date: "2024-01-01"', 'date: "2026-13-45"'))
    line = line_no(root, SPARE_FILE, "2026-13-45")
    assert (
        f"{SPARE_FILE}:{line}: extraction.date: must be a calendar date written YYYY-MM-DD (got '2026-13-45')"
    ) in problems(root)


def test_impossible_date_in_an_override_is_an_error(tmp_path):
    root = make_project(tmp_path)
    write(root, "evidence/certainty.yaml", "overrides:\n" + OVERRIDE.format(rating="low", month=2).replace(
        "2024-02-01", "2024-02-30"))  # fmt: skip
    assert any("overrides[0].date: must be a calendar date" in p for p in problems(root))


def test_outcomes_without_data_give_one_summary_line(tmp_path):
    root = make_project(tmp_path)
    extra = "".join(
        f"\n  - id: {oid}\n    label: {oid}\n    node: hope\n    measure: SMD\n    direction: higher_is_better\n"
        for oid in ("wellbeing", "loneliness", "stigma")
    )
    write(root, "evidence/outcomes.yaml", read(root, "evidence/outcomes.yaml") + extra)
    warnings = [p for p in problems(root) if p.startswith("warning: evidence/outcomes.yaml")]
    assert warnings == [
        "warning: evidence/outcomes.yaml: outcomes: no poolable data in any record for 3 outcome(s): "
        "wellbeing, loneliness, stigma"
    ]
