"""`make run` failed at once when another process held the dpkg lock: every apt step waits."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from projectkit import REPO_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_every_apt_step_waits_for_the_lock():
    proc = subprocess.run(
        ["make", "-n", "-B", "graphviz", "chromium"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = re.findall(r"apt-get[^;&|}]*", proc.stdout)
    assert len(calls) >= 4
    for call in calls:
        assert "-o DPkg::Lock::Timeout=600" in call, call
