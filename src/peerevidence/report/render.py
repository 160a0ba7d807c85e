"""The HTML evidence report: fits + synthesis + change model -> ``reports/``.

:func:`render` writes, each file atomically (:func:`peerevidence.atomic.write_text`)::

    reports/index.html              change-model diagram, one evidence block per edge,
                                    gaps, prior sensitivity, path effects, what changed,
                                    and the manifest (input hashes, versions, seeds)
    reports/outcomes/<analysis>.html forest plot, diagnostics, priors, data with locators
    reports/references.html         every entry of references.bib
    reports/evidence_table.csv      the evidence table (one row per study x result)

Computing is kept apart from drawing: :mod:`peerevidence.report.views` turns a :class:`RunResult`
and a :class:`Synthesis` into plain view-model dicts; this module assembles the pages and
the Jinja2 templates (autoescape on for all of them) only lay them out. The only markup inserted unescaped is the SVG we generate
(:mod:`peerevidence.report.diagram`, :mod:`peerevidence.report.forest`), which escapes every text it
embeds and is checked against an allow-list first.

Deterministic: nothing time- or path-dependent reaches the HTML (times stay in
``manifest.json``), so rendering twice with unchanged inputs gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from peerevidence.atomic import write_text
from peerevidence.report.views import (  # noqa: F401  (Scale, fmt, safe_page are part of this module's API)
    DESIGN_SHORT,
    LEVEL_WORDS,
    RATIO,
    ROB_WORDS,
    SAFE_NAME,
    Scale,
    _Builder,
    _finite,
    _first,
    design_word,
    fmt,
    fmt_int,
    fmt_interval,
    fmt_p,
    http_url,
    raw_data,
    safe_page,
)
from peerevidence.stats.summary import Z975
from peerevidence.synthesis import LEVELS, Synthesis

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult


def _forest(builder: _Builder, fit: AnalysisFit) -> str:
    from peerevidence.report.forest import ForestData, ForestRow, forest_svg

    a, s = fit.analysis, fit.summary
    scale = builder.scale(a.outcome)
    data = s.provenance.data if s.provenance else {}
    studies = [str(x) for x in _first(data.get("study"), a.data.labels)]
    yi = [float(x) for x in _first(data.get("yi"), a.data.yi)]
    vi = [float(x) for x in _first(data.get("vi"), a.data.vi)]
    designs = [str(x) for x in _first(data.get("design"), a.rows["design"])]
    theta = {t.study: t for t in s.theta}
    rows_by_study = {r["study"]: r for _, r in a.rows.iterrows()}
    weights = [1 / v if _finite(v) and v > 0 else 0.0 for v in vi]
    wmax = max(weights) if weights else 1.0
    rows = []
    for i, key in enumerate(studies):
        y, v = yi[i], vi[i]
        se = math.sqrt(v) if _finite(v) and v > 0 else float("nan")
        lo, hi = y - Z975 * se, y + Z975 * se
        t = theta.get(key)
        row = rows_by_study.get(key)
        rows.append(
            ForestRow(
                label=builder.labels.get(key, key),
                design=DESIGN_SHORT.get(designs[i], designs[i]) if i < len(designs) else "",
                n=fmt_int(row["n"]) if row is not None else "–",
                rob=ROB_WORDS.get(row["rob"], str(row["rob"])) if row is not None else "–",
                yi=y,
                lo=lo,
                hi=hi,
                weight=(weights[i] / wmax) if wmax else 0.0,
                theta=t.mean if t else None,
                theta_lo=t.q025 if t else None,
                theta_hi=t.q975 if t else None,
                text=scale.text(y, lo, hi),
            )
        )
    mu, new = s.mu.to_json(), s.theta_new.to_json(with_median=False)
    natural = None
    natural_label = ""
    if scale.measure in RATIO:
        natural = scale.natural
        natural_label = scale.natural_desc
    head = (
        f"{scale.natural_name} [95% interval]"
        if scale.transformed
        else f"{scale.natural_name} [95% interval]"
    )
    forest = ForestData(
        title=a.outcome.label,
        axis_label="Harmonised scale: " + scale.harmonised_name,
        rows=rows,
        pooled=(mu["q50"], mu["q025"], mu["q975"]),
        pooled_text=scale.text(mu["q50"], mu["q025"], mu["q975"]),
        pi=(new["q025"], new["q975"]),
        pi_text=(f"{scale.natural_name} " if scale.transformed else "")
        + fmt_interval(
            *scale.interval(new["q025"], new["q975"]) if scale.transformed else (new["q025"], new["q975"])
        ),
        natural=natural,
        natural_label=natural_label,
        right_header=head,
        left_note="against the link" if scale.association else "favours control",
        right_note=scale.benefit,
    )
    key = {
        **{f.name: getattr(forest, f.name) for f in dataclasses.fields(forest) if f.name != "natural"},
        "natural_at": [forest.natural(x) for x in (-1.0, 0.5)] if forest.natural else None,
    }
    return _cached_svg(builder, "forest", key, lambda: forest_svg(forest))


def _data_rows(builder: _Builder, rows: pd.DataFrame, scale: Scale) -> list[dict[str, Any]]:
    out = []
    for _, r in rows.iterrows():
        loaded = builder.base.records.get(r["study"])
        res = loaded.record.results[int(r["result"])] if loaded else None
        yi, vi = r["yi"], r["vi"]
        se = math.sqrt(vi) if _finite(vi) and vi > 0 else None
        lo = yi - Z975 * se if se is not None and _finite(yi) else None
        hi = yi + Z975 * se if se is not None and _finite(yi) else None
        out.append(
            {
                "study": builder.study(r["study"]),
                "design": design_word(r["design"]),
                "form": r["form"],
                "instrument": r["instrument"] if isinstance(r["instrument"], str) else "",
                "timepoint": r["timepoint"],
                "raw": raw_data(res) if res is not None else "",
                "route": r["route"] if isinstance(r["route"], str) else "",
                "yi": fmt(yi),
                "se": fmt(se),
                "ci": fmt_interval(lo, hi) if lo is not None else "–",
                "natural": scale.text(yi, lo, hi) if scale.transformed and lo is not None else None,
                "n": fmt_int(r["n"]),
                "rob": ROB_WORDS.get(r["rob"], str(r["rob"])),
                "included": bool(r["included"]),
                "reason": r["reason"] if isinstance(r["reason"], str) else "",
                "flags": r["flags"] if isinstance(r["flags"], str) else "",
                "indirect": r["indirect"] if isinstance(r["indirect"], str) else "",
                "locator": r["locator"],
                "snippet": r["snippet"] if isinstance(r["snippet"], str) else "",
                "url": http_url(getattr(res.source, "url", None)) if res is not None else None,
                "file": r["file"],
                "line": int(r["line"]) if _finite(r["line"]) else None,
                "notes": getattr(res, "notes", None) if res is not None else None,
            }
        )
    return out


def outcome_page(builder: _Builder, fit: AnalysisFit) -> dict[str, Any]:
    a = fit.analysis
    view = builder.analysis(a.name)
    scale = builder.scale(a.outcome)
    in_analysis = set(a.data.labels)
    table = builder.table
    own = table[table["outcome"] == a.outcome.id]
    used = own[own["included"].astype(bool) & own["study"].isin(in_analysis)]
    other = own[~(own["included"].astype(bool) & own["study"].isin(in_analysis)) & (own["form"] != "pooled")]
    other_rows = _data_rows(builder, other, scale)
    for row in other_rows:
        if row["included"]:
            row["reason"] = "not a randomised trial: pooled in the all-designs analysis only"
    sibling = f"{a.outcome.id}--randomised" if a.variant == "all" else a.outcome.id
    return {
        "analysis": view,
        "outcome": a.outcome,
        "scale": scale,
        "forest": _forest(builder, fit),
        "data": _data_rows(builder, used, scale),
        "other": other_rows,
        "edges": [{"id": e, "anchor": f"edge-{e}"} for e in a.outcome.edges],
        "sensitivity": builder.sensitivity(a.name),
        "sibling": builder.analysis(sibling),
        "reviews": builder.review_rows(a.outcome.id),
        "design_bias": _design_bias(builder, a)
        if a.data.bias_mean is not None or a.data.inflation is not None
        else [],
    }


def _design_bias(builder: _Builder, analysis: Any) -> list[dict[str, Any]]:
    out = []
    seen = set()
    for design in analysis.rows["design"]:
        b = builder.base.analysis.design_bias.table(analysis.outcome.measure).get(design)
        if b is None or design in seen:
            continue
        seen.add(design)
        out.append(
            {
                "design": design_word(design),
                "mean": fmt(b.mean),
                "sd": fmt(b.sd),
                "study_sd": fmt(b.study_sd),
                "inflation": fmt(b.inflation),
            }
        )
    return out


# --------------------------------------------------------------------------- rendering


def environment(cache_dir: Path | None = None):
    """The Jinja2 environment; ``cache_dir`` keeps compiled templates between runs."""
    from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined

    bytecode_cache = None
    if cache_dir is not None:
        with contextlib.suppress(OSError):
            cache_dir.mkdir(parents=True, exist_ok=True)
            bytecode_cache = FileSystemBytecodeCache(str(cache_dir))
    env = Environment(
        loader=PackageLoader("peerevidence.report", "templates"),
        bytecode_cache=bytecode_cache,
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    env.filters["fmt_p"] = fmt_p
    env.filters["fmt_int"] = fmt_int
    return env


def evidence_csv(builder: _Builder) -> str:
    table = builder.table.copy()
    labels = {oid: o.label for oid, o in builder.outcomes.items()}
    position = list(table.columns).index("outcome") + 1 if "outcome" in table.columns else 0
    table.insert(position, "outcome_label", table["outcome"].map(labels) if len(table) else [])
    return table.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def build_index(builder: _Builder) -> dict[str, Any]:
    from peerevidence.report.diagram import EdgeStyle, change_model_svg

    edges = [builder.edge(e) for e in sorted(builder.model.edges, key=lambda e: _edge_sort(e.id))]
    styles = {e["id"]: EdgeStyle(e["status"], e["rating"]) for e in edges}
    source_names = {k: builder.bib[k].short() for k in builder.bib.references}
    key = {"model": builder.model.model_dump(by_alias=True), "styles": styles, "names": source_names}
    svg = _cached_svg(builder, "diagram", key, lambda: change_model_svg(builder.model, styles, source_names))
    meta = builder.model.meta
    status_counts = Counter(e["status"] for e in edges)
    sens = [builder.sensitivity(name) for name in sorted(builder.synthesis.sensitivity)]
    return {
        "meta": {
            "title": meta.title,
            "figure_note": meta.figure_note,
            "source": builder.reference(meta.source) if meta.source in builder.bib else None,
            "locator_convention": meta.locator_convention,
        },
        "diagram": svg,
        "edges": edges,
        "status_counts": {k: status_counts.get(k, 0) for k in ("quantitative", "qualitative_only", "none")},
        "n_records": len(builder.base.records),
        "n_edges": len(edges),
        "n_analyses": len(builder.fits),
        "overview": builder.overview(),
        "failed": [builder.analysis(f.analysis.name) for f in builder.result.fits if f.failed],
        "gaps": builder.gaps(edges),
        "sensitivity": [s for s in sens if s is not None],
        "paths": builder.paths(),
        "changes": builder.change_rows(),
        "manifest": builder.manifest(),
        "certainty_levels": [LEVEL_WORDS[x] for x in reversed(LEVELS)],
        "has_certainty": bool(builder.synthesis.certainty),
    }


def _edge_sort(edge_id: str) -> tuple[str, int, str]:
    m = re.match(r"^([A-Z]+)(\d+)$", edge_id)
    return (m.group(1), int(m.group(2)), edge_id) if m else (edge_id, 0, edge_id)


def render(
    result: RunResult, synthesis: Synthesis | None = None, changes: list[dict] | None = None
) -> list[Path]:
    """Write the report into ``result.base.paths.reports``; return the files written."""
    builder = _Builder(result, synthesis if synthesis is not None else Synthesis(), changes)
    reports = result.base.paths.reports
    pages = {name: safe_page(reports, name) for name in sorted(builder.fits)}  # refuse bad names first
    env = environment(result.base.paths.reports / ".cache" / "jinja")
    common = {"title": builder.model.meta.title, "version": _version()}
    written: list[Path] = []

    index = build_index(builder)
    html = env.get_template("index.html.j2").render(root="", page="index", **common, **index)
    write_text(reports / "index.html", html)
    written.append(reports / "index.html")

    template = env.get_template("outcome.html.j2")
    for name, target in pages.items():
        page = outcome_page(builder, builder.fits[name])
        write_text(target, template.render(root="../", page="outcome", **common, **page))
        written.append(target)
    _remove_stale_pages(reports / "outcomes", set(pages))

    refs = env.get_template("references.html.j2").render(
        root="", page="references", references=builder.references(), **common
    )
    write_text(reports / "references.html", refs)
    written.append(reports / "references.html")

    write_text(reports / "evidence_table.csv", evidence_csv(builder))
    written.append(reports / "evidence_table.csv")
    return written


def _cached_svg(builder: _Builder, kind: str, key: Any, draw: Callable[[], str]) -> str:
    """Draw an SVG once per distinct input: cached under reports/.cache/svg by a hash of
    its inputs, the drawing code and the drawing libraries' versions (so an unchanged rerun
    is fast and a changed plot is redrawn)."""
    from peerevidence.pooling.store import digest

    try:
        import graphviz
        import matplotlib

        libs = [matplotlib.__version__, graphviz.__version__, _version()]
    except ImportError:  # pragma: no cover
        libs = [_version()]
    code = _code_hashes(("report/forest.py", "report/diagram.py"))
    name = digest({"kind": kind, "key": repr(key), "libs": libs, "code": code})
    path = builder.base.paths.reports / ".cache" / "svg" / f"{name}.svg"
    try:
        return path.read_text("utf-8")
    except OSError:
        pass
    svg = draw()
    with contextlib.suppress(OSError):
        write_text(path, svg)
    return svg


def _remove_stale_pages(directory: Path, keep: set[str]) -> None:
    """Delete outcome pages of analyses that no longer exist (only files we could have written)."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.html")):
        if SAFE_NAME.fullmatch(path.stem) and path.stem not in keep:
            path.unlink()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("peerevidence")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


