"""The `validate` and `new-record` commands: exit codes, messages, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from projectkit import (
    INVALID,
    PROBLEM_LINE,
    SPARE_FILE,
    SPARE_RECORD,
    CliResult,
    edit,
    make_project,
    read,
    run_cli,
    validate,
    write,
)

NEGATIVE_SD = f"{SPARE_FILE}:22: results[0].control.sd: must be > 0 (got -1.2)"
UNCITED_BLOCK = "uncited:\n  - key: mead2006\n    reason: Conceptual paper; no quantitative result.\n"


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path)


@pytest.fixture
def broken(project):
    shutil.copyfile(INVALID / "negative_sd.yaml", project / SPARE_FILE)
    return project


@pytest.fixture
def warned(project):
    """A project whose only problem is a warning (an edge cites a key nobody explains)."""
    edit(project, "evidence/change_model.yaml", UNCITED_BLOCK, "uncited: []\n")
    return project


def no_traceback(result: CliResult) -> CliResult:
    assert "Traceback" not in result.text
    assert "internal error" not in result.text
    return result


# --------------------------------------------------------------------------- validate, in-process


def test_valid_project_exits_0(project):
    result = no_traceback(validate(project))
    assert (result.code, result.out) == (0, "")
    assert result.err == "valid: 3 records, 0 error(s), 0 warning(s)\n"


def test_invalid_project_exits_1_with_one_line_per_problem(broken):
    result = no_traceback(validate(broken))
    assert result.code == 1
    assert result.out == NEGATIVE_SD + "\n"
    assert result.err == "invalid: 3 records, 1 error(s), 0 warning(s)\n"


@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_prints_problems_only(broken, flag):
    result = no_traceback(validate(broken, flag))
    assert (result.code, result.out, result.err) == (1, NEGATIVE_SD + "\n", "")


def test_warnings_do_not_fail_without_strict(warned):
    result = no_traceback(validate(warned))
    assert result.code == 0
    assert len(result.lines) == 1 and result.lines[0].startswith("warning: evidence/change_model.yaml:")
    assert result.err == "valid: 3 records, 0 error(s), 1 warning(s)\n"


def test_strict_turns_warnings_into_failure(warned):
    result = no_traceback(validate(warned, "--strict"))
    assert result.code == 1
    assert result.lines == validate(warned).lines
    assert result.err == "invalid: 3 records, 0 error(s), 1 warning(s)\n"


def test_errors_come_before_warnings(warned):
    shutil.copyfile(INVALID / "negative_sd.yaml", warned / SPARE_FILE)
    result = no_traceback(validate(warned))
    assert result.code == 1
    assert result.lines[0] == NEGATIVE_SD
    assert result.lines[1].startswith("warning: ")
    assert len(result.lines) == 2


def test_project_defaults_to_the_current_directory(broken, monkeypatch):
    monkeypatch.chdir(broken)
    result = no_traceback(run_cli("validate"))
    assert (result.code, result.lines) == (1, [NEGATIVE_SD])


def test_missing_project_directory(tmp_path):
    missing = tmp_path / "no-such-project"
    result = no_traceback(validate(missing))
    assert result.code == 2  # a usage error
    assert result.out == ""
    assert result.err == f"{missing}: project directory not found\n"


def test_project_that_is_a_file(tmp_path):
    path = write(tmp_path, "file.txt", "not a project")
    result = no_traceback(validate(path))
    assert result.code == 2
    assert result.err.startswith("error: Invalid value for '--project': Directory ")
    assert "is a file" in result.err


def test_problem_text_is_printed_verbatim(project):
    write(project, SPARE_FILE, SPARE_RECORD.replace("design: rct", 'design: ":smile:"'))
    result = no_traceback(validate(project))
    assert result.lines[0].startswith(f"{SPARE_FILE}:2: design: not an accepted value (got ':smile:')")


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "error: No such command 'frobnicate'."),
        # click 8.1 says "No such option: --zzz", later versions "No such option '--zzz'."
        (["validate", "--zzz"], "error: No such option"),
        (["validate", "extra-argument"], "error: Got unexpected extra argument (extra-argument)"),
        (["new-record"], "error: Missing argument 'KEY'."),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = no_traceback(run_cli(*args))
    assert result.code == 2
    assert result.out == ""
    first, hint = result.err.splitlines()
    assert first.startswith(message)
    assert "--zzz" in first if "--zzz" in args else first == message
    assert hint.startswith("try 'peerevidence") and hint.endswith(" --help'")


def test_help_exits_0():
    result = no_traceback(run_cli("validate", "--help"))
    assert result.code == 0
    assert "--strict" in result.out and "Treat warnings as errors." in result.out


# --------------------------------------------------------------------------- new-record


def test_new_record_writes_a_template_that_fails_with_todo_messages(project):
    result = no_traceback(run_cli("new-record", "spare2020", "--project", project))
    assert result.code == 0
    assert result.err == (f"wrote {SPARE_FILE}: fill in the TODOs, then run `peerevidence validate`\n")
    assert read(project, SPARE_FILE).startswith("# Extraction record for spare2020: Spare 2020\n")

    checked = no_traceback(validate(project))
    assert checked.code == 1
    assert all(line.startswith(f"{SPARE_FILE}:") for line in checked.lines), checked.out
    problems = [line.split(": ", 1)[1] for line in checked.lines]
    # one pass: every placeholder and every schema error at once, one line per field
    assert (
        "design: placeholder 'TODO' left from the template; fill it in (accepted: rct, pilot_rct, "
        "cluster_rct, non_randomised_comparison, before_after, cohort, case_control, cross_sectional, "
        "qualitative, systematic_review)" in problems
    )
    assert "results[0].outcome: placeholder 'TODO' left from the template; fill it in" in problems
    assert "country: placeholder 'TODO' left from the template; fill it in" in problems
    assert "sample_size.randomised: must be > 0 (got 0)" in problems
    assert "extraction.date: placeholder 'YYYY-MM-DD' left from the template; write the date" in problems
    assert len(problems) == len(set(problems))


def test_new_record_creates_the_extraction_directory(project):
    shutil.rmtree(project / "extraction")
    result = no_traceback(run_cli("new-record", "trial2020", "--project", project))
    assert result.code == 0
    assert (project / "extraction" / "trial2020.yaml").is_file()


def test_new_record_for_a_key_not_in_the_bib(project):
    result = no_traceback(run_cli("new-record", "sprae2020", "--project", project))
    assert result.code == 2
    assert result.err == (
        "references.bib: 'sprae2020' is not a BibTeX key; did you mean 'spare2020'? (add the entry first)\n"
    )
    assert not (project / "extraction" / "sprae2020.yaml").exists()


def test_new_record_when_the_record_exists(project):
    before = read(project, "extraction/trial2020.yaml")
    result = no_traceback(run_cli("new-record", "trial2020", "--project", project))
    assert result.code == 2
    assert result.err == "extraction/trial2020.yaml: a record already exists; edit it instead\n"
    assert read(project, "extraction/trial2020.yaml") == before


# --------------------------------------------------------------------------- as a real process


def _command() -> list[str]:
    exe = shutil.which("peerevidence") or shutil.which("peerevidence", path=str(Path(sys.executable).parent))
    if exe:
        return [exe]
    return [sys.executable, "-c", "from peerevidence.cli import main; main()"]


def run_process(*args: str | Path, cwd: Path | None = None) -> CliResult:
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run(
        [*_command(), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def test_subprocess_valid_and_invalid(project):
    ok = no_traceback(run_process("validate", "--project", project))
    assert (ok.code, ok.out, ok.err) == (0, "", "valid: 3 records, 0 error(s), 0 warning(s)\n")
    shutil.copyfile(INVALID / "negative_sd.yaml", project / SPARE_FILE)
    bad = no_traceback(run_process("validate", cwd=project))
    assert (bad.code, bad.out, bad.err) == (
        1,
        NEGATIVE_SD + "\n",
        "invalid: 3 records, 1 error(s), 0 warning(s)\n",
    )


def test_subprocess_usage_error(tmp_path):
    usage = no_traceback(run_process("frobnicate"))
    assert (usage.code, usage.out) == (2, "")
    assert usage.err.startswith("error: No such command 'frobnicate'.")


def test_subprocess_missing_project(tmp_path):
    missing = no_traceback(run_process("validate", "--project", tmp_path / "nope"))
    assert missing.code in (1, 2)
    assert missing.err == f"{tmp_path / 'nope'}: project directory not found\n"


def test_subprocess_malformed_bib_prints_only_located_lines(project):
    write(
        project, "references.bib", read(project, "references.bib") + "\n@article{broken2000,\n  title = {x\n"
    )
    result = no_traceback(run_process("validate", "--project", project))
    assert result.code == 1
    assert all(PROBLEM_LINE.match(line) for line in result.lines), result.out
    assert result.err == "invalid: 3 records, 1 error(s), 0 warning(s)\n"
