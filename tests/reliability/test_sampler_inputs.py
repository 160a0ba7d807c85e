"""Absurd inputs are refused before sampling: the sampler once aborted the process (exit 139,
a Rust panic) on `pool --prior-tau halfnormal:1e999` or on yi = vi = 1e300 (issue 13, defect 2)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from peerevidence.errors import DataError
from peerevidence.stats.guards import check_fit_inputs, check_prior_parameters

CLI = [sys.executable, "-c", "from peerevidence.cli import main; main()"]


@pytest.mark.parametrize(
    ("yi", "vi", "message"),
    [
        (1e300, 1e300, "effect 1e+300 is not usable"),
        (float("inf"), 0.1, "effect inf is not usable"),
        (0.1, 1e300, "variance 1e+300 is not usable"),
        (0.1, 0.0, "variance 0 is not usable"),
    ],
)
def test_unusable_effects_and_variances_are_named(yi, vi, message):
    with pytest.raises(DataError, match=re.escape(message)):
        check_fit_inputs(["a", "b"], np.array([0.2, yi]), np.array([0.1, vi]), "x.csv")


def test_tiny_but_positive_variances_are_accepted():
    check_fit_inputs(["a", "b"], np.array([0.2, 0.3]), np.array([1e-10, 0.1]))


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e-320, 1e13])
def test_unusable_prior_parameters_are_named(value):
    with pytest.raises(DataError, match="is not usable"):
        check_prior_parameters("halfnormal:x", [value])


@pytest.mark.parametrize(
    ("rows", "args", "code", "message"),
    [
        ("a,1e300,1e300\nb,0.2,0.1\n", [], 1, "effect 1e+300 is not usable"),
        ("a,0.1,0.04\nb,0.2,0.1\n", ["--prior-tau", "halfnormal:1e999"], 2, "must be a finite number"),
    ],
)
def test_pool_refuses_before_sampling_with_one_line(tmp_path, rows, args, code, message):
    path = tmp_path / "x.csv"
    path.write_text("study,yi,vi\n" + rows)
    proc = subprocess.run([*CLI, "pool", str(path), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
