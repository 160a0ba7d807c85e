"""Cross-file checks on an :class:`~peerevidence.records.project.EvidenceBase`.

Every rule appends to a list; nothing stops at the first problem. Errors make
``peerevidence validate`` exit 1; warnings are printed separately and become errors
with ``--strict``.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from peerevidence.errors import RecordError, describe_choices, sort_errors
from peerevidence.records.project import EvidenceBase, LoadedRecord, load_project
from peerevidence.records.routes import measure_route, resolve_direction
from peerevidence.records.schema import (
    RECORD_MODERATORS,
    UNPOOLED_FORMS,
    BinaryResult,
    ChangeModel,
    ContinuousResult,
    Outcome,
    Record,
    Result,
    Source,
)
from peerevidence.records.yamlio import LineIndex, format_path
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

DESIGNS_WITH_BIAS = (
    "pilot_rct",
    "non_randomised_comparison",
    "before_after",
    "cohort",
    "case_control",
    "cross_sectional",
)


@dataclass
class Findings:
    """What validation found: errors (the project cannot be run) and warnings."""

    errors: list[RecordError] = field(default_factory=list)
    warnings: list[RecordError] = field(default_factory=list)

    def add(self, err: RecordError) -> None:
        (self.warnings if err.warning else self.errors).append(err)

    def extend(self, errs: Iterable[RecordError]) -> None:
        for err in errs:
            self.add(err)


def _hint(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class _Checker:
    """Holds the evidence base and the report while the rules run."""

    def __init__(self, base: EvidenceBase, report: Findings):
        self.base = base
        self.report = report
        self.nodes = {n.id for n in base.change_model.nodes} if base.change_model else set()
        self.edges = {e.id for e in base.change_model.edges} if base.change_model else set()
        self.outcomes: dict[str, Outcome] = {o.id: o for o in base.outcomes.outcomes} if base.outcomes else {}
        # every record file on disk, including those that failed their schema
        self.record_stems = {p.stem for p in base.paths.record_files()}

    def err(
        self,
        file: str,
        lines: LineIndex,
        path: tuple[str | int, ...],
        problem: str,
        accepted: str | None = None,
        warning: bool = False,
    ) -> None:
        self.report.add(RecordError(file, lines.line_of(path), format_path(path), problem, accepted, warning))

    def bib_key(
        self,
        file: str,
        lines: LineIndex,
        path: tuple[str | int, ...],
        key: str,
        what: str = "a key in references.bib",
    ) -> None:
        if key not in self.base.bib:
            self.err(file, lines, path, f"'{key}' is not {what}{_hint(key, self.base.bib.keys())}")

    # ------------------------------------------------------------------ change model
    def change_model(self) -> None:
        cm = self.base.change_model
        if cm is None:
            return
        file = self.base.paths.rel(self.base.paths.change_model)
        lines = self.base.change_model_lines
        known = describe_choices(sorted(self.nodes))
        seen: dict[str, int] = {}
        for i, node in enumerate(cm.nodes):
            if node.id in seen:
                self.err(file, lines, ("nodes", i, "id"), f"duplicate node id '{node.id}'")
            seen[node.id] = i
            if node.parent is not None and node.parent not in self.nodes:
                self.err(
                    file,
                    lines,
                    ("nodes", i, "parent"),
                    f"'{node.parent}' is not a node{_hint(node.parent, self.nodes)}",
                    known,
                )
            if node.model_source != "peerevidence":
                self.bib_key(file, lines, ("nodes", i, "model_source"), node.model_source)
        self._parent_cycles(cm, file, lines)
        participants = {q.participant for q in cm.quotes}
        for i, node in enumerate(cm.nodes):
            for j, pid in enumerate(node.quotes):
                if pid not in participants:
                    self.err(
                        file, lines, ("nodes", i, "quotes", j), f"'{pid}' has no passage under `quotes:`"
                    )
        edge_seen: set[str] = set()
        for i, edge in enumerate(cm.edges):
            if edge.id in edge_seen:
                self.err(file, lines, ("edges", i, "id"), f"duplicate edge id '{edge.id}'")
            edge_seen.add(edge.id)
            for key, value in (("from", edge.from_), ("to", edge.to)):
                if value not in self.nodes:
                    self.err(
                        file,
                        lines,
                        ("edges", i, key),
                        f"'{value}' is not a node{_hint(value, self.nodes)}",
                        known,
                    )
            if edge.from_ == edge.to:
                self.err(file, lines, ("edges", i, "to"), f"edge '{edge.id}' goes from '{edge.to}' to itself")
            if edge.source != "peerevidence":
                self.bib_key(file, lines, ("edges", i, "source"), edge.source)
            for j, key in enumerate(edge.cites):
                self.bib_key(file, lines, ("edges", i, "cites", j), key)
            for j, pid in enumerate(edge.quotes):
                if pid not in participants:
                    self.err(
                        file, lines, ("edges", i, "quotes", j), f"'{pid}' has no passage under `quotes:`"
                    )
        for i, quote in enumerate(cm.quotes):
            if quote.node not in self.nodes:
                self.err(
                    file,
                    lines,
                    ("quotes", i, "node"),
                    f"'{quote.node}' is not a node{_hint(quote.node, self.nodes)}",
                    known,
                )
        for i, item in enumerate(cm.uncited):
            self.bib_key(file, lines, ("uncited", i, "key"), item.key)
            if item.key in self.base.records:
                self.err(
                    file,
                    lines,
                    ("uncited", i, "key"),
                    f"'{item.key}' has an extraction record; remove it from `uncited`",
                    warning=True,
                )
        explained = {u.key for u in cm.uncited} | self.record_stems
        for i, edge in enumerate(cm.edges):
            for j, key in enumerate(edge.cites):
                if key in self.base.bib and key not in explained:
                    self.err(
                        file,
                        lines,
                        ("edges", i, "cites", j),
                        f"'{key}' has neither an extraction record nor an entry in `uncited` saying why not",
                        warning=True,
                    )

    def _parent_cycles(self, cm: ChangeModel, file: str, lines: LineIndex) -> None:
        """A node that is its own parent, directly or through others, vanishes from the diagram."""
        parent = {n.id: n.parent for n in cm.nodes if n.parent is not None}
        for i, node in enumerate(cm.nodes):
            seen, current = [node.id], node.parent
            while current is not None and current not in seen:
                seen.append(current)
                current = parent.get(current)
            if current == node.id:
                chain = " -> ".join([*seen, node.id])
                problem = (
                    f"node '{node.id}' is its own parent"
                    if node.parent == node.id
                    else f"parents form a cycle ({chain})"
                )
                self.err(file, lines, ("nodes", i, "parent"), problem)

    # ------------------------------------------------------------------ outcomes
    def outcomes_file(self) -> None:
        cat = self.base.outcomes
        if cat is None:
            return
        file = self.base.paths.rel(self.base.paths.outcomes)
        lines = self.base.outcome_lines
        seen: set[str] = set()
        for i, outcome in enumerate(cat.outcomes):
            if outcome.id in seen:
                self.err(file, lines, ("outcomes", i, "id"), f"duplicate outcome id '{outcome.id}'")
            seen.add(outcome.id)
            if self.base.change_model is None:
                continue
            for key, value in [("node", outcome.node), ("exposure", outcome.exposure)]:
                if value is not None and value not in self.nodes:
                    self.err(
                        file,
                        lines,
                        ("outcomes", i, key),
                        f"'{value}' is not a node{_hint(value, self.nodes)}",
                        describe_choices(sorted(self.nodes)),
                    )
            for j, value in enumerate(outcome.related_nodes):
                if value not in self.nodes:
                    self.err(
                        file,
                        lines,
                        ("outcomes", i, "related_nodes", j),
                        f"'{value}' is not a node{_hint(value, self.nodes)}",
                    )
            for j, edge in enumerate(outcome.edges):
                if edge not in self.edges:
                    self.err(
                        file,
                        lines,
                        ("outcomes", i, "edges", j),
                        f"'{edge}' is not an edge{_hint(edge, self.edges)}",
                    )
            names: dict[str, int] = {}
            for j, inst in enumerate(outcome.instruments):
                for name in (inst.name, *inst.aliases):
                    key = name.casefold()
                    if key in names:
                        self.err(
                            file,
                            lines,
                            ("outcomes", i, "instruments", j),
                            f"instrument name '{name}' is listed twice",
                        )
                    names[key] = j

    # ------------------------------------------------------------------ analysis + certainty
    def analysis_file(self) -> None:
        cfg = self.base.analysis
        file = self.base.paths.rel(self.base.paths.analysis)
        lines = self.base.analysis_lines
        self._prior(file, lines, ("prior_mu",), cfg.prior_mu, tau=False)
        self._prior(file, lines, ("prior_tau",), cfg.prior_tau, tau=True)
        for oid, setting in cfg.outcomes.items():
            if self.base.outcomes is not None and oid not in self.outcomes:
                self.err(
                    file, lines, ("outcomes", oid), f"'{oid}' is not an outcome{_hint(oid, self.outcomes)}"
                )
            if setting.prior_mu:
                self._prior(file, lines, ("outcomes", oid, "prior_mu"), setting.prior_mu, tau=False)
            if setting.prior_tau:
                self._prior(file, lines, ("outcomes", oid, "prior_tau"), setting.prior_tau, tau=True)
            if setting.empirical_prior:
                self._prior(
                    file, lines, ("outcomes", oid, "empirical_prior"), setting.empirical_prior, tau=True
                )
        for j, spec in enumerate(cfg.sensitivity_tau):
            self._prior(file, lines, ("sensitivity_tau", j), spec, tau=True)
        for j, spec in enumerate(cfg.sensitivity_mu):
            self._prior(file, lines, ("sensitivity_mu", j), spec, tau=False)
        for scale, table in (("smd", cfg.design_bias.smd), ("log_ratio", cfg.design_bias.log_ratio)):
            for design in table:
                if design not in DESIGNS_WITH_BIAS:
                    self.err(
                        file,
                        lines,
                        ("design_bias", scale, design),
                        f"'{design}' is not a non-randomised or pilot design",
                        ", ".join(DESIGNS_WITH_BIAS),
                    )
        cfile = self.base.paths.rel(self.base.paths.certainty)
        first_override: dict[str, int] = {}
        for i, item in enumerate(self.base.certainty.overrides):
            if item.outcome in first_override:
                self.err(
                    cfile,
                    self.base.certainty_lines,
                    ("overrides", i, "outcome"),
                    f"a second override for outcome '{item.outcome}' "
                    f"(first: overrides[{first_override[item.outcome]}]); keep one",
                )
            first_override.setdefault(item.outcome, i)
            if self.base.outcomes is not None and item.outcome not in self.outcomes:
                self.err(
                    cfile,
                    self.base.certainty_lines,
                    ("overrides", i, "outcome"),
                    f"'{item.outcome}' is not an outcome{_hint(item.outcome, self.outcomes)}",
                )

    def _prior(self, file: str, lines: LineIndex, path: tuple[str | int, ...], spec: str, tau: bool) -> None:
        try:
            (parse_tau_prior if tau else parse_mu_prior)(spec)
        except Exception as exc:  # UsageError carries the accepted forms
            self.err(file, lines, path, str(exc))

    # ------------------------------------------------------------------ search log
    def searches_file(self) -> None:
        log = self.base.searches
        if log is None:
            return
        file = self.base.paths.rel(self.base.paths.searches)
        for i, report in enumerate(log.reports):
            if report.study is not None and report.study not in self.record_stems:
                self.err(
                    file,
                    self.base.searches_lines,
                    ("reports", i, "study"),
                    f"'{report.study}' has no extraction record{_hint(report.study, self.record_stems)}",
                )

    # ------------------------------------------------------------------ records
    def record(self, key: str, loaded: LoadedRecord) -> None:
        rec, file, lines = loaded.record, loaded.file, loaded.lines
        for path, problem in _markers(rec.model_dump(by_alias=True, exclude_defaults=True)):
            self.err(file, lines, path, problem)
        is_review = rec.design == "systematic_review"
        if is_review and rec.review is None:
            self.err(
                file,
                lines,
                ("design",),
                "a systematic_review record needs `review:` (with its sign_convention and source)",
            )
        if not is_review and rec.review is not None:
            self.err(file, lines, ("review",), "`review:` belongs only in a systematic_review record")
        for i, result in enumerate(rec.results):
            if result.form == "pooled" and not is_review:
                self.err(
                    file,
                    lines,
                    ("results", i, "form"),
                    "a pooled result belongs in a systematic_review record",
                )
            elif is_review and result.form != "pooled" and result.form not in UNPOOLED_FORMS:
                self.err(
                    file,
                    lines,
                    ("results", i, "form"),
                    "a systematic_review record holds only pooled, not_reported or not_obtained results "
                    "(record the trials themselves in their own records)",
                )
        if rec.study != key:
            self.err(
                file,
                lines,
                ("study",),
                f"'{rec.study}' does not match the file name '{key}' (name the file <bibkey>.yaml)",
            )
        self.bib_key(file, lines, ("study",), rec.study)
        for path, source in _sources(rec):
            if source.ref is not None:
                self.bib_key(file, lines, (*path, "ref"), source.ref)
        first_poolable: dict[str, int] = {}
        for i, result in enumerate(rec.results):
            base_path: tuple[str | int, ...] = ("results", i)
            outcome = self.outcomes.get(result.outcome)
            if outcome is None:
                if self.base.outcomes is not None:
                    self.err(
                        file,
                        lines,
                        (*base_path, "outcome"),
                        f"'{result.outcome}' is not an outcome in evidence/outcomes.yaml"
                        f"{_hint(result.outcome, self.outcomes)}",
                        describe_choices(sorted(self.outcomes)),
                    )
                continue
            if result.form == "pooled" or result.form in UNPOOLED_FORMS:
                continue
            route = measure_route(result, outcome)
            if route.error:
                self.err(file, lines, base_path, route.error)
                continue
            direction, direction_error = resolve_direction(result, outcome)
            if direction_error:
                self.err(file, lines, (*base_path, "instrument"), direction_error)
            if result.form == "continuous" or result.form == "binary":
                self._arm_sizes(rec, file, lines, i)
                self.cross_checks(rec, file, lines, i, outcome, direction)
            if result.exclude is None and rec.exclude is None:
                if result.outcome in first_poolable:
                    self.err(
                        file,
                        lines,
                        base_path,
                        f"a second poolable result for outcome '{result.outcome}' in this study "
                        f"(first: results[{first_poolable[result.outcome]}]); "
                        "give one of them `exclude:` with the reason",
                    )
                else:
                    first_poolable[result.outcome] = i

    def _arm_sizes(self, rec: Record, file: str, lines: LineIndex, i: int) -> None:
        result = rec.results[i]
        assert isinstance(result, ContinuousResult | BinaryResult)  # called for arm data only
        size = rec.sample_size
        arm_n = {
            "intervention": getattr(result.intervention, "n", None)
            or getattr(result.intervention, "total", None),
            "control": getattr(result.control, "n", None) or getattr(result.control, "total", None),
        }
        leaf = "n" if result.form == "continuous" else "total"
        for arm, n in arm_n.items():
            stated = getattr(size, arm)
            if stated is not None and n is not None and n > stated:
                self.err(file, lines, ("results", i, arm, leaf), f"{n} exceeds sample_size.{arm} ({stated})")
        whole = size.randomised or size.total
        n_intervention, n_control = arm_n["intervention"], arm_n["control"]
        if whole is not None and n_intervention is not None and n_control is not None:
            both = n_intervention + n_control
            if both > whole:
                self.err(
                    file,
                    lines,
                    ("results", i),
                    f"arm sizes add up to {both}, more than the stated sample size ({whole})",
                )

    # ------------------------------------------------------------------ cross-checks
    def _text_lines(self, file: str) -> list[str]:
        try:
            return (self.base.root / file).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return []

    def _printed(self, text: list[str], lines: LineIndex, path: tuple[str | int, ...], value: float) -> int:
        line = lines.line_of(path)
        line_text = text[line - 1] if line is not None and 0 < line <= len(text) else None
        return printed_decimals(value, line_text, str(path[-1]))

    def cross_checks(
        self, rec: Record, file: str, lines: LineIndex, i: int, outcome: Outcome, direction: str | None
    ) -> None:
        result = rec.results[i]
        base_path: tuple[str | int, ...] = ("results", i)
        text = self._text_lines(file)
        rep = result.reported
        if rep is not None and rep.mismatch is None:
            printed = {
                "estimate": self._printed(text, lines, (*base_path, "reported", "estimate"), rep.estimate)
            }
            if result.form == "continuous":
                for key, arm, leaf in (
                    ("m1", "intervention", "mean"),
                    ("s1", "intervention", "sd"),
                    ("m2", "control", "mean"),
                    ("s2", "control", "sd"),
                ):
                    value = getattr(getattr(result, arm), leaf)
                    printed[key] = self._printed(text, lines, (*base_path, arm, leaf), value)
            chk = reported_check(result, direction, printed)
            if chk is not None and not chk.ok:
                scale = (
                    "positive = benefit"
                    if rep.harmonised
                    else "intervention vs control, the instrument's own scale"
                )
                hint = ""
                if chk.sign_flipped:
                    hint = (
                        "; the sign is opposite: does the source sign the effect so that positive means "
                        "benefit? then set `reported.harmonised: true`"
                        if not rep.harmonised
                        else "; the sign is opposite although `harmonised: true` says positive means benefit"
                    )
                self.err(
                    file,
                    lines,
                    (*base_path, "reported", "estimate"),
                    f"the source reports {rep.measure} = {_fmt(rep.estimate)} but the arm data give "
                    f"{_fmt(chk.computed)} ({scale}); the gap {_fmt(abs(rep.estimate - chk.computed))} "
                    f"exceeds the rounding tolerance {_fmt(chk.tolerance)} (half a unit in the last "
                    f"printed digit of the estimate, {_fmt(chk.estimate_rounding)}, plus the inputs' "
                    f"rounding propagated, {_fmt(chk.input_rounding)}){hint}; check both against the "
                    'source, or document a known discrepancy with `reported.mismatch: "reason"`',
                )
        if result.form == "continuous":
            self._se_like(result, file, lines, base_path, outcome)
        whole = weeks_in(rec.duration)
        at = weeks_in(result.timepoint)
        if whole is not None and at is not None and at > whole * 1.001:
            self.err(
                file,
                lines,
                (*base_path, "timepoint"),
                f"timepoint '{result.timepoint}' lies beyond the study's duration '{rec.duration}' "
                f"({at:.3g} vs {whole:.3g} weeks)",
            )

    def _se_like(
        self,
        result: ContinuousResult,
        file: str,
        lines: LineIndex,
        base_path: tuple[str | int, ...],
        outcome: Outcome,
    ) -> None:
        from peerevidence.stats import effects

        arms = {"intervention": result.intervention, "control": result.control}
        g_array, _ = effects.smd(
            arms["intervention"].mean,
            arms["intervention"].sd,
            arms["intervention"].n,
            arms["control"].mean,
            arms["control"].sd,
            arms["control"].n,
        )
        g = float(g_array)
        n = arms["intervention"].n + arms["control"].n
        said: set[str] = set()
        if abs(g) > SE_LIKE_G and n < SE_LIKE_SMALL_N:
            self.err(
                file,
                lines,
                (*base_path, "intervention", "sd"),
                f"Hedges' g = {g:.2f} from {n} participants is implausibly large: check that the "
                "SDs are not standard errors (SE = SD / sqrt(n))",
                warning=True,
            )
            said.add("g")
        usual = None
        if result.instrument:
            wanted = result.instrument.casefold().strip()
            for inst in outcome.instruments:
                if wanted in {x.casefold().strip() for x in (inst.name, *inst.aliases)}:
                    usual = inst.usual_sd
        for name, arm in arms.items():
            other = arms["control" if name == "intervention" else "intervention"]
            root = math.sqrt(arm.n)
            reasons: list[str] = []
            if root >= 2 and _near(other.sd / arm.sd, root):
                reasons.append(f"the other arm's SD ({_fmt(other.sd)}) is {other.sd / arm.sd:.1f} times it")
            if usual is not None and root >= 2 and _near(usual.value / arm.sd, root):
                reasons.append(
                    f"the instrument's usual SD ({_fmt(usual.value)}) is {usual.value / arm.sd:.1f} times it"
                )
            if reasons:
                self.err(
                    file,
                    lines,
                    (*base_path, name, "sd"),
                    f"SD {_fmt(arm.sd)} looks like a standard error: "
                    + " and ".join(reasons)
                    + f", close to sqrt(n) = {root:.1f}; check the source",
                    warning=True,
                )

    # ------------------------------------------------------------------ records that failed their schema
    def unloaded(self, key: str, data: object, lines: LineIndex, file: str) -> list[str]:
        """Rules that need no valid schema, on a record that failed it; return marked paths."""
        marked: list[str] = []
        for path, problem in _markers(data):
            self.err(file, lines, path, problem)
            marked.append(format_path(path))
        if not isinstance(data, dict):
            return marked
        study = data.get("study")
        if isinstance(study, str) and _marker_problem(study) is None:
            if study != key:
                self.err(
                    file,
                    lines,
                    ("study",),
                    f"'{study}' does not match the file name '{key}' (name the file <bibkey>.yaml)",
                )
            self.bib_key(file, lines, ("study",), study)
        results = data.get("results")
        if isinstance(results, list) and self.base.outcomes is not None:
            for i, result in enumerate(results):
                if not isinstance(result, dict):
                    continue
                oid = result.get("outcome")
                if isinstance(oid, str) and _marker_problem(oid) is None and oid not in self.outcomes:
                    self.err(
                        file,
                        lines,
                        ("results", i, "outcome"),
                        f"'{oid}' is not an outcome in evidence/outcomes.yaml{_hint(oid, self.outcomes)}",
                        describe_choices(sorted(self.outcomes)),
                    )
        for path, ref in _raw_refs(data):
            if _marker_problem(ref) is None:
                self.bib_key(file, lines, path, ref)
        return marked

    def records(self) -> None:
        by_study: dict[str, list[str]] = defaultdict(list)
        for key, loaded in sorted(self.base.records.items()):
            by_study[loaded.record.study].append(loaded.file)
            self.record(key, loaded)
        for study, files in by_study.items():
            if len(files) > 1:
                for f in files[1:]:
                    self.report.add(
                        RecordError(f, None, "study", f"duplicate record for '{study}' (also in {files[0]})")
                    )
        stems: dict[str, Path] = {}
        for path in self.base.paths.record_files():
            if path.stem in stems:
                self.report.add(
                    RecordError(
                        self.base.paths.rel(path), None, "", f"duplicate record file for '{path.stem}'"
                    )
                )
            stems[path.stem] = path

    # ------------------------------------------------------------------ warnings
    def unused(self) -> None:
        if self.base.change_model is None:
            return  # cannot tell which references the model uses
        used: set[str] = set(self.record_stems)
        for loaded in self.base.records.values():
            used.add(loaded.record.study)
            used.update(s.ref for _, s in _sources(loaded.record) if s.ref)
        if self.base.change_model:
            cm = self.base.change_model
            used.update(n.model_source for n in cm.nodes)
            for e in cm.edges:
                used.add(e.source)
                used.update(e.cites)
            used.update(u.key for u in cm.uncited)
        kept = set(self.base.analysis.kept_bib_keywords)
        for key in self.base.bib.keys():  # noqa: SIM118 (sorted keys of a Bibliography)
            ref = self.base.bib[key]
            keywords = set(re.split(r"[,;\s]+", ref.get("keywords") or ""))
            if key not in used and not keywords & kept:
                self.report.add(
                    RecordError(
                        self.base.bib.path,
                        ref.line,
                        key,
                        "BibTeX entry is not used by any record or edge (keep it with one of "
                        f"keywords = {{{', '.join(sorted(kept))}}}: kept_bib_keywords in "
                        "evidence/analysis.yaml)",
                        warning=True,
                    )
                )
        if self.record_stems - set(self.base.records):
            return  # a record failed its schema: which outcomes have data is unknown
        with_data = {
            r.outcome
            for lr in self.base.records.values()
            for r in lr.record.results
            if r.form not in UNPOOLED_FORMS
        }
        file = self.base.paths.rel(self.base.paths.outcomes)
        gaps = [
            o.id for o in (self.base.outcomes.outcomes if self.base.outcomes else []) if o.id not in with_data
        ]
        if gaps:  # one summary line, not one per outcome: these are the report's evidence gaps
            self.report.add(
                RecordError(
                    file,
                    None,
                    "outcomes",
                    f"no poolable data in any record for {len(gaps)} outcome(s): {', '.join(gaps)}",
                    warning=True,
                )
            )


def _near(ratio: float, root: float) -> bool:
    """A ratio of SDs within a factor 1.5 of sqrt(n): what an SE reported as an SD gives."""
    return ratio >= 2 and root / 1.5 <= ratio <= root * 1.5


def _raw_refs(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, key) of every ``source.ref`` in raw record data."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "source" and isinstance(v, dict) and isinstance(v.get("ref"), str):
                out.append(((*path, k, "ref"), v["ref"]))
            out.extend(_raw_refs(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_raw_refs(v, (*path, i)))
    return out


def _sources(rec: Record) -> list[tuple[tuple[str | int, ...], Source]]:
    out: list[tuple[tuple[str | int, ...], Source]] = []
    if rec.sample_size.source is not None:
        out.append((("sample_size", "source"), rec.sample_size.source))
    if rec.risk_of_bias.source is not None:
        out.append((("risk_of_bias", "source"), rec.risk_of_bias.source))
    if rec.review is not None:
        out.append((("review", "source"), rec.review.source))
    for i, result in enumerate(rec.results):
        out.append((("results", i, "source"), result.source))
        if result.reported is not None:
            out.append((("results", i, "reported", "source"), result.reported.source))
    return out


def check_moderators(base: EvidenceBase) -> list[RecordError]:
    """Per-outcome ``subgroups``/``moderators``/``moderator_priors`` of evidence/analysis.yaml
    name a record field (design, risk_of_bias, country, timepoint_window) or a covariate that
    some record has; a covariate is a number in every record or a label in every record; a
    timepoint_window moderator needs ``timepoint_windows``. A study without a covariate is not
    an error: the analysis lists it as missing the covariate."""
    errors: list[RecordError] = []
    kinds: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"number": [], "label": []})
    for key, loaded in sorted(base.records.items()):
        for name, cov in loaded.record.covariates.items():
            kind = "number" if isinstance(cov.value, float) else "label"
            kinds[name][kind].append(key)
    for name, seen in sorted(kinds.items()):
        if seen["number"] and seen["label"]:
            first = seen["label"][0]
            loaded = base.records[first]
            errors.append(
                RecordError(
                    loaded.file,
                    loaded.lines.line_of(("covariates", name, "value")),
                    f"covariates.{name}.value",
                    f"a label here, but a number in {', '.join(seen['number'][:3])}",
                    "a number in every record or a label in every record",
                )
            )
    file = base.paths.rel(base.paths.analysis)
    lines = base.analysis_lines
    known = sorted(set(RECORD_MODERATORS) | set(kinds))
    for oid, setting in base.analysis.outcomes.items():
        for field_name in ("subgroups", "moderators"):
            for j, name in enumerate(getattr(setting, field_name)):
                path: tuple[str | int, ...] = ("outcomes", oid, field_name, j)
                if name not in known:
                    errors.append(
                        RecordError(
                            file,
                            lines.line_of(path),
                            format_path(path),
                            f"'{name}' is neither a record field nor a covariate of any record{_hint(name, known)}",
                            describe_choices(known),
                        )
                    )
                elif name == "timepoint_window" and not setting.timepoint_windows:
                    errors.append(
                        RecordError(
                            file,
                            lines.line_of(path),
                            format_path(path),
                            "timepoint_window needs `timepoint_windows:` for this outcome",
                        )
                    )
        for name, spec in setting.moderator_priors.items():
            path = ("outcomes", oid, "moderator_priors", name)
            if name not in setting.moderators and name != "intrcpt":
                errors.append(
                    RecordError(
                        file,
                        lines.line_of(path),
                        format_path(path),
                        f"'{name}' is not among this outcome's moderators",
                        describe_choices(["intrcpt", *setting.moderators]),
                    )
                )
            try:
                prior = parse_mu_prior(spec)
                if prior.family != "normal":
                    raise ValueError(f"'{spec}' is not a normal prior")
            except Exception as exc:
                errors.append(
                    RecordError(file, lines.line_of(path), format_path(path), str(exc), "normal:MEAN:SD")
                )
    return errors


def check(base: EvidenceBase, load_errors: Iterable[RecordError] = ()) -> Findings:
    """Run every cross-file rule; return errors and warnings (sorted)."""
    report = Findings()
    checker = _Checker(base, report)
    marked: set[tuple[str, str]] = set()
    for key, (data, lines, file) in sorted(base.unloaded.items()):
        marked.update((file, p) for p in checker.unloaded(key, data, lines, file))
    # a placeholder says more than the schema's complaint about the same field; the
    # schema's accepted values are kept on the placeholder's line
    accepted = {(e.file, e.path): e.accepted for e in load_errors if e.accepted}
    for e in report.errors:
        if (e.file, e.path) in accepted and e.accepted is None:
            e.accepted = accepted[(e.file, e.path)]
    report.extend(e for e in load_errors if (e.file, e.path) not in marked)
    checker.change_model()
    checker.outcomes_file()
    checker.analysis_file()
    checker.records()
    checker.searches_file()
    checker.unused()
    report.extend(check_moderators(base))
    report.errors = sort_errors(report.errors)
    report.warnings = sort_errors(report.warnings)
    return report


def validate_project(root: str | Path) -> tuple[EvidenceBase, Findings]:
    """Load a project and run every rule.

    Parameters
    ----------
    root : str or Path
        The project directory.

    Returns
    -------
    (EvidenceBase, Findings)
        The loaded evidence base and every error and warning, each located
        (``file:line: field.path: problem``).
    """
    base, load_errors = load_project(Path(root))
    return base, check(base, load_errors)


# ----------------------------------------------------------------------------- cross-checks

MARKERS = ("TODO", "YYYY-MM-DD", "DISAGREE:")
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def _marker_problem(text: str) -> str | None:
    if "DISAGREE:" in text:
        return (
            f"unresolved disagreement from `peerevidence reconcile` ({text.strip()[:80]}); "
            "keep the value the source supports and note the choice under extraction.provenance"
        )
    if "TODO" in text:
        return "placeholder 'TODO' left from the template; fill it in"
    if "YYYY-MM-DD" in text:
        return "placeholder 'YYYY-MM-DD' left from the template; write the date"
    return None


def _markers(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, problem) for every text still holding a template placeholder or a reconcile marker."""
    if isinstance(value, str):
        problem = _marker_problem(value)
        return [(path, problem)] if problem else []
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in _markers(v, (*path, k))]
    if isinstance(value, list):
        return [m for i, v in enumerate(value) for m in _markers(v, (*path, i))]
    return []


