"""The main job as one function: validate -> fit -> synthesise -> render, lock held throughout.

:func:`run_project` is what ``peerevidence run`` calls; :func:`render_report` is what
``peerevidence report`` calls. Both return typed results and print nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from peerevidence.errors import RecordError

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, Progress, RunResult
    from peerevidence.stats.model import CompiledModels
    from peerevidence.synthesis import Synthesis


@dataclass(frozen=True)
class ReportResult:
    """What :func:`render_report` did: where the report is and whether it was re-rendered."""

    index: Path
    rendered: bool  # False: nothing it depends on changed, the files were left as they were
    pages: int  # outcome pages written (0 when not re-rendered)
    synthesis: Synthesis | None  # None when not re-rendered


@dataclass(frozen=True)
class ProjectRun:
    """The typed result of :func:`run_project`."""

    fits: RunResult
    report: ReportResult | None
    warnings: tuple[RecordError, ...]

    @property
    def failed(self) -> list[AnalysisFit]:
        """Analyses whose MCMC summaries disagree with the exact posterior."""
        return self.fits.failed


def _overrides(draws: int | None, chains: int | None, seed: int | None) -> dict[str, int]:
    return {k: v for k, v in (("draws", draws), ("chains", chains), ("seed", seed)) if v is not None}


def run_project(
    project_dir: str | Path,
    *,
    outcomes: list[str] | None = None,
    force: bool = False,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    render: bool = True,
    progress: Progress | None = None,
    models: CompiledModels | None = None,
) -> ProjectRun:
    """Validate, fit, synthesise and render one project, holding its run lock throughout.

    Parameters
    ----------
    project_dir : str or Path
        The project: ``references.bib``, ``evidence/``, ``extraction/``.
    outcomes : list of str, optional
        Refit only these outcomes' analyses; current fits of the others are reused.
    force : bool
        Refit every analysis, ignoring stored fits.
    draws, chains, seed : int, optional
        Override the sampler settings of ``evidence/analysis.yaml``.
    render : bool
        Render the HTML report (skipped when nothing it depends on changed).
    progress : callable, optional
        ``progress(analysis_name, status, seconds)``; status is "total", "fitting",
        "fitted" or "reused".

    Returns
    -------
    ProjectRun

    Raises
    ------
    ValidationFailed
        The project has errors (all of them listed).
    UsageError
        An unknown outcome id, or no project at ``project_dir``.
    LockBusy
        Another run is writing to the project.
    """
    from peerevidence.pooling.fitting import fit_project, load_valid
    from peerevidence.pooling.store import run_lock

    base, warnings = load_valid(Path(project_dir))
    with run_lock(base.paths.reports):
        fits = fit_project(base, _overrides(draws, chains, seed), outcomes, force, progress, models)
        report = _render(fits) if render else None
    return ProjectRun(fits, report, tuple(warnings))


def render_report(project_dir: str | Path) -> ReportResult:
    """Render the report of a project from its stored fits (no sampling), under the lock.

    Raises DataError when a fit is missing or out of date (run :func:`run_project` first).
    """
    from peerevidence.pooling.fitting import load_fits
    from peerevidence.pooling.store import run_lock

    fits = load_fits(Path(project_dir))
    with run_lock(fits.base.paths.reports):
        return _render(fits)


def _render(result: RunResult) -> ReportResult:
    """Synthesise and render unless nothing the report depends on changed since the last
    render (its files are then left as they are: byte-identical by construction).
    The caller holds the run lock."""
    import warnings

    from peerevidence.interchange.exporters import write_exports
    from peerevidence.report.render import current_stamp, fingerprint, render, write_stamp
    from peerevidence.synthesis import synthesise
    from peerevidence.synthesis.changes import project_changes, record_certainty

    reports = result.base.paths.reports
    index = reports / "index.html"
    stamp = current_stamp(result, fingerprint(result))
    if stamp is not None:
        record_certainty(reports, stamp.get("certainty", {}))
        return ReportResult(index, False, 0, None)
    with warnings.catch_warnings():
        # numerical warnings of the exact quadrature's far tails carry no information
        warnings.simplefilter("ignore", RuntimeWarning)
        synthesis = synthesise(result)
    certainty = {oid: c.final for oid, c in synthesis.certainty.items()}
    record_certainty(reports, certainty)
    written = render(result, synthesis, project_changes(reports))
    written += write_exports(result.base, result.table, reports)
    write_stamp(result, fingerprint(result), certainty)
    pages = sum(1 for p in written if p.parent.name == "outcomes")
    return ReportResult(index, True, pages, synthesis)
