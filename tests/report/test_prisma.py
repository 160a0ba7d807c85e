"""The PRISMA 2020 flow (report/prisma.py): counts from the records and, when present, the
search log; the CSV in the PRISMA2020 R package's layout; the SVG on the index page."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest

from peerevidence.records.project import load_project
from peerevidence.report.prisma import CSV_COLUMNS, prisma_counts, prisma_dot, prisma_rows
from peerevidence.report.render import render
from peerevidence.synthesis import Synthesis
from projectkit import SPARE_FILE, SPARE_RECORD, exact_result, make_project, write

# The PRISMA2020 package's template (inst/extdata/PRISMA.csv, PRISMA2020 1.1.1) starts with this header.
TEMPLATE_HEADER = "data,node,box,description,boxtext,tooltips,url,n"


@pytest.fixture
def project(tmp_path):
    root = make_project(tmp_path)
    write(
        root, SPARE_FILE, SPARE_RECORD + "exclude: Compares two kinds of the intervention, no control arm\n"
    )
    return root


def test_counts_from_records_with_their_exclusion_reasons(project):
    base, _ = load_project(project)
    counts = prisma_counts(base, {"trial2020", "cohort2019", "spare2020"})
    assert counts.records == 4
    assert counts.excluded == {"Compares two kinds of the intervention, no control arm": 1}
    assert counts.included == 3
    assert counts.pooled == 2  # an excluded study is never counted as pooled
    assert counts.search is None and "No search log" in counts.notes[0]
    rows = {r["data"]: r for r in prisma_rows(counts)}
    assert rows["dbr_assessed"]["n"] == "4" and rows["new_studies"]["n"] == "3"
    assert rows["dbr_excluded"]["n"] == "Compares two kinds of the intervention, no control arm, 1"
    assert rows["database_results"]["n"] == "NA" and rows["records_screened"]["n"] == "NA"  # not guessed


def test_counts_from_a_search_log_when_the_project_has_one(project):
    base, _ = load_project(project)
    flow = {
        "identified": {"database": 150, "register": 6, "other": 20},
        "duplicates_removed": 101,
        "screened": 75,
        "excluded_on_screening": 44,
        "sought_for_retrieval": 31,
        "not_retrieved": 8,
        "assessed_for_eligibility": 23,
        "excluded_with_reasons": {"Not a trial": 12},
        "reports_included": 11,
        "studies_included": 6,
    }
    base.searches = SimpleNamespace(prisma=lambda: flow)  # the hook evidence/searches.yaml will fill
    counts = prisma_counts(base, set())
    rows = {r["data"]: r for r in prisma_rows(counts)}
    assert rows["database_results"]["n"] == "150" and rows["citations_results"]["n"] == "20"
    assert rows["records_screened"]["n"] == "75" and rows["dbr_assessed"]["n"] == "23"
    assert rows["dbr_excluded"]["n"].startswith("Not a trial, 12; Compares two kinds")
    assert "Records screened\\n(n = 75)" in prisma_dot(counts)
    assert not counts.notes


def test_render_writes_the_csv_in_the_package_layout_and_the_svg(project):
    render(exact_result(project), Synthesis())
    text = (project / "reports" / "prisma2020.csv").read_text("utf-8")
    assert text.splitlines()[0] == TEMPLATE_HEADER == ",".join(CSV_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {"database_results", "dbr_excluded", "new_studies", "total_studies"} <= {r["data"] for r in rows}
    html = (project / "reports" / "index.html").read_text("utf-8")
    section = html[html.index('id="prisma"') :]
    assert "<svg" in section[: section.index("</section>")] and "Studies included in the review" in section
