"""Command-line interface. The only module that prints.

Exit codes: 0 success; 1 invalid input, failed fit or any reported error; 2 usage error.
No input, however broken, produces a traceback: library errors are printed as one line
each; anything unexpected is printed as one "internal error" line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from peerevidence.errors import PeerEvidenceError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.interchange.importers import Draft
    from peerevidence.pooling.fitting import RunResult
    from peerevidence.run import ReportResult

F = TypeVar("F", bound=Callable[..., Any])  # a click command function, before click wraps it

out = Console(highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 160)
err = Console(
    stderr=True, highlight=False, soft_wrap=True, emoji=False, width=None if sys.stderr.isatty() else 160
)


out_console = out


def _say(console: Console, text: str, style: str | None = None) -> None:
    console.print(text, markup=False, style=style)


project_option = click.option(
    "--project",
    "project",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project directory (references.bib, evidence/, extraction/).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="peerevidence")
def cli() -> None:
    """peerevidence: a checkable evidence base for a change model (records -> meta-analysis -> report)."""


@cli.command()
@project_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, no summary.")
def validate(project: Path, strict: bool, quiet: bool) -> None:
    """Check every record and evidence file; print one line per problem."""
    from peerevidence.records.rules import validate_project

    base, report = validate_project(project)
    for e in report.errors:
        _say(out, str(e))
    for w in report.warnings:
        _say(out, f"warning: {w}")
    failed = bool(report.errors) or (strict and bool(report.warnings))
    if not quiet:
        summary = (
            f"{len(base.records)} records, {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        )
        _say(err, ("invalid: " if failed else "valid: ") + summary, style="red" if failed else "green")
    if failed:
        sys.exit(1)


@cli.command("new-record")
@click.argument("key")
@project_option
def new_record(key: str, project: Path) -> None:
    """Write a commented template extraction/KEY.yaml for a study in references.bib."""
    from peerevidence.records.bib import load_bibliography
    from peerevidence.records.project import ProjectPaths

    paths = ProjectPaths(project)
    if not project.is_dir():
        raise UsageError(f"{project}: project directory not found")
    if not paths.bib.exists():
        raise UsageError(f"{paths.bib}: not found (every project needs references.bib)")
    target = paths.record_path(key)  # refuses keys that are not safe file names
    bib, _ = load_bibliography(paths.bib)
    if key not in bib:
        import difflib

        close = difflib.get_close_matches(key, bib.keys(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"references.bib: '{key}' is not a BibTeX key{hint} (add the entry first)")
    if target.exists():
        raise UsageError(f"{paths.rel(target)}: a record already exists; edit it instead")
    template = resources.files("peerevidence").joinpath("records/template.yaml").read_text("utf-8")
    text = template.format(key=key, citation=bib[key].short())
    paths.extraction.mkdir(parents=True, exist_ok=True)
    from peerevidence.atomic import write_text

    write_text(target, text)
    _say(err, f"wrote {paths.rel(target)}: fill in the TODOs, then run `peerevidence validate`")


# ----------------------------------------------------------------------------- sampling options


def _sampler_options(func: F) -> F:
    func = click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=None,
        help="Random seed (default: evidence/analysis.yaml, or 20150703).",
    )(func)
    func = click.option(
        "--chains", type=click.IntRange(1, 16), default=None, help="Number of chains (default 4)."
    )(func)
    func = click.option(
        "--draws",
        type=click.IntRange(min=10),
        default=None,
        help="Draws per chain after tuning (default 1000).",
    )(func)
    return func


def _overrides(draws: int | None, chains: int | None, seed: int | None) -> dict[str, int]:
    return {k: v for k, v in (("draws", draws), ("chains", chains), ("seed", seed)) if v is not None}


class _Progress:
    """A rich progress bar on a terminal; one line per analysis otherwise; nothing if quiet."""

    def __init__(self, total: int, quiet: bool):
        self.quiet = quiet
        self.bar = None
        if not quiet and err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description:<44}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=False,
            )
            self.task = self.bar.add_task("fitting", total=total)

    def __enter__(self) -> _Progress:
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar:
            self.bar.__exit__(exc_type, exc, tb)

    def __call__(self, name: str, status: str, seconds: float) -> None:
        if self.quiet:
            return
        if status == "total":
            if self.bar:
                self.bar.update(self.task, total=int(seconds))
            return
        if self.bar:
            if status == "fitting":
                self.bar.update(self.task, description=f"fitting {name}")
            else:
                self.bar.update(self.task, advance=1, description=f"{name} ({status} {seconds:.2f}s)")
        elif status != "fitting":
            _say(err, f"{name:<44} {status:<7} {seconds:6.2f}s")


def _fit_report(result: RunResult, quiet: bool) -> None:
    reused = sum(f.reused for f in result.fits)
    if not quiet:
        _say(
            err,
            f"{len(result.fits)} analyses: {len(result.fits) - reused} fitted, {reused} reused; "
            f"summaries in {result.base.paths.rel(result.base.paths.reports)}/summary.csv",
        )
    for f in result.failed:
        x = f.summary.exact_check
        _say(
            err,
            f"FAILED: {f.analysis.name}: MCMC disagrees with the exact posterior at "
            f"{x.worst} ({x.max_sd_discrepancy:.3f} posterior SD, "
            f"{x.max_z:.1f} MCSE); increase --draws or check the model",
            style="bold red",
        )


def _fit_options(func: F) -> F:
    """The options `fit` and `run` share."""
    func = click.option("--quiet", "-q", is_flag=True, help="No progress output.")(func)
    func = click.option("--force", is_flag=True, help="Refit every analysis, ignoring the cache.")(func)
    func = _sampler_options(func)
    func = click.option("--outcome", "outcomes", multiple=True, help="Fit only this outcome (repeatable).")(
        func
    )
    return project_option(func)


@cli.command("fit")
@_fit_options
def fit_cmd(
    project: Path,
    outcomes: tuple[str, ...],
    draws: int | None,
    chains: int | None,
    seed: int | None,
    force: bool,
    quiet: bool,
) -> None:
    """Fit the Bayesian random-effects model for every outcome with poolable data."""
    from peerevidence.pooling.fitting import run_fits

    with _Progress(0, quiet) as progress:
        result = run_fits(project, _overrides(draws, chains, seed), list(outcomes) or None, force, progress)
    _fit_report(result, quiet)
    if result.failed:
        sys.exit(1)


def _prior_options(func: F) -> F:
    func = click.option(
        "--prior-tau",
        default="halfnormal:0.5",
        show_default=True,
        help="halfnormal:SCALE | halfcauchy:SCALE | uniform:U | lognormal2:M:S | "
        "logt2:L:S | turner2015:TYPE | rhodes2015:TYPE",
    )(func)
    func = click.option("--prior-mu", default="normal:0:1", show_default=True, help="normal:MEAN:SD | flat")(
        func
    )
    return func


def _columns_option(func: F) -> F:
    return click.option(
        "--columns",
        type=click.Choice(["yi", "raw"]),
        default=None,
        help="When a CSV has both yi,vi and raw columns: which to use.",
    )(func)


def _pool_setup(
    prior_mu: str, prior_tau: str, draws: int | None, chains: int | None, seed: int | None
) -> tuple[Any, Any]:
    from peerevidence.records.schema import SamplerSettings
    from peerevidence.stats.model import Priors
    from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

    priors = Priors(parse_mu_prior(prior_mu), parse_tau_prior(prior_tau))
    settings = SamplerSettings(**_overrides(draws, chains, seed))
    return priors, settings


@cli.command("pool")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--measure",
    type=click.Choice(["SMD", "MD", "OR", "RR", "HR", "GEN"]),
    default=None,
    help="Effect measure (default: GEN for yi/vi, SMD for means, OR for counts).",
)
@_columns_option
@_prior_options
@_sampler_options
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object.")
@click.option("--loo", is_flag=True, help="Leave-one-out: each study dropped in turn (exact and REML).")
@click.option("--mods", default="", help="Meta-regression on these CSV columns (comma-separated).")
@click.option("--subgroup", default=None, help="Subgroup analysis by this CSV column.")
def pool_cmd(
    file: Path,
    measure: str | None,
    columns: str | None,
    prior_mu: str,
    prior_tau: str,
    draws: int | None,
    chains: int | None,
    seed: int | None,
    as_json: bool,
    loo: bool,
    mods: str,
    subgroup: str | None,
) -> None:
    """Pool one CSV of studies (metafor-style columns) with the Bayesian model."""
    import json

    from peerevidence.pooling.adhoc import pool, read_csv
    from peerevidence.pooling.extras import pool_extras
    from peerevidence.pooling.store import _jsonable

    frame = read_csv(file)
    extras = pool_extras(
        frame,
        measure=measure,
        prior_mu=prior_mu,
        prior_tau=prior_tau,
        columns=columns,
        loo=loo,
        mods=[m.strip() for m in mods.split(",") if m.strip()],
        subgroup=subgroup,
        name=str(file),
    )
    summary = pool(
        frame,
        measure=measure,
        prior_mu=prior_mu,
        prior_tau=prior_tau,
        draws=draws,
        chains=chains,
        seed=seed,
        name=str(file),
        columns=columns,
    )
    ok, notes = summary.ok, summary.notes
    if as_json:
        click.echo(json.dumps(_jsonable({**summary.to_dict(), **extras}), sort_keys=False))
    else:
        _print_pool(summary.to_dict())
        _print_extras(extras)
    for note in notes:
        _say(err, f"note: {note}")
    if not ok:
        _say(
            err, "FAILED: MCMC summaries disagree with the exact posterior beyond tolerance", style="bold red"
        )
        sys.exit(1)


def _print_extras(extras: Mapping[str, Any]) -> None:
    for row in extras.get("loo", []):
        m = row["mu"]
        _say(
            out,
            f"without {row['omitted']}: mu {m['q50']:.4g} ({m['q025']:.4g} to {m['q975']:.4g}), "
            f"P(mu > 0) {row['p_mu_gt_0']:.3f}; REML {row['reml']['mu']:.4g}",
        )
    if "metareg" in extras:
        mr = extras["metareg"]
        for c in mr["coefficients"]:
            p = c["posterior"]
            _say(
                out,
                f"{c['name']}: {p['q50']:.4g} ({p['q025']:.4g} to {p['q975']:.4g}), P(> 0) {c['p_gt_0']:.3f}; "
                f"REML {c['reml']['estimate']:.4g} (SE {c['reml']['se']:.4g})",
            )
        r = mr["reml"]
        _say(out, f"QM({r['qm_df']}) = {r['qm']:.4g}, p = {r['qm_p']:.4g}; residual tau^2 {r['tau2']:.4g}")
    if "subgroups" in extras:
        sg = extras["subgroups"]
        for g in sg["groups"]:
            p = g["posterior"]
            _say(
                out,
                f"{sg['subgroup']} = {g['group']} (k = {g['k']}): {p['q50']:.4g} ({p['q025']:.4g} to {p['q975']:.4g})",
            )
        for d in sg["differences"]:
            p = d["posterior"]
            _say(
                out,
                f"{d['contrast']}: {p['q50']:.4g} ({p['q025']:.4g} to {p['q975']:.4g}), P(> 0) {d['p_gt_0']:.3f}",
            )
        te = sg["test"]
        _say(out, f"test for subgroup differences: QM({te['qm_df']}) = {te['qm']:.4g}, p = {te['qm_p']:.4g}")


def _fmt(x: float | None) -> str:
    return "NA" if x is None else f"{x:.4g}"


def _print_pool(r: Mapping[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"k = {r['k']}, measure {r['measure']}; priors {r['priors']['mu']}, {r['priors']['tau']}")
    for col in ("", "mean", "sd", "2.5%", "50%", "97.5%"):
        t.add_column(col, justify="right")
    for name in ("mu", "tau"):
        s = r[name]
        t.add_row(name, _fmt(s["mean"]), _fmt(s["sd"]), _fmt(s["q025"]), _fmt(s["q50"]), _fmt(s["q975"]))
    s = r["theta_new"]
    t.add_row("theta_new", _fmt(s["mean"]), _fmt(s["sd"]), _fmt(s["q025"]), "", _fmt(s["q975"]))
    out.print(t)
    reml, d = r["reml"], r["diagnostics"]
    _say(out, f"P(mu > 0) = {r['p_mu_gt_0']:.3f} (exact {r['exact']['p_mu_gt_0']:.3f})")
    _say(
        out,
        f"REML: mu {reml['mu']:.4g} (95% CI {reml['ci_lb']:.4g} to {reml['ci_ub']:.4g}), "
        f"tau^2 {reml['tau2']:.4g}, I^2 {_fmt(reml['i2'])}%, "
        f"PI {reml['pi_lb']:.4g} to {reml['pi_ub']:.4g}",
    )
    _say(
        out,
        f"diagnostics: R-hat {d['rhat_max']:.3f}, ESS bulk {d['ess_bulk_min']:.0f}, "
        f"tail {d['ess_tail_min']:.0f}, divergences {d['divergences']}, "
        f"max |MCMC - exact| {d['exact_max_sd_discrepancy']:.3f} posterior SD",
    )


@cli.command("pool-many")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--measure", type=click.Choice(["SMD", "MD", "OR", "RR", "HR", "GEN"]), default=None)
@_columns_option
@_prior_options
@_sampler_options
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Local worker processes."
)
@click.option(
    "--engine",
    type=click.Choice(["mcmc", "exact"]),
    default="mcmc",
    show_default=True,
    help="mcmc: sample and check against the exact posterior; exact: quadrature only.",
)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of standard output (atomically).",
)
def pool_many_cmd(
    file: Path,
    measure: str | None,
    columns: str | None,
    prior_mu: str,
    prior_tau: str,
    draws: int | None,
    chains: int | None,
    seed: int | None,
    workers: int,
    engine: str,
    fmt: str,
    out_file: Path | None,
) -> None:
    """Pool every analysis of a long CSV (columns analysis, study, ...): one summary each."""
    from peerevidence.pooling.adhoc import Job, effects_from_frame, pool_many, read_csv, split_analyses

    priors, settings = _pool_setup(prior_mu, prior_tau, draws, chains, seed)
    if out_file is not None:
        _check_writable(out_file)  # before fitting, so no results are lost at the end
    frame = read_csv(file)
    jobs = []
    for name, sub in split_analyses(frame, str(file)):
        input_notes: list[str] = []
        data, _ = effects_from_frame(sub, measure, f"{file} [analysis {name}]", columns, input_notes)
        jobs.append(Job(name, data, priors, settings, notes=tuple(input_notes)))
    text, failed = pool_many(jobs, workers, fmt, engine)
    if out_file is not None:
        from peerevidence.atomic import write_text

        write_text(out_file, text)
    else:
        click.echo(text, nl=False)
    for result in failed:
        _say(err, f"FAILED {result.name}: {result.reason}", style="bold red")
    if failed:
        sys.exit(1)


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    import os
    import tempfile

    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--out {path}: is a directory")
    if not parent.is_dir():
        raise UsageError(f"--out {path}: the folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"--out {path}: cannot write there (permission denied)")
    try:  # the one reliable test: make (and remove) a file where the output will go
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write there ({exc.strerror})") from None


@cli.command("diff")
@project_option
def diff_cmd(project: Path) -> None:
    """What changed since the previous run: studies, pooled effect, interval, certainty."""
    from rich.table import Table

    from peerevidence.records.project import ProjectPaths
    from peerevidence.synthesis.changes import project_changes

    rows = project_changes(ProjectPaths(project).reports)
    if rows is None:
        raise UsageError(f"{project / 'reports'}: no run yet; run `peerevidence fit` first")
    if not any(r["certainty_before"] is not None or r["status"] != "added" for r in rows):
        _say(err, "no previous run to compare with: every analysis is new")
    table = Table(title="Changes since the previous run")
    for col in ("analysis", "status", "studies +", "studies -", "Δ median mu", "Δ 95% width", "certainty"):
        table.add_column(col)
    for r in rows:
        cert = r["certainty_after"] or ""
        if r["certainty_before"] != r["certainty_after"] and r["status"] == "changed":
            cert = f"{r['certainty_before']} -> {r['certainty_after']}"
        table.add_row(
            r["analysis"],
            r["status"],
            ", ".join(r["studies_added"]),
            ", ".join(r["studies_removed"]),
            "" if r["d_mu"] is None else f"{r['d_mu']:+.3f}",
            "" if r["d_width"] is None else f"{r['d_width']:+.3f}",
            cert,
        )
    out.print(table)


@cli.command("coverage")
@project_option
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the Markdown table here (atomically) instead of standard output.",
)
def coverage_cmd(project: Path, out_file: Path | None) -> None:
    """Coverage table: each study's design and data forms; poolable studies per outcome."""
    from peerevidence.pooling.coverage import coverage_markdown
    from peerevidence.pooling.fitting import load_valid
    from peerevidence.pooling.table import evidence_table

    if out_file is not None:
        _check_writable(out_file)
    base, _ = load_valid(project)
    text = coverage_markdown(base, evidence_table(base))
    if out_file is None:
        click.echo(text, nl=False)
    else:
        from peerevidence.atomic import write_text

        write_text(out_file, text)
        _say(err, f"wrote {out_file}")


