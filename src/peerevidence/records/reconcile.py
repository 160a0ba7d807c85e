"""Dual extraction: compare two independent extractions of one study, field by field.

``compare_files(a, b)`` lists every disagreement, located in both files; results are matched
by (outcome, timepoint, instrument) when that identifies them in both files, else by
position. Numbers are compared exactly (1.8 and 1.80 are equal; 1.8 and 1.81 are not). The
``extraction:`` block (who extracted, when) is expected to differ and is not compared.

``consensus(a, b)`` builds the reconciled record: values both agree on are kept; each
disagreement becomes a marker string ``"DISAGREE: 1.8 (a) vs 1.9 (b)"`` that validation
rejects until the reconciler resolves it, and both values are kept under
``extraction.provenance``.

``kappa(pairs)`` is Cohen's kappa for one categorical field across a batch of studies:
``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the share of studies where both extractors agree
and ``p_e = sum_k p_a(k) p_b(k)`` the agreement expected from their marginal frequencies.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerevidence.errors import RecordError, UsageError
from peerevidence.records.yamlio import LineIndex, format_path, load_yaml

PathKey = tuple[str | int, ...]
MISSING = object()
NOT_COMPARED = frozenset({"extraction"})
# categorical fields (paths with list indices removed) for Cohen's kappa
CATEGORICAL = (
    "design",
    "risk_of_bias.overall",
    "risk_of_bias.domains.*",
    "results.form",
    "results.risk_of_bias",
    "results.direction",
    "results.measure",
)


@dataclass(frozen=True)
class Difference:
    path: PathKey  # as in file a (or b, for what only b has)
    a: Any
    b: Any
    line_a: int | None
    line_b: int | None
    path_b: PathKey | None = None

    def where(self, name_a: str, name_b: str) -> str:
        la = f"{name_a}:{self.line_a}" if self.line_a else name_a
        lb = f"{name_b}:{self.line_b}" if self.line_b else name_b
        return f"{la} / {lb}"

    def describe(self) -> str:
        return f"{_show(self.a)} vs {_show(self.b)}"

    def line(self, name_a: str, name_b: str) -> str:
        path = format_path(self.path)
        if self.path_b is not None and self.path_b != self.path:
            path += f" (b: {format_path(self.path_b)})"
        return f"{self.where(name_a, name_b)}: {path}: {self.describe()}"


def _show(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if isinstance(value, dict):
        keys = ("outcome", "timepoint", "instrument")
        if any(k in value for k in keys):
            return "result (" + ", ".join(str(value[k]) for k in keys if value.get(k)) + ")"
        return "{...}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def _result_key(item: Any) -> tuple[Any, Any, Any] | None:
    if not isinstance(item, dict):
        return None
    return (item.get("outcome"), item.get("timepoint"), item.get("instrument"))


def match_results(a: Sequence[Any], b: Sequence[Any]) -> list[tuple[int | None, int | None]]:
    """Pairs of indices (a, b): by (outcome, timepoint, instrument) where unique in both."""
    keys_a = Counter(_result_key(x) for x in a)
    keys_b = Counter(_result_key(x) for x in b)
    unique = {k for k in keys_a if k is not None and keys_a[k] == 1 and keys_b.get(k) == 1}
    where_b = {_result_key(x): j for j, x in enumerate(b)}
    pairs: list[tuple[int | None, int | None]] = []
    used_b: set[int] = set()
    rest_a = []
    for i, x in enumerate(a):
        k = _result_key(x)
        if k in unique:
            pairs.append((i, where_b[k]))
            used_b.add(where_b[k])
        else:
            rest_a.append(i)
    rest_b = [j for j in range(len(b)) if j not in used_b]
    # what the key cannot identify is matched by position among the leftovers
    for n in range(max(len(rest_a), len(rest_b))):
        pairs.append((rest_a[n] if n < len(rest_a) else None, rest_b[n] if n < len(rest_b) else None))
    return sorted(pairs, key=lambda p: (p[0] is None, p[0] if p[0] is not None else p[1]))


@dataclass
class Comparison:
    file_a: str
    file_b: str
    differences: list[Difference] = field(default_factory=list)
    categorical: dict[str, list[tuple[Any, Any]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def agree(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        return [d.line(self.file_a, self.file_b) for d in self.differences]


def _category_name(path: PathKey) -> str | None:
    plain = ".".join(str(p) for p in path if not isinstance(p, int))
    for name in CATEGORICAL:
        if name.endswith(".*"):
            if plain.startswith(name[:-1]) and plain.count(".") == name.count("."):
                return plain
        elif plain == name:
            return name
    return None


class _Walker:
    def __init__(self, lines_a: LineIndex, lines_b: LineIndex, out: Comparison):
        self.la, self.lb, self.out = lines_a, lines_b, out

    def walk(self, a: Any, b: Any, pa: PathKey, pb: PathKey) -> None:
        if a is MISSING or b is MISSING:
            self.diff(a, b, pa if a is not MISSING else pb, pa, pb)
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if not pa and key in NOT_COMPARED:
                    continue
                self.walk(a.get(key, MISSING), b.get(key, MISSING), (*pa, key), (*pb, key))
            return
        if isinstance(a, list) and isinstance(b, list):
            if pa == ("results",):
                pairs = match_results(a, b)
            else:
                n = max(len(a), len(b))
                pairs = [(i if i < len(a) else None, i if i < len(b) else None) for i in range(n)]
            for i, j in pairs:
                at_a = i if i is not None else j
                at_b = j if j is not None else i
                assert at_a is not None and at_b is not None  # match_results pairs at least one index
                self.walk(
                    a[i] if i is not None else MISSING,
                    b[j] if j is not None else MISSING,
                    (*pa, at_a),
                    (*pb, at_b),
                )
            return
        name = _category_name(pa)
        if name is not None and not isinstance(a, dict | list) and not isinstance(b, dict | list):
            self.out.categorical[name].append((a, b))
        if not _equal(a, b):
            self.diff(a, b, pa, pa, pb)

    def diff(self, a: Any, b: Any, path: PathKey, pa: PathKey, pb: PathKey) -> None:
        name = _category_name(path)
        scalar = not isinstance(a, dict | list) and not isinstance(b, dict | list)
        if name is not None and scalar and (a is MISSING or b is MISSING):
            self.out.categorical[name].append((None if a is MISSING else a, None if b is MISSING else b))
        self.out.differences.append(
            Difference(
                path,
                a,
                b,
                self.la.line_of(pa) if a is not MISSING else self.la.line_of(pa[:-1]),
                self.lb.line_of(pb) if b is not MISSING else self.lb.line_of(pb[:-1]),
                pb,
            )
        )


def _load(path: Path, display: str) -> tuple[Any, LineIndex]:
    if not path.is_file():
        raise UsageError(f"{display}: file not found")
    data, lines = load_yaml(path, display)
    if not isinstance(data, dict):
        raise RecordError(
            display, lines.line_of(()), "", "expected a mapping of fields (an extraction record)"
        )
    return data, lines


def compare_data(
    data_a: Any, lines_a: LineIndex, data_b: Any, lines_b: LineIndex, file_a: str, file_b: str
) -> Comparison:
    out = Comparison(file_a, file_b)
    _Walker(lines_a, lines_b, out).walk(data_a, data_b, (), ())
    return out


def compare_files(a: Path, b: Path, name_a: str | None = None, name_b: str | None = None) -> Comparison:
    """Every disagreement between two extraction records of one study."""
    name_a, name_b = name_a or str(a), name_b or str(b)
    data_a, lines_a = _load(a, name_a)
    data_b, lines_b = _load(b, name_b)
    return compare_data(data_a, lines_a, data_b, lines_b, name_a, name_b)


# ----------------------------------------------------------------------------- kappa


@dataclass(frozen=True)
class Kappa:
    field: str
    n: int
    observed: float
    expected: float
    kappa: float | None  # None when both extractors used one and the same category only


def kappa(name: str, pairs: Iterable[tuple[Any, Any]]) -> Kappa:
    """Cohen's kappa (closed form) for one categorical field; a missing value is a category."""
    pairs = [(str(a), str(b)) for a, b in pairs]
    n = len(pairs)
    if n == 0:
        return Kappa(name, 0, float("nan"), float("nan"), None)
    po = sum(a == b for a, b in pairs) / n
    ca = Counter(a for a, _ in pairs)
    cb = Counter(b for _, b in pairs)
    pe = sum(ca[k] * cb.get(k, 0) for k in ca) / n**2
    value = None if pe == 1 else (po - pe) / (1 - pe)
    return Kappa(name, n, po, pe, value)


