"""Run the CLI in a child process with a timeout: a hang, a signal or a traceback fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CODE = "import sys; from peerevidence.cli import main; main(sys.argv[1:])"


def run(*args: str | Path, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", CODE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-500:]}"
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert "internal error" not in proc.stderr, proc.stderr[-500:]
    return proc
