"""The references page's view: every entry of references.bib, sorted by first author and year."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peerevidence.report.views.common import Context, reference


@dataclass(frozen=True)
class ReferencesView:
    references: list[dict[str, Any]]


def sort_key(ctx: Context, key: str) -> tuple[str, str, str, str]:
    """(first author's family name, year, title, key), case-folded: the order of a reference list."""
    ref = ctx.bib.references[key]
    authors = ref.authors()
    family = (
        authors[0].split(",")[0] if authors else (ref.get("organization") or ref.get("institution") or key)
    )
    return (family.strip("{} ").casefold(), ref.year, (ref.get("title") or "").casefold(), key)


def references_view(ctx: Context) -> ReferencesView:
    keys = sorted(ctx.bib.references, key=lambda k: sort_key(ctx, k))
    return ReferencesView([reference(ctx, k) for k in keys])
