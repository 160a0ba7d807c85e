"""The HTML evidence report: fits + synthesis + change model -> ``reports/``.

:func:`render` writes every file :class:`peerevidence.report.layout.ReportPaths` lists, each
atomically (:func:`peerevidence.atomic.write_text`). Computing is kept apart from drawing:
:mod:`peerevidence.report.views` turns a :class:`RunResult` and a :class:`Synthesis` into one
frozen view per page; this module draws the figures, renders the Jinja2 templates
(autoescape on for all of them) and writes the files. The only markup inserted unescaped is
the SVG we generate (:mod:`peerevidence.report.diagram`, :mod:`peerevidence.report.forest`),
which escapes every text it embeds and is checked against an allow-list first.

Deterministic: nothing time- or path-dependent reaches the HTML (times stay in
``manifest.json``), so rendering twice with unchanged inputs gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerevidence.atomic import csv_text, write_text
from peerevidence.report.layout import SAFE_NAME, ReportPaths, safe_page
from peerevidence.report.views.common import Context, Scale, context, fmt, fmt_int, fmt_p
from peerevidence.report.views.index import edge_views, index_view
from peerevidence.report.views.outcome import forest_data, outcome_view, rob_figures
from peerevidence.report.views.references import references_view
from peerevidence.report.views.robustness import (
    RobustnessView,
    funnel_data,
    robustness_of,
    robustness_view,
    subgroup_forest_data,
)
from peerevidence.report.views.sof import sof_csv, summary_of_findings
from peerevidence.synthesis import Synthesis

if TYPE_CHECKING:  # pragma: no cover
    from jinja2 import Environment

    from peerevidence.pooling.fitting import AnalysisFit, RunResult

__all__ = ["Scale", "environment", "fingerprint", "fmt", "render", "safe_page"]


def _forest(ctx: Context, layout: ReportPaths, fit: AnalysisFit) -> str:
    from peerevidence.report.forest import forest_svg

    forest = forest_data(ctx, fit)
    key = {f.name: getattr(forest, f.name) for f in dataclasses.fields(forest)}
    return cached_svg(layout, "forest", key, lambda: forest_svg(forest))


def _robustness(ctx: Context, layout: ReportPaths, fit: AnalysisFit) -> RobustnessView | None:
    """The robustness section with its figures (funnel plot, a subgroup forest per analysis)."""
    from peerevidence.report.figures import bubble_svg, funnel_svg, subgroup_forest_svg
    from peerevidence.report.views.robustness import bubble_data
    from peerevidence.synthesis.subgroups import ModeratorAnalysis, SubgroupAnalysis

    view = robustness_view(ctx, fit)
    rob = robustness_of(ctx, fit)
    if view is None or rob is None:
        return None
    funnel = funnel_data(ctx, fit)
    svg = cached_svg(layout, "funnel", funnel, lambda: funnel_svg(funnel)) if funnel is not None else ""
    analyses = [s for s in rob.subgroups if isinstance(s, SubgroupAnalysis)]
    subgroups = []
    for sub, sv in zip(analyses, view.subgroups, strict=True):
        data = subgroup_forest_data(ctx, fit, sub, sv.test)
        forest = cached_svg(layout, "subgroups", data, functools.partial(subgroup_forest_svg, data))
        subgroups.append(dataclasses.replace(sv, forest=forest))
    bubble, caption = "", ""
    if isinstance(rob.moderators, ModeratorAnalysis):
        bubble_spec = bubble_data(ctx, fit, rob.moderators)
        if bubble_spec is not None:
            bubble = cached_svg(layout, "bubble", bubble_spec, functools.partial(bubble_svg, bubble_spec))
            caption = bubble_spec.note
    return dataclasses.replace(
        view, funnel=svg, subgroups=tuple(subgroups), bubble=bubble, bubble_caption=caption
    )


def _diagram(ctx: Context, layout: ReportPaths, edges: list[dict[str, Any]]) -> str:
    from peerevidence.report.diagram import EdgeStyle, change_model_svg

    styles = {e["id"]: EdgeStyle(e["status"], e["rating"]) for e in edges}
    source_names = {k: ctx.bib[k].short() for k in ctx.bib.references}
    key = {"model": ctx.model.model_dump(by_alias=True), "styles": styles, "names": source_names}
    return cached_svg(layout, "diagram", key, lambda: change_model_svg(ctx.model, styles, source_names))


def _prisma(ctx: Context, layout: ReportPaths) -> dict[str, Any]:
    from peerevidence.report.prisma import prisma_counts, prisma_csv, prisma_rows, prisma_svg

    pooled = {str(k) for f in ctx.result.fits for k in f.analysis.data.labels}
    counts = prisma_counts(ctx.base, pooled)
    svg = cached_svg(layout, "prisma", counts, lambda: prisma_svg(counts))
    return {"counts": counts, "svg": svg, "csv": prisma_csv(prisma_rows(counts))}


def _fields(view: Any) -> dict[str, Any]:
    """A frozen view's fields as template variables (one level: nested views stay objects)."""
    return {f.name: getattr(view, f.name) for f in dataclasses.fields(view)}