# ----------------------------------------------------------------------------- batch


@dataclass
class Batch:
    comparisons: list[Comparison]
    only_a: list[str]
    only_b: list[str]

    @property
    def agree(self) -> bool:
        return all(c.agree for c in self.comparisons) and not self.only_a and not self.only_b

    def kappas(self) -> list[Kappa]:
        pooled: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        for comp in self.comparisons:
            for name, pairs in comp.categorical.items():
                pooled[name].extend(pairs)
        return [kappa(name, pooled[name]) for name in sorted(pooled)]


def compare_dirs(dir_a: Path, dir_b: Path) -> Batch:
    """Compare every record of ``dir_a`` with the record of the same name in ``dir_b``."""
    for d in (dir_a, dir_b):
        if not d.is_dir():
            raise UsageError(f"{d}: directory not found")

    def names(d: Path) -> set[str]:
        return {p.name for p in d.iterdir() if p.suffix in (".yaml", ".yml")}

    na, nb = names(dir_a), names(dir_b)
    comps = [compare_files(dir_a / n, dir_b / n, str(dir_a / n), str(dir_b / n)) for n in sorted(na & nb)]
    return Batch(comps, sorted(na - nb), sorted(nb - na))


# ----------------------------------------------------------------------------- consensus


def _marker(a: Any, b: Any) -> str:
    return f"DISAGREE: {_show(a)} (a) vs {_show(b)} (b)"