def printed_decimals(value: float, line_text: str | None = None, key: str | None = None) -> int:
    """Decimals of a number as printed in the YAML line (``0.50`` -> 2), else as Python prints it."""
    if line_text is not None and key is not None:
        match = re.search(rf"(?:^|[\s{{,]){re.escape(key)}\s*:\s*['\"]?{_NUMBER}", line_text)
        if match:
            text = match.group(1)
            with contextlib.suppress(ValueError):
                if float(text) == value:
                    return _decimals_of(text)
    return _decimals_of(repr(float(value)), from_repr=True)


def _decimals_of(text: str, from_repr: bool = False) -> int:
    text = text.lower().lstrip("+-")
    exp = 0
    if "e" in text:
        text, e = text.split("e")
        exp = int(e)
    frac = text.split(".")[1] if "." in text else ""
    if from_repr and frac == "0" and exp == 0:
        frac = ""  # Python prints an integer-valued float as 8.0; the source may have printed 8
    return max(len(frac) - exp, 0)


@dataclass(frozen=True)
class ReportedCheck:
    """The reported effect beside the one computed from the arm data, and the tolerance used."""

    measure: str
    reported: float
    computed: float
    tolerance: float
    estimate_rounding: float
    input_rounding: float

    @property
    def ok(self) -> bool:
        return abs(self.reported - self.computed) <= self.tolerance

    @property
    def sign_flipped(self) -> bool:
        if self.measure in ("OR", "RR"):
            return self.computed > 0 and abs(self.reported - 1 / self.computed) <= self.tolerance
        return abs(self.reported + self.computed) <= self.tolerance