def evidence_csv(ctx: Context) -> str:
    table = ctx.table.copy()
    labels = {oid: o.label for oid, o in ctx.outcomes.items()}
    position = list(table.columns).index("outcome") + 1 if "outcome" in table.columns else 0
    table.insert(position, "outcome_label", table["outcome"].map(labels) if len(table) else [])
    return csv_text(table, index=False, float_format="%.10g", lineterminator="\n")


# --------------------------------------------------------------------------- rendering


def environment(cache_dir: Path | None = None) -> Environment:
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
    env.filters["upper_first"] = lambda text: str(text)[:1].upper() + str(text)[1:]
    return env


def render(
    result: RunResult,
    synthesis: Synthesis | None = None,
    changes: Sequence[Mapping[str, Any]] | None = None,
) -> list[Path]:
    """Write the report into ``result.base.paths.reports``; return the files written."""
    ctx = context(result, synthesis, changes)
    layout = ReportPaths(result.base.paths.reports)
    pages = {name: layout.outcome(name) for name in sorted(ctx.fits)}  # refuse bad names first
    env = environment(layout.jinja_cache)
    common = {"title": ctx.model.meta.title, "version": _version(), "wording": ctx.wording}
    written: list[Path] = []

    def write(path: Path, text: str) -> None:
        write_text(path, text)
        written.append(path)

    sof = summary_of_findings(ctx)
    edges = edge_views(ctx)
    prisma = _prisma(ctx, layout)
    index = index_view(ctx, edges, _diagram(ctx, layout, edges), sof, prisma)
    write(
        layout.index,
        env.get_template("index.html.j2").render(root="", page="index", **common, **_fields(index)),
    )

    template = env.get_template("outcome.html.j2")
    for name, target in pages.items():
        fit = ctx.fits[name]
        row = sof.by_outcome(fit.analysis.outcome.id) if fit.analysis.variant == "all" else None
        page = outcome_view(ctx, fit, _forest(ctx, layout, fit), sof=row, rob=rob_figures(ctx, fit))
        robustness = _robustness(ctx, layout, fit)
        write(
            target,
            template.render(root="../", page="outcome", robustness=robustness, **common, **_fields(page)),
        )
    _remove_stale_pages(layout.outcomes, set(pages))

    refs = references_view(ctx)
    write(
        layout.references,
        env.get_template("references.html.j2").render(root="", page="references", **common, **_fields(refs)),
    )
    write(layout.evidence_csv, evidence_csv(ctx))
    write(layout.sof_csv, sof_csv(sof))
    write(layout.prisma_csv, prisma["csv"])
    return written


def cached_svg(layout: ReportPaths, kind: str, key: Any, draw: Callable[[], str]) -> str:
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
    code = _code_hashes(("report/forest.py", "report/figures.py", "report/diagram.py", "report/prisma.py"))
    name = digest({"kind": kind, "key": repr(key), "libs": libs, "code": code})
    path = layout.svg_cache / f"{name}.svg"
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
_CODE = (
    "report/*.py",
    "report/views/*.py",
    "synthesis/*.py",
    "interchange/*.py",
    "stats/exact.py",
    "records/bib.py",
)


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

    layout = ReportPaths(result.base.paths.reports)
    try:
        stamp: dict[str, Any] = json.loads(layout.stamp.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    expected = layout.files(f.analysis.name for f in result.fits)
    if stamp.get("key") != key or not all(p.exists() for p in expected):
        return None
    return stamp


def write_stamp(result: RunResult, key: str, certainty: dict[str, str]) -> None:
    from peerevidence.pooling.store import dumps

    write_text(ReportPaths(result.base.paths.reports).stamp, dumps({"key": key, "certainty": certainty}))
