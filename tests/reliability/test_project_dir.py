"""Defect 13: a missing `--project` directory exited 1 (the README promises 2 for usage
errors), and outside a project `validate` printed four "file not found" lines."""

from __future__ import annotations

from projectkit import make_project

from .clirun import run


def test_missing_project_directory_is_a_usage_error(tmp_path):
    proc = run("validate", "--project", tmp_path / "nope")
    assert proc.returncode == 2
    assert proc.stderr == f"{tmp_path / 'nope'}: project directory not found\n"


def test_outside_a_project_one_line_and_exit_2(tmp_path):
    proc = run("validate", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        ".: this is not a peerevidence project (no evidence/change_model.yaml); use --project DIR\n"
    )


def test_fit_outside_a_project_is_a_usage_error(tmp_path):
    proc = run("fit", "--project", tmp_path)
    assert proc.returncode == 2
    assert "this is not a peerevidence project" in proc.stderr


def test_project_missing_one_evidence_file_still_gets_located_errors(tmp_path):
    root = make_project(tmp_path)
    (root / "evidence" / "change_model.yaml").unlink()
    proc = run("validate", "--project", root)
    assert proc.returncode == 1
    assert "evidence/change_model.yaml: file not found" in proc.stdout.splitlines()