# ----------------------------------------------------------------------------- report and run


def _report_lines(report: ReportResult, quiet: bool) -> None:
    if quiet:
        return
    if report.rendered:
        _say(err, f"report: index, {report.pages} outcome page(s), references and evidence_table.csv written")
    else:
        _say(err, "report: unchanged since the last render (inputs, fits and code are the same)")


@cli.command("report")
@project_option
@click.option("--quiet", "-q", is_flag=True, help="Print only where the report is.")
def report_cmd(project: Path, quiet: bool) -> None:
    """Render the HTML evidence report from the stored fits (no sampling)."""
    from peerevidence.pooling.fitting import load_fits
    from peerevidence.run import render_report

    report = render_report(project)
    _report_lines(report, quiet)
    _say(out, f"report: {report.index}")
    failed = load_fits(project).failed
    if failed:
        _say(err, f"FAILED fits shown in the report: {', '.join(f.analysis.name for f in failed)}")
        sys.exit(1)


@cli.command("run")
@_fit_options
def run_cmd(
    project: Path,
    outcomes: tuple[str, ...],
    draws: int | None,
    chains: int | None,
    seed: int | None,
    force: bool,
    quiet: bool,
) -> None:
    """validate -> fit -> synthesise -> HTML report (the main job)."""
    from peerevidence.errors import ValidationFailed
    from peerevidence.run import run_project

    try:
        with _Progress(0, quiet) as progress:
            done = run_project(
                project,
                outcomes=list(outcomes) or None,
                force=force,
                draws=draws,
                chains=chains,
                seed=seed,
                progress=progress,
            )
    except ValidationFailed as exc:
        for e in exc.errors:
            _say(out, str(e))
        _say(err, f"invalid: {len(exc.errors)} error(s); fix them and run again", style="red")
        sys.exit(1)
    if not quiet:
        for w in done.warnings:
            _say(err, f"warning: {w}")
    _fit_report(done.fits, quiet)
    assert done.report is not None
    _report_lines(done.report, quiet)
    _say(out, f"report: {done.report.index}")
    if done.failed:
        sys.exit(1)


