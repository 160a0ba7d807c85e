"""The public API: what ``import peerevidence`` promises, and that it stays cheap to import."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import peerevidence as pe

PUBLIC = {
    "AnalysisFit",
    "DataError",
    "EvidenceBase",
    "Findings",
    "FitFailed",
    "FitSummary",
    "LockBusy",
    "PeerEvidenceError",
    "ProjectRun",
    "RecordError",
    "ReportResult",
    "RunResult",
    "Synthesis",
    "UsageError",
    "ValidationFailed",
    "evidence_table",
    "load_fits",
    "load_project",
    "pool",
    "render_report",
    "run_project",
    "synthesise",
    "validate_project",
}


def test_all_is_exactly_the_documented_api_and_every_name_resolves():
    assert set(pe.__all__) == PUBLIC
    for name in pe.__all__:
        assert getattr(pe, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pe.nope  # type: ignore[attr-defined]


def test_public_functions_have_numpydoc_docstrings():
    for name in ("pool", "run_project", "validate_project"):
        doc = getattr(pe, name).__doc__ or ""
        assert "Parameters\n    ----------" in doc and "Returns\n    -------" in doc, name


def test_importing_the_package_loads_neither_pandas_nor_a_sampler():
    code = "import sys, peerevidence; print(sorted(m for m in ('pandas', 'pymc', 'nutpie', 'pytensor') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_errors_share_one_base_class_with_exit_codes():
    assert issubclass(pe.UsageError, pe.PeerEvidenceError) and pe.UsageError.exit_code == 2
    for error in (pe.DataError, pe.RecordError, pe.ValidationFailed, pe.LockBusy, pe.FitFailed):
        assert issubclass(error, pe.PeerEvidenceError)


@pytest.mark.slow
def test_pool_on_a_data_frame_matches_the_cli_projection_and_metafor():
    frame = pd.DataFrame({"study": ["a", "b"], "yi": [0.1, 0.3], "vi": [0.04, 0.05]})
    fit = pe.pool(frame, measure="GEN", draws=500, seed=3)
    out = fit.to_dict()
    assert list(out) == [
        "k", "measure", "mu", "tau", "theta_new", "p_mu_gt_0", "theta", "diagnostics", "exact", "reml", "priors",
    ]  # fmt: skip
    # metafor 3.8-1: rma(c(0.1, 0.3), c(0.04, 0.05), method = "REML") gives tau2 = 0, mu = 0.188889
    assert out["reml"]["tau2"] == pytest.approx(0.0, abs=1e-10)
    assert out["reml"]["mu"] == pytest.approx((0.1 / 0.04 + 0.3 / 0.05) / (1 / 0.04 + 1 / 0.05), abs=1e-10)
    assert fit.ok


def test_project_functions_take_a_string_path(tmp_path):
    import shutil

    from projectkit import MINIMAL

    root = shutil.copytree(MINIMAL, tmp_path / "p")
    base, findings = pe.validate_project(str(root))
    assert findings.errors == [] and len(base.records) == 3
    loaded, errors = pe.load_project(str(root))
    assert errors == [] and sorted(loaded.records) == sorted(base.records)
    with pytest.raises(pe.DataError, match="no current fit"):
        pe.load_fits(str(root))  # never fitted: a located error, not an AttributeError
