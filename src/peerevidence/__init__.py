"""peerevidence: a reproducible, checkable evidence base for a change model.

The pipeline, one folder per stage, each consuming the previous stage's types::

    records/    files -> EvidenceBase + findings        load_project, validate_project
    pooling/    records -> evidence table -> analyses -> fits (FitSummary), ad-hoc pools
                                                        evidence_table, load_fits, pool
    stats/      pure numerics: effect sizes, priors, REML, exact posterior, the PyMC model
    synthesis/  fits -> certainty, sensitivity, paths, gaps (Synthesis)    synthesise
    report/     fits + synthesis -> HTML                render_report
    run.py      validate -> fit -> synthesise -> render, lock held        run_project

Quick use::

    import pandas as pd, peerevidence as pe
    fit = pe.pool(pd.DataFrame({"study": ["a", "b"], "yi": [0.1, 0.3], "vi": [0.04, 0.05]}),
                  measure="GEN")
    fit.to_dict()["reml"]

    done = pe.run_project("path/to/project")     # the same as `peerevidence run`

Heavy modules (pandas, the sampler) load on first use, so ``import peerevidence`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from peerevidence.errors import (
    DataError,
    FitFailed,
    LockBusy,
    PeerEvidenceError,
    RecordError,
    UsageError,
    ValidationFailed,
)

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.adhoc import pool
    from peerevidence.pooling.fitting import AnalysisFit, RunResult, load_fits
    from peerevidence.pooling.table import evidence_table
    from peerevidence.records.project import EvidenceBase, load_project
    from peerevidence.records.rules import Findings, validate_project
    from peerevidence.run import ProjectRun, ReportResult, render_report, run_project
    from peerevidence.stats.summary import FitSummary
    from peerevidence.synthesis import Synthesis, synthesise

_LAZY = {
    "AnalysisFit": "peerevidence.pooling.fitting",
    "EvidenceBase": "peerevidence.records.project",
    "Findings": "peerevidence.records.rules",
    "FitSummary": "peerevidence.stats.summary",
    "ProjectRun": "peerevidence.run",
    "ReportResult": "peerevidence.run",
    "RunResult": "peerevidence.pooling.fitting",
    "Synthesis": "peerevidence.synthesis",
    "evidence_table": "peerevidence.pooling.table",
    "load_fits": "peerevidence.pooling.fitting",
    "load_project": "peerevidence.records.project",
    "pool": "peerevidence.pooling.adhoc",
    "render_report": "peerevidence.run",
    "run_project": "peerevidence.run",
    "synthesise": "peerevidence.synthesis",
    "validate_project": "peerevidence.records.rules",
}

__all__ = [
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
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'peerevidence' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
