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
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import pandas as pd


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


def write_bytes(target: Path, data: bytes, root: Path | None = None) -> None:
    """Write ``data`` atomically; with ``root``, refuse a target outside it (see :func:`inside`)."""
    if root is not None:
        target = inside(root, target)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str, root: Path | None = None) -> None:
    write_bytes(target, text.encode("utf-8"), root)


def write_with(
    target: Path, writer: Callable[[Path], None], suffix: str = "", root: Path | None = None
) -> None:
    """Let ``writer`` fill a temporary path (e.g. ``to_netcdf``), then move it into place."""
    if root is not None:
        target = inside(root, target)
    with atomic_path(target, suffix) as tmp:
        writer(tmp)


class OutsideProject(ValueError):
    """A path that resolves outside the directory it must stay in."""


def inside(root: Path, path: Path) -> Path:
    """``path`` resolved (symlinks followed, ``..`` removed), if it lies under ``root``.

    Every writer that builds a path from user input (a BibTeX key, a command-line
    argument) passes it through here first; a path that escapes ``root`` raises
    :class:`OutsideProject` instead of being written.
    """
    base = Path(root).resolve()
    full = (base / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if full != base and base not in full.parents:
        raise OutsideProject(f"{path}: refusing to write outside the project directory {base}")
    return full


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP "CSV injection"


def csv_safe(value: object) -> object:
    """Text that a spreadsheet would run as a formula gets a leading ``'``; other values as-is.

    Only strings are escaped: a number such as -0.3 stays a number.
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(frame: pd.DataFrame, **to_csv: Any) -> str:
    """CSV text of a pandas DataFrame with formula-like text escaped (see :func:`csv_safe`).

    Keyword arguments go to ``DataFrame.to_csv`` (``index=False`` unless given).
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    safe = frame.copy()
    for col in safe.columns:
        if not (is_numeric_dtype(safe[col]) or is_bool_dtype(safe[col])):  # text or mixed columns
            safe[col] = safe[col].map(csv_safe)
    safe.columns = [csv_safe(c) for c in safe.columns]
    to_csv.setdefault("index", False)
    return cast(str, safe.to_csv(**to_csv))  # pandas ships no type information


def write_csv(target: Path, frame: pd.DataFrame, root: Path | None = None, **to_csv: Any) -> None:
    """Write a pandas DataFrame as CSV atomically, formula-like text escaped."""
    write_text(target, csv_text(frame, **to_csv), root)