# ----------------------------------------------------------------------------- reviewer's workflow


@cli.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--intervention", default=None, help='e.g. "BCG vaccine" (default: a neutral wording).')
@click.option("--comparator", default=None, help='e.g. "no vaccine" (default: a neutral wording).')
def init_cmd(directory: Path, intervention: str | None, comparator: str | None) -> None:
    """Start a new evidence base in DIRECTORY (new or empty) that validates and runs at once."""
    import datetime as dt

    from peerevidence.records.scaffold import init_project

    files = init_project(directory, intervention, comparator, dt.date.today().isoformat())
    _say(
        err, f"wrote {len(files)} files under {directory}; next: peerevidence validate --project {directory}"
    )


@cli.command("reconcile")
@click.argument("a", type=click.Path(exists=True, path_type=Path))
@click.argument("b", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a consensus record marking each disagreement.",
)
def reconcile_cmd(a: Path, b: Path, out: Path | None) -> None:
    """Compare two extractions (two files, or two directories of records); exit 1 if they differ."""
    from peerevidence.records.reconcile import reconcile_paths

    lines, agree = reconcile_paths(a, b, out)
    for line in lines:
        _say(out_console, line)
    if not agree:
        sys.exit(1)


def _write_drafts(drafts: list[Draft], project: Path) -> None:
    from peerevidence.interchange.importers import write_drafts
    from peerevidence.records.project import ProjectPaths

    for path in write_drafts(drafts, ProjectPaths(project).extraction):
        _say(err, f"wrote {path}")


