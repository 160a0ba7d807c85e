"""Schemas of every input file, as pydantic models (``extra="forbid"``, frozen, strict types).

These models check one file at a time: types, required fields, value ranges and rules
that need only the file itself (a CI contains its estimate; events <= total). Rules that
need several files (a record's key is in ``references.bib``; an outcome exists) live in
:mod:`peerevidence.records.rules`.

Files and their models:

* ``extraction/<key>.yaml``  -> :class:`Record`
* ``evidence/change_model.yaml`` -> :class:`ChangeModel`
* ``evidence/outcomes.yaml`` -> :class:`OutcomeCatalogue`
* ``evidence/analysis.yaml`` -> :class:`AnalysisConfig`
* ``evidence/certainty.yaml`` -> :class:`CertaintyOverrides`
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# --------------------------------------------------------------------------- vocabulary

Design = Literal[
    "rct",
    "pilot_rct",
    "cluster_rct",
    "non_randomised_comparison",
    "before_after",
    "cohort",
    "case_control",
    "cross_sectional",
    "qualitative",
    "systematic_review",
]
RANDOMISED_DESIGNS = frozenset({"rct", "cluster_rct", "pilot_rct"})  # the "randomised only" analyses
RiskLevel = Literal["low", "some_concerns", "high", "unclear", "not_assessed"]
Direction = Literal["higher_is_better", "lower_is_better"]
PoolMeasure = Literal["SMD", "MD", "logOR", "logRR", "logHR", "fisher_z"]
EffectMeasure = Literal["OR", "RR", "HR", "MD", "SMD", "r"]
RATIO_MEASURES = frozenset({"OR", "RR", "HR"})
Conversion = Literal["logOR_to_SMD", "SMD_to_logOR"]
NodeKind = Literal["intervention", "mechanism", "process_outcome", "downstream_outcome"]
Basis = Literal[
    "qualitative_data",
    "theory",
    "literature",
    "prior_evidence",
    "author_proposal",
    "trial_secondary_analysis",
    "site_level_observation",
    "trial_evidence",
]

MAX_SNIPPET_WORDS = 30
IDENT = r"^[a-z][a-z0-9_]*$"
DATE = r"^\d{4}-\d{2}-\d{2}$"

NonEmpty = Annotated[str, Field(min_length=1)]
Ident = Annotated[str, Field(pattern=IDENT)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
PositiveCount = Annotated[int, Field(gt=0)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- provenance


class Source(Model):
    """Where a number was read: a locator anyone can check, and the words it was read from."""

    locator: NonEmpty
    snippet: str | None = None
    kind: Literal["text", "table", "figure", "dataset"] = "text"
    ref: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _snippet_rules(self) -> Source:
        if self.kind in ("text", "table") and not (self.snippet and self.snippet.strip()):
            raise ValueError(
                f"a {self.kind} source needs a verbatim snippet (kind: figure or dataset may omit it)"
            )
        if self.snippet is not None and _words(self.snippet) > MAX_SNIPPET_WORDS:
            raise ValueError(
                f"snippet has {_words(self.snippet)} words; keep it to {MAX_SNIPPET_WORDS} (cut with ' … ')"
            )
        return self


class Correction(Model):
    """A source number the record does not use as printed, and why. Never silent."""

    field: NonEmpty
    original: Finite | str
    used: Finite | str | None = None
    reason: NonEmpty


# --------------------------------------------------------------------------- study results


class Arm(Model):
    n: PositiveCount
    mean: Finite
    sd: Positive


class EventArm(Model):
    events: Count
    total: PositiveCount

    @model_validator(mode="after")
    def _events_within_total(self) -> EventArm:
        if self.events > self.total:
            raise ValueError(f"events ({self.events}) exceed total ({self.total})")
        return self


def _check_interval(estimate: float, low: float | None, high: float | None, ratio: bool) -> None:
    if (low is None) != (high is None):
        raise ValueError("give both ci_low and ci_high, or neither")
    if ratio:
        for name, value in (("estimate", estimate), ("ci_low", low), ("ci_high", high)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} of a ratio measure must be > 0 (got {value})")
    if low is not None and high is not None:
        if not low <= high:
            raise ValueError(f"ci_low ({low}) is above ci_high ({high})")
        if not low <= estimate <= high:
            raise ValueError(f"CI [{low}, {high}] does not contain the estimate {estimate}")


class ReportedEffect(Model):
    """An effect size that a source itself reports for this result (used as a cross-check)."""

    measure: Literal["OR", "RR", "HR", "MD", "SMD", "g", "r"]
    estimate: Finite
    se: Positive | None = None
    ci_low: Finite | None = None
    ci_high: Finite | None = None
    sign_convention: str | None = None
    source: Source

    @model_validator(mode="after")
    def _interval(self) -> ReportedEffect:
        _check_interval(self.estimate, self.ci_low, self.ci_high, self.measure in RATIO_MEASURES)
        return self


class ResultBase(Model):
    outcome: Ident
    timepoint: NonEmpty
    instrument: str | None = None
    direction: Direction | None = None
    exposure: str | None = None
    source: Source
    exclude: str | None = None
    flags: list[NonEmpty] = []
    indirect: str | None = None
    reported: ReportedEffect | None = None
    risk_of_bias: RiskLevel | None = None
    groups: dict[str, str] = {}
    corrections: list[Correction] = []
    notes: str | None = None


class ContinuousResult(ResultBase):
    """Two-arm continuous data: n, mean and SD per arm (intervention vs control)."""

    form: Literal["continuous"]
    intervention: Arm
    control: Arm


class BinaryResult(ResultBase):
    """Two-arm binary data: events and total per arm."""

    form: Literal["binary"]
    event: NonEmpty
    intervention: EventArm
    control: EventArm


class EffectResult(ResultBase):
    """An effect with its CI or SE, as the source reports it (OR, RR, HR, MD, SMD, r).

    By default the effect compares intervention with control (or exposed with unexposed)
    on the instrument's own scale, and is harmonised with the instrument's direction.
    ``harmonised: true`` says the source already signed it so that positive means benefit
    of peer support (e.g. the Smit 2022 dataset's g); it is then used as given.
    """

    form: Literal["effect"]
    measure: EffectMeasure
    estimate: Finite
    ci_low: Finite | None = None
    ci_high: Finite | None = None
    ci_level: Annotated[float, Field(gt=0, lt=1)] = 0.95
    se: Positive | None = None
    n: PositiveCount | None = None
    adjusted: bool | None = None
    contrast: str | None = None
    harmonised: bool = False

    @model_validator(mode="after")
    def _interval(self) -> EffectResult:
        _check_interval(self.estimate, self.ci_low, self.ci_high, self.measure in RATIO_MEASURES)
        if self.measure == "r":
            if not -1 < self.estimate < 1:
                raise ValueError(f"a correlation must lie in (-1, 1) (got {self.estimate})")
            if self.n is None and self.se is None and self.ci_low is None:
                raise ValueError("a correlation needs n (or a CI or SE)")
        elif self.ci_low is None and self.se is None:
            raise ValueError("an effect needs ci_low/ci_high or se")
        return self


class PooledResult(ResultBase):
    """A review's pooled result, shown beside ours, never pooled with trials."""

    form: Literal["pooled"]
    measure: Literal["SMD", "MD", "OR", "RR", "HR", "g", "RD"]
    estimate: Finite
    ci_low: Finite | None = None
    ci_high: Finite | None = None
    k: PositiveCount | None = None
    n: PositiveCount | None = None
    i2: Annotated[float, Field(ge=0, le=100)] | None = None
    tau2: Annotated[float, Field(ge=0)] | None = None
    sign_convention: NonEmpty
    model: str | None = None

    @model_validator(mode="after")
    def _interval(self) -> PooledResult:
        _check_interval(self.estimate, self.ci_low, self.ci_high, self.measure in RATIO_MEASURES)
        return self


class NotReported(ResultBase):
    """The study has nothing usable for this outcome; say why (it stays out of pooling)."""

    form: Literal["not_reported"]
    reason: NonEmpty
    finding: str | None = None


Result = Annotated[
    ContinuousResult | BinaryResult | EffectResult | PooledResult | NotReported,
    Field(discriminator="form"),
]


# --------------------------------------------------------------------------- study record


class SampleSize(Model):
    randomised: PositiveCount | None = None
    intervention: PositiveCount | None = None
    control: PositiveCount | None = None
    analysed: PositiveCount | None = None
    total: PositiveCount | None = None
    note: str | None = None
    source: Source | None = None

    @model_validator(mode="after")
    def _numbers_need_source(self) -> SampleSize:
        numbers = (self.randomised, self.intervention, self.control, self.analysed, self.total)
        if any(v is not None for v in numbers) and self.source is None:
            raise ValueError("sample sizes need a source (locator and snippet)")
        return self


class RiskOfBias(Model):
    tool: NonEmpty
    overall: RiskLevel
    domains: dict[str, RiskLevel] = {}
    assessed_by: NonEmpty
    source: Source | None = None


class Extraction(Model):
    extracted_by: NonEmpty
    checked_by: NonEmpty
    date: Annotated[str, Field(pattern=DATE)]
    method: str | None = None


class ReviewInfo(Model):
    studies: PositiveCount | None = None
    participants: PositiveCount | None = None
    search_date: str | None = None
    sign_convention: NonEmpty
    source: Source


class Record(Model):
    """One study (``extraction/<bibkey>.yaml``)."""

    study: NonEmpty
    cited_as: str | None = None
    design: Design
    country: NonEmpty
    setting: NonEmpty
    population: NonEmpty
    intervention: NonEmpty
    comparator: NonEmpty
    sample_size: SampleSize
    risk_of_bias: RiskOfBias
    extraction: Extraction
    exclude: str | None = None
    indirectness: str | None = None
    review: ReviewInfo | None = None
    notes: list[NonEmpty] = []
    results: Annotated[list[Result], Field(min_length=1)]


# --------------------------------------------------------------------------- change model


class Node(Model):
    id: Ident
    label: NonEmpty
    kind: NodeKind
    parent: str | None = None
    quotes: list[str] = []
    locator: str | None = None
    model_source: NonEmpty
    note: str | None = None


class Edge(Model):
    id: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]*\d+$")]
    from_: str = Field(alias="from")
    to: str
    wording: NonEmpty
    locator: NonEmpty
    source: NonEmpty
    basis: Annotated[list[Basis], Field(min_length=1)]
    quotes: list[str] = []
    cites: list[str] = []
    notes: list[NonEmpty] = []

    @field_validator("wording")
    @classmethod
    def _short(cls, value: str) -> str:
        if _words(value) > MAX_SNIPPET_WORDS + 5:
            raise ValueError(f"wording has {_words(value)} words; keep it short and verbatim")
        return value


