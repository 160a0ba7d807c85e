"""Helpers to build a small, self-contained, VALID peerevidence project in a tmp dir.

The project lives in ``tests/data/minimal`` (its own references.bib, change model,
outcomes, analysis settings and three records: a trial with continuous, effect and binary
results; a cohort with an adjusted OR and a not_reported result; a systematic review with
a pooled result). It validates with no error and no warning, so a test that breaks one
thing can expect exactly one line back.

The bibliography also holds two spare keys, ``spare2020`` and ``spare2021`` (kept with
``keywords = {related}`` so they raise no "unused" warning): tests drop extra records in
as ``extraction/spare2020.yaml``. :data:`SPARE_RECORD` is a valid record for that key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from peerevidence.pooling.fitting import AnalysisFit, RunResult, load_valid, plan
from peerevidence.pooling.table import evidence_table
from peerevidence.stats.exact import exact_posterior, summarise
from peerevidence.stats.frequentist import random_effects
from peerevidence.stats.summary import (
    Diagnostics,
    ExactCheck,
    ExactSummary,
    FitSummary,
    Provenance,
    RemlLine,
    Stat,
    StudyEstimate,
)
from peerevidence.synthesis import (
    Certainty,
    Downgrade,
    EdgeCertainty,
    Gaps,
    PathEffect,
    Sensitivity,
    SensitivityRow,
    Synthesis,
)

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
MINIMAL = DATA / "minimal"
INVALID = DATA / "invalid"
REPO_ROOT = TESTS.parent

SPARE_FILE = "extraction/spare2020.yaml"

# A valid record for the spare key (the invalid fixtures are this record with one defect).
SPARE_RECORD = """\
study: spare2020
design: rct
country: England
setting: Community mental health teams
population: Adults with severe mental illness
intervention: Peer support
comparator: Usual care
sample_size:
  randomised: 100
  intervention: 50
  control: 50
  source: {locator: Abstract, snippet: "100 participants were randomised"}
risk_of_bias: {tool: RoB 2, overall: low, assessed_by: tests}
extraction: {extracted_by: tests, checked_by: tests, date: "2024-01-01"}
results:
  - outcome: hope
    instrument: Herth Hope Index
    timepoint: 6 months
    form: continuous
    intervention: {n: 50, mean: 30.1, sd: 5.2}
    control: {n: 48, mean: 28.0, sd: 5.5}
    source: {locator: Table 2, snippet: "HHI 30.1 (5.2) vs 28.0 (5.5)"}
"""

# The start of every reported problem: a project-relative path, then ':'.
PROBLEM_LINE = re.compile(r"^(warning: )?(references\.bib|evidence/[\w.]+|extraction/[^:]+)(:\d+)?: ")


def make_project(tmp_path: Path, name: str = "project") -> Path:
    """Copy the minimal valid project to ``tmp_path/name`` and return its root."""
    root = tmp_path / name
    shutil.copytree(MINIMAL, root)
    return root


def read(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def edit(root: Path, rel: str, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in a project file (fails if not exactly one)."""
    text = read(root, rel)
    assert text.count(old) == 1, f"{rel}: expected exactly one {old!r}, found {text.count(old)}"
    write(root, rel, text.replace(old, new))


