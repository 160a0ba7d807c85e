"""The typed results of synthesis, read by the report: certainty, sensitivity, paths, gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEVELS = ("very_low", "low", "moderate", "high")


@dataclass(frozen=True)
class Downgrade:
    domain: str  # risk_of_bias | inconsistency | imprecision | indirectness | publication_bias
    levels: int  # 0 (not rated down), 1 or 2
    reason: str  # always filled, also when not rated down ("why not")


@dataclass(frozen=True)
class Certainty:
    outcome: str
    start: str  # "high" (randomised) or "low" (non-randomised)
    steps: tuple[Downgrade, ...]
    rating: str  # one of LEVELS, computed
    override: str | None = None  # reviewer's rating from evidence/certainty.yaml
    override_reason: str | None = None
    override_by: str | None = None

    @property
    def final(self) -> str:
        return self.override or self.rating


@dataclass(frozen=True)
class EdgeCertainty:
    edge: str
    status: str  # "quantitative" | "qualitative_only" | "none"
    rating: str | None  # best final rating among the edge's outcomes with data
    outcomes: tuple[str, ...]  # outcomes with pooled data on this edge


@dataclass(frozen=True)
class SensitivityRow:
    prior_mu: str
    prior_tau: str
    mu_q50: float
    mu_q025: float
    mu_q975: float
    tau_q50: float
    p_benefit: float
    is_default: bool


@dataclass(frozen=True)
class Sensitivity:
    analysis: str
    rows: tuple[SensitivityRow, ...]
    flips: tuple[str, ...]  # human-readable reasons the conclusion changes; empty = robust


@dataclass(frozen=True)
class PathEffect:
    path: tuple[str, ...]  # node ids: intervention -> process outcome -> downstream
    edges: tuple[str, ...]  # edge ids along the path (may include extensions)
    first: str  # intervention-effect outcome id (e.g. social_functioning)
    second: str  # association outcome id (e.g. social_functioning_admission)
    scale: str  # "HR" or "OR": the implied effect's natural scale
    median: float  # implied ratio, intervention vs comparator
    q025: float
    q975: float
    p_benefit: float  # P(the implied ratio is on the benefit side of 1)
    assumptions: tuple[str, ...]
    caveat: str
    benefit: str = "below 1"  # which side of 1 is benefit: "below 1" (a harmful event) or "above 1"


@dataclass(frozen=True)
class Gaps:
    edges_without_quantitative: tuple[str, ...]
    edges_qualitative_only: tuple[str, ...]
    outcomes_without_data: tuple[str, ...]
    outcomes_single_study: tuple[str, ...]


@dataclass
class Synthesis:
    certainty: dict[str, Certainty] = field(default_factory=dict)  # by outcome id
    edges: dict[str, EdgeCertainty] = field(default_factory=dict)  # by edge id
    sensitivity: dict[str, Sensitivity] = field(default_factory=dict)  # by analysis name
    paths: list[PathEffect] = field(default_factory=list)
    gaps: Gaps | None = None
    # by outcome id: sensitivity table, leave-one-out, cumulative, small-study effects,
    # subgroups and moderators (peerevidence.synthesis.robustness.OutcomeRobustness)
    robustness: dict[str, Any] = field(default_factory=dict)