class Quote(Model):
    participant: Annotated[str, Field(pattern=r"^[A-Z]{3}\d[A-Z]{2}\d{2}$")]
    node: str
    text: NonEmpty
    locator: NonEmpty


class Uncited(Model):
    key: NonEmpty
    reason: NonEmpty


class ChangeModelMeta(Model):
    """About the change model, and the project's own words for the intervention.

    ``intervention`` and ``comparator`` are the words the report uses ("Favours
    {intervention}", "risk with {comparator}"); ``intervention_node`` names the node paths
    start from (default: the first node of kind ``intervention``); ``path_caveat`` is shown
    with the exploratory path effects.
    """

    title: NonEmpty
    source: NonEmpty | None = None
    figure_note: NonEmpty | None = None
    locator_convention: NonEmpty | None = None
    intervention: NonEmpty | None = None
    comparator: NonEmpty | None = None
    intervention_node: Ident | None = None
    path_caveat: NonEmpty | None = None


class ChangeModel(Model):
    meta: ChangeModelMeta
    nodes: Annotated[list[Node], Field(min_length=1)]
    edges: list[Edge] = []
    quotes: list[Quote] = []
    uncited: list[Uncited] = []


# --------------------------------------------------------------------------- outcomes


class Instrument(Model):
    name: NonEmpty
    direction: Direction
    aliases: list[NonEmpty] = []


