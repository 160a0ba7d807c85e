"""Outputs that cannot be written are refused up front, in one line (issue 13, defect 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from peerevidence.cli import main; main()"]
MINIMAL = Path(__file__).resolve().parents[1] / "data" / "minimal"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("target", ["/proc/x.md", "/nonexistent-folder/x.md"])
def test_coverage_out_that_cannot_be_written_is_a_usage_error(target):
    proc = run("coverage", "--project", str(MINIMAL), "--out", target)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"--out {target}: ") and "internal error" not in proc.stderr


def test_pool_many_checks_its_output_before_fitting(tmp_path):
    data = tmp_path / "long.csv"
    data.write_text("analysis,study,yi,vi\nx,a,0.1,0.04\nx,b,0.2,0.05\n")
    proc = run("pool-many", str(data), "--out", "/proc/out.jsonl")
    assert proc.returncode == 2 and proc.stderr.startswith("--out /proc/out.jsonl: cannot write there")


def test_reports_being_a_file_is_one_line(tmp_path):
    import shutil

    project = Path(shutil.copytree(MINIMAL, tmp_path / "p"))
    (project / "reports").write_text("not a folder")
    proc = run("fit", "--project", str(project), "-q")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "reports" in proc.stderr and "internal error" not in proc.stderr