def _plain(value: Any) -> Any:
    if value is MISSING:
        return None
    if isinstance(value, dict | list):
        return _show(value)
    return value


def consensus_data(data_a: dict[str, Any], data_b: dict[str, Any], comparison: Comparison) -> dict[str, Any]:
    """Agreed values kept; each disagreement replaced by a DISAGREE marker (see module doc)."""
    import copy

    out = copy.deepcopy(data_a)
    for d in comparison.differences:
        if d.a is MISSING:
            # only b has it: copy b's value in, marked
            value: Any = copy.deepcopy(d.b)
            if isinstance(value, dict):
                first = next(iter(value), None)
                if first is not None:
                    value[first] = (
                        _marker(d.a, value[first])
                        if not isinstance(value[first], dict | list)
                        else value[first]
                    )
                value["reconcile"] = _marker(d.a, d.b)
            else:
                value = _marker(d.a, d.b)
            _set(out, d.path, value, append=True)
            continue
        if isinstance(d.a, dict):
            node = _get(out, d.path)
            if isinstance(node, dict):
                node["reconcile"] = _marker(d.a, d.b)
            continue
        _set(out, d.path, _marker(d.a, d.b))
    extraction = dict(data_a.get("extraction") or {})
    other = data_b.get("extraction") or {}
    extraction["extracted_by"] = [
        str(extraction.get("extracted_by", "TODO (a)")),
        str(other.get("extracted_by", "TODO (b)")),
    ]
    extraction["reconciled_by"] = "TODO: who resolved the disagreements"
    extraction["provenance"] = [
        {"field": format_path(d.path), "a": _plain(d.a), "b": _plain(d.b)} for d in comparison.differences
    ]
    out["extraction"] = extraction
    if "reconcile" in out:
        out.pop("reconcile")
    return out


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _set(data: Any, path: PathKey, value: Any, append: bool = False) -> None:
    parent = _get(data, path[:-1])
    leaf = path[-1]
    if isinstance(parent, dict):
        parent[leaf] = value
    elif isinstance(parent, list) and isinstance(leaf, int):
        if leaf < len(parent) and not append:
            parent[leaf] = value
        else:
            parent.append(value)


def dump_yaml(data: Any) -> str:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def write_consensus(a: Path, b: Path, out: Path) -> Comparison:
    from peerevidence.atomic import write_text

    data_a, lines_a = _load(a, str(a))
    data_b, lines_b = _load(b, str(b))
    comp = compare_data(data_a, lines_a, data_b, lines_b, str(a), str(b))
    header = (
        f"# Consensus of {a.name} (a) and {b.name} (b), written by `peerevidence reconcile`.\n"
        "# Every DISAGREE marker must be resolved (keep the value the source supports) before\n"
        "# the record validates; extraction.provenance keeps both extractors' values.\n"
    )
    write_text(out, header + dump_yaml(consensus_data(data_a, data_b, comp)))
    return comp


def reconcile_paths(a: Path, b: Path, out: Path | None = None) -> tuple[list[str], bool]:
    """What ``peerevidence reconcile`` prints, and whether the extractions agree.

    Two files: one line per disagreement (and, with ``out``, the consensus record written).
    Two directories: the same for every pair of records with the same name, records only one
    side has, and Cohen's kappa per categorical field across all studies.
    """
    if a.is_dir() or b.is_dir():
        if out is not None:
            raise UsageError("--out works with two files, not two directories")
        batch = compare_dirs(a, b)
        lines = [line for comp in batch.comparisons for line in comp.lines()]
        lines += [f"{a / n}: no counterpart in {b}" for n in batch.only_a]
        lines += [f"{b / n}: no counterpart in {a}" for n in batch.only_b]
        agreeing = sum(c.agree for c in batch.comparisons)
        lines.append(f"{agreeing} of {len(batch.comparisons)} studies agree in every compared field")
        for k in batch.kappas():
            value = "undefined (one category only)" if k.kappa is None else f"{k.kappa:.3f}"
            lines.append(
                f"kappa {k.field}: {value} (n = {k.n}, observed agreement {k.observed:.3f}, "
                f"expected {k.expected:.3f})"
            )
        return lines, batch.agree
    comp = write_consensus(a, b, out) if out is not None else compare_files(a, b)
    lines = comp.lines()
    if out is not None:
        lines.append(f"wrote {out}: {len(comp.differences)} disagreement(s) marked DISAGREE")
    return lines, comp.agree
