"""Command-line interface. The only module that prints.

Exit codes: 0 success; 1 invalid input, failed fit or any reported error; 2 usage error.
No input, however broken, produces a traceback: library errors are printed as one line
each; anything unexpected is printed as one "internal error" line.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import click
from rich.console import Console

from .errors import PeerEvidenceError, UsageError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _say(console: Console, text: str, style: str | None = None) -> None:
    console.print(text, markup=False, style=style)


project_option = click.option(
    "--project", "project", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
    show_default=True, help="Project directory (references.bib, evidence/, extraction/).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="peerevidence")
def cli() -> None:
    """peerevidence: a checkable evidence base for the peer-worker change model."""


@cli.command()
@project_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, no summary.")
def validate(project: Path, strict: bool, quiet: bool) -> None:
    """Check every record and evidence file; print one line per problem."""
    from .validate import validate_project

    base, report = validate_project(project)
    for e in report.errors:
        _say(out, str(e))
    for w in report.warnings:
        _say(out, f"warning: {w}")
    failed = bool(report.errors) or (strict and bool(report.warnings))
    if not quiet:
        summary = (
            f"{len(base.records)} records, {len(report.errors)} error(s), "
            f"{len(report.warnings)} warning(s)"
        )
        _say(err, ("invalid: " if failed else "valid: ") + summary,
             style="red" if failed else "green")
    if failed:
        sys.exit(1)


@cli.command("new-record")
@click.argument("key")
@project_option
def new_record(key: str, project: Path) -> None:
    """Write a commented template extraction/KEY.yaml for a study in references.bib."""
    from .bib import load_bibliography
    from .project import ProjectPaths

    paths = ProjectPaths(project)
    bib, problems = load_bibliography(paths.bib)
    if key not in bib:
        import difflib

        close = difflib.get_close_matches(key, bib.keys(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"references.bib: '{key}' is not a BibTeX key{hint} (add the entry first)")
    target = paths.extraction / f"{key}.yaml"
    if target.exists():
        raise UsageError(f"{paths.rel(target)}: a record already exists; edit it instead")
    template = resources.files("peerevidence").joinpath("templates/record.yaml").read_text("utf-8")
    text = template.format(key=key, citation=bib[key].short())
    paths.extraction.mkdir(parents=True, exist_ok=True)
    from .atomic import write_text

    write_text(target, text)
    _say(err, f"wrote {paths.rel(target)}: fill in the TODOs, then run `peerevidence validate`")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click group, turning every error into one line and an exit code."""
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
    except Exception as exc:  # never show a traceback to a user
        _say(err, f"internal error: {type(exc).__name__}: {exc} (please report this)")
        sys.exit(1)
