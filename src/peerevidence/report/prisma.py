"""The PRISMA 2020 flow of studies: counts from the records (included, and excluded with
their ``exclude:`` reasons) and, when the project has one, from the search log
(``evidence/searches.yaml``, read as ``EvidenceBase.searches``; its ``prisma()`` gives the
identification and screening counts).

Written as ``reports/prisma2020.csv`` in the layout of the PRISMA2020 R package's template
(Haddaway et al. 2022; columns ``data,node,box,description,boxtext,tooltips,url,n``, so
``PRISMA2020::PRISMA_data(read.csv(...))`` draws it), and drawn as an SVG flow diagram on
the index page. Counts that the project does not record are ``NA``, never guessed.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CSV_COLUMNS = ("data", "node", "box", "description", "boxtext", "tooltips", "url", "n")


@dataclass(frozen=True)
class PrismaCounts:
    records: int  # study records in extraction/
    excluded: Mapping[str, int]  # exclude reason -> records
    included: int  # studies included in the review
    pooled: int  # of which pooled in at least one analysis
    search: Mapping[str, Any] | None = None  # SearchLog.prisma(), when the project has a search log
    notes: tuple[str, ...] = field(default_factory=tuple)


def prisma_counts(base: Any, pooled_studies: set[str]) -> PrismaCounts:
    excluded: Counter[str] = Counter()
    included = 0
    for loaded in base.records.values():
        reason = loaded.record.exclude
        if reason:
            excluded[" ".join(reason.split())] += 1
        else:
            included += 1
    log = getattr(base, "searches", None)  # evidence/searches.yaml, where the project has one
    search = log.prisma() if log is not None and hasattr(log, "prisma") else None
    notes: tuple[str, ...] = ()
    if search is None:
        notes = (
            "No search log (evidence/searches.yaml): identification and screening counts are not "
            "recorded, so the flow starts at the study records.",
        )
    pooled = len(pooled_studies & {k for k, v in base.records.items() if not v.record.exclude})
    return PrismaCounts(len(base.records), dict(sorted(excluded.items())), included, pooled, search, notes)


def _reasons(reasons: Mapping[str, int]) -> str:
    return "; ".join(f"{r.replace(';', ',')}, {n}" for r, n in reasons.items())


def prisma_rows(c: PrismaCounts) -> list[dict[str, str]]:
    """Rows in the PRISMA2020 package's CSV layout (unknown counts are NA)."""
    s = c.search or {}
    ident = s.get("identified", {}) if s else {}

    def n(key: str) -> str:
        value = s.get(key) if s else None
        return "NA" if value is None else str(value)

    excluded = dict(s.get("excluded_with_reasons", {})) if s else {}
    for reason, k in c.excluded.items():  # records excluded after extraction
        excluded[reason] = excluded.get(reason, 0) + k
    assessed = n("assessed_for_eligibility") if s else str(c.records)
    spec = [
        ("database_results", "node7", "box2", "Records identified from databases", "Databases", str(ident.get("database", "NA")) if s else "NA"),
        ("register_results", "NA", "box2", "Records identified from registers", "Registers", str(ident.get("register", "NA")) if s else "NA"),
        ("citations_results", "NA", "box11", "Records identified by other methods", "Other methods", str(ident.get("other", "NA")) if s else "NA"),
        ("duplicates", "node8", "box3", "Duplicate records removed before screening", "Duplicate records", n("duplicates_removed")),
        ("records_screened", "node9", "box4", "Records screened", "Records screened", n("screened")),
        ("records_excluded", "node10", "box5", "Records excluded on title and abstract", "Records excluded", n("excluded_on_screening")),
        ("dbr_sought_reports", "node11", "box6", "Reports sought for retrieval", "Reports sought for retrieval", n("sought_for_retrieval")),
        ("dbr_notretrieved_reports", "node12", "box7", "Reports not retrieved", "Reports not retrieved", n("not_retrieved")),
        ("dbr_assessed", "node13", "box8", "Reports assessed for eligibility", "Reports assessed for eligibility", assessed),
        ("dbr_excluded", "node14", "box9", "Reports excluded, with reasons", "Reports excluded", _reasons(excluded) or "0"),
        ("new_studies", "node15", "box10", "Studies included in the review", "Studies included in review", str(c.included)),
        ("new_reports", "NA", "box10", "Reports of included studies", "Reports of included studies", n("reports_included") if s else str(c.included)),
        ("total_studies", "node22", "box16", "Studies included in the review", "Total studies included in review", str(c.included)),
        ("identification", "node1", "identification", "Identification", "Identification", "0"),
        ("screening", "node2", "screening", "Screening", "Screening", "0"),
        ("included", "node3", "included", "Included", "Included", "0"),
    ]  # fmt: skip
    return [
        dict(zip(CSV_COLUMNS, (data, node, box, desc, text, desc, "NA", count), strict=True))
        for data, node, box, desc, text, count in spec
    ]


