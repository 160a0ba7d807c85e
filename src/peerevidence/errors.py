"""Errors raised by peerevidence.

Every problem a user can cause is reported in one shape::

    path[:line]: field.path: problem (accepted: ...)

with ``path`` relative to the project root. The exception tree::

    PeerEvidenceError              base; the CLI catches it, prints it, exits 1
    ├── RecordError                one located problem in one input file
    ├── ValidationFailed           many RecordErrors, collected, never stopping at the first
    ├── UsageError                 bad command-line input (exit 2)
    ├── DataError                  data that cannot be analysed (e.g. vi <= 0 in `pool`)
    ├── FitFailed                  a fit whose MCMC summaries disagree with the exact posterior
    └── LockBusy                   another run holds the project lock
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class PeerEvidenceError(Exception):
    """Base class of every error the CLI reports without a traceback."""

    exit_code = 1


@dataclass(eq=True)
class RecordError(PeerEvidenceError):
    """One located problem: ``file[:line]: field.path: problem (accepted: ...)``.

    Not frozen: an exception must be able to carry its ``__traceback__``.
    """

    file: str
    line: int | None = None
    path: str = ""
    problem: str = ""
    accepted: str | None = field(default=None, compare=False)
    warning: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file, -1 if self.line is None else self.line, self.path, self.problem)

    def __hash__(self) -> int:
        return hash(self.sort_key())

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.path:
            parts.append(self.path)
        text = ": ".join(parts) + ": " + self.problem
        if self.accepted:
            text += f" (accepted: {self.accepted})"
        return _one_line(text)


# every character str.splitlines() breaks on, written as its escape
_LINE_BREAKS = {c: repr(chr(c))[1:-1] for c in map(ord, "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")}


def _one_line(text: str) -> str:
    """Escape line breaks so one problem is always one output line."""
    return text.translate(_LINE_BREAKS)


def sort_errors(errors: Iterable[RecordError]) -> list[RecordError]:
    return sorted(errors, key=RecordError.sort_key)


class ValidationFailed(PeerEvidenceError):
    """Several problems found at once; ``errors`` holds every one of them, sorted."""

    def __init__(self, errors: Iterable[RecordError]):
        self.errors: list[RecordError] = sort_errors(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class UsageError(PeerEvidenceError):
    exit_code = 2


class DataError(PeerEvidenceError):
    pass


class FitFailed(PeerEvidenceError):
    pass


class LockBusy(PeerEvidenceError):
    pass


def describe_choices(choices: Sequence[str], limit: int = 12) -> str:
    """``'a, b, c'`` or ``'a, b, ... (N more)'`` for an accepted-values hint."""
    items = sorted(choices)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"
