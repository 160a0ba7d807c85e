"""Records -> one tidy table: a row per (study x result), with harmonised effect sizes.

Columns (one row per result of every record, poolable or not):

``study, outcome, result, design, form, instrument, timepoint, measure, route, direction,
sign, yi_reported, yi, vi, n, n1, n2, rob, included, reason, locator, snippet, file, line``

* ``yi_reported`` is the effect on the study's own scale (intervention minus control, or
  the log of intervention/control ratio) in the outcome's pooling measure;
* ``sign`` is +1 or -1 so that ``yi = sign * yi_reported`` is positive when the result
  favours the intervention (or, for association outcomes, supports the change model's link);
* ``included`` is true when the row enters the pooled model; otherwise ``reason`` says why,
  starting with "not reported:" (the study has no usable result) or "not obtained:" (we
  could not reach the source that has it) for the two forms that carry no data; ``form``
  tells them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from peerevidence.records.project import EvidenceBase
from peerevidence.records.routes import Route, measure_route, resolve_direction
from peerevidence.records.schema import (
    BinaryResult,
    ContinuousResult,
    EffectResult,
    NotObtained,
    NotReported,
    Outcome,
    PooledResult,
    Record,
    Result,
)
from peerevidence.records.yamlio import LineIndex
from peerevidence.stats import effects

COLUMNS = [
    "study",
    "outcome",
    "result",
    "design",
    "form",
    "instrument",
    "timepoint",
    "measure",
    "route",
    "direction",
    "sign",
    "yi_reported",
    "yi",
    "vi",
    "n",
    "n1",
    "n2",
    "rob",
    "included",
    "reason",
    "flags",
    "indirect",
    "locator",
    "snippet",
    "file",
    "line",
]


def effect_of(
    result: ContinuousResult | BinaryResult | EffectResult, route: Route
) -> tuple[float, float, str | None]:
    """(yi, vi, conversion note) on the study's own scale, in the outcome's measure."""
    r = result
    note = None
    y: float | npt.NDArray[np.float64]
    v: float | npt.NDArray[np.float64]
    # each route is open to one form only (records.routes), so the asserts below hold
    if route.name in ("smd", "md"):
        assert isinstance(r, ContinuousResult)
        fn = effects.smd if route.name == "smd" else effects.md
        y, v = fn(
            r.intervention.mean,
            r.intervention.sd,
            r.intervention.n,
            r.control.mean,
            r.control.sd,
            r.control.n,
        )
    elif route.name in ("log_or", "log_rr", "2x2_to_smd"):
        assert isinstance(r, BinaryResult)
        cells = effects.table_from_totals(
            r.intervention.events, r.intervention.total, r.control.events, r.control.total
        )
        fn_2x2 = effects.log_rr if route.name == "log_rr" else effects.log_or
        y, v = fn_2x2(*cells)
        if min(r.intervention.events, r.control.events) == 0 or (
            r.intervention.events == r.intervention.total or r.control.events == r.control.total
        ):
            note = "0.5 added to every cell (zero cell)"
        if route.name == "2x2_to_smd":
            y, v = effects.log_or_to_smd(y, v)
            note = (note + "; " if note else "") + "log OR converted to SMD (Chinn 2000)"
    elif route.name in ("se_or_ci", "smd_to_or") and isinstance(r, EffectResult) and r.d_with_arm_sizes:
        assert r.n_intervention is not None and r.n_control is not None  # d_with_arm_sizes
        y, v = effects.smd_from_d(r.estimate, r.n_intervention, r.n_control)
        note = "Cohen's d with arm sizes -> Hedges' g, large-sample variance"
        if route.name == "smd_to_or":
            y, v = effects.smd_to_log_or(y, v)
            note += "; SMD converted to log OR (Chinn 2000)"
    elif route.name in ("se_or_ci", "log_ci", "or_to_smd", "smd_to_or"):
        assert isinstance(r, EffectResult)
        log = route.name in ("log_ci", "or_to_smd")
        if r.se is not None:
            y, v = effects.from_se(r.estimate, r.se, log=log)
            if log:
                note = "SE taken as the SE of the log ratio"
        else:
            assert r.ci_low is not None and r.ci_high is not None  # schema: no SE -> a CI
            y, v = effects.from_interval(r.estimate, r.ci_low, r.ci_high, r.ci_level, log=log)
        if route.name == "or_to_smd":
            y, v = effects.log_or_to_smd(y, v)
            note = "log OR converted to SMD (Chinn 2000)"
        elif route.name == "smd_to_or":
            y, v = effects.smd_to_log_or(y, v)
            note = "SMD converted to log OR (Chinn 2000)"
    elif route.name == "fisher_z":
        assert isinstance(r, EffectResult)
        if r.n is not None:
            y, v = effects.fisher_z(r.estimate, r.n)
        else:
            y = np.arctanh(r.estimate)
            if r.se is not None:
                v = r.se**2
            else:
                assert r.ci_low is not None and r.ci_high is not None  # schema: r needs n, SE or CI
                lo, hi = np.arctanh(r.ci_low), np.arctanh(r.ci_high)
                v = ((hi - lo) / (2 * effects.z_for(r.ci_level))) ** 2
    else:  # pragma: no cover - routes are closed
        raise ValueError(route.name)
    return float(y), float(v), note


def _n(result: Result) -> tuple[float, float, float]:
    if result.form == "continuous":
        n1, n2 = result.intervention.n, result.control.n
        return n1 + n2, n1, n2
    if result.form == "binary":
        n1, n2 = result.intervention.total, result.control.total
        return n1 + n2, n1, n2
    # the schema has both arm sizes or neither
    if result.form == "effect" and result.n_intervention is not None and result.n_control is not None:
        n1, n2 = result.n_intervention, result.n_control
        return float(result.n or n1 + n2), n1, n2
    n = getattr(result, "n", None)
    return (float(n) if n else np.nan), np.nan, np.nan


def record_rows(
    key: str, rec: Record, outcomes: Mapping[str, Outcome], file: str = "", lines: LineIndex | None = None
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, result in enumerate(rec.results):
        outcome = outcomes.get(result.outcome)
        n, n1, n2 = _n(result)
        row = {
            "study": key,
            "outcome": result.outcome,
            "result": i,
            "design": rec.design,
            "form": result.form,
            "instrument": result.instrument,
            "timepoint": result.timepoint,
            "measure": outcome.measure if outcome else None,
            "route": None,
            "direction": None,
            "sign": np.nan,
            "yi_reported": np.nan,
            "yi": np.nan,
            "vi": np.nan,
            "n": n,
            "n1": n1,
            "n2": n2,
            "rob": result.risk_of_bias or rec.risk_of_bias.overall,
            "included": False,
            "reason": None,
            "flags": "; ".join(result.flags),
            "indirect": result.indirect or rec.indirectness,
            "locator": result.source.locator,
            "snippet": result.source.snippet,
            "file": file,
            "line": lines.line_of(("results", i)) if lines else None,
        }
        reason = None
        if outcome is None:
            reason = f"unknown outcome '{result.outcome}'"
        elif isinstance(result, NotReported | NotObtained):  # the forms of UNPOOLED_FORMS
            reason = f"{result.form.replace('_', ' ')}: {result.reason}"
        elif isinstance(result, PooledResult):
            reason = "review-level result (shown beside the pooled estimate, never pooled)"
        else:
            route = measure_route(result, outcome)
            direction, derr = resolve_direction(result, outcome)
            if route.error or derr:
                reason = route.error or derr
            else:
                assert route.name is not None  # a route without an error has a name
                y, v, note = effect_of(result, route)
                if getattr(result, "harmonised", False):
                    # the source signed it already (positive = benefit): recover its own scale
                    direction = outcome.direction
                    sign = 1.0 if direction == "higher_is_better" else -1.0
                    y_rep = sign * y
                else:
                    sign = 1.0 if direction == "higher_is_better" else -1.0
                    y_rep = y
                row.update(
                    route=route.name + (f" ({note})" if note else ""),
                    direction=direction,
                    sign=sign,
                    yi_reported=y_rep,
                    yi=sign * y_rep,
                    vi=v,
                )
                if not (np.isfinite(y) and np.isfinite(v) and v > 0):
                    reason = f"effect size not computable (yi={y}, vi={v})"
                elif rec.exclude:
                    reason = f"study excluded: {rec.exclude}"
                elif result.exclude:
                    reason = f"excluded: {result.exclude}"
        row["reason"] = reason
        row["included"] = reason is None
        rows.append(row)
    return rows


def evidence_table(base: EvidenceBase) -> pd.DataFrame:
    """All results of all records as one DataFrame (sorted: outcome, study, result)."""
    outcomes = {o.id: o for o in base.outcomes.outcomes} if base.outcomes else {}
    rows: list[dict[str, Any]] = []
    for key, loaded in sorted(base.records.items()):
        rows.extend(record_rows(key, loaded.record, outcomes, loaded.file, loaded.lines))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["outcome", "study", "result"], kind="stable").reset_index(drop=True)


def pooling_data(table: pd.DataFrame, outcome_id: str) -> pd.DataFrame:
    """The included rows of one outcome, one per study, sorted by study."""
    rows = table[(table["outcome"] == outcome_id) & table["included"]]
    return rows.sort_values("study", kind="stable").reset_index(drop=True)
