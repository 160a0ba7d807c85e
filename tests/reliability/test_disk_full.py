"""Disk full during `run`: one clear line, exit 1, no traceback, no crash, nothing torn.

Needs a small tmpfs, so it runs as root only (as in CI); elsewhere it is skipped and says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

MINIMAL = Path(__file__).resolve().parents[1] / "data" / "minimal"
CLI = [sys.executable, "-c", "from peerevidence.cli import main; main()"]


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_run_on_a_full_disk_says_so_in_one_line(tiny_disk):
    project = Path(shutil.copytree(MINIMAL, tiny_disk / "p"))
    proc = subprocess.run(
        [*CLI, "run", "--project", str(project), "-q"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 1, proc.stderr  # not a signal (139 was a segfault)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("no space left on the device while writing ")
    assert lines[0].endswith("nothing was replaced")
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    leftovers = [p.name for p in (project / "reports").rglob("*.tmp")]
    assert leftovers == []
