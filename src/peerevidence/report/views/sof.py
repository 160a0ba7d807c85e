"""The Summary of Findings: one row per outcome, in GRADEpro's columns, grouped by the
change-model link the outcome bears on; also written as ``reports/summary_of_findings.csv``.

Columns: outcome with its instruments and follow-up; the relative effect (95% CrI) on the
natural scale (OR/RR/HR, or SMD); for binary outcomes the anticipated absolute effects per
1,000 (risk with the comparator, an assumed control risk with its source, and risk with the
intervention); participants (studies); certainty in GRADE's symbols and words with a
footnote for every reason it was rated down; and a plain-language statement
(:func:`peerevidence.synthesis.statements.statement`).

Absolute risks are monotone functions of the pooled ratio for a fixed control risk, so the
95% CrI of the risk with the intervention is exactly the transform of the ratio's posterior
quantiles (the same as the quantiles of transformed posterior draws, without Monte Carlo
error).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from peerevidence.atomic import csv_safe
from peerevidence.records.schema import BinaryResult
from peerevidence.report.views.common import (
    DOMAIN_WORDS,
    RATIO,
    Context,
    _finite,
    fmt,
    fmt_int,
    fmt_interval,
    scale_of,
)
from peerevidence.stats.summary import Z975
from peerevidence.synthesis.certainty import DEFAULT_MID
from peerevidence.synthesis.statements import SYMBOLS, WORDS, statement

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit

LEVEL_COUNT = {1: "one level", 2: "two levels"}
DEFAULT_RISK_SOURCE = (
    "the median control-arm risk of the {k} pooled stud{s} with arm-level data ({detail}; "
    "no assumed_control_risk in evidence/analysis.yaml)"
)


def risk_with_intervention(control_risk: float, measure: str, ratio: float) -> float:
    """The intervention group's risk implied by a ratio and the comparator group's risk.

    OR: odds multiply; RR: risks multiply (capped at 1); HR: survival S = 1 - risk is raised
    to the power HR (proportional hazards over the same follow-up).
    """
    if not 0 < control_risk < 1:
        raise ValueError(f"control risk must lie strictly between 0 and 1 (got {control_risk})")
    if measure == "logOR":
        odds = control_risk / (1 - control_risk) * ratio
        return odds / (1 + odds)
    if measure == "logRR":
        return min(1.0, control_risk * ratio)
    if measure == "logHR":
        return 1 - float((1 - control_risk) ** ratio)  # float ** float is typed Any (complex if negative)
    raise ValueError(f"no absolute risk for measure {measure!r} (accepted: logOR, logRR, logHR)")


def per_1000(p: float) -> int:
    return round(1000 * p)


@dataclass(frozen=True)
class AbsoluteEffect:
    assumed: int  # per 1,000 with the comparator
    with_intervention: int
    lo: int
    hi: int
    source: str

    @property
    def difference(self) -> str:
        d, a, b = self.with_intervention - self.assumed, self.lo - self.assumed, self.hi - self.assumed

        def words(x: int) -> str:
            return f"{abs(x):,} fewer" if x < 0 else f"{x:,} more" if x > 0 else "0 more"

        return f"{words(d)} per 1,000 ({words(a)} to {words(b)})"


@dataclass(frozen=True)
class SofRow:
    outcome: str
    label: str
    href: str
    instruments: str
    follow_up: str
    relative: str
    measure: str
    absolute: AbsoluteEffect | None
    continuous_note: str
    participants: str
    studies: int
    level: str | None  # very_low .. high, None when not rated
    footnotes: tuple[str, ...]  # letters
    statement: str
    study_estimates: tuple[str, ...]  # each study's own estimate when k <= 2

    @property
    def symbols(self) -> str:
        return SYMBOLS.get(self.level or "", "")

    @property
    def certainty_words(self) -> str:
        return WORDS.get(self.level or "", "Not rated")


@dataclass(frozen=True)
class SofGroup:
    edge: str
    anchor: str
    title: str
    rows: tuple[SofRow, ...]


@dataclass(frozen=True)
class SummaryOfFindings:
    intervention: str
    comparator: str
    groups: tuple[SofGroup, ...]
    footnotes: tuple[tuple[str, str], ...]  # (letter, text)
    without_data: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rows(self) -> list[SofRow]:
        return [r for g in self.groups for r in g.rows]

    def by_outcome(self, outcome: str) -> SofRow | None:
        return next((r for r in self.rows if r.outcome == outcome), None)


def _letters() -> Iterator[str]:
    i = 0
    while True:
        n, word = i, ""
        while True:
            word = chr(ord("a") + n % 26) + word
            n = n // 26 - 1
            if n < 0:
                break
        yield word
        i += 1


def control_risks(ctx: Context, fit: AnalysisFit) -> list[tuple[str, float]]:
    """(study, events/total) of the comparator arm of every pooled study with binary arm data."""
    out = []
    for _, row in fit.analysis.rows.iterrows():
        if row.get("form") != "binary":
            continue
        loaded = ctx.base.records.get(row["study"])
        if loaded is None:
            continue
        res = loaded.record.results[int(row["result"])]
        assert isinstance(res, BinaryResult), "a row of form 'binary' comes from a binary result"
        c = res.control
        if c.total:
            out.append((str(row["study"]), c.events / c.total))
    return out


def assumed_risk(ctx: Context, fit: AnalysisFit) -> tuple[float, str] | None:
    """The assumed control risk and its source: from ``evidence/analysis.yaml``, else the
    median control-arm risk of the pooled trials (said so); None when neither exists."""
    own = ctx.base.analysis.outcomes.get(fit.analysis.outcome.id)
    if own is not None and own.assumed_control_risk is not None:
        return own.assumed_control_risk.value, own.assumed_control_risk.source
    risks = control_risks(ctx, fit)
    if not risks:
        return None
    value = statistics.median(r for _, r in risks)
    if not 0 < value < 1:
        return None
    values = sorted(r for _, r in risks)
    detail = (
        f"range {per_1000(values[0])} to {per_1000(values[-1])} per 1,000"
        if len(values) > 1
        else f"{ctx.labels.get(risks[0][0], risks[0][0])}"
    )
    return value, DEFAULT_RISK_SOURCE.format(k=len(risks), s="ies" if len(risks) != 1 else "y", detail=detail)


def absolute_effect(ctx: Context, fit: AnalysisFit) -> AbsoluteEffect | None:
    a, s = fit.analysis, fit.summary
    if a.outcome.measure not in RATIO:
        return None
    found = assumed_risk(ctx, fit)
    if found is None:
        return None
    cr, source = found
    scale = scale_of(ctx, a.outcome)
    mid = scale.natural(s.mu.q50)
    lo, hi = scale.interval(s.mu.q025, s.mu.q975)
    if mid is None or lo is None or hi is None:
        return None
    risks = sorted(risk_with_intervention(cr, a.outcome.measure, r) for r in (lo, hi))
    return AbsoluteEffect(
        assumed=per_1000(cr),
        with_intervention=per_1000(risk_with_intervention(cr, a.outcome.measure, mid)),
        lo=per_1000(risks[0]),
        hi=per_1000(risks[1]),
        source=source,
    )


def _study_estimates(ctx: Context, fit: AnalysisFit) -> tuple[str, ...]:
    a, s = fit.analysis, fit.summary
    if s.k > 2:
        return ()
    scale = scale_of(ctx, a.outcome)
    out = []
    for key, y, v in zip(a.data.labels, a.data.yi, a.data.vi, strict=True):
        se = math.sqrt(v) if _finite(v) and v > 0 else float("nan")
        out.append(f"{ctx.labels.get(key, key)}: {scale.text(y, y - Z975 * se, y + Z975 * se)} (95% CI)")
    return tuple(out)


def _join(values: Any, most: int = 3) -> str:
    """Distinct values in order of first appearance; beyond ``most``, how many more."""
    seen = [str(v) for v in dict.fromkeys(values) if isinstance(v, str) and v.strip()]
    if len(seen) > most:
        return "; ".join(seen[:most]) + f"; and {len(seen) - most} more"
    return "; ".join(seen) or "–"


COHEN = ((0.2, "trivial"), (0.5, "small"), (0.8, "moderate"))


def cohen_label(smd: float) -> str:
    """Cohen's convention for the size of an SMD: below 0.2 trivial, 0.2 small, 0.5
    moderate, 0.8 large (a convention, not a judgement of importance)."""
    for bound, word in COHEN:
        if abs(smd) < bound:
            return word
    return "large"


def sof_row(ctx: Context, fit: AnalysisFit, notes: dict[str, str], letters: Iterator[str]) -> SofRow:
    a, s = fit.analysis, fit.summary
    outcome = a.outcome
    scale = scale_of(ctx, outcome)
    rows = a.rows
    n = rows["n"].to_numpy(float) if "n" in rows else []
    n_known = [x for x in n if _finite(x)]
    participants = fmt_int(sum(n_known)) if n_known else "–"
    if len(n_known) < len(n):
        participants += f" (+ {len(n) - len(n_known)} with n not reported)"
    cert = ctx.synthesis.certainty.get(outcome.id)
    level = cert.final if cert else None
    footnotes = []
    if cert is not None:
        reasons = [
            f"Rated down {LEVEL_COUNT.get(st.levels, f'{st.levels} levels')} for "
            f"{DOMAIN_WORDS.get(st.domain, st.domain)}: {st.reason}."
            for st in cert.steps
            if st.levels > 0
        ]
        if cert.start == "low":
            reasons.insert(
                0,
                f"Starts low: {next((st.reason for st in cert.steps if st.domain == 'start'), 'non-randomised evidence')}.",
            )
        if cert.override:
            reasons.append(f"Reviewer's rating ({cert.override_by}): {cert.override_reason}")
        for text in reasons:
            if text not in notes:
                notes[text] = next(letters)
            footnotes.append(notes[text])
    own = ctx.base.analysis.outcomes.get(outcome.id)
    mid = own.mid if own and own.mid else DEFAULT_MID
    said = (
        statement(
            ctx.wording.intervention,
            outcome.label,
            s.mu.q50 if s.mu.q50 is not None else 0.0,
            mid,
            level,
            outcome.direction == "lower_is_better",
        )
        if level
        else "Certainty not rated in this run: no statement."
    )
    if scale.transformed:
        relative = scale.text(s.mu.q50, s.mu.q025, s.mu.q975)
        continuous = ""
    else:
        relative = f"{scale.natural_name} {fmt(s.mu.q50)} ({fmt_interval(s.mu.q025, s.mu.q975)})"
        side = ctx.wording.intervention if (s.mu.q50 or 0) >= 0 else ctx.wording.comparator
        continuous = (
            f"{cohen_label(s.mu.q50 or 0.0).capitalize()} by Cohen's convention; the median favours {side}."
            if outcome.measure == "SMD"
            else f"Positive favours {ctx.wording.intervention}."
        )
        rep = own.representative_sd if own else None
        if rep is not None and outcome.measure == "SMD":
            # harmonised SMD -> points on the instrument, in the direction that favours the intervention
            assert s.mu.q50 is not None, "mu's summary always has its median (only theta_new's may lack it)"
            continuous += (
                f" On the {rep.instrument}: {fmt(s.mu.q50 * rep.sd, 1)} points "
                f"({fmt_interval(s.mu.q025 * rep.sd, s.mu.q975 * rep.sd, 1)}) in favour of "
                f"{ctx.wording.intervention} (SMD × SD {fmt(rep.sd, 1)}; SD from {rep.source})."
            )
    return SofRow(
        outcome=outcome.id,
        label=outcome.label,
        href=f"outcomes/{a.name}.html",
        instruments=_join(rows["instrument"]) if "instrument" in rows else "–",
        follow_up=_join(rows["timepoint"]) if "timepoint" in rows else "–",
        relative=relative,
        measure=scale.natural_name,
        absolute=absolute_effect(ctx, fit),
        continuous_note=continuous,
        participants=participants,
        studies=s.k,
        level=level,
        footnotes=tuple(footnotes),
        statement=said,
        study_estimates=_study_estimates(ctx, fit),
    )


def summary_of_findings(ctx: Context) -> SummaryOfFindings:
    from peerevidence.report.views.index import edge_sort

    edges = {e.id: e for e in ctx.model.edges}
    main = {
        f.analysis.outcome.id: f
        for f in ctx.result.fits
        if f.analysis.variant == "all" and f.analysis.outcome.kind != "association"
    }
    notes: dict[str, str] = {}
    letters = _letters()
    grouped: dict[str, list[SofRow]] = {}
    for oid in sorted(
        main, key=lambda o: (sorted(ctx.outcomes[o].edges, key=edge_sort)[:1], ctx.outcomes[o].label)
    ):
        outcome = ctx.outcomes[oid]
        link = sorted(outcome.edges, key=edge_sort)[0] if outcome.edges else ""
        grouped.setdefault(link, []).append(sof_row(ctx, main[oid], notes, letters))
    groups = []
    for link in sorted(grouped, key=edge_sort):
        e = edges.get(link)
        title = (
            f"{link}: {ctx.node_labels.get(e.from_, e.from_)} → {ctx.node_labels.get(e.to, e.to)}"
            if e
            else "Not linked to the change model"
        )
        groups.append(SofGroup(link, f"edge-{link}" if e else "", title, tuple(grouped[link])))
    without = tuple(
        ctx.outcomes[o].label
        for o in sorted(ctx.outcomes, key=lambda o: ctx.outcomes[o].label.casefold())
        if o not in main and ctx.outcomes[o].kind != "association"
    )
    return SummaryOfFindings(
        intervention=ctx.wording.intervention,
        comparator=ctx.wording.comparator,
        groups=tuple(groups),
        footnotes=tuple((letter, text) for text, letter in notes.items()),
        without_data=without,
    )


CSV_COLUMNS = (
    "link", "outcome", "instruments", "follow_up", "relative_effect_95_cri",
    "risk_with_comparator_per_1000", "risk_with_intervention_per_1000", "risk_with_intervention_95_cri",
    "difference_per_1000", "assumed_risk_source", "participants", "studies", "certainty",
    "certainty_reasons", "statement",
)  # fmt: skip


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ (or a tab
    or carriage return) is prefixed with an apostrophe."""
    return "" if value is None else str(csv_safe(str(value)))


def sof_csv(sof: SummaryOfFindings) -> str:
    notes = {letter: text for letter, text in sof.footnotes}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for group in sof.groups:
        for r in group.rows:
            a = r.absolute
            writer.writerow(
                [
                    csv_cell(x)
                    for x in (
                        group.title,
                        r.label,
                        r.instruments,
                        r.follow_up,
                        r.relative,
                        a.assumed if a else "",
                        a.with_intervention if a else "",
                        f"{a.lo} to {a.hi}" if a else "",
                        a.difference if a else "",
                        a.source if a else "",
                        r.participants,
                        r.studies,
                        r.certainty_words,
                        " | ".join(notes[f] for f in r.footnotes),
                        r.statement,
                    )
                ]
            )
    return buf.getvalue()
