"""The index page's view: key findings and the Summary of Findings first, then the
change-model diagram, one evidence block per link, gaps, prior sensitivity, path effects,
what changed and the provenance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from peerevidence.records.schema import Edge
from peerevidence.report.layout import SAFE_NAME
from peerevidence.report.views.common import (
    BASIS_WORDS,
    KIND_WORDS,
    LEVEL_WORDS,
    STATUS_WORDS,
    Context,
    _analysis_label,
    _finite,
    analysis_view,
    certainty_view,
    fmt,
    fmt_interval,
    fmt_p,
    reference,
    review_rows,
    scale_of,
    sensitivity_view,
    short_hash,
    study,
    unpooled_rows,
)
from peerevidence.synthesis import LEVELS


def outcome_evidence(ctx: Context, oid: str, edge: Edge | None = None) -> dict[str, Any]:
    outcome = ctx.outcomes[oid]
    all_view = analysis_view(ctx, oid)
    rand_view = analysis_view(ctx, f"{oid}--randomised")
    # one fit serves both when the data, priors and bias terms are identical (same key)
    same = rand_view is not None and all_view is not None and rand_view["key"] == all_view["key"]
    path_note = None
    if edge is not None and outcome.kind == "intervention_effect":
        source = ctx.nodes.get(edge.from_)
        if source is not None and source.kind != "intervention":
            path_note = (
                f"These trials measure the effect of {ctx.wording.intervention} on “{ctx.node_labels.get(outcome.node, outcome.node)}”, "
                "that is the whole path that ends in this link, not the link "
                f"from “{source.label}” in isolation."
            )
    return {
        "id": oid,
        "label": outcome.label,
        "kind": outcome.kind,
        "kind_words": "association between two nodes (observational)"
        if outcome.kind == "association"
        else f"effect of {ctx.wording.intervention} (vs {ctx.wording.comparator})",
        "scale": scale_of(ctx, outcome),
        "all": all_view,
        "randomised": rand_view,
        "randomised_same": same,
        "has_data": all_view is not None,
        "n_poolable": int((ctx.included["outcome"] == oid).sum()) if len(ctx.included) else 0,
        "certainty": certainty_view(ctx, oid),
        "reviews": review_rows(ctx, oid),
        "unpooled": unpooled_rows(ctx, oid),
        "path_note": path_note,
        "description": outcome.description,
    }


def edge_status(ctx: Context, edge: Edge) -> tuple[str, str | None, bool]:
    """(status, certainty rating, whether the synthesis supplied it), as synthesis gives them."""
    given = ctx.synthesis.edges.get(edge.id)
    if given is None:
        return "none", None, False
    return given.status, given.rating, True


def quotes_for(ctx: Context, edge: Edge) -> list[dict[str, Any]]:
    wanted = list(dict.fromkeys(edge.quotes))
    near = {edge.from_, edge.to}
    for nid in (edge.from_, edge.to):
        near |= {n.id for n in ctx.model.nodes if n.parent == nid}
        node = ctx.nodes.get(nid)
        if node and node.parent:
            near.add(node.parent)
    out = []
    for pid in wanted:
        mine = [q for q in ctx.model.quotes if q.participant == pid]
        close = [q for q in mine if q.node in near] or mine
        for q in close:
            out.append(
                {
                    "participant": q.participant,
                    "theme": ctx.node_labels.get(q.node, q.node),
                    "text": q.text,
                    "locator": q.locator,
                }
            )
    return out


def edge_view(ctx: Context, edge: Edge) -> dict[str, Any]:
    status, rating, given = edge_status(ctx, edge)
    src, dst = ctx.nodes.get(edge.from_), ctx.nodes.get(edge.to)
    origin = ctx.model.meta.source
    extension_nodes = [n for n in (src, dst) if n is not None and n.model_source == "peerevidence"]
    is_extension = edge.source == "peerevidence" or bool(extension_nodes)
    later = edge.source not in (origin, "peerevidence")
    source_ref = reference(ctx, edge.source) if edge.source in ctx.bib else None
    if edge.source == "peerevidence":
        wording_note = "Extension, not an edge of the source model: the wording is ours, not the paper's."
    elif is_extension:
        wording_note = (
            "Extension, not an edge of the source model (it leads to a node we added); "
            f"the wording is quoted from {source_ref['short'] if source_ref else edge.source}."
        )
    elif later:
        wording_note = f"Not part of the source model: wording from {source_ref['short'] if source_ref else edge.source}."
    else:
        wording_note = f"The paper's wording ({source_ref['short'] if source_ref else edge.source})."
    quotes = quotes_for(ctx, edge)
    outcome_ids = ctx.outcomes_of_edge.get(edge.id, [])
    outcomes = [outcome_evidence(ctx, o, edge) for o in outcome_ids]
    with_data = [o for o in outcomes if o["has_data"] or o["n_poolable"]]
    if not outcome_ids:
        gap = (
            "No quantitative evidence: no outcome in evidence/outcomes.yaml measures this link, "
            "so no study result bears on it (evidence gap)."
        )
    elif not with_data:
        labels = ", ".join(o["label"] for o in outcomes)
        gap = f"No quantitative evidence: no study gives poolable data for {labels} (evidence gap)."
    else:
        gap = None
    themes = []
    for nid in (edge.from_, edge.to):
        if nid in ctx.node_labels and ctx.node_labels[nid] not in themes:
            themes.append(ctx.node_labels[nid])
    for q in quotes:
        if q["theme"] not in themes:
            themes.append(q["theme"])
    return {
        "id": edge.id,
        "anchor": f"edge-{edge.id}",
        "from_id": edge.from_,
        "to_id": edge.to,
        "from_label": ctx.node_labels.get(edge.from_, edge.from_),
        "to_label": ctx.node_labels.get(edge.to, edge.to),
        "from_kind": KIND_WORDS.get(src.kind, "") if src else "",
        "to_kind": KIND_WORDS.get(dst.kind, "") if dst else "",
        "wording": edge.wording,
        "wording_note": wording_note,
        "locator": edge.locator,
        "source": source_ref,
        "is_extension": is_extension,
        "basis": [BASIS_WORDS.get(b, b) for b in edge.basis],
        "status": status,
        "status_words": STATUS_WORDS.get(status, status),
        "rating": rating,
        "rating_words": LEVEL_WORDS.get(rating, rating) if rating else None,
        "status_from_synthesis": given,
        "quotes": quotes,
        "participants": list(dict.fromkeys(edge.quotes)),
        "themes": themes,
        "cites": [reference(ctx, k) for k in edge.cites],
        "notes": list(edge.notes),
        "outcomes": outcomes,
        "gap": gap,
    }


def gaps_view(ctx: Context, edges: list[dict[str, Any]]) -> dict[str, Any]:
    g = ctx.synthesis.gaps
    assert g is not None, "context() fills in the gaps"
    by_id = {e["id"]: e for e in edges}

    def edge_refs(ids: Iterable[str]) -> list[dict[str, str]]:
        return [
            {"id": i, "anchor": f"edge-{i}",
             "text": f"{by_id[i]['from_label']} → {by_id[i]['to_label']}" if i in by_id else i}
            for i in ids
        ]  # fmt: skip

    def outcome_refs(ids: Iterable[str]) -> list[dict[str, str | None]]:
        return [
            {"id": i, "label": ctx.outcomes[i].label if i in ctx.outcomes else i,
             "href": f"outcomes/{i}.html" if i in ctx.fits else None}
            for i in ids
        ]  # fmt: skip

    return {
        "edges_without_quantitative": edge_refs(g.edges_without_quantitative),
        "edges_qualitative_only": edge_refs(g.edges_qualitative_only),
        "outcomes_without_data": outcome_refs(g.outcomes_without_data),
        "outcomes_single_study": outcome_refs(g.outcomes_single_study),
    }


def paths_view(ctx: Context) -> list[dict[str, Any]]:
    out = []
    for p in ctx.synthesis.paths:
        out.append(
            {
                "nodes": [ctx.node_labels.get(n, n) for n in p.path],
                "edges": [{"id": e, "anchor": f"edge-{e}"} for e in p.edges],
                "first": ctx.outcomes[p.first].label if p.first in ctx.outcomes else p.first,
                "first_href": f"outcomes/{p.first}.html" if p.first in ctx.fits else None,
                "second": ctx.outcomes[p.second].label if p.second in ctx.outcomes else p.second,
                "second_href": f"outcomes/{p.second}.html" if p.second in ctx.fits else None,
                "scale": p.scale,
                "effect": f"{p.scale} {fmt(p.median)} ({fmt_interval(p.q025, p.q975)})",
                "p_benefit": fmt_p(p.p_benefit),
                "assumptions": list(p.assumptions),
                "caveat": p.caveat,
            }
        )
    return out


def _level_word(level: str | None) -> str:
    """A certainty level in words, as given when unknown, '–' when missing."""
    return (LEVEL_WORDS.get(level, level) if level else level) or "–"


def change_rows(ctx: Context) -> dict[str, Any] | None:
    """Changed, added and removed analyses as rows; unchanged ones only by name."""
    if ctx.changes is None:
        return None
    rows = []
    for c in ctx.changes:
        name = str(c.get("analysis", ""))
        added = c.get("studies_added") or []
        removed = c.get("studies_removed") or []
        rows.append(
            {
                "analysis": name,
                "label": _analysis_label(ctx, name),
                "href": f"outcomes/{name}.html" if name in ctx.fits and SAFE_NAME.fullmatch(name) else None,
                "status": str(c.get("status", "")),
                "added": [study(ctx, str(k)) for k in added],
                "removed": [study(ctx, str(k)) for k in removed],
                "d_mu": fmt(c.get("d_mu")) if _finite(c.get("d_mu")) else "–",
                "d_width": fmt(c.get("d_width")) if _finite(c.get("d_width")) else "–",
                "certainty_before": _level_word(c.get("certainty_before")),
                "certainty_after": _level_word(c.get("certainty_after")),
            }
        )
    return {
        "rows": [r for r in rows if r["status"] != "unchanged"],
        "unchanged": [r["analysis"] for r in rows if r["status"] == "unchanged"],
        # a first run: every analysis is new, there is nothing to compare with
        "first_run": bool(rows) and all(r["status"] == "added" for r in rows),
    }


def overview_view(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """One line per outcome of the catalogue: the headline numbers and where to read more.

    Two groups (effects of the intervention; associations between nodes), outcomes with
    pooled data first, then by label.
    """
    rows = []
    for oid in sorted(ctx.outcomes, key=lambda o: (o not in ctx.fits, ctx.outcomes[o].label.casefold(), o)):
        o = ctx.outcomes[oid]
        all_view, rand = analysis_view(ctx, oid), analysis_view(ctx, f"{oid}--randomised")
        rows.append(
            {
                "id": oid,
                "label": o.label,
                "kind": o.kind,
                "edges": [{"id": e, "anchor": f"edge-{e}"} for e in o.edges],
                "all": all_view,
                "randomised": rand,
                "certainty": certainty_view(ctx, oid),
                "n_records": int((ctx.table["outcome"] == oid).sum()),
                "scale": scale_of(ctx, o),
            }
        )
    return {
        "effects": [r for r in rows if r["kind"] != "association"],
        "associations": [r for r in rows if r["kind"] == "association"],
    }


def manifest_view(ctx: Context) -> dict[str, Any]:
    from peerevidence.pooling.fitting import input_hashes
    from peerevidence.pooling.store import versions

    m = ctx.result.manifest or {}
    inputs = input_hashes(ctx.base)
    sampler = m.get("sampler") or ctx.base.analysis.sampler.model_dump()
    fits = []
    for name in sorted(ctx.fits):
        f = ctx.fits[name]
        prov = f.summary.provenance
        smp = dict(prov.sampler) if prov else {}
        fits.append(
            {
                "name": name,
                "href": f"outcomes/{name}.html",
                "key": short_hash(f.key),
                "seed": smp.get("seed", f.analysis.sampler.seed),
                "draws": smp.get("draws", "–"),
                "tune": smp.get("tune", "–"),
                "chains": smp.get("chains", "–"),
                "model": prov.model_version if prov else "",
            }
        )
    return {
        "inputs": [{"file": k, "hash": short_hash(v)} for k, v in sorted(inputs.items())],
        "versions": sorted((m.get("versions") or versions()).items()),
        "sampler": sampler,
        "fits": fits,
    }


@dataclass(frozen=True)
class IndexView:
    """Everything ``index.html.j2`` lays out."""

    meta: dict[str, Any]
    sof: Any  # SummaryOfFindings
    diagram: str
    edges: list[dict[str, Any]]
    status_counts: dict[str, int]
    n_records: int
    n_edges: int
    n_analyses: int
    overview: dict[str, list[dict[str, Any]]]
    failed: list[dict[str, Any]]
    gaps: dict[str, Any]
    sensitivity: list[dict[str, Any]]
    paths: list[dict[str, Any]]
    changes: dict[str, Any] | None
    manifest: dict[str, Any]
    certainty_levels: list[str]
    has_certainty: bool
    prisma: Any = None


def edge_sort(edge_id: str) -> tuple[str, int, str]:
    import re

    m = re.match(r"^([A-Z]+)(\d+)$", edge_id)
    return (m.group(1), int(m.group(2)), edge_id) if m else (edge_id, 0, edge_id)


def edge_views(ctx: Context) -> list[dict[str, Any]]:
    return [edge_view(ctx, e) for e in sorted(ctx.model.edges, key=lambda e: edge_sort(e.id))]


def index_view(
    ctx: Context, edges: list[dict[str, Any]], diagram: str, sof: Any, prisma: Any = None
) -> IndexView:
    meta = ctx.model.meta
    status_counts = Counter(e["status"] for e in edges)
    sens = [sensitivity_view(ctx, name) for name in sorted(ctx.synthesis.sensitivity)]
    return IndexView(
        meta={
            "title": meta.title,
            "figure_note": meta.figure_note,
            "source": reference(ctx, meta.source)
            if meta.source is not None and meta.source in ctx.bib
            else None,
            "locator_convention": meta.locator_convention,
        },
        sof=sof,
        diagram=diagram,
        edges=edges,
        status_counts={k: status_counts.get(k, 0) for k in ("quantitative", "qualitative_only", "none")},
        n_records=len(ctx.base.records),
        n_edges=len(edges),
        n_analyses=len(ctx.fits),
        overview=overview_view(ctx),
        # every fit is in ctx.fits, so each failed one has a view
        failed=[
            view
            for f in ctx.result.fits
            if f.failed and (view := analysis_view(ctx, f.analysis.name)) is not None
        ],
        gaps=gaps_view(ctx, edges),
        sensitivity=[s for s in sens if s is not None],
        paths=paths_view(ctx),
        changes=change_rows(ctx),
        manifest=manifest_view(ctx),
        certainty_levels=[LEVEL_WORDS[x] for x in reversed(LEVELS)],
        has_certainty=bool(ctx.synthesis.certainty),
        prisma=prisma,
    )
