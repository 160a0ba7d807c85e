"""A project on disk and everything read from it.

Layout (any directory laid out like this works with ``--project DIR``)::

    references.bib
    evidence/change_model.yaml   nodes, edges, quotes
    evidence/outcomes.yaml       outcomes, their measure, direction and instruments
    evidence/analysis.yaml       priors, sampler, design bias, MIDs     (optional)
    evidence/certainty.yaml      reviewers' certainty overrides          (optional)
    evidence/searches.yaml       the search log, for a PRISMA 2020 flow  (optional)
    extraction/<bibkey>.yaml     one record per study
    reports/                     generated output

:func:`load_project` reads every file, checks each against its schema and returns an
:class:`EvidenceBase` together with every problem found (it never stops at the first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from peerevidence.errors import RecordError, UsageError
from peerevidence.records.bib import Bibliography, load_bibliography
from peerevidence.records.messages import validate_model
from peerevidence.records.schema import (
    AnalysisConfig,
    CertaintyOverrides,
    ChangeModel,
    OutcomeCatalogue,
    Record,
    SearchLog,
)
from peerevidence.records.yamlio import LineIndex, load_yaml

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @property
    def bib(self) -> Path:
        return self.root / "references.bib"

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def extraction(self) -> Path:
        return self.root / "extraction"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def change_model(self) -> Path:
        return self.evidence / "change_model.yaml"

    @property
    def outcomes(self) -> Path:
        return self.evidence / "outcomes.yaml"

    @property
    def analysis(self) -> Path:
        return self.evidence / "analysis.yaml"

    @property
    def certainty(self) -> Path:
        return self.evidence / "certainty.yaml"

    @property
    def searches(self) -> Path:
        return self.evidence / "searches.yaml"

    def rel(self, path: Path) -> str:
        """``path`` relative to the project root: as named (a symlink is not followed), else
        resolved, else as given."""
        import os

        named = Path(os.path.abspath(path))
        for base in (Path(os.path.abspath(self.root)), self.root.resolve()):
            try:
                return named.relative_to(base).as_posix()
            except ValueError:
                pass
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def record_path(self, key: str) -> Path:
        """``extraction/<key>.yaml``, refused (UsageError) unless ``key`` is a safe file name
        and the path stays inside the project."""
        from peerevidence.atomic import OutsideProject, inside
        from peerevidence.errors import UsageError
        from peerevidence.records.bib import SAFE_KEY_FORMS, key_problem

        problem = key_problem(key)
        if problem:
            raise UsageError(f"{self.rel(self.bib)}: {problem} (accepted: {SAFE_KEY_FORMS})")
        try:
            return inside(self.root, self.extraction / f"{key}.yaml")
        except OutsideProject as exc:
            raise UsageError(str(exc)) from None

    def record_files(self) -> list[Path]:
        if not self.extraction.is_dir():
            return []
        return sorted(p for p in self.extraction.iterdir() if p.suffix in (".yaml", ".yml"))


@dataclass
class LoadedRecord:
    record: Record
    file: str
    lines: LineIndex


@dataclass
class EvidenceBase:
    paths: ProjectPaths
    bib: Bibliography
    records: dict[str, LoadedRecord] = field(default_factory=dict)
    change_model: ChangeModel | None = None
    change_model_lines: LineIndex = field(default_factory=LineIndex)
    outcomes: OutcomeCatalogue | None = None
    outcome_lines: LineIndex = field(default_factory=LineIndex)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    analysis_lines: LineIndex = field(default_factory=LineIndex)
    certainty: CertaintyOverrides = field(default_factory=CertaintyOverrides)
    certainty_lines: LineIndex = field(default_factory=LineIndex)
    # records that parsed as YAML but failed their schema: stem -> (data, lines, file), so
    # cross-file rules and placeholder checks still run on them in the same pass
    unloaded: dict[str, tuple[object, LineIndex, str]] = field(default_factory=dict)
    searches: SearchLog | None = None
    searches_lines: LineIndex = field(default_factory=LineIndex)

    @property
    def root(self) -> Path:
        return self.paths.root


@dataclass(frozen=True)
class Wording:
    """The project's words for what is compared (never hard-coded in the package)."""

    intervention: str
    comparator: str