def line_no(root: Path, rel: str, needle: str) -> int:
    """1-based number of the one line of a project file that contains ``needle``."""
    hits = [i for i, line in enumerate(read(root, rel).splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{rel}: expected one line containing {needle!r}, found {hits}"
    return hits[0]


def load_yaml_text(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def dump_yaml(data: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def spare_record_data() -> dict[str, Any]:
    """:data:`SPARE_RECORD` as plain Python data (a fresh copy each call)."""
    return load_yaml_text(SPARE_RECORD)


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """The problems printed on standard output, one per line."""
        return self.out.splitlines()

    @property
    def text(self) -> str:
        return self.out + self.err


def _code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def run_cli(*args: str | Path) -> CliResult:
    """Run ``peerevidence ARGS`` in-process; return its exit code and its two outputs.

    Any exception escaping ``main`` (other than SystemExit) is a bug and propagates.
    """
    from peerevidence.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = _code(exc)
    return CliResult(code, out.getvalue(), err.getvalue())


def validate(root: Path, *options: str) -> CliResult:
    return run_cli("validate", "--project", root, *options)


def problems(root: Path) -> list[str]:
    """Errors then warnings of ``validate_project``, formatted as the CLI prints them."""
    from peerevidence.records.rules import validate_project

    _, report = validate_project(root)
    return [str(e) for e in report.errors] + [f"warning: {w}" for w in report.warnings]


def expectation(fixture: Path) -> tuple[str, str]:
    """``(record file, expected line)`` from a fixture's first line ``# expect: FILE[:LINE]: ...``."""
    first = fixture.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# expect: "), f"{fixture.name}: first line must be '# expect: ...'"
    expected = first.removeprefix("# expect: ")
    target = expected.split(":", 1)[0]
    assert re.fullmatch(r"extraction/\w+\.yaml", target), f"{fixture.name}: bad target {target!r}"
    return target, expected


# --------------------------------------------------------------------------- fits without MCMC


def exact_summary(analysis) -> FitSummary:
    """A fit summary in the shape ``fit`` returns, computed exactly (no MCMC): the MCMC
    fields carry the exact values, the diagnostics are plausible constants."""
    y, v = analysis.data.adjusted()
    post = exact_posterior(y, v, analysis.priors.mu, analysis.priors.tau)
    ex = summarise(post, list(analysis.data.labels))
    stats = {name: Stat.from_json(ex[name]) for name in ("mu", "tau", "theta_new")}
    new = dataclasses.replace(stats["theta_new"], q50=None)
    return FitSummary(
        k=analysis.data.k,
        measure=analysis.data.measure,
        mu=stats["mu"],
        tau=stats["tau"],
        theta_new=new,
        p_mu_gt_0=ex["p_mu_gt_0"],
        theta=tuple(StudyEstimate.from_json(t) for t in ex["theta"]),
        diagnostics=Diagnostics(rhat_max=1.001, ess_bulk_min=1500.0, ess_tail_min=1400.0, divergences=0),
        exact_check=ExactCheck(0.0, 0.0, "mu.q50", True, 0.1, 5.0),
        exact=ExactSummary(stats["mu"], stats["tau"], new, ex["p_mu_gt_0"]),
        reml=RemlLine.from_json(random_effects(y, v, "REML").summary()),
        priors=analysis.priors.as_dict(),
        notes=("k = 1: the data say nothing about tau.",) if analysis.data.k == 1 else (),
        provenance=Provenance(
            key=analysis.key(),
            model_version="test",
            sampler=analysis.sampler.model_dump(),
            versions={},
            data={
                "study": list(analysis.data.labels),
                "yi": [float(x) for x in analysis.data.yi],
                "vi": [float(x) for x in analysis.data.vi],
                "design": list(analysis.rows["design"]),
            },
        ),
    )


def exact_result(root: Path) -> RunResult:
    """A RunResult for a project, fits replaced by exact summaries (fast, deterministic)."""
    base, _ = load_valid(root)
    table = evidence_table(base)
    fits = [
        AnalysisFit(a, a.key(), True, 0.0, exact_summary(a)) for a in plan(base, table, base.analysis.sampler)
    ]
    return RunResult(base, table, fits, {})


def hand_synthesis(result: RunResult) -> Synthesis:
    """A Synthesis with every part filled, built by hand."""
    rows = (
        SensitivityRow("normal:0:1", "halfnormal:0.5", 0.3, 0.05, 0.55, 0.1, 0.98, True),
        SensitivityRow("normal:0:1", "halfcauchy:0.5", 0.28, -0.1, 0.6, 0.3, 0.93, False),
    )
    return Synthesis(
        certainty={
            "hope": Certainty(
                "hope",
                "high",
                (
                    Downgrade("risk_of_bias", 1, "some concerns in the only trial"),
                    Downgrade("imprecision", 0, "not serious: 115 participants"),
                ),
                "moderate",
                override="low",
                override_reason="reviewer judged the trial small",
                override_by="tests",
            )
        },
        edges={"E01": EdgeCertainty("E01", "quantitative", "low", ("hope",))},
        sensitivity={"hope": Sensitivity("hope", rows, ("P(benefit) 0.98 -> 0.93 (crosses 0.95)",))},
        paths=[
            PathEffect(
                ("peer_support", "hope", "readmission"),
                ("E01", "E04"),
                "hope",
                "readmission",
                "OR",
                0.9,
                0.6,
                1.3,
                0.7,
                ("the link is causal",),
                "Tentative.",
            )
        ],
        gaps=Gaps(("E04",), (), ("symptoms",), ("hope",)),
    )
