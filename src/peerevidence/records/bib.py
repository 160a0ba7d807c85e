"""``references.bib``: parse with bibtexparser v2, locate problems, format citations.

A malformed entry is reported with its line (``references.bib:41: malformed BibTeX: ...``);
the parser's own exceptions never escape.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import bibtexparser
from bibtexparser.model import DuplicateBlockKeyBlock, Entry, ParsingFailedBlock

from peerevidence.errors import RecordError

if TYPE_CHECKING:
    from pylatexenc.latex2text import LatexNodes2Text

_FALLBACK = [
    (re.compile(r"\\[\"']\{?(\w)\}?"), r"\1"),
    (re.compile(r"[{}]"), ""),
    (re.compile(r"\\&"), "&"),
]
_BARE_PERCENT = re.compile(r"(?<!\\)%")  # in a .bib field '%' is text, not a LaTeX comment
_VERBATIM = {"doi", "url", "eprint", "file"}  # identifiers: never converted


@functools.cache
def _converter() -> LatexNodes2Text:
    from pylatexenc.latex2text import LatexNodes2Text

    return LatexNodes2Text(math_mode="text", strict_latex_spaces=True)


def _latex_to_text(text: str) -> str:
    """LaTeX markup to Unicode with pylatexenc: ``M{\\"u}ller`` -> Müller, ``{\\O}`` -> Ø,
    ``\\textit{Peer}`` -> Peer, ``\\&`` -> &."""
    try:
        # pylatexenc ships no type information
        return cast(str, _converter().latex_to_text(_BARE_PERCENT.sub(r"\\%", text)))
    except Exception:  # pylatexenc is tolerant; should it still fail, strip the markup
        for pattern, repl in _FALLBACK:
            text = pattern.sub(repl, text)
        return text


def _clean(text: str, verbatim: bool = False) -> str:
    if verbatim:  # an identifier: only the grouping braces go
        return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()
    text = _latex_to_text(text).replace("--", "–")
    return re.sub(r"\s+", " ", text).strip()


# A BibTeX key names its record file, extraction/<key>.yaml: it must be a plain file name.
SAFE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,199}$")
SAFE_KEY_FORMS = "up to 200 letters, digits and _ . : + -, not starting with '.' or '-' and without '..'"


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a record file name, or None if it can."""
    if SAFE_KEY.match(key) and ".." not in key:
        return None
    return f"BibTeX key {key!r} cannot be a record file name"


@dataclass(frozen=True)
class Reference:
    key: str
    entry_type: str
    line: int
    fields: dict[str, str] = field(hash=False, compare=False)

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return _clean(value, verbatim=name in _VERBATIM) if value else None

    @property
    def doi(self) -> str | None:
        doi = self.get("doi")
        if not doi:
            return None
        return re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", doi, flags=re.I)

    @property
    def year(self) -> str:
        return self.get("year") or "n.d."

    def authors(self) -> list[str]:
        raw = self.get("author") or self.get("editor") or ""
        return [a.strip() for a in re.split(r"\s+and\s+", raw) if a.strip()]

    def short(self) -> str:
        """``Gillard et al. 2015`` / ``Lawn & Smith 2008`` / ``Corrigan 2006``."""
        names = [a.split(",")[0].strip() for a in self.authors()]
        if not names:
            lead = self.get("organization") or self.get("institution") or self.key
            return f"{lead} {self.year}"
        if len(names) == 1:
            return f"{names[0]} {self.year}"
        if len(names) == 2:
            return f"{names[0]} & {names[1]} {self.year}"
        return f"{names[0]} et al. {self.year}"

    def full(self) -> str:
        """A Vancouver-like one-line citation (no DOI; templates add the link)."""
        names = self.authors()
        shown = names[:6]
        people = ", ".join(shown) + (", et al." if len(names) > 6 else "")
        title = self.get("title") or ""
        venue = (
            self.get("journal")
            or self.get("booktitle")
            or self.get("publisher")
            or self.get("institution")
            or self.get("howpublished")
            or ""
        )
        details = ""
        if self.get("volume"):
            details = f" {self.get('volume')}"
            if self.get("number"):
                details += f"({self.get('number')})"
        if self.get("pages"):
            details += f":{self.get('pages')}" if details else f" {self.get('pages')}"
        parts = [p for p in (people, f"({self.year})", title) if p]
        text = " ".join(parts[:2]) + (". " + title if title else "")
        if venue:
            text += f". {venue}{details}"
        return text.rstrip(".") + "."


@dataclass
class Bibliography:
    references: dict[str, Reference]
    path: str = "references.bib"

    def __contains__(self, key: object) -> bool:
        return key in self.references

    def __getitem__(self, key: str) -> Reference:
        return self.references[key]

    def keys(self) -> list[str]:
        return sorted(self.references)


def _problem(block: ParsingFailedBlock) -> str:
    error = getattr(block, "error", None)
    text = str(getattr(error, "abort_reason", "") or error or "") or "could not parse this block"
    text = " ".join(text.split())
    text = re.sub(r"^Parsing of `@?\w*` block \(line \d+\) aborted on line \d+ due to ", "", text)
    return text[:200]


def parse_bibtex(text: str, display_path: str = "references.bib") -> tuple[Bibliography, list[RecordError]]:
    """Parse BibTeX text; return the good entries and one located error per bad block."""
    errors: list[RecordError] = []
    parser_log = logging.getLogger("bibtexparser")
    level = parser_log.level
    parser_log.setLevel(logging.CRITICAL)  # its warnings would duplicate our located errors
    try:
        # parse_string is bibtexparser v2's documented entry point; its __init__ lacks __all__
        library = bibtexparser.parse_string(text)  # type: ignore[attr-defined]
    except Exception as exc:  # the parser's failure is the input's fault: report, never raise
        msg = " ".join(str(exc).split())[:200] or type(exc).__name__
        return Bibliography({}, display_path), [
            RecordError(display_path, None, "", f"malformed BibTeX: {msg}")
        ]
    finally:
        parser_log.setLevel(level)
    references: dict[str, Reference] = {}
    for block in library.blocks:
        line = (getattr(block, "start_line", None) or 0) + 1
        if isinstance(block, DuplicateBlockKeyBlock):
            errors.append(RecordError(display_path, line, block.key, "duplicate BibTeX key"))
        elif isinstance(block, ParsingFailedBlock):
            errors.append(RecordError(display_path, line, "", f"malformed BibTeX: {_problem(block)}"))
        elif isinstance(block, Entry):
            problem = key_problem(block.key)
            if problem:
                errors.append(RecordError(display_path, line, "", problem, SAFE_KEY_FORMS))
                continue
            fields = {f.key.lower(): str(f.value) for f in block.fields}
            references[block.key] = Reference(block.key, block.entry_type.lower(), line, fields)
            if not fields.get("title"):
                errors.append(RecordError(display_path, line, block.key, "entry has no title", warning=True))
    return Bibliography(references, display_path), errors


def load_bibliography(
    path: Path, display_path: str = "references.bib", root: Path | None = None
) -> tuple[Bibliography, list[RecordError]]:
    """Read and parse ``references.bib`` (a regular file of at most ``MAX_BIB_BYTES``,
    inside ``root`` when given)."""
    from peerevidence.records.files import MAX_BIB_BYTES, read_input

    if not path.exists() and not path.is_symlink():
        return Bibliography({}, display_path), [
            RecordError(display_path, None, "", "file not found (every project needs references.bib)")
        ]
    try:
        text = read_input(path, display_path, MAX_BIB_BYTES, root).decode("utf-8")
    except RecordError as err:
        return Bibliography({}, display_path), [err]
    except UnicodeDecodeError as exc:
        return Bibliography({}, display_path), [
            RecordError(display_path, None, "", f"not UTF-8 text ({exc.reason})")
        ]
    return parse_bibtex(text, display_path)