def _arm_effect(measure: str, inputs: dict[str, float]) -> float:
    from peerevidence.stats import effects

    if measure in ("SMD", "g", "MD"):
        fn = effects.md if measure == "MD" else effects.smd
        y, _ = fn(inputs["m1"], inputs["s1"], inputs["n1"], inputs["m2"], inputs["s2"], inputs["n2"])
        return float(y)
    cells = effects.table_from_totals(inputs["a"], inputs["n1"], inputs["c"], inputs["n2"])
    ratio_fn = effects.log_rr if measure == "RR" else effects.log_or
    y, _ = ratio_fn(*cells)
    return float(y)


def reported_check(
    result: Result, direction: str | None, printed: dict[str, int], sign: float | None = None
) -> ReportedCheck | None:
    """Compare ``result.reported`` with the effect its arm data give, or None if not comparable.

    ``printed`` maps ``estimate`` and the inputs (``m1, s1, m2, s2``) to the number of decimals
    printed. The tolerance is half a unit in the last printed digit of the reported estimate
    plus the rounding of the inputs (half a unit in their last printed digit) propagated to
    first order: sum |d effect / d input| x half-unit.
    """
    rep = result.reported
    if rep is None:
        return None
    inputs: dict[str, float]
    rounded: tuple[str, ...]
    if result.form == "continuous" and rep.measure in ("SMD", "g", "MD"):
        inputs = {
            "m1": result.intervention.mean,
            "s1": result.intervention.sd,
            "n1": result.intervention.n,
            "m2": result.control.mean,
            "s2": result.control.sd,
            "n2": result.control.n,
        }
        rounded = ("m1", "s1", "m2", "s2")
        ratio = False
    elif result.form == "binary" and rep.measure in ("OR", "RR"):
        inputs = {
            "a": result.intervention.events,
            "n1": result.intervention.total,
            "c": result.control.events,
            "n2": result.control.total,
        }
        rounded = ()
        ratio = True
    else:
        return None
    if sign is None:
        sign = -1.0 if (rep.harmonised and direction == "lower_is_better") else 1.0

    def value(inp: dict[str, float]) -> float:
        y = sign * _arm_effect(rep.measure, inp)
        return math.exp(y) if ratio else y

    computed = value(inputs)
    propagated = 0.0
    for name in rounded:
        half = 0.5 * 10.0 ** -printed.get(name, 0)
        if half <= 0:
            continue
        up, down = dict(inputs), dict(inputs)
        up[name] += half
        down[name] -= half
        if name.startswith("s") and down[name] <= 0:
            down[name] = inputs[name]
            slope = (value(up) - value(down)) / half
        else:
            slope = (value(up) - value(down)) / (2 * half)
        propagated += abs(slope) * half
    est_round = 0.5 * 10.0 ** -printed.get("estimate", 0)
    return ReportedCheck(
        rep.measure,
        rep.estimate,
        computed,
        est_round + propagated + 1e-9,
        est_round,
        propagated,
    )


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.6g}"


_UNITS = {"day": 1 / 7, "week": 1.0, "month": 52.0 / 12, "year": 52.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*-?\s*(day|week|month|year|yr|wk|mo)s?\b", re.IGNORECASE)
_ABBREV = {"yr": "year", "wk": "week", "mo": "month"}


def weeks_in(text: str | None) -> float | None:
    """The longest duration written in ``text`` ('6-month follow-up', '12 weeks'), in weeks."""
    if not text:
        return None
    found = [float(n) * _UNITS[_ABBREV.get(u.lower(), u.lower())] for n, u in _DURATION.findall(text)]
    return max(found) if found else None


SE_LIKE_G = 2.0
SE_LIKE_SMALL_N = 100