def prisma_csv(rows: list[dict[str, str]]) -> str:
    from peerevidence.report.views.sof import csv_cell

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return buf.getvalue()


def prisma_dot(c: PrismaCounts) -> str:
    """The flow diagram as DOT text (every label quoted by :func:`diagram.dot_string`)."""
    from peerevidence.report.diagram import _attrs, dot_string

    s = c.search
    boxes: list[tuple[str, str, str]] = []  # id, label, column ("main" or "side")
    edges: list[tuple[str, str]] = []
    if s:
        ident = s["identified"]
        boxes += [
            ("identified", f"Records identified\ndatabases (n = {ident.get('database', 0)})\n"
             f"registers (n = {ident.get('register', 0)})\nother methods (n = {ident.get('other', 0)})", "main"),
            ("duplicates", f"Duplicate records removed\n(n = {s['duplicates_removed']})", "side"),
            ("screened", f"Records screened\n(n = {s['screened']})", "main"),
            ("screen_excluded", f"Records excluded\n(n = {s['excluded_on_screening']})", "side"),
            ("sought", f"Reports sought for retrieval\n(n = {s['sought_for_retrieval']})", "main"),
            ("not_retrieved", f"Reports not retrieved\n(n = {s['not_retrieved']})", "side"),
        ]  # fmt: skip
        edges += [("identified", "screened"), ("screened", "sought"), ("sought", "assessed")]
        assessed = s["assessed_for_eligibility"]
    else:
        assessed = c.records
    excluded = sum(c.excluded.values()) + (sum(s["excluded_with_reasons"].values()) if s else 0)
    reasons = dict((s or {}).get("excluded_with_reasons", {}))
    for r, k in c.excluded.items():
        reasons[r] = reasons.get(r, 0) + k
    reason_lines = "".join(f"\n{r[:60]} (n = {k})" for r, k in reasons.items())
    boxes += [
        (
            "assessed",
            f"{'Reports assessed for eligibility' if s else 'Study records extracted'}\n(n = {assessed})",
            "main",
        ),
        ("excluded", f"Excluded, with reasons\n(n = {excluded}){reason_lines}", "side"),
        ("included", f"Studies included in the review\n(n = {c.included})", "main"),
        ("pooled", f"of which pooled in at least one\nmeta-analysis (n = {c.pooled})", "main"),
    ]
    edges += [("assessed", "included"), ("included", "pooled")]
    side_of = {
        "duplicates": "identified",
        "screen_excluded": "screened",
        "not_retrieved": "sought",
        "excluded": "assessed",
    }
    lines = [
        "digraph prisma {",
        '  graph [rankdir="TB", nodesep="0.5", ranksep="0.35", fontname="Helvetica", bgcolor="transparent", pad="0.1"];',
        '  node [shape="box", fontname="Helvetica", fontsize="11", margin="0.15,0.08", color="#555555", style="filled", fillcolor="#ffffff"];',
        '  edge [arrowsize="0.7", color="#555555"];',
    ]
    for bid, label, col in boxes:
        extra = {"fillcolor": "#f4f4f4"} if col == "side" else {}
        lines.append(f"  {dot_string(bid)} {_attrs(id='prisma-' + bid, label=label, **extra)};")
    for a, b in edges:
        lines.append(f"  {dot_string(a)} -> {dot_string(b)};")
    for side, main in side_of.items():
        if any(b[0] == side for b in boxes):
            lines.append(f'  {{rank="same"; {dot_string(main)}; {dot_string(side)};}}')
            lines.append(f"  {dot_string(main)} -> {dot_string(side)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def prisma_svg(c: PrismaCounts) -> str:
    from peerevidence.report.diagram import render_svg

    return render_svg(prisma_dot(c))
