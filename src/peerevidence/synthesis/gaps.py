"""Evidence gaps: edges and outcomes without quantitative evidence, or resting on one study."""

from __future__ import annotations

from typing import TYPE_CHECKING

from peerevidence.synthesis.certainty import main_fits
from peerevidence.synthesis.types import EdgeCertainty, Gaps

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import RunResult


def gaps(result: RunResult, edges: dict[str, EdgeCertainty]) -> Gaps:
    fits = main_fits(result)
    catalogue = result.base.outcomes.outcomes if result.base.outcomes else []
    return Gaps(
        edges_without_quantitative=tuple(e for e, c in sorted(edges.items()) if c.status != "quantitative"),
        edges_qualitative_only=tuple(e for e, c in sorted(edges.items()) if c.status == "qualitative_only"),
        outcomes_without_data=tuple(sorted(o.id for o in catalogue if o.id not in fits)),
        outcomes_single_study=tuple(sorted(o for o, f in fits.items() if f.summary.k == 1)),
    )
