"""peerevidence init: a new evidence base that validates at once, with a real example record."""

from __future__ import annotations

import json
import math

from peerevidence.records.project import load_project
from peerevidence.stats import effects
from projectkit import DATA, problems, run_cli


def test_init_writes_a_project_that_validates_without_a_problem(tmp_path):
    root = tmp_path / "bcg"
    result = run_cli("init", root, "--intervention", "BCG vaccine", "--comparator", "no vaccine")
    assert result.code == 0, result.err
    assert problems(root) == []
    base, _ = load_project(root)
    meta = base.change_model.meta
    assert (meta.intervention, meta.comparator, meta.intervention_node) == (
        "BCG vaccine",
        "no vaccine",
        "bcg_vaccine",
    )
    assert [n.id for n in base.change_model.nodes if n.kind == "intervention"] == ["bcg_vaccine"]
    assert (root / "README.md").read_text().startswith("# BCG vaccine versus no vaccine")


def test_the_example_record_holds_dat_bcg_trial_1_exactly(tmp_path):
    root = tmp_path / "p"
    run_cli("init", root)
    base, _ = load_project(root)
    result = base.records["aronson1948"].record.results[0]
    assert (result.intervention.events, result.intervention.total) == (4, 123)
    assert (result.control.events, result.control.total) == (11, 139)
    # metafor 3.8.1 escalc("RR") of dat.bcg row 1 (tests/data/metafor_reference.json)
    ref = json.loads((DATA / "metafor_reference.json").read_text())["bcg"]
    y, v = effects.log_rr(4, 119, 11, 128)
    assert math.isclose(float(y), ref["yi"][0], abs_tol=1e-12)
    assert math.isclose(float(v), ref["vi"][0], abs_tol=1e-12)


def test_neutral_defaults_and_odd_wording(tmp_path):
    root = tmp_path / "p"
    assert run_cli("init", root, "--intervention", 'a "quoted": {thing}').code == 0
    assert problems(root) == []
    other = tmp_path / "q"
    assert run_cli("init", other).code == 0
    text = (other / "evidence/change_model.yaml").read_text()
    assert 'intervention: "the intervention"' in text and 'comparator: "the comparator"' in text


def test_init_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("init", tmp_path)
    assert result.code == 2
    assert (
        result.err
        == f"{tmp_path}: directory is not empty; `init` writes only into a new or empty directory\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