class Outcome(Model):
    id: Ident
    label: NonEmpty
    node: str
    related_nodes: list[str] = []
    kind: Literal["intervention_effect", "association"] = "intervention_effect"
    exposure: str | None = None
    measure: PoolMeasure
    direction: Direction
    edges: list[str] = []
    instruments: list[Instrument] = []
    conversions: list[Conversion] = []
    description: str | None = None

    @model_validator(mode="after")
    def _association_has_exposure(self) -> Outcome:
        if self.kind == "association" and not self.exposure:
            raise ValueError("an association outcome needs `exposure` (a node id)")
        return self


class OutcomeCatalogue(Model):
    outcomes: Annotated[list[Outcome], Field(min_length=1)]


# --------------------------------------------------------------------------- analysis settings

PRIOR_MU = re.compile(r"^normal:(-?[0-9.eE+-]+):([0-9.eE+-]+)$")


class SamplerSettings(Model):
    """nutpie settings per sampling round, and when to top up with another round of chains."""

    draws: Annotated[int, Field(ge=10)] = 500
    tune: Annotated[int, Field(ge=10)] = 150
    chains: Annotated[int, Field(ge=1, le=16)] = 4
    seed: Annotated[int, Field(ge=0)] = 20150703
    target_accept: Annotated[float, Field(gt=0.5, lt=1)] = 0.9
    # another round of `chains` chains while bulk ESS < target_ess or R-hat > target_rhat
    target_ess: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1100
    target_rhat: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 1.008
    max_rounds: Annotated[int, Field(ge=0, le=20)] = 3