# --------------------------------------------------------------------------- skipping unchanged reports

REPORT_STAMP = Path(".cache") / "report.json"
_CODE = ("report/*.py", "synthesis/*.py", "stats/exact.py", "records/bib.py")


@functools.cache
def _code_hashes(names: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of this package's source files, by glob from the package root (read once per process)."""
    root = Path(__file__).parents[1]
    paths = sorted({p for name in names for p in root.glob(name)})
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def fingerprint(result: RunResult) -> str:
    """Everything the rendered report depends on: input files, fits, the previous run it is
    compared with, and this package's rendering code and templates."""
    from peerevidence.pooling.fitting import input_hashes
    from peerevidence.pooling.store import digest, read_manifest

    here = Path(__file__).parent
    code = _code_hashes(_CODE)
    templates = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((here / "templates").iterdir())
    }
    previous = read_manifest(result.base.paths.reports / "manifest.previous.json") or {}
    return digest(
        {
            "inputs": input_hashes(result.base),
            "fits": {f.analysis.name: f.key for f in result.fits},
            "previous": {
                n: [e.get("key"), e.get("certainty")] for n, e in previous.get("analyses", {}).items()
            },
            "code": code,
            "templates": templates,
            "version": _version(),
        }
    )


def current_stamp(result: RunResult, key: str) -> dict[str, Any] | None:
    """The stamp of the last render if it had this key and its files are all still there."""
    import json

    reports = result.base.paths.reports
    try:
        stamp = json.loads((reports / REPORT_STAMP).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    expected = [reports / n for n in ("index.html", "references.html", "evidence_table.csv")]
    expected += [reports / "outcomes" / f"{f.analysis.name}.html" for f in result.fits]
    if stamp.get("key") != key or not all(p.exists() for p in expected):
        return None
    return stamp


def write_stamp(result: RunResult, key: str, certainty: dict[str, str]) -> None:
    from peerevidence.pooling.store import dumps

    write_text(result.base.paths.reports / REPORT_STAMP, dumps({"key": key, "certainty": certainty}))
