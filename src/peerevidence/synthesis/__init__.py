"""What the evidence adds up to: certainty per outcome and edge, prior sensitivity, effects
along change-model paths, and the evidence gaps. Plain data for the report; no PyMC here.

* :func:`certainty` — GRADE-style (guyatt2011): start high for randomised evidence, low for
  non-randomised; rate down for risk of bias, inconsistency, imprecision, indirectness and,
  when k >= 10, small-study effects (Egger's test); each step carries its reason. A reviewer's
  override in ``evidence/certainty.yaml`` is shown beside the computed rating.
* :func:`sensitivity` — every outcome re-analysed by exact quadrature under a grid of
  heterogeneity priors (half-normal 0.25/0.5/1, half-Cauchy 0.5, the Turner 2015 or Rhodes
  2015 empirical prior) and two priors for mu; flags outcomes whose conclusion flips.
* :func:`path_effects` — exploratory: implied downstream effects of the intervention through a
  process outcome, propagating posterior draws through both links with stated assumptions.
* :func:`gaps` — edges and outcomes without quantitative evidence, or resting on one study.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peerevidence.synthesis.certainty import certainty, edge_certainty
from peerevidence.synthesis.gaps import gaps
from peerevidence.synthesis.paths import path_effects
from peerevidence.synthesis.robustness import analyse
from peerevidence.synthesis.sensitivity import sensitivity
from peerevidence.synthesis.types import (
    LEVELS,
    Certainty,
    Downgrade,
    EdgeCertainty,
    Gaps,
    PathEffect,
    Sensitivity,
    SensitivityRow,
    Synthesis,
)

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import RunResult

__all__ = [
    "LEVELS",
    "Certainty",
    "Downgrade",
    "EdgeCertainty",
    "Gaps",
    "PathEffect",
    "Sensitivity",
    "SensitivityRow",
    "Synthesis",
    "certainty",
    "edge_certainty",
    "gaps",
    "path_effects",
    "sensitivity",
    "synthesise",
]


def synthesise(result: RunResult) -> Synthesis:
    ratings = certainty(result)
    edges = edge_certainty(result, ratings)
    return Synthesis(
        certainty=ratings,
        edges=edges,
        sensitivity=sensitivity(result),
        paths=path_effects(result),
        gaps=gaps(result, edges),
        robustness=analyse(result),
    )