class BiasSetting(Model):
    """Design-specific bias for non-randomised evidence (Welton et al. 2009; Turner et al. 2009),
    on the outcome's scale.

    The studies of this design share one bias ``beta ~ N(mean, sd^2)`` (``sd``: uncertainty
    about the design's mean bias); ``study_sd`` adds study-level spread of the bias around
    beta (variance ``study_sd^2`` per study). ``inflation`` multiplies the study's variance: it
    is in neither paper and is a sensitivity option only (default 1: none).
    """

    mean: Finite = 0.0
    sd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    study_sd: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    inflation: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 1.0


class DesignBias(Model):
    """Design-bias tables per scale: ``smd`` for standardised mean differences, ``log_ratio``
    for log odds / risk / hazard ratios. Other pooled measures (MD in the outcome's own units,
    Fisher's z) have no table and are pooled without design-bias terms."""

    smd: dict[str, BiasSetting] = {}
    log_ratio: dict[str, BiasSetting] = {}

    def designs(self) -> list[str]:
        return sorted(set(self.smd) | set(self.log_ratio))

    def table(self, measure: str) -> dict[str, BiasSetting]:
        """The table for an outcome's measure (SMD/MD: ``smd``; OR/RR/HR: ``log_ratio``)."""
        if measure in ("logOR", "logRR", "logHR"):
            return self.log_ratio
        if measure == "SMD":
            return self.smd
        return {}


class OutcomeAnalysis(Model):
    prior_mu: str | None = None
    prior_tau: str | None = None
    mid: Positive | None = None
    empirical_prior: str | None = None


class AnalysisConfig(Model):
    prior_mu: NonEmpty = "normal:0:1"
    prior_tau: NonEmpty = "halfnormal:0.5"
    sampler: SamplerSettings = SamplerSettings()
    tolerance_sd: Positive = 0.1
    tolerance_z: Positive = 5.0
    design_bias: DesignBias = DesignBias()
    outcomes: dict[str, OutcomeAnalysis] = {}
    sensitivity_tau: list[NonEmpty] = [
        "halfnormal:0.25",
        "halfnormal:0.5",
        "halfnormal:1",
        "halfcauchy:0.5",
    ]
    sensitivity_mu: list[NonEmpty] = ["normal:0:10"]
    exposure_split: Annotated[float, Field(gt=0, lt=1)] = 0.5
    # BibTeX entries with one of these keywords are kept without a record or an edge
    kept_bib_keywords: list[NonEmpty] = ["methods", "related"]


# --------------------------------------------------------------------------- certainty


class CertaintyOverride(Model):
    outcome: Ident
    rating: Literal["high", "moderate", "low", "very_low"]
    reason: NonEmpty
    by: NonEmpty
    date: Annotated[str, Field(pattern=DATE)]


class CertaintyOverrides(Model):
    overrides: list[CertaintyOverride] = []


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
