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
* ``evidence/searches.yaml`` -> :class:`SearchLog` (optional)
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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


def _real_date(text: str) -> str:
    """A YYYY-MM-DD text that is also a calendar date (not 2026-13-45)."""
    import datetime as _dt

    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"must be a calendar date written YYYY-MM-DD (got {text!r})") from None
    return text


Date = Annotated[str, Field(pattern=DATE), AfterValidator(_real_date)]

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
    # True: the source signs the effect so that positive means benefit (as a harmonised
    # effect result); False: intervention minus control (or intervention / control) on the
    # instrument's own scale. The cross-check compares on the matching scale.
    harmonised: bool = False
    # A known, documented gap between this effect and the one computed from the arm data
    # (e.g. an adjusted estimate, a misaligned dataset row): the cross-check then reports
    # nothing. Never silent: the reason stays in the record (the report does not show it yet).
    mismatch: str | None = None

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
    of the intervention (e.g. a review dataset's g); it is then used as given.

    An SMD (Cohen's d) reported without a CI or SE may give the arm sizes instead
    (``n_intervention``, ``n_control``): it then enters as ``escalc(measure="SMD", di=,
    n1i=, n2i=)`` does, as Hedges' g with its large-sample variance. No SD is imputed.
    """

    form: Literal["effect"]
    measure: EffectMeasure
    estimate: Finite
    ci_low: Finite | None = None
    ci_high: Finite | None = None
    ci_level: Annotated[float, Field(gt=0, lt=1)] = 0.95
    se: Positive | None = None
    n: PositiveCount | None = None
    n_intervention: PositiveCount | None = None
    n_control: PositiveCount | None = None
    adjusted: bool | None = None
    contrast: str | None = None
    harmonised: bool = False

    @property
    def d_with_arm_sizes(self) -> bool:
        """An SMD with arm sizes but no CI or SE (its variance comes from the arm sizes)."""
        return (
            self.measure == "SMD"
            and self.ci_low is None
            and self.se is None
            and self.n_intervention is not None
            and self.n_control is not None
        )

    @model_validator(mode="after")
    def _interval(self) -> EffectResult:
        _check_interval(self.estimate, self.ci_low, self.ci_high, self.measure in RATIO_MEASURES)
        if (self.n_intervention is None) != (self.n_control is None):
            raise ValueError("give both n_intervention and n_control, or neither")
        if self.n_intervention is not None and self.measure != "SMD":
            raise ValueError(f"arm sizes stand in for a CI only for an SMD, not for {self.measure}")
        if self.measure == "r":
            if not -1 < self.estimate < 1:
                raise ValueError(f"a correlation must lie in (-1, 1) (got {self.estimate})")
            if self.n is None and self.se is None and self.ci_low is None:
                raise ValueError("a correlation needs n (or a CI or SE)")
        elif self.ci_low is None and self.se is None and not self.d_with_arm_sizes:
            hint = " (or, for an SMD, n_intervention and n_control)" if self.measure == "SMD" else ""
            raise ValueError(f"an effect needs ci_low/ci_high or se{hint}")
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


class _Unpooled(ResultBase):
    """A result that carries no data: ``reason`` says what is missing, ``finding`` quotes
    what the source does say. It stays out of pooling and is listed in the evidence table."""

    reason: NonEmpty
    finding: str | None = None


class NotReported(_Unpooled):
    """The study did not report a usable result for this outcome (a fact about the study)."""

    form: Literal["not_reported"]


class SearchAttempt(Model):
    """One attempt to reach a source: when, by which route, and what came back."""

    date: Annotated[str, Field(pattern=DATE)]
    route: NonEmpty
    result: NonEmpty


class NotObtained(_Unpooled):
    """The result may exist, but we could not reach the source that holds it.

    A fact about our access, not about the study: the full text, its tables or the
    registry results were out of reach. ``reason`` names what is wanted and where it should
    be; ``searched`` lists what was tried (date, route, result).
    """

    form: Literal["not_obtained"]
    searched: Annotated[list[SearchAttempt], Field(min_length=1)]


Result = Annotated[
    ContinuousResult | BinaryResult | EffectResult | PooledResult | NotReported | NotObtained,
    Field(discriminator="form"),
]
RESULT_FORMS = ("continuous", "binary", "effect", "pooled", "not_reported", "not_obtained")
UNPOOLED_FORMS = ("not_reported", "not_obtained")
"""Forms that carry no data: the study has no usable result, or we could not reach it."""


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


class ProvenanceItem(Model):
    """One field two extractors disagreed on, with both values (``peerevidence reconcile``)."""

    field: NonEmpty
    a: Finite | str | bool | None = None
    b: Finite | str | bool | None = None
    resolved: Finite | str | bool | None = None
    note: str | None = None


class Extraction(Model):
    extracted_by: NonEmpty | Annotated[list[NonEmpty], Field(min_length=1)]
    checked_by: NonEmpty
    date: Date
    method: str | None = None
    reconciled_by: str | None = None
    provenance: list[ProvenanceItem] = []


class ReviewInfo(Model):
    studies: PositiveCount | None = None
    participants: PositiveCount | None = None
    search_date: str | None = None
    sign_convention: NonEmpty
    source: Source


class Covariate(Model):
    """A study-level characteristic usable as a moderator or subgroup, with its source.

    ``value`` is a number (a continuous moderator) or a short category label."""

    value: Finite | NonEmpty
    source: Source
    note: str | None = None

    @field_validator("value")
    @classmethod
    def _finite_number(cls, value: float | str) -> float | str:
        if isinstance(value, bool):
            raise ValueError("a covariate is a number or a category label, not true/false")
        return value


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
    duration: str | None = None  # the study's whole follow-up, e.g. "12 months"
    covariates: dict[Ident, Covariate] = {}
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


class UsualSd(Model):
    """The SD an instrument usually has in this population, with where that was read."""

    value: Positive
    source: Source


class Instrument(Model):
    name: NonEmpty
    direction: Direction
    aliases: list[NonEmpty] = []
    usual_sd: UsualSd | None = None


class Outcome(Model):
    id: Ident
    label: NonEmpty
    node: str
    related_nodes: list[str] = []
    kind: Literal["intervention_effect", "association"] = "intervention_effect"
    exposure: str | None = None
    # associations: is the exposed group at the low (worse) or the high (better) end of the
    # exposure node, e.g. "social isolation" (low) vs "engaged with services" (high)?
    exposure_pole: Literal["low", "high"] = "low"
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


# moderators every record has: its design, overall risk of bias, country, and the
# timepoint window (from ``timepoint_windows``) its result falls in
RECORD_MODERATORS = ("design", "risk_of_bias", "country", "timepoint_window")


class TimepointWindow(Model):
    """Results whose timepoint text names a time within ``[from_months, to_months)``."""

    from_months: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    to_months: Positive

    @model_validator(mode="after")
    def _ordered(self) -> TimepointWindow:
        if not self.from_months < self.to_months:
            raise ValueError(f"from_months ({self.from_months}) must be below to_months ({self.to_months})")
        return self


class AssumedRisk(Model):
    """The comparator group's risk the report's absolute effects start from (per outcome).

    ``value`` is a proportion (0 < value < 1); ``source`` says where it comes from (a
    citation and locator, or "median control-arm risk of the pooled trials").
    """

    value: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    source: NonEmpty


class RepresentativeSD(Model):
    """A standard deviation of a familiar instrument, to re-express a pooled SMD in its points
    (SMD x SD), with where the SD comes from."""

    instrument: NonEmpty
    sd: Positive
    source: NonEmpty


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
    # subgroup analyses and meta-regression: covariate names (record `covariates:` keys)
    # or one of RECORD_MODERATORS
    subgroups: list[Ident] = []
    moderators: list[Ident] = []
    # normal:MEAN:SD prior of each meta-regression coefficient (default normal:0:1)
    moderator_priors: dict[Ident, NonEmpty] = {}
    timepoint_windows: dict[Ident, TimepointWindow] = {}
    assumed_control_risk: AssumedRisk | None = None
    representative_sd: RepresentativeSD | None = None


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
    date: Date


class CertaintyOverrides(Model):
    overrides: list[CertaintyOverride] = []


# --------------------------------------------------------------------------- search log (PRISMA 2020)

SearchMethod = Literal["database", "register", "other"]
"""PRISMA 2020 splits identification into databases, registers and other methods
(websites, citation searching, organisations)."""


class Search(Model):
    """One search: when, where, with what, and how many records it gave at each step.

    ``identified`` records came back; ``duplicates`` of them were already known (found by an
    earlier search, or already in the evidence base); ``excluded_on_screening`` were set
    aside on title/abstract (counted, no reasons needed). Every other record is listed under
    ``reports:`` with its decision, so the counts can be checked against the list.
    """

    id: Ident
    date: Annotated[str, Field(pattern=DATE)]
    method: SearchMethod
    source: NonEmpty
    query: NonEmpty
    identified: Count
    duplicates: Count = 0
    excluded_on_screening: Count = 0
    notes: str | None = None

    @model_validator(mode="after")
    def _counts(self) -> Search:
        if self.duplicates + self.excluded_on_screening > self.identified:
            raise ValueError(
                f"duplicates ({self.duplicates}) + excluded_on_screening ({self.excluded_on_screening}) "
                f"exceed identified ({self.identified})"
            )
        return self


class SearchReport(Model):
    """A report sought in full after screening, and what became of it.

    ``found_by`` names the search that first identified it (the one whose counts it belongs
    to). ``included`` reports name the ``study`` record they feed; ``excluded`` and
    ``not_retrieved`` ones say why.
    """

    id: NonEmpty
    found_by: Ident
    decision: Literal["included", "excluded", "not_retrieved"]
    study: str | None = None
    reason: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _decision_needs(self) -> SearchReport:
        if self.decision == "included" and not self.study:
            raise ValueError("an included report names the `study` record it feeds")
        if self.decision != "included" and not (self.reason and self.reason.strip()):
            raise ValueError(f"a report that is {self.decision.replace('_', ' ')} needs a `reason`")
        return self


class SearchLog(Model):
    """``evidence/searches.yaml``: the searches behind the evidence base and their flow."""

    searches: Annotated[list[Search], Field(min_length=1)]
    reports: list[SearchReport] = []

    @model_validator(mode="after")
    def _consistent(self) -> SearchLog:
        ids = [s.id for s in self.searches]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"search ids must be unique (repeated: {', '.join(dupes)})")
        unknown = sorted({r.found_by for r in self.reports} - set(ids))
        if unknown:
            raise ValueError(f"reports name unknown searches in found_by: {', '.join(unknown)}")
        for search in self.searches:
            listed = sum(r.found_by == search.id for r in self.reports)
            left = search.identified - search.duplicates - search.excluded_on_screening
            if listed != left:
                raise ValueError(
                    f"search '{search.id}': identified {search.identified} - duplicates "
                    f"{search.duplicates} - excluded_on_screening {search.excluded_on_screening} = "
                    f"{left}, but {listed} report(s) name it in found_by"
                )
        return self

    def prisma(self) -> dict[str, object]:
        """The PRISMA 2020 flow-diagram counts (new studies only)."""
        by_method = {
            m: sum(s.identified for s in self.searches if s.method == m) for m in get_args(SearchMethod)
        }
        duplicates = sum(s.duplicates for s in self.searches)
        identified = sum(by_method.values())
        screened = identified - duplicates
        excluded_screening = sum(s.excluded_on_screening for s in self.searches)
        sought = len(self.reports)
        not_retrieved = [r for r in self.reports if r.decision == "not_retrieved"]
        excluded = [r for r in self.reports if r.decision == "excluded"]
        included = [r for r in self.reports if r.decision == "included"]
        reasons: dict[str, int] = {}
        for r in excluded:
            reasons[r.reason or ""] = reasons.get(r.reason or "", 0) + 1
        return {
            "identified": by_method,
            "duplicates_removed": duplicates,
            "screened": screened,
            "excluded_on_screening": excluded_screening,
            "sought_for_retrieval": sought,
            "not_retrieved": len(not_retrieved),
            "assessed_for_eligibility": sought - len(not_retrieved),
            "excluded_with_reasons": dict(sorted(reasons.items())),
            "reports_included": len(included),
            "studies_included": len({r.study for r in included}),
        }


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
