"""The one owner of the ``reports/`` layout: every file the report writes, and where.

::

    reports/index.html                    key findings, Summary of Findings, diagram, evidence
                                          by link, gaps, sensitivity, paths, changes, provenance
    reports/outcomes/<analysis>.html      one page per analysis
    reports/references.html               every entry of references.bib
    reports/evidence_table.csv            one row per study x result
    reports/summary_of_findings.csv       the Summary of Findings table
    reports/prisma2020.csv                the PRISMA 2020 flow, in the PRISMA2020 R package's layout
    reports/.cache/svg/<hash>.svg         drawn figures, by a hash of their inputs
    reports/.cache/jinja/                 compiled templates
    reports/.cache/report.json            the stamp that lets an unchanged rerun skip rendering
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from peerevidence.errors import DataError

SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*(--[a-z][a-z0-9_]*)?$")


def safe_page(reports: Path, name: str) -> Path:
    """``reports/outcomes/<name>.html``, refusing any name that could leave ``reports/``."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise DataError(
            f"refusing to write a report page for analysis {name!r}: analysis names must be "
            "lower-case identifiers (letters, digits, '_', and one '--variant')"
        )
    outcomes_dir = (reports / "outcomes").resolve()
    target = (outcomes_dir / f"{name}.html").resolve()
    if target.parent != outcomes_dir:
        raise DataError(f"refusing to write {target}: outside {outcomes_dir}")
    return reports / "outcomes" / f"{name}.html"


@dataclass(frozen=True)
class ReportPaths:
    root: Path  # the project's reports/ directory

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    @property
    def references(self) -> Path:
        return self.root / "references.html"

    @property
    def evidence_csv(self) -> Path:
        return self.root / "evidence_table.csv"

    @property
    def sof_csv(self) -> Path:
        return self.root / "summary_of_findings.csv"

    @property
    def prisma_csv(self) -> Path:
        return self.root / "prisma2020.csv"

    @property
    def outcomes(self) -> Path:
        return self.root / "outcomes"

    def outcome(self, name: str) -> Path:
        return safe_page(self.root, name)

    @property
    def cache(self) -> Path:
        return self.root / ".cache"

    @property
    def svg_cache(self) -> Path:
        return self.cache / "svg"

    @property
    def jinja_cache(self) -> Path:
        return self.cache / "jinja"

    @property
    def stamp(self) -> Path:
        return self.cache / "report.json"

    def pages(self) -> list[Path]:
        """The files every render writes, whatever the analyses."""
        return [self.index, self.references, self.evidence_csv, self.sof_csv, self.prisma_csv]

    def files(self, analyses: Iterable[str]) -> list[Path]:
        """Every file a render with these analyses writes (caches aside)."""
        return self.pages() + [self.outcome(name) for name in sorted(analyses)]
