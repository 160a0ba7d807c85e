"""Atomic file writes: write a temporary file beside the target, fsync, rename.

A reader (or a run killed with SIGKILL mid-write) sees either the old file or the new
one, never a torn one. ``os.replace`` is atomic on POSIX within one file system, which is
why the temporary file lives in the target's own directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path; on success rename it over ``target``, else delete it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_with(target: Path, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Let ``writer`` fill a temporary path (e.g. ``to_netcdf``), then move it into place."""
    with atomic_path(target, suffix) as tmp:
        writer(tmp)
