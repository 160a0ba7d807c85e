"""Turn pydantic validation errors into located, readable :class:`RecordError` lines.

``('results', 1, 'continuous', 'control', 'sd')`` from pydantic becomes
``extraction/x.yaml:14: results[1].control.sd: must be > 0 (got -1.2)``; an unknown key
gets a did-you-mean and the list of accepted keys.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from peerevidence.errors import RecordError, describe_choices
from peerevidence.records.schema import RESULT_FORMS
from peerevidence.records.yamlio import LineIndex, format_path


def _unwrap(tp: Any) -> list[Any]:
    """Flatten Annotated/Optional/Union into candidate types."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(tp):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [tp]


def _form_tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("form")
    if field is None:
        return None
    args = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
    return args[0] if args else None


def _step(candidates: list[Any], part: str | int) -> tuple[list[Any], bool]:
    """Follow one loc element; return (new candidates, consumed-a-data-level)."""
    nxt: list[Any] = []
    # discriminator tag: pick the union member whose `form` literal matches
    tagged = [
        c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel) and _form_tag(c) == part
    ]
    if tagged:
        return tagged, False
    for cand in candidates:
        origin = get_origin(cand)
        if isinstance(cand, type) and issubclass(cand, BaseModel) and isinstance(part, str):
            for name, field in cand.model_fields.items():
                if part in (name, field.alias):
                    nxt.extend(_unwrap(field.annotation))
        elif origin in (list, tuple) and isinstance(part, int):
            nxt.extend(_unwrap(get_args(cand)[0]))
        elif origin is dict and isinstance(part, str):
            nxt.extend(_unwrap(get_args(cand)[1]))
    return nxt, True


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[Any], list[str | int]]:
    """Candidate types at ``loc`` and the data path (discriminator tags and the names pydantic
    gives union branches, such as 'float' or 'str', removed)."""
    candidates: list[Any] = [root]
    data_path: list[str | int] = []
    for part in loc:
        nxt, consumed = _step(candidates, part)
        if consumed and not nxt:
            continue  # a union branch label, not a field of the data
        candidates = nxt
        if consumed:
            data_path.append(part)
    return candidates, data_path


def _field_names(candidates: list[Any]) -> list[str]:
    names: set[str] = set()
    for cand in candidates:
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            for name, field in cand.model_fields.items():
                names.add(field.alias or name)
    return sorted(names)


PATTERNS = {
    r"^[a-z][a-z0-9_]*$": "a lower-case identifier (a-z, 0-9, _; starting with a letter)",
    r"^\d{4}-\d{2}-\d{2}$": "a date written YYYY-MM-DD",
    r"^[A-Z][A-Z0-9]*\d+$": "an edge id such as E01 or X02",
    r"^[A-Z]{3}\d[A-Z]{2}\d{2}$": "a participant identifier such as PAR1PW01",
}


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: ErrorDetails, root: type[BaseModel]) -> tuple[list[str | int], str, str | None]:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        parent_types, data_path = _model_at(root, loc[:-1])
        data_path = [*data_path, loc[-1]] if loc else data_path
        allowed = _field_names(parent_types)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return data_path, f"unknown key{hint}", describe_choices(allowed, limit=40) if allowed else None
    _, data_path = _model_at(root, loc)
    if kind == "missing":
        return data_path, "required field is missing", None
    if kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        return data_path, f"unknown form {_got(ctx.get('tag'))}", expected
    if kind == "union_tag_not_found":
        return (
            data_path,
            "needs `form:` to say which kind of data this is",
            ", ".join(RESULT_FORMS),
        )
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return data_path, f"not an accepted value (got {_got(value)}){hint}", ", ".join(choices)
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[
            kind
        ]
        bound = next(iter(ctx.values()), "")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return data_path, f"must be {op} {bound} (got {_got(value)})", None
    if kind == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        return data_path, msg, None
    if kind in ("string_too_short",) and ctx.get("min_length") == 1:
        return data_path, "must not be empty", None
    if kind == "too_short":
        return data_path, f"needs at least {ctx.get('min_length')} item(s)", None
    if kind == "string_pattern_mismatch":
        described = PATTERNS.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        return data_path, f"must be {described} (got {_got(value)})", None
    if kind == "finite_number":
        return data_path, f"must be a finite number (got {_got(value)})", None
    msg = str(err.get("msg", "invalid value"))
    msg = msg[0].lower() + msg[1:] if msg else msg
    return data_path, f"{msg} (got {_got(value)})", None


def schema_errors(
    exc: ValidationError, root: type[BaseModel], file: str, index: LineIndex
) -> list[RecordError]:
    """One RecordError per pydantic error, each with its line and dotted field path."""
    out: list[RecordError] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        path, problem, accepted = _message(err, root)
        key = format_path(path)
        if key in seen:
            continue  # one line per field: union branches repeat the same complaint
        seen.add(key)
        out.append(RecordError(file, index.line_of(path), format_path(path), problem, accepted))
    return out


def validate_model(
    root: type[BaseModel], data: Any, file: str, index: LineIndex
) -> tuple[BaseModel | None, list[RecordError]]:
    """Validate ``data`` against ``root``; return the model or the located errors."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return None, [RecordError(file, index.line_of(()), "", f"expected a mapping of fields, got {kind}")]
    try:
        return root.model_validate(data), []
    except ValidationError as exc:
        return None, _explain_forms(schema_errors(exc, root, file, index), data, file, index)


_LOOKS = {
    # form written -> (keys that betray the other form, what it looks like, form to use)
    "binary": ({"mean", "sd"}, "continuous data (n, mean, sd)", "continuous"),
    "continuous": ({"events", "total"}, "binary data (events, total)", "binary"),
}


def _explain_forms(errors: list[RecordError], data: Any, file: str, index: LineIndex) -> list[RecordError]:
    """Replace the field-by-field complaints about arms written in another form's shape."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return errors
    for i, result in enumerate(results):
        if (
            not isinstance(result, dict)
            or not isinstance(result.get("form"), str)
            or result["form"] not in _LOOKS
        ):
            continue
        keys, looks, other = _LOOKS[result["form"]]
        arms = [result.get(a) for a in ("intervention", "control")]
        if not any(isinstance(a, dict) and keys & set(a) for a in arms):
            continue
        prefix = format_path(("results", i))
        errors = [
            e
            for e in errors
            if not (e.path.startswith(prefix + ".intervention") or e.path.startswith(prefix + ".control"))
            and not (e.path == prefix + ".event" and other == "continuous")
        ]
        errors.append(
            RecordError(
                file,
                index.line_of(("results", i, "form")),
                format_path(("results", i, "form")),
                f"form is {result['form']}, but this looks like {looks}: use `form: {other}`",
                "continuous, binary, effect, pooled, not_reported",
            )
        )
    return errors