@cli.command("import-csv")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--outcome", required=True, help="The outcome id every row belongs to.")
@click.option(
    "--measure",
    type=click.Choice(["SMD", "MD", "OR", "RR", "HR"]),
    default=None,
    help="The measure of yi,vi rows (ratios on the log scale).",
)
@project_option
def import_csv_cmd(file: Path, outcome: str, measure: str | None, project: Path) -> None:
    """Draft records from a metafor-style CSV (one outcome)."""
    from peerevidence.interchange.importers import read_metafor_csv

    _write_drafts(read_metafor_csv(file, outcome, measure), project)


@cli.command("import-revman")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--outcome", "mapping", multiple=True, help='"Analysis name=outcome_id" (repeatable).')
@click.option("--giv-measure", type=click.Choice(["SMD", "MD", "OR", "RR", "HR"]), default=None)
@project_option
def import_revman_cmd(file: Path, mapping: tuple[str, ...], giv_measure: str | None, project: Path) -> None:
    """Draft records from a RevMan data-package analysis CSV, or a study_results.csv."""
    from peerevidence.interchange.importers import read_revman_analysis, read_revman_study_results

    pairs = dict(m.rsplit("=", 1) for m in mapping if "=" in m)
    if len(pairs) != len(mapping):
        raise UsageError('--outcome takes "Analysis name=outcome_id"')
    if file.name.endswith("study_results.csv"):
        info = file.with_name(file.name.replace("study_results", "study_information"))
        drafts = read_revman_study_results(file, info if info.exists() else None)
    else:
        drafts = read_revman_analysis(file, pairs, giv_measure)
    _write_drafts(drafts, project)


