"""Defects 6, 12 and 15: inputs that are not small regular files inside the project.

6: a FIFO named ``*.yaml`` in extraction/ made ``validate`` hang forever.
12: a 50 MB record was parsed completely (about a minute, 750 MB) before being refused.
15: a record symlinked to a file outside the project (e.g. /etc/passwd) was read.
"""

from __future__ import annotations

import os
import time

import pytest

from peerevidence.records.files import MAX_BIB_BYTES, MAX_YAML_BYTES
from projectkit import SPARE_FILE, SPARE_RECORD, make_project, problems, write

from .clirun import run


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_record_is_a_located_error_not_a_hang(tmp_path):
    root = make_project(tmp_path)
    os.mkfifo(root / "extraction" / "spare2020.yaml")
    proc = run("validate", "--project", root, timeout=60)
    assert proc.returncode == 1
    assert f"{SPARE_FILE}: is a named pipe (FIFO), not a regular file" in proc.stdout.splitlines()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_evidence_file_is_a_located_error(tmp_path):
    root = make_project(tmp_path)
    (root / "evidence" / "analysis.yaml").unlink()
    os.mkfifo(root / "evidence" / "analysis.yaml")
    proc = run("validate", "--project", root, timeout=60)
    assert proc.returncode == 1
    assert "evidence/analysis.yaml: is a named pipe (FIFO), not a regular file" in proc.stdout


def test_directory_named_like_a_record_is_a_located_error(tmp_path):
    root = make_project(tmp_path)
    (root / "extraction" / "spare2020.yaml").mkdir()
    assert f"{SPARE_FILE}: is a directory, not a regular file" in problems(root)


def test_oversized_record_is_refused_before_parsing(tmp_path):
    root = make_project(tmp_path)
    # 50 MB of YAML: a long list, as in the adversarial corpus
    body = SPARE_RECORD + "notes:\n" + "  - padding padding padding padding padding\n" * 1_200_000
    path = write(root, SPARE_FILE, body)
    assert path.stat().st_size > MAX_YAML_BYTES
    start = time.monotonic()
    found = problems(root)
    assert time.monotonic() - start < 20
    size_mb = path.stat().st_size / 1024 / 1024
    assert f"{SPARE_FILE}: file too large ({size_mb:g} MB; the limit is 2 MB)" in found


def test_record_at_the_limit_is_read(tmp_path):
    root = make_project(tmp_path)
    body = SPARE_RECORD + "# " + "x" * (MAX_YAML_BYTES - len(SPARE_RECORD) - 3) + "\n"
    write(root, SPARE_FILE, body)
    assert (root / SPARE_FILE).stat().st_size == MAX_YAML_BYTES
    assert not [p for p in problems(root) if "too large" in p]


def test_oversized_bibliography_is_refused(tmp_path):
    root = make_project(tmp_path)
    with open(root / "references.bib", "a", encoding="utf-8") as fh:
        fh.write("%" + "x" * (MAX_BIB_BYTES + 10) + "\n")
    assert any(p.startswith("references.bib: file too large") for p in problems(root))


def test_record_symlinked_outside_the_project_is_refused(tmp_path):
    root = make_project(tmp_path)
    outside = write(tmp_path, "outside/secret.yaml", SPARE_RECORD)
    (root / "extraction" / "spare2020.yaml").symlink_to(outside)
    found = [p for p in problems(root) if p.startswith(SPARE_FILE)]
    assert found == [
        f"{SPARE_FILE}: resolves outside the project (to {outside.resolve()}); "
        "inputs must be files inside the project"
    ]


def test_record_symlinked_to_etc_passwd_is_never_read(tmp_path):
    if not os.path.exists("/etc/passwd"):
        pytest.skip("no /etc/passwd")
    root = make_project(tmp_path)
    (root / "extraction" / "spare2020.yaml").symlink_to("/etc/passwd")
    proc = run("validate", "--project", root)
    assert proc.returncode == 1
    assert "root:" not in proc.stdout + proc.stderr
    assert f"{SPARE_FILE}: resolves outside the project" in proc.stdout


def test_evidence_file_symlinked_outside_is_refused(tmp_path):
    root = make_project(tmp_path)
    outside = tmp_path / "elsewhere.yaml"
    outside.write_bytes((root / "evidence" / "outcomes.yaml").read_bytes())
    (root / "evidence" / "outcomes.yaml").unlink()
    (root / "evidence" / "outcomes.yaml").symlink_to(outside)
    assert any(p.startswith("evidence/outcomes.yaml: resolves outside the project") for p in problems(root))


def test_symlink_inside_the_project_is_followed(tmp_path):
    root = make_project(tmp_path)
    write(root, "drafts/spare.yaml", SPARE_RECORD)
    (root / "extraction" / "spare2020.yaml").symlink_to(root / "drafts" / "spare.yaml")
    assert problems(root) == []


def test_search_log_symlinked_outside_is_refused(tmp_path):
    """The optional evidence/searches.yaml gets the same checks as every evidence file."""
    root = make_project(tmp_path)
    outside = write(tmp_path, "outside/searches.yaml", "searches: []\n")
    (root / "evidence" / "searches.yaml").symlink_to(outside)
    found = [p for p in problems(root) if p.startswith("evidence/searches.yaml")]
    assert found == [
        f"evidence/searches.yaml: resolves outside the project (to {outside.resolve()}); "
        "inputs must be files inside the project"
    ]
