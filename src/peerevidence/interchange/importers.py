"""Importers: other tools' files -> draft extraction records and BibTeX entries.

Every number of a draft record says where it came from::

    source: {kind: dataset, ref: <file stem>, locator: "data.csv row 4, columns m1i, sd1i, n1i, ..."}

(``row N`` counts data rows from 1, the header being line 1 of the file, so row N is line
N + 1). Fields the file cannot tell (design, country, risk of bias, ...) are left as
``TODO`` so ``peerevidence validate`` lists them all in one pass. Bad input fails with a
located :class:`~peerevidence.errors.RecordError` (``file:line: column: problem``).

* :func:`read_metafor_csv`   ``study`` + ``ai,bi,ci,di`` | ``ai,n1i,ci,n2i`` |
                             ``m1i,sd1i,n1i,m2i,sd2i,n2i`` | ``yi,vi`` (one outcome)
* :func:`read_revman_analysis` a RevMan data-package analysis CSV (``Analysis name, Study,
                             Study year, GIV Mean, GIV SE, Experimental mean, ...``); GIV
                             values of ratio measures are on the log scale, as RevMan stores them
* :func:`read_revman_study_results` the study-centric ``study_results.csv`` (+ information)
* :func:`ris_to_bibtex`      RIS references -> BibTeX entries with stable keys
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from peerevidence.errors import RecordError, UsageError
from peerevidence.interchange.csvsafe import unescape_cell

RATIO = ("OR", "RR", "HR")
MEASURES = ("SMD", "MD", "OR", "RR", "HR")


@dataclass
class Draft:
    """A draft record (plain data, as YAML would hold it) and where it came from."""

    key: str
    data: dict[str, Any]
    label: str = ""


@dataclass
class CsvTable:
    file: str
    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)

    def line(self, row: int) -> int:
        return row + 1


def read_csv_table(path: Path, display: str | None = None) -> CsvTable:
    display = display or path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{display}: cannot read file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordError(display, None, "", f"not UTF-8 text ({exc.reason})") from None
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise RecordError(display, reader.line_num, "", f"malformed CSV: {exc}") from None
    if not rows or not any(c.strip() for c in rows[0]):
        raise RecordError(display, 1, "", "empty file: expected a header row")
    header = [unescape_cell(h.strip()) for h in rows[0]]
    seen = set()
    for h in header:
        if h in seen and h:
            raise RecordError(display, 1, h, "column appears twice in the header")
        seen.add(h)
    table = CsvTable(display, header)
    for n, row in enumerate(rows[1:], start=1):
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header):
            raise RecordError(
                display, n + 1, "", f"{len(row)} cells but the header has {len(header)} columns"
            )
        table.rows.append(
            {h: unescape_cell(row[i].strip()) if i < len(row) else "" for i, h in enumerate(header)}
        )
    if not table.rows:
        raise RecordError(display, 1, "", "no data rows")
    return table


@overload
def _number(
    table: CsvTable,
    n: int,
    col: str,
    integer: Literal[False] = False,
    positive: bool = False,
    required: Literal[True] = True,
) -> float: ...
@overload
def _number(
    table: CsvTable,
    n: int,
    col: str,
    integer: Literal[True],
    positive: bool = False,
    required: Literal[True] = True,
) -> int: ...
@overload
def _number(
    table: CsvTable,
    n: int,
    col: str,
    integer: Literal[False] = False,
    positive: bool = False,
    *,
    required: bool,
) -> float | None: ...
@overload
def _number(
    table: CsvTable, n: int, col: str, integer: Literal[True], positive: bool = False, *, required: bool
) -> int | None: ...
def _number(
    table: CsvTable, n: int, col: str, integer: bool = False, positive: bool = False, required: bool = True
) -> float | int | None:
    """The number in a cell: an int when ``integer``, else a float; None for an empty cell only
    when not ``required``."""
    text = table.rows[n - 1].get(col, "").strip()
    if not text or text.upper() in ("NA", "NAN"):
        if required:
            raise RecordError(table.file, table.line(n), col, "empty cell; a number is needed here")
        return None
    try:
        value = float(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
    except ValueError:
        raise RecordError(table.file, table.line(n), col, f"'{text[:40]}' is not a number") from None
    if not math.isfinite(value):
        raise RecordError(table.file, table.line(n), col, f"'{text}' is not a finite number")
    if integer:
        if value != int(value) or value < 0:
            raise RecordError(table.file, table.line(n), col, f"'{text}' is not a whole count (0, 1, 2, ...)")
        value = int(value)
    if positive and value <= 0:
        raise RecordError(table.file, table.line(n), col, f"must be > 0 (got {text})")
    return value


def study_key(label: str, taken: set[str] | None = None) -> str:
    """'Aronson (1948)' -> 'aronson1948'; 'Cook 2012b' -> 'cook2012b'; stable, a-z0-9 only."""
    text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z]+", text)
    year = re.search(r"(1[89]\d\d|20\d\d)([a-z]?)", text)
    stem = (words[0].lower() if words else "study") + (year.group(0) if year else "")
    key = stem
    i = 0
    while taken is not None and key in taken:
        key = f"{stem}{'abcdefghijklmnopqrstuvwxyz'[i % 26]}{'' if i < 26 else i // 26}"
        i += 1
    if taken is not None:
        taken.add(key)
    return key


def _draft(key: str, label: str, source_ref: str) -> dict[str, Any]:
    return OrderedDict(
        study=key,
        design="TODO",
        country="TODO",
        setting="TODO",
        population="TODO",
        intervention="TODO",
        comparator="TODO",
        sample_size={},
        risk_of_bias={"tool": "TODO", "overall": "not_assessed", "assessed_by": "TODO"},
        extraction={
            "extracted_by": "TODO",
            "checked_by": "TODO",
            "date": "YYYY-MM-DD",
            "method": f"imported from {source_ref} by peerevidence ({label})",
        },
        results=[],
    )


def _source(table: CsvTable, n: int, cols: list[str], ref: str) -> dict[str, Any]:
    return {
        "kind": "dataset",
        "ref": ref,
        "locator": f"{Path(table.file).name} row {n}, columns {', '.join(cols)}",
    }


METAFOR_LAYOUTS = [
    ("binary", ["ai", "bi", "ci", "di"]),
    ("binary_totals", ["ai", "n1i", "ci", "n2i"]),
    ("continuous", ["m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"]),
    ("effect", ["yi", "vi"]),
]


def read_metafor_csv(
    path: Path,
    outcome: str,
    measure: str | None = None,
    timepoint: str = "TODO",
    ref: str | None = None,
    display: str | None = None,
) -> list[Draft]:
    """A metafor-style CSV for one outcome -> one draft record per study."""
    table = read_csv_table(path, display)
    ref = ref or Path(table.file).stem
    cols = {h.lower(): h for h in table.header}
    study_col = cols.get("study") or cols.get("slab") or cols.get("author")
    if study_col is None:
        raise RecordError(table.file, 1, "study", "no study column (accepted: study, slab, author)")
    layout = next(((kind, need) for kind, need in METAFOR_LAYOUTS if all(c in cols for c in need)), None)
    if layout is None:
        accepted = "; ".join(", ".join(need) for _, need in METAFOR_LAYOUTS)
        raise RecordError(table.file, 1, "header", "no known set of data columns", accepted)
    kind, need = layout
    if kind == "effect" and measure is None and "measure" not in cols:
        raise UsageError(f"{table.file}: yi,vi data need --measure (accepted: {', '.join(MEASURES)})")
    drafts: dict[str, Draft] = {}
    taken: set[str] = set()
    labels: dict[str, str] = {}
    for n, row in enumerate(table.rows, start=1):
        label = row[study_col].strip()
        if not label:
            raise RecordError(table.file, table.line(n), study_col, "empty study label")
        if label in labels:
            key = labels[label]
        else:
            key = study_key(label, taken)
            labels[label] = key
        if key not in drafts:
            drafts[key] = Draft(key, _draft(key, label, Path(table.file).name), label)
        actual = [cols[c] for c in need]
        result: dict[str, Any] = {"outcome": outcome, "timepoint": timepoint}
        if kind in ("binary", "binary_totals"):
            a = _number(table, n, cols["ai"], integer=True)
            c = _number(table, n, cols["ci"], integer=True)
            if kind == "binary":
                n1 = a + _number(table, n, cols["bi"], integer=True)
                n2 = c + _number(table, n, cols["di"], integer=True)
            else:
                n1 = _number(table, n, cols["n1i"], integer=True, positive=True)
                n2 = _number(table, n, cols["n2i"], integer=True, positive=True)
                for col, ev, tot in (("ai", a, n1), ("ci", c, n2)):
                    if ev > tot:
                        raise RecordError(
                            table.file, table.line(n), cols[col], f"{ev} events exceed the total {tot}"
                        )
            if n1 == 0 or n2 == 0:
                raise RecordError(table.file, table.line(n), cols["ai"], "an arm with no participants")
            result.update(
                form="binary",
                event="TODO",
                intervention={"events": a, "total": n1},
                control={"events": c, "total": n2},
            )
        elif kind == "continuous":
            result.update(
                form="continuous",
                instrument="TODO",
                intervention={
                    "n": _number(table, n, cols["n1i"], integer=True, positive=True),
                    "mean": _number(table, n, cols["m1i"]),
                    "sd": _number(table, n, cols["sd1i"], positive=True),
                },
                control={
                    "n": _number(table, n, cols["n2i"], integer=True, positive=True),
                    "mean": _number(table, n, cols["m2i"]),
                    "sd": _number(table, n, cols["sd2i"], positive=True),
                },
            )
        else:
            m = (row.get(cols["measure"], "").strip() if "measure" in cols else "") or measure
            if m not in MEASURES:
                raise RecordError(
                    table.file,
                    table.line(n),
                    cols.get("measure", "measure"),
                    f"unknown measure '{m}'",
                    ", ".join(MEASURES),
                )
            yi = _number(table, n, cols["yi"])
            vi = _number(table, n, cols["vi"], positive=True)
            result.update(
                form="effect", measure=m, estimate=math.exp(yi) if m in RATIO else yi, se=math.sqrt(vi)
            )
            if m in ("SMD", "MD"):
                result["instrument"] = "TODO"
        result["source"] = _source(table, n, [study_col, *actual], ref)
        drafts[key].data["results"].append(result)
    return list(drafts.values())


# --------------------------------------------------------------------------- RevMan

REVMAN_DATA_ROWS = [
    "Analysis group",
    "Analysis number",
    "Analysis name",
    "Subgroup",
    "Applicability",
    "Study",
    "Study year",
    "GIV Mean",
    "GIV SE",
    "Experimental mean",
    "Experimental SD",
    "Experimental cases",
    "Experimental N",
    "Control mean",
    "Control SD",
    "Control cases",
    "Control N",
    "O-E",
    "Variance",
    "Weight",
    "Mean",
    "CI start",
    "CI end",
    "Footnotes",
]


def read_revman_analysis(
    path: Path,
    outcomes: dict[str, str] | None = None,
    giv_measure: str | None = None,
    ref: str | None = None,
    display: str | None = None,
) -> list[Draft]:
    """A RevMan data-package analysis CSV -> draft records (one per study).

    ``outcomes`` maps an ``Analysis name`` to an outcome id (default: the name as an
    identifier). A GIV row needs ``giv_measure``; for OR/RR/HR, ``GIV Mean`` is the log of the
    ratio and ``GIV SE`` its SE, as RevMan stores generic inverse-variance data.
    """
    table = read_csv_table(path, display)
    ref = ref or Path(table.file).stem
    for col in ("Study", "Study year"):
        if col not in table.header:
            raise RecordError(
                table.file,
                1,
                col,
                "required RevMan column is missing",
                "the data-package analysis layout: " + ", ".join(REVMAN_DATA_ROWS[:9]) + ", ...",
            )
    outcomes = outcomes or {}
    drafts: dict[str, Draft] = {}
    taken: set[str] = set()
    labels: dict[str, str] = {}
    for n, row in enumerate(table.rows, start=1):
        label = f"{row['Study'].strip()} {row['Study year'].strip()}".strip()
        if not row["Study"].strip():
            raise RecordError(table.file, table.line(n), "Study", "empty study label")
        key = labels.get(label) or study_key(label, taken)
        labels[label] = key
        if key not in drafts:
            drafts[key] = Draft(key, _draft(key, label, Path(table.file).name), label)
        name = row.get("Analysis name", "").strip()
        oid = outcomes.get(name) or re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_") or "TODO"
        if not oid[0].isalpha():
            oid = "o_" + oid
        result: dict[str, Any] = {"outcome": oid, "timepoint": row.get("Subgroup", "").strip() or "TODO"}

        def has(*cols: str, row: dict[str, str] = row) -> bool:
            return all(row.get(c, "").strip() for c in cols)

        if has(
            "Experimental mean",
            "Experimental SD",
            "Experimental N",
            "Control mean",
            "Control SD",
            "Control N",
        ):
            used = [
                "Experimental mean",
                "Experimental SD",
                "Experimental N",
                "Control mean",
                "Control SD",
                "Control N",
            ]
            result.update(
                form="continuous",
                instrument="TODO",
                intervention={
                    "n": _number(table, n, "Experimental N", integer=True, positive=True),
                    "mean": _number(table, n, "Experimental mean"),
                    "sd": _number(table, n, "Experimental SD", positive=True),
                },
                control={
                    "n": _number(table, n, "Control N", integer=True, positive=True),
                    "mean": _number(table, n, "Control mean"),
                    "sd": _number(table, n, "Control SD", positive=True),
                },
            )
        elif has("Experimental cases", "Experimental N", "Control cases", "Control N"):
            used = ["Experimental cases", "Experimental N", "Control cases", "Control N"]
            arm = {}
            for side, pre in (("intervention", "Experimental"), ("control", "Control")):
                ev = _number(table, n, f"{pre} cases", integer=True)
                tot = _number(table, n, f"{pre} N", integer=True, positive=True)
                if ev > tot:
                    raise RecordError(
                        table.file, table.line(n), f"{pre} cases", f"{ev} events exceed {pre} N ({tot})"
                    )
                arm[side] = {"events": ev, "total": tot}
            result.update(form="binary", event="TODO", **arm)
        elif has("GIV Mean", "GIV SE"):
            used = ["GIV Mean", "GIV SE"]
            if giv_measure not in MEASURES:
                raise RecordError(
                    table.file,
                    table.line(n),
                    "GIV Mean",
                    "generic inverse-variance data need --giv-measure",
                    ", ".join(MEASURES),
                )
            y = _number(table, n, "GIV Mean")
            se = _number(table, n, "GIV SE", positive=True)
            result.update(
                form="effect", measure=giv_measure, estimate=math.exp(y) if giv_measure in RATIO else y, se=se
            )
        else:
            raise RecordError(
                table.file,
                table.line(n),
                "",
                "no complete data: give arm means/SDs/N, arm cases/N, or GIV Mean and GIV SE",
            )
        result["source"] = _source(table, n, ["Study", "Study year", *used], ref)
        drafts[key].data["results"].append(result)
    return list(drafts.values())


def read_revman_study_results(
    results_path: Path, info_path: Path | None = None, ref: str | None = None
) -> list[Draft]:
    """The study-centric ``study_results.csv`` (as :mod:`.exporters` writes it) -> drafts."""
    table = read_csv_table(results_path)
    ref = ref or Path(table.file).stem
    need = ["Study ID", "Outcome", "Timepoint", "Data type", "Arm"]
    for col in need:
        if col not in table.header:
            raise RecordError(table.file, 1, col, "required column is missing", ", ".join(need))
    info: dict[str, dict[str, str]] = {}
    if info_path is not None:
        it = read_csv_table(info_path)
        for row in it.rows:
            info[row.get("Study ID", "")] = row
    drafts: dict[str, Draft] = {}
    pending: dict[tuple[str, str, str, str | None], dict[str, Any]] = {}
    for n, row in enumerate(table.rows, start=1):
        key = row["Study ID"].strip()
        if not re.fullmatch(r"[A-Za-z0-9_:\-]+", key or ""):
            raise RecordError(table.file, table.line(n), "Study ID", f"'{key}' is not a usable study key")
        if key not in drafts:
            d = _draft(key, key, Path(table.file).name)
            meta = info.get(key, {})
            for col, fieldname in (
                ("Char: Design", "design"),
                ("Char: Country", "country"),
                ("Char: Setting", "setting"),
                ("Char: Participants", "population"),
                ("Char: Interventions", "intervention"),
                ("Char: Comparator", "comparator"),
            ):
                if meta.get(col):
                    d[fieldname] = meta[col]
            drafts[key] = Draft(key, d, key)
        kind = row["Data type"].strip()
        base = {"outcome": row["Outcome"].strip(), "timepoint": row["Timepoint"].strip() or "TODO"}
        if row.get("Instrument", "").strip():
            base["instrument"] = row["Instrument"].strip()
        arm = row["Arm"].strip()
        ident = (key, base["outcome"], base["timepoint"], base.get("instrument"))
        if kind == "contrast":
            m = row.get("Effect measure", "").strip()
            if m not in MEASURES:
                raise RecordError(
                    table.file, table.line(n), "Effect measure", f"unknown measure '{m}'", ", ".join(MEASURES)
                )
            result: dict[str, Any] = dict(
                base, form="effect", measure=m, estimate=_number(table, n, "Effect estimate")
            )
            low = _number(table, n, "CI start", required=False)
            high = _number(table, n, "CI end", required=False)
            se = _number(table, n, "SE", required=False, positive=True)
            if low is not None and high is not None:
                result.update(ci_low=low, ci_high=high)
            if se is not None:
                result["se"] = se
            total = _number(table, n, "Total", integer=True, positive=True, required=False)
            if total is not None:
                result["n"] = total
            result["source"] = _source(table, n, ["Effect estimate", "CI start", "CI end", "SE"], ref)
            drafts[key].data["results"].append(result)
            continue
        if arm not in ("intervention", "control"):
            raise RecordError(
                table.file, table.line(n), "Arm", f"unknown arm '{arm}'", "intervention, control"
            )
        if kind == "continuous":
            value = {
                "n": _number(table, n, "Total", integer=True, positive=True),
                "mean": _number(table, n, "Mean"),
                "sd": _number(table, n, "SD", positive=True),
            }
            cols = ["Mean", "SD", "Total"]
        elif kind == "dichotomous":
            value = {
                "events": _number(table, n, "Events", integer=True),
                "total": _number(table, n, "Total", integer=True, positive=True),
            }
            cols = ["Events", "Total"]
        else:
            raise RecordError(
                table.file,
                table.line(n),
                "Data type",
                f"unknown data type '{kind}'",
                "continuous, dichotomous, contrast",
            )
        slot = pending.setdefault(
            ident, dict(base, form="continuous" if kind == "continuous" else "binary", _rows=[])
        )
        if kind == "dichotomous":
            slot.setdefault("event", "TODO")
        slot[arm] = value
        slot["_rows"].append(n)
        if "intervention" in slot and "control" in slot:
            rows = slot.pop("_rows")
            slot["source"] = {
                "kind": "dataset",
                "ref": ref,
                "locator": f"{Path(table.file).name} rows {', '.join(map(str, rows))}, columns {', '.join(cols)}",
            }
            drafts[key].data["results"].append(pending.pop(ident))
    for ident in pending:
        raise RecordError(
            table.file, None, "Arm", f"{ident[0]} / {ident[1]}: only one arm given; both are needed"
        )
    return list(drafts.values())


# --------------------------------------------------------------------------- writing drafts


def draft_yaml(draft: Draft) -> str:
    from peerevidence.records.reconcile import dump_yaml

    data = _plain(draft.data)
    if not data.get("sample_size"):
        data.pop("sample_size", None)
        data["sample_size"] = {"note": "TODO: the study's sample size, with its source"}
    header = (
        f"# Draft record imported by peerevidence ({draft.label}). Fill in every TODO; every\n"
        "# number below says which file, row and columns it was read from.\n"
    )
    return header + dump_yaml(data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def write_drafts(drafts: list[Draft], extraction_dir: Path) -> list[Path]:
    """Write each draft as ``extraction_dir/<key>.yaml``; refuse to overwrite an existing record."""
    from peerevidence.atomic import write_text

    clash = [d.key for d in drafts if (extraction_dir / f"{d.key}.yaml").exists()]
    if clash:
        raise UsageError(f"{extraction_dir}: records already exist for {', '.join(clash)}; nothing written")
    out = []
    for d in drafts:
        target = extraction_dir / f"{d.key}.yaml"
        write_text(target, draft_yaml(d))
        out.append(target)
    return out


# --------------------------------------------------------------------------- RIS

_BIB_TYPES = {
    "JOUR": "article",
    "JFULL": "article",
    "BOOK": "book",
    "CHAP": "incollection",
    "CONF": "inproceedings",
    "CPAPER": "inproceedings",
    "RPRT": "techreport",
    "THES": "phdthesis",
    "ELEC": "online",
    "UNPB": "unpublished",
}


def _bib_escape(text: str) -> str:
    return re.sub(r"([{}])", r"\\\1", str(text)).replace("\n", " ")


def read_ris(path: Path, display: str | None = None) -> list[dict[str, Any]]:
    import rispy

    display = display or path.name
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordError(display, None, "", f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise UsageError(f"{display}: cannot read file ({exc.strerror})") from None
    lines = text.splitlines()
    for i, line in enumerate(lines, start=1):
        if (
            line.strip()
            and not re.match(r"^([A-Z][A-Z0-9]  - ?|\d+\.\s*$)", line)
            and not line.startswith((" ", "\t"))
            and not line.startswith("ER  -")
            and (i == 1 or not lines[i - 2].strip())
        ):
            # rispy skips unknown lines silently; a stray line starting a block is reported here
            raise RecordError(
                display, i, "", f"not a RIS line ('{line[:30]}'; expected 'TY  - JOUR' style tags)"
            )
    try:
        entries: list[dict[str, Any]] = rispy.loads(text)
    except Exception as exc:  # rispy raises plain IOError/ValueError on malformed input
        raise RecordError(display, None, "", f"malformed RIS: {exc}") from None
    if not entries:
        raise RecordError(display, 1, "", "no RIS records (each starts with 'TY  - ' and ends with 'ER  - ')")
    return entries


def ris_to_bibtex(entries: list[dict[str, Any]], existing: set[str]) -> list[tuple[str, str]]:
    """(key, BibTeX entry text) per RIS record; keys are ``familyYEAR`` (a, b, ... on clashes),
    or the record's own ``ID`` when it is a usable key (our exports carry the BibTeX key)."""
    taken = set(existing)
    out = []
    for e in entries:
        authors = e.get("authors") or e.get("first_authors") or []
        year = str(e.get("year") or e.get("publication_year") or "").strip()[:4]
        own = str(e.get("id") or "").strip()
        if own and re.fullmatch(r"[a-z][a-z0-9_:-]*", own) and own not in taken:
            key = own
            taken.add(key)
        else:
            family = (
                authors[0].split(",")[0] if authors else (e.get("primary_title") or e.get("title") or "anon")
            )
            key = study_key(f"{family} {year}", taken)
        fields: list[tuple[str, str]] = []
        if authors:
            fields.append(("author", " and ".join(authors)))
        title = e.get("primary_title") or e.get("title")
        if title:
            fields.append(("title", title))
        container = e.get("secondary_title") or e.get("journal_name") or e.get("alternate_title3")
        btype = _BIB_TYPES.get(e.get("type_of_reference", ""), "misc")
        if container:
            fields.append(("journal" if btype == "article" else "booktitle", container))
        if year:
            fields.append(("year", year))
        for ris, bib in (("volume", "volume"), ("number", "number"), ("doi", "doi")):
            if e.get(ris):
                fields.append((bib, str(e[ris])))
        sp, ep = e.get("start_page"), e.get("end_page")
        if sp:
            fields.append(("pages", f"{sp}--{ep}" if ep else str(sp)))
        urls = e.get("urls") or []
        if urls:
            fields.append(("url", urls[0]))
        body = ",\n".join(f"  {k} = {{{_bib_escape(v)}}}" for k, v in fields)
        out.append((key, f"@{btype}{{{key},\n{body},\n}}\n"))
    return out


def import_ris(ris_path: Path, bib_path: Path) -> list[str]:
    """Append the RIS file's references to ``bib_path`` (atomically); return the new keys."""
    from peerevidence.atomic import write_text
    from peerevidence.records.bib import load_bibliography

    entries = read_ris(ris_path)
    existing_text = bib_path.read_text("utf-8") if bib_path.exists() else ""
    bib, _ = load_bibliography(bib_path) if bib_path.exists() else (None, [])
    existing = set(bib.keys()) if bib is not None else set()
    dois = {doi.casefold() for k in existing if (doi := bib[k].doi)} if bib is not None else set()
    new = []
    chunks = []
    for (key, text), e in zip(ris_to_bibtex(entries, existing), entries, strict=True):
        if (e.get("doi") and str(e["doi"]).casefold() in dois) or str(e.get("id") or "") in existing:
            continue  # already there (same DOI, or our own export's key)
        new.append(key)
        chunks.append(text)
    if chunks:
        sep = (
            ""
            if not existing_text or existing_text.endswith("\n\n")
            else ("\n" if existing_text.endswith("\n") else "\n\n")
        )
        write_text(bib_path, existing_text + sep + "\n".join(chunks))
    return new