def intervention_node(cm: ChangeModel | None) -> str:
    """The change model's intervention node: ``meta.intervention_node`` or the first node of
    kind ``intervention`` ("" when there is none)."""
    if cm is None:
        return ""
    if cm.meta.intervention_node:
        return cm.meta.intervention_node
    return next((n.id for n in cm.nodes if n.kind == "intervention"), "")


def wording(cm: ChangeModel | None) -> Wording:
    """``meta.intervention`` / ``meta.comparator``, else the intervention node's label and
    "control"."""
    if cm is None:
        return Wording("the intervention", "control")
    node = intervention_node(cm)
    label = next((n.label for n in cm.nodes if n.id == node), None)
    intervention = cm.meta.intervention or (label[:1].lower() + label[1:] if label else "the intervention")
    return Wording(intervention, cm.meta.comparator or "control")


def _load_model(
    model: type[M],
    path: Path,
    display: str,
    errors: list[RecordError],
    required: bool,
    cache_dir: Path | None = None,
    raw: dict[str, Any] | None = None,
    root: Path | None = None,
) -> tuple[M | None, LineIndex]:
    if not path.exists() and not path.is_symlink():
        if required:
            errors.append(RecordError(display, None, "", "file not found"))
        return None, LineIndex()
    try:
        data, lines = load_yaml(path, display, cache_dir, root)
    except RecordError as err:
        errors.append(err)
        return None, LineIndex()
    obj, problems = validate_model(model, data, display, lines)
    errors.extend(problems)
    if obj is None and raw is not None:
        raw["data"] = data
    return obj, lines  # type: ignore[return-value]


def load_project(root: str | Path, cache: bool = True) -> tuple[EvidenceBase, list[RecordError]]:
    """Read a whole project; return what could be read and every problem met on the way.

    ``cache`` keeps parsed YAML under ``reports/.cache/yaml`` (keyed by content)."""
    root = Path(root)
    paths = ProjectPaths(root)
    errors: list[RecordError] = []
    if not root.is_dir():
        raise UsageError(f"{root}: project directory not found")
    if not paths.evidence.exists() and not paths.evidence.is_symlink():
        raise UsageError(
            f"{root}: this is not a peerevidence project (no evidence/change_model.yaml); use --project DIR"
        )
    cache_dir = paths.reports / ".cache" / "yaml" if cache else None
    bib, bib_errors = load_bibliography(paths.bib, paths.rel(paths.bib), root)
    errors.extend(bib_errors)
    base = EvidenceBase(paths=paths, bib=bib)

    def evidence_file(model: type[M], path: Path, required: bool) -> tuple[M | None, LineIndex]:
        """Every evidence file goes through the same checks (regular file, size, inside)."""
        return _load_model(
            model, path, paths.rel(path), errors, required=required, cache_dir=cache_dir, root=root
        )

    base.change_model, base.change_model_lines = evidence_file(ChangeModel, paths.change_model, True)
    base.outcomes, base.outcome_lines = evidence_file(OutcomeCatalogue, paths.outcomes, True)
    analysis, base.analysis_lines = evidence_file(AnalysisConfig, paths.analysis, False)
    if analysis is not None:
        base.analysis = analysis
    certainty, base.certainty_lines = evidence_file(CertaintyOverrides, paths.certainty, False)
    if certainty is not None:
        base.certainty = certainty
    base.searches, base.searches_lines = evidence_file(SearchLog, paths.searches, False)

    if not paths.extraction.is_dir():
        errors.append(RecordError(paths.rel(paths.extraction), None, "", "directory not found"))
    for path in paths.record_files():
        display = paths.rel(path)
        raw: dict[str, Any] = {}
        record, lines = _load_model(
            Record, path, display, errors, required=True, cache_dir=cache_dir, raw=raw, root=root
        )
        if record is not None:
            base.records[path.stem] = LoadedRecord(record, display, lines)
        elif "data" in raw:
            base.unloaded[path.stem] = (raw["data"], lines, display)
    return base, errors
