"""Read one input file of a project safely: only a regular file, inside the project, not too big.

Every input (``references.bib``, ``evidence/*.yaml``, ``extraction/*.yaml``) is read here,
so that

* a FIFO, device, socket or directory named like an input is a located error, never a
  read that blocks forever (the file is opened non-blocking and checked with ``fstat``);
* a file (or a symlink) that resolves outside the project directory is refused, so a
  record linked to ``/etc/passwd`` is never read into a report;
* a file larger than its documented limit is refused before a byte of it is parsed
  (ruamel's pure-Python parser needs about a minute and 750 MB for a 50 MB record).

Limits: :data:`MAX_YAML_BYTES` (2 MB) for each record and evidence file,
:data:`MAX_BIB_BYTES` (20 MB) for ``references.bib``: generous, since the largest shipped
record is 12 kB, the change model 47 kB and the bibliography 68 kB.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from peerevidence.errors import RecordError

MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_BIB_BYTES = 20 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def read_input(path: Path, display: str, limit: int, root: Path | None = None) -> bytes:
    """The bytes of ``path``, or a :class:`RecordError` located at ``display``.

    ``root``: the project directory; the file must resolve inside it.
    """
    if root is not None:
        real = path.resolve()
        base = root.resolve()
        if real != base and base not in real.parents:
            raise RecordError(
                display,
                None,
                "",
                f"resolves outside the project (to {real}); inputs must be files inside the project",
            )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise RecordError(display, None, "", f"cannot read file ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordError(display, None, "", f"is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise RecordError(
                display,
                None,
                "",
                f"file too large ({_mb(info.st_size)}; the limit is {_mb(limit)})",
            )
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # grew while we read it
                raise RecordError(display, None, "", f"file too large (more than {_mb(limit)})")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise RecordError(display, None, "", f"cannot read file ({exc.strerror})") from None
    finally:
        os.close(fd)
