"""Cross-file checks on an :class:`~peerevidence.records.project.EvidenceBase`.

Every rule appends to a list; nothing stops at the first problem. Errors make
``peerevidence validate`` exit 1; warnings are printed separately and become errors
with ``--strict``.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from peerevidence.errors import RecordError, describe_choices, sort_errors
from peerevidence.records.project import EvidenceBase, LoadedRecord, load_project
from peerevidence.records.routes import measure_route, resolve_direction
from peerevidence.records.schema import Outcome
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
        for i, item in enumerate(self.base.certainty.overrides):
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

    # ------------------------------------------------------------------ records
    def record(self, key: str, loaded: LoadedRecord) -> None:
        rec, file, lines = loaded.record, loaded.file, loaded.lines
        for path in _placeholders(rec.model_dump(by_alias=True)):
            self.err(file, lines, path, "placeholder 'TODO' left from the template; fill it in")
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
            elif is_review and result.form not in ("pooled", "not_reported"):
                self.err(
                    file,
                    lines,
                    ("results", i, "form"),
                    "a systematic_review record holds only pooled or not_reported results "
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
            if result.form in ("not_reported", "pooled"):
                continue
            route = measure_route(result, outcome)
            if route.error:
                self.err(file, lines, base_path, route.error)
                continue
            _, direction_error = resolve_direction(result, outcome)
            if direction_error:
                self.err(file, lines, (*base_path, "instrument"), direction_error)
            if result.form == "continuous" or result.form == "binary":
                self._arm_sizes(rec, file, lines, i)
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

    def _arm_sizes(self, rec, file: str, lines: LineIndex, i: int) -> None:
        result = rec.results[i]
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
        if whole is not None and None not in arm_n.values():
            both = arm_n["intervention"] + arm_n["control"]
            if both > whole:
                self.err(
                    file,
                    lines,
                    ("results", i),
                    f"arm sizes add up to {both}, more than the stated sample size ({whole})",
                )

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
            if r.form != "not_reported"
        }
        file = self.base.paths.rel(self.base.paths.outcomes)
        for i, outcome in enumerate(self.base.outcomes.outcomes if self.base.outcomes else []):
            if outcome.id not in with_data:
                self.err(
                    file,
                    self.base.outcome_lines,
                    ("outcomes", i, "id"),
                    f"outcome '{outcome.id}' has no data in any record",
                    warning=True,
                )


def _placeholders(value, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Paths of every text still holding the template's TODO."""
    if isinstance(value, str):
        return [path] if "TODO" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _placeholders(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _placeholders(v, (*path, i))]
    return []


def _sources(rec) -> list[tuple[tuple[str | int, ...], object]]:
    out: list[tuple[tuple[str | int, ...], object]] = []
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


def check(base: EvidenceBase, load_errors: Iterable[RecordError] = ()) -> Findings:
    """Run every cross-file rule; return errors and warnings (sorted)."""
    report = Findings()
    report.extend(load_errors)
    checker = _Checker(base, report)
    checker.change_model()
    checker.outcomes_file()
    checker.analysis_file()
    checker.records()
    checker.unused()
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
