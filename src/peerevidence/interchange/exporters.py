"""Exporters: the evidence base in the formats other tools read.

:func:`write_exports` writes, under ``reports/exports/``:

* ``references.ris`` (RIS, via rispy) and ``references.json`` (CSL-JSON) from references.bib;
  each entry keeps its BibTeX key (RIS ``ID``, CSL ``id``);
* ``revman/study_information.csv``, ``revman/study_arms.csv``, ``revman/study_results.csv``,
  ``revman/risk_of_bias.csv``: one file per kind of RevMan Web study-centric data (study,
  arm, result and RoB rows; layout in :data:`REVMAN_COLUMNS`);
* ``robvis/<tool>.csv``: one per risk-of-bias tool, ``Study, D1 ... Dn, Overall`` with the
  tool's judgement words, as robvis's ``rob_summary``/``rob_traffic_light`` read it;
* ``evidence_table.csv``: every result, with metafor's column names added (``yi, vi, sei,
  measure, slab``; ``measure`` in escalc's codes, the pooling measure kept as
  ``pool_measure``).

Every CSV goes through :func:`peerevidence.interchange.csvsafe.write_csv`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from peerevidence.atomic import write_text
from peerevidence.interchange.csvsafe import write_csv
from peerevidence.records.bib import Bibliography, Reference

if TYPE_CHECKING:
    from peerevidence.records.project import EvidenceBase
    from peerevidence.records.schema import RiskOfBias

# --------------------------------------------------------------------------- references

RIS_TYPES = {
    "article": "JOUR",
    "book": "BOOK",
    "inbook": "CHAP",
    "incollection": "CHAP",
    "inproceedings": "CONF",
    "conference": "CONF",
    "techreport": "RPRT",
    "report": "RPRT",
    "phdthesis": "THES",
    "mastersthesis": "THES",
    "thesis": "THES",
    "online": "ELEC",
    "misc": "GEN",
    "unpublished": "UNPB",
}
CSL_TYPES = {
    "article": "article-journal",
    "book": "book",
    "inbook": "chapter",
    "incollection": "chapter",
    "inproceedings": "paper-conference",
    "conference": "paper-conference",
    "techreport": "report",
    "report": "report",
    "phdthesis": "thesis",
    "mastersthesis": "thesis",
    "thesis": "thesis",
    "online": "webpage",
    "misc": "document",
    "unpublished": "manuscript",
}


def _pages(ref: Reference) -> tuple[str | None, str | None]:
    pages = ref.get("pages")
    if not pages:
        return None, None
    parts = re.split(r"\s*[-–—]+\s*", pages, maxsplit=1)
    return parts[0] or None, (parts[1] if len(parts) > 1 else None)


def ris_entries(bib: Bibliography) -> list[dict[str, Any]]:
    """rispy entries (its field names), one per BibTeX entry, ``id`` = the BibTeX key."""
    out = []
    for key in bib.keys():  # noqa: SIM118 (a Bibliography, not a dict)
        ref = bib[key]
        entry: dict[str, Any] = {"type_of_reference": RIS_TYPES.get(ref.entry_type.lower(), "GEN"), "id": key}
        if ref.authors():
            entry["authors"] = ref.authors()
        title = ref.get("title")
        if title:
            entry["primary_title"] = title
        container = ref.get("journal") or ref.get("booktitle") or ref.get("publisher")
        if container:
            entry["secondary_title"] = container
        if ref.get("year"):
            entry["year"] = ref.get("year")
        for field, ris in (("volume", "volume"), ("number", "number"), ("doi", "doi"), ("url", "urls")):
            value = ref.doi if field == "doi" else ref.get(field)
            if value:
                entry[ris] = [value] if ris == "urls" else value
        start, end = _pages(ref)
        if start:
            entry["start_page"] = start
        if end:
            entry["end_page"] = end
        out.append(entry)
    return out


def ris_text(bib: Bibliography) -> str:
    import rispy

    text: str = rispy.dumps(ris_entries(bib))
    return text


def _csl_name(author: str) -> dict[str, str]:
    if "," in author:
        family, given = (p.strip() for p in author.split(",", 1))
        return {"family": family, "given": given} if given else {"family": family}
    parts = author.split()
    if len(parts) == 1:
        return {"literal": author}
    return {"family": parts[-1], "given": " ".join(parts[:-1])}


def csl_items(bib: Bibliography) -> list[dict[str, Any]]:
    out = []
    for key in bib.keys():  # noqa: SIM118 (a Bibliography, not a dict)
        ref = bib[key]
        item: dict[str, Any] = {"id": key, "type": CSL_TYPES.get(ref.entry_type.lower(), "document")}
        if ref.authors():
            item["author"] = [_csl_name(a) for a in ref.authors()]
        if ref.get("title"):
            item["title"] = ref.get("title")
        container = ref.get("journal") or ref.get("booktitle")
        if container:
            item["container-title"] = container
        if ref.get("publisher"):
            item["publisher"] = ref.get("publisher")
        year = ref.get("year")
        if year and year.isdigit():
            item["issued"] = {"date-parts": [[int(year)]]}
        elif year:
            item["issued"] = {"literal": year}
        for field, csl in (("volume", "volume"), ("number", "issue"), ("pages", "page"), ("url", "URL")):
            value = ref.get(field)
            if value:
                item[csl] = value.replace("--", "-") if field == "pages" else value
        if ref.doi:
            item["DOI"] = ref.doi
        out.append(item)
    return out


# --------------------------------------------------------------------------- risk of bias

# judgement words per tool, as robvis expects them
ROBVIS_WORDS = {
    "rob2": {
        "low": "Low",
        "some_concerns": "Some concerns",
        "high": "High",
        "unclear": "No information",
        "not_assessed": "No information",
    },
    "robins-i": {
        "low": "Low",
        "some_concerns": "Moderate",
        "high": "Serious",
        "unclear": "No information",
        "not_assessed": "No information",
    },
    "rob1": {
        "low": "Low",
        "some_concerns": "Unclear",
        "high": "High",
        "unclear": "Unclear",
        "not_assessed": "Unclear",
    },
    "generic": {
        "low": "Low",
        "some_concerns": "Some concerns",
        "high": "High",
        "unclear": "Unclear",
        "not_assessed": "No information",
    },
}


def robvis_tool(tool: str) -> str:
    t = re.sub(r"[^a-z0-9]", "", tool.casefold())
    if t in ("rob2", "rob20", "riskofbias2"):
        return "rob2"
    if t.startswith("robinsi"):
        return "robins-i"
    if t in ("rob", "rob1", "cochranerob", "cochraneriskofbias", "riskofbias"):
        return "rob1"
    return "generic"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "tool"


def robvis_tables(base: EvidenceBase) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """tool slug -> (header, rows): ``Study, D1..Dn, Overall`` (domains in record order)."""
    by_tool: dict[str, list[tuple[str, RiskOfBias]]] = {}
    for key, loaded in sorted(base.records.items()):
        rob = loaded.record.risk_of_bias
        if not rob.domains and rob.overall == "not_assessed":
            continue  # nothing assessed: nothing to plot
        by_tool.setdefault(rob.tool, []).append((key, rob))
    out = {}
    for tool, items in sorted(by_tool.items()):
        kind = robvis_tool(tool)
        words = ROBVIS_WORDS[kind]
        names: list[str] = []
        for _, rob in items:
            for d in rob.domains:
                if d not in names:
                    names.append(d)
        header = ["Study"] + [f"D{i + 1}" for i in range(len(names))] + ["Overall"]
        rows = []
        for key, rob in items:
            label = base.bib[key].short() if key in base.bib else key
            rows.append(
                [label]
                + [words[rob.domains[d]] if d in rob.domains else "No information" for d in names]
                + [words[rob.overall]]
            )
        out[_slug(tool)] = (header, rows)
    return out


# --------------------------------------------------------------------------- RevMan study-centric

REVMAN_COLUMNS = {
    "study_information": [
        "Study ID",
        "Study year",
        "Reference ID",
        "Char: Design",
        "Char: Country",
        "Char: Setting",
        "Char: Participants",
        "Char: Interventions",
        "Char: Comparator",
    ],
    "study_arms": ["Study ID", "Arm", "Intervention", "N"],
    "study_results": [
        "Study ID",
        "Outcome",
        "Timepoint",
        "Instrument",
        "Data type",
        "Arm",
        "Events",
        "Mean",
        "SD",
        "Total",
        "Effect measure",
        "Effect estimate",
        "CI start",
        "CI end",
        "SE",
        "Locator",
    ],
    "risk_of_bias": ["Study ID", "Tool", "Domain", "Judgement", "Support for judgement"],
}


def revman_tables(base: EvidenceBase) -> dict[str, list[list[Any]]]:
    info: list[list[Any]] = []
    arms: list[list[Any]] = []
    results: list[list[Any]] = []
    rob_rows: list[list[Any]] = []
    for key, loaded in sorted(base.records.items()):
        rec = loaded.record
        year = base.bib[key].year if key in base.bib else ""
        info.append(
            [
                key,
                year,
                key,
                rec.design,
                rec.country,
                rec.setting,
                rec.population,
                rec.intervention,
                rec.comparator,
            ]
        )
        size = rec.sample_size
        arms.append([key, "intervention", rec.intervention, size.intervention])
        arms.append([key, "control", rec.comparator, size.control])
        for r in rec.results:
            common = [key, r.outcome, r.timepoint, r.instrument]
            if r.form == "continuous":
                for arm in ("intervention", "control"):
                    a = getattr(r, arm)
                    results.append(
                        [
                            *common,
                            "continuous",
                            arm,
                            None,
                            a.mean,
                            a.sd,
                            a.n,
                            None,
                            None,
                            None,
                            None,
                            None,
                            r.source.locator,
                        ]
                    )
            elif r.form == "binary":
                for arm in ("intervention", "control"):
                    a = getattr(r, arm)
                    results.append(
                        [
                            *common,
                            "dichotomous",
                            arm,
                            a.events,
                            None,
                            None,
                            a.total,
                            None,
                            None,
                            None,
                            None,
                            None,
                            r.source.locator,
                        ]
                    )
            elif r.form == "effect":
                results.append(
                    [
                        *common,
                        "contrast",
                        None,
                        None,
                        None,
                        None,
                        r.n,
                        r.measure,
                        r.estimate,
                        r.ci_low,
                        r.ci_high,
                        r.se,
                        r.source.locator,
                    ]
                )
        rob = rec.risk_of_bias
        for d, level in rob.domains.items():
            rob_rows.append([key, rob.tool, d, level, rob.assessed_by])
        rob_rows.append([key, rob.tool, "Overall", rob.overall, rob.assessed_by])
    return {"study_information": info, "study_arms": arms, "study_results": results, "risk_of_bias": rob_rows}


# --------------------------------------------------------------------------- evidence table

METAFOR_MEASURE = {"SMD": "SMD", "MD": "MD", "logOR": "OR", "logRR": "RR", "logHR": "GEN", "fisher_z": "ZCOR"}


def metafor_table(base: EvidenceBase, table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    out.insert(0, "slab", [base.bib[s].short() if s in base.bib else s for s in out["study"]])
    out["pool_measure"] = out["measure"]
    out["measure"] = [METAFOR_MEASURE.get(m, m) if isinstance(m, str) else m for m in out["measure"]]
    out["sei"] = [math.sqrt(v) if isinstance(v, float) and v >= 0 else float("nan") for v in out["vi"]]
    front = ["slab", "study", "outcome", "yi", "vi", "sei", "measure"]
    return out[front + [c for c in out.columns if c not in front]]


# --------------------------------------------------------------------------- all of it


def write_exports(base: EvidenceBase, table: pd.DataFrame, reports_dir: Path) -> list[Path]:
    """Write every export under ``reports_dir/exports``; return the files written."""
    root = reports_dir / "exports"
    written: list[Path] = []
    write_text(root / "references.ris", ris_text(base.bib))
    written.append(root / "references.ris")
    write_text(root / "references.json", json.dumps(csl_items(base.bib), indent=1, ensure_ascii=False) + "\n")
    written.append(root / "references.json")
    for name, rows in revman_tables(base).items():
        written.append(write_csv(root / "revman" / f"{name}.csv", REVMAN_COLUMNS[name], rows))
    for slug, (header, rows) in robvis_tables(base).items():
        written.append(write_csv(root / "robvis" / f"{slug}.csv", header, rows))
    frame = metafor_table(base, table)
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    written.append(write_csv(root / "evidence_table.csv", list(frame.columns), rows))
    return written


def export_project(root: Path) -> list[Path]:
    """Validate the project, then write every export; invalid input raises ValidationFailed."""
    from peerevidence.errors import ValidationFailed
    from peerevidence.pooling.table import evidence_table
    from peerevidence.records.rules import validate_project

    base, report = validate_project(root)
    if report.errors:
        raise ValidationFailed(report.errors)
    return write_exports(base, evidence_table(base), base.paths.reports)
