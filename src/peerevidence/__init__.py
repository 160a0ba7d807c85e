"""peerevidence: a reproducible, checkable evidence base for the peer-worker change model.

Pipeline, one module per stage::

    project.load_project   files -> EvidenceBase (records, change model, outcomes, settings)
    validate.check         cross-file rules -> Report(errors, warnings)
    table.evidence_table   records -> tidy DataFrame with harmonised effect sizes
    effects                summary data -> (yi, vi), metafor's conventions
    meta                   PyMC random-effects model per outcome (+ exact and REML lines)
    report                 results + change model -> HTML
"""

from peerevidence.errors import (
    DataError,
    FitFailed,
    LockBusy,
    PeerEvidenceError,
    RecordError,
    UsageError,
    ValidationFailed,
)
from peerevidence.records.project import EvidenceBase, load_project
from peerevidence.pooling.table import evidence_table
from peerevidence.records.rules import check, validate_project

__all__ = [
    "DataError",
    "EvidenceBase",
    "FitFailed",
    "LockBusy",
    "PeerEvidenceError",
    "RecordError",
    "UsageError",
    "ValidationFailed",
    "check",
    "evidence_table",
    "load_project",
    "validate_project",
]
__version__ = "0.1.0"
