"""Read YAML while remembering where every value came from.

:func:`load_yaml` returns plain Python data (dict / list / str / int / float / bool / None)
together with a :class:`LineIndex` mapping each field path to its 1-based line, so a
schema error can be reported as ``file:line: field.path: problem``. Malformed YAML,
duplicate keys and non-UTF-8 bytes become a :class:`~peerevidence.errors.RecordError`;
nothing here ever lets a parser exception escape.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from peerevidence.errors import RecordError

PathKey = tuple[str | int, ...]
MAX_NODES = 200_000  # guards against alias bombs ("billion laughs")


@dataclass
class LineIndex:
    """Field path -> 1-based line number in the YAML file."""

    lines: dict[PathKey, int] = field(default_factory=dict)
    nodes: int = 0

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)


def format_path(path: Sequence[str | int]) -> str:
    """``('results', 1, 'control', 'sd')`` -> ``'results[1].control.sd'``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _TooLarge(Exception):
    pass


def _plain(node: Any, path: PathKey, index: LineIndex) -> Any:
    index.nodes += 1
    if index.nodes > MAX_NODES:
        raise _TooLarge
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key in node:
            try:
                line = node.lc.key(key)[0] + 1
            except (KeyError, TypeError, AttributeError):
                line = None
            child = (*path, str(key))
            if line is not None:
                index.lines[child] = line
            result[str(key) if not isinstance(key, str) else key] = _plain(node[key], child, index)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for i, item in enumerate(node):
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                index.lines[(*path, i)] = node.lc.item(i)[0] + 1
            items.append(_plain(item, (*path, i), index))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dt.datetime | dt.date):
        return node.isoformat()
    if isinstance(node, dict):  # pragma: no cover - ruamel returns CommentedMap
        return {str(k): _plain(v, (*path, str(k)), index) for k, v in node.items()}
    if isinstance(node, list | tuple):  # pragma: no cover
        return [_plain(v, (*path, i), index) for i, v in enumerate(node)]
    return str(node)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def explain_yaml_error(problem: str, text: str, line: int | None) -> str | None:
    """The parser's complaint in a reviewer's words (None when there is nothing to add)."""
    lines = text.splitlines()
    here = lines[line - 1] if line is not None and 0 < line <= len(lines) else ""
    above = next(
        (x for x in reversed(lines[: (line or 1) - 1]) if x.strip() and not x.strip().startswith("#")), ""
    )
    if "'\\t'" in problem or ("\t" in here and "cannot start any token" in problem):
        return "a tab character: YAML indents with spaces only; replace the tab with spaces"
    if "mapping values are not allowed" in problem:
        if _indent(here) > _indent(above) and re.match(r"^\s*[-\w. ]+:\s*\S", above):
            return (
                "this line is indented more than the key above it, which already has a value; "
                "line it up with that key, or give that key no value on its own line"
            )
        return (
            "a value contains ': ' (a colon and a space), which YAML reads as a new key; "
            "put the value in quotes"
        )
    if "expected <block end>" in problem or "did not find expected '-'" in problem:
        return (
            "this line's indentation does not match the lines around it; keys of one mapping, "
            "and the '-' items of one list, must start in the same column"
        )
    if "could not find expected ':'" in problem:
        return (
            "a line is neither 'key: value' nor a list item; a text running over several lines "
            "needs quotes, and every key needs its colon"
        )
    if "duplicate key" in problem:
        return "the same key appears twice in one mapping; keep one"
    if ("end of stream" in problem and "quoted" in problem) or "while scanning a quoted scalar" in problem:
        return "a quotation mark is opened but never closed"
    if "undefined alias" in problem:
        return "an alias (*name) refers to an anchor (&name) that is not defined above it"
    return None


def parse_yaml(text: str, display_path: str) -> tuple[Any, LineIndex]:
    """Parse YAML text; raise :class:`RecordError` (with the line) if it is malformed."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except Exception as exc:  # any parser failure is the user's input, not our bug
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0] if str(exc) else ""
        problem = " ".join(str(problem).split())[:200] or type(exc).__name__
        words = explain_yaml_error(problem, text, line)
        message = f"malformed YAML: {words} (parser: {problem})" if words else f"malformed YAML: {problem}"
        raise RecordError(display_path, line, "", message) from None
    index = LineIndex()
    try:
        data = _plain(raw, (), index)
    except RecursionError:
        raise RecordError(display_path, None, "", "malformed YAML: nesting too deep") from None
    except _TooLarge:
        raise RecordError(
            display_path, None, "", f"too large: more than {MAX_NODES} values once aliases are expanded"
        ) from None
    return data, index


def load_yaml(
    path: Path, display_path: str, cache_dir: Path | None = None, root: Path | None = None
) -> tuple[Any, LineIndex]:
    """Read and parse a YAML file; unreadable or non-UTF-8 files become a RecordError.

    The file is read by :func:`peerevidence.records.files.read_input`: it must be a regular
    file of at most ``MAX_YAML_BYTES`` and, with ``root``, lie inside that directory.

    With ``cache_dir``, the parsed data and line index are kept as JSON keyed by the file's
    SHA-256, so an unchanged file is not parsed again (ruamel's round-trip parser, which
    keeps line numbers, is pure Python and slow). Errors are never cached.
    """
    from peerevidence.records.files import MAX_YAML_BYTES, read_input

    raw = read_input(path, display_path, MAX_YAML_BYTES, root)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(display_path, None, "", f"not UTF-8 text ({exc.reason})") from None
    if cache_dir is None:
        return parse_yaml(text, display_path)
    entry = cache_dir / f"{hashlib.sha256(raw).hexdigest()}.json"
    try:
        cached = json.loads(entry.read_text("utf-8"))
        index = LineIndex({tuple(k): v for k, v in cached["lines"]})
        return cached["data"], index
    except (OSError, ValueError, KeyError, TypeError):
        pass
    data, index = parse_yaml(text, display_path)
    with contextlib.suppress(OSError, TypeError, ValueError):
        from peerevidence.atomic import write_text

        payload = {"data": data, "lines": [[list(k), v] for k, v in index.lines.items()]}
        write_text(entry, json.dumps(payload))
    return data, index