@cli.command("import-ris")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@project_option
def import_ris_cmd(file: Path, project: Path) -> None:
    """Add the references of a RIS file to references.bib (stable keys; DOIs already there skipped)."""
    from peerevidence.interchange.importers import import_ris
    from peerevidence.records.project import ProjectPaths

    keys = import_ris(file, ProjectPaths(project).bib)
    _say(err, f"{len(keys)} reference(s) added: {', '.join(keys) or 'none'}")


@cli.command("export")
@project_option
def export_cmd(project: Path) -> None:
    """Write RIS, CSL-JSON, RevMan, robvis and metafor-style CSVs under reports/exports/."""
    from peerevidence.interchange.exporters import export_project

    for path in export_project(project):
        _say(out_console, str(path))


def _os_error_line(exc: OSError) -> str:
    """One line for a failed file operation, naming the file."""
    import errno

    where = exc.filename or "a file"
    if exc.errno == errno.ENOSPC:
        detail = f" ({exc.strerror})" if exc.strerror and "space" not in exc.strerror.lower() else ""
        return f"no space left on the device while writing {where}{detail}; nothing was replaced"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: cannot write here ({exc.strerror}); nothing was replaced"
    return f"{where}: {exc.strerror or exc}"


def _quiet_unraisable(_: object) -> None:
    """Native finalizers (HDF5) report failures of an already-reported write as "Exception
    ignored"; the one-line error has said what happened."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click group, turning every error into one line and an exit code."""
    sys.unraisablehook = _quiet_unraisable
    try:
        cli.main(args=argv, prog_name="peerevidence", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _say(err, "aborted")
        sys.exit(1)
    except click.ClickException as exc:
        _say(err, f"error: {exc.format_message()}")
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            _say(err, f"try '{exc.ctx.command_path} --help'")
        sys.exit(exc.exit_code)
    except PeerEvidenceError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            _say(err, line)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _say(err, "interrupted")
        sys.exit(130)
    except OSError as exc:
        _say(err, _os_error_line(exc))
        # a file that failed mid-write may leave native libraries (HDF5) in a state their
        # finalizers crash on; nothing is left to clean up: every write was atomic
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    except Exception as exc:  # never show a traceback to a user
        _say(err, f"internal error: {type(exc).__name__}: {exc} (please report this)")
        sys.exit(1)
