"""CSV output that a spreadsheet cannot execute.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab / carriage return) is read as
a formula by Excel, LibreOffice and Google Sheets ("CSV injection", OWASP). Every CSV the
package exports goes through :func:`write_csv`, which prefixes such text cells with ``'``.
Numbers are written as numbers (a negative number is not text and is left alone), so
exported numbers read back unchanged; :func:`unescape_cell` undoes the prefix on import.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from peerevidence.atomic import FORMULA_START as DANGEROUS
from peerevidence.atomic import csv_safe, write_text


def safe_csv_cell(value: Any) -> str:
    """One cell as text: numbers as numbers, None/NaN empty, risky text prefixed with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    try:  # numpy scalars
        import numpy as np

        if isinstance(value, np.integer):
            return str(int(value))
        if isinstance(value, np.floating):
            return "" if np.isnan(value) else repr(float(value))
        if isinstance(value, np.bool_):
            return "TRUE" if value else "FALSE"
    except ImportError:  # pragma: no cover
        pass
    return str(csv_safe(str(value)))


def unescape_cell(text: str) -> str:
    """Undo :func:`safe_csv_cell`'s prefix (for reading our own exports back)."""
    if len(text) > 1 and text[0] == "'" and text[1] in DANGEROUS:
        return text[1:]
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([safe_csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_csv_cell(v) for v in row])
    return buf.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV atomically, every cell through :func:`safe_csv_cell`."""
    write_text(path, csv_text(header, rows))
    return path
