"""Records -> one tidy table: a row per (study x result), with harmonised effect sizes.

Columns (one row per result of every record, poolable or not):

``study, outcome, result, design, form, instrument, timepoint, measure, route, direction,
sign, yi_reported, yi, vi, n, n1, n2, rob, included, reason, locator, snippet, file, line``

* ``yi_reported`` is the effect on the study's own scale (intervention minus control, or
  the log of intervention/control ratio) in the outcome's pooling measure;
* ``sign`` is +1 or -1 so that ``yi = sign * yi_reported`` is positive when the result
  favours peer support (or, for association outcomes, supports the change model's link);
* ``included`` is true when the row enters the pooled model; otherwise ``reason`` says why,
  starting with "not reported:" (the study has no usable result) or "not obtained:" (we
  could not reach the source that has it) for the two forms that carry no data; ``form``
  tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from peerevidence.records.project import EvidenceBase
from peerevidence.records.schema import UNPOOLED_FORMS, Outcome, Record
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

_ROUTES: dict[str, dict[str, tuple[str, str | None]]] = {
    # pool measure -> {data kind: (route name, conversion needed)}
    "SMD": {
        "continuous": ("smd", None),
        "effect:SMD": ("se_or_ci", None),
        "effect:OR": ("or_to_smd", "logOR_to_SMD"),
        "binary": ("2x2_to_smd", "logOR_to_SMD"),
    },
    "MD": {"continuous": ("md", None), "effect:MD": ("se_or_ci", None)},
    "logOR": {
        "binary": ("log_or", None),
        "effect:OR": ("log_ci", None),
        "effect:SMD": ("smd_to_or", "SMD_to_logOR"),
    },
    "logRR": {"binary": ("log_rr", None), "effect:RR": ("log_ci", None)},
    "logHR": {"effect:HR": ("log_ci", None)},
    "fisher_z": {"effect:r": ("fisher_z", None)},
}


@dataclass(frozen=True)
class Route:
    name: str | None
    conversion: str | None
    error: str | None = None


def _kind(result) -> str:
    return f"effect:{result.measure}" if result.form == "effect" else result.form


def _kind_words(kind: str) -> str:
    if kind.startswith("effect:"):
        return f"a reported {kind.split(':')[1]}"
    return {"continuous": "arm-level means and SDs", "binary": "arm-level event counts"}.get(kind, kind)


def measure_route(result, outcome: Outcome) -> Route:
    """How a result becomes the outcome's pooling measure, or why it cannot."""
    kind = _kind(result)
    options = _ROUTES[outcome.measure]
    if kind not in options:
        accepted = ", ".join(_kind_words(k) for k in sorted(options))
        return Route(
            None,
            None,
            f"{_kind_words(kind)} cannot give the {outcome.measure} that outcome "
            f"'{outcome.id}' pools (accepted: {accepted})",
        )
    name, conversion = options[kind]
    if conversion is not None and conversion not in outcome.conversions:
        return Route(
            None,
            None,
            f"{_kind_words(kind)} need the conversion {conversion} (Chinn 2000); "
            f"declare `conversions: [{conversion}]` on outcome '{outcome.id}' "
            "in evidence/outcomes.yaml if it is acceptable",
        )
    return Route(name, conversion)


def resolve_direction(result, outcome: Outcome) -> tuple[str | None, str | None]:
    """The direction of benefit for this result and, if it cannot be known, why not."""
    if getattr(result, "harmonised", False):
        return "higher_is_better", None
    mapped = None
    if result.instrument:
        wanted = result.instrument.casefold().strip()
        for inst in outcome.instruments:
            if wanted in {n.casefold().strip() for n in (inst.name, *inst.aliases)}:
                mapped = inst.direction
                break
    if result.direction and mapped and result.direction != mapped:
        return None, (
            f"direction '{result.direction}' contradicts '{mapped}' given for "
            f"instrument '{result.instrument}' in evidence/outcomes.yaml"
        )
    if result.direction:
        return result.direction, None
    if mapped:
        return mapped, None
    scale_based = result.form == "continuous" or (result.form == "effect" and result.measure in ("MD", "SMD"))
    if scale_based:
        known = ", ".join(i.name for i in outcome.instruments) or "none"
        if not result.instrument:
            return None, (
                "no instrument given, so the direction of benefit is unknown; name the "
                f"instrument (mapped for '{outcome.id}': {known}) or give `direction:`"
            )
        return None, (
            f"instrument '{result.instrument}' is not mapped for outcome '{outcome.id}' "
            f"in evidence/outcomes.yaml (mapped: {known}); map it there with its "
            "direction, or give `direction:` in this result"
        )
    return outcome.direction, None


def smd_from_d(d: float, n1: int, n2: int) -> tuple[float, float]:
    """Hedges' g and its large-sample variance from Cohen's d and the arm sizes.

    As ``escalc(measure="SMD", di=d, n1i=n1, n2i=n2)``: the same correction and variance
    as :func:`peerevidence.stats.effects.smd`, starting from d instead of means and SDs.
    """
    g = float(effects.hedges_j(n1 + n2 - 2)) * d
    return g, 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))


def effect_of(result, route: Route) -> tuple[float, float, str | None]:
    """(yi, vi, conversion note) on the study's own scale, in the outcome's measure."""
    r = result
    note = None
    if route.name in ("smd", "md"):
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
        cells = effects.table_from_totals(
            r.intervention.events, r.intervention.total, r.control.events, r.control.total
        )
        fn = effects.log_rr if route.name == "log_rr" else effects.log_or
        y, v = fn(*cells)
        if min(r.intervention.events, r.control.events) == 0 or (
            r.intervention.events == r.intervention.total or r.control.events == r.control.total
        ):
            note = "0.5 added to every cell (zero cell)"
        if route.name == "2x2_to_smd":
            y, v = effects.log_or_to_smd(y, v)
            note = (note + "; " if note else "") + "log OR converted to SMD (Chinn 2000)"
    elif route.name in ("se_or_ci", "smd_to_or") and r.d_with_arm_sizes:
        y, v = smd_from_d(r.estimate, r.n_intervention, r.n_control)
        note = "Cohen's d with arm sizes -> Hedges' g, large-sample variance"
        if route.name == "smd_to_or":
            y, v = effects.smd_to_log_or(y, v)
            note += "; SMD converted to log OR (Chinn 2000)"
    elif route.name in ("se_or_ci", "log_ci", "or_to_smd", "smd_to_or"):
        log = route.name in ("log_ci", "or_to_smd")
        if r.se is not None:
            y, v = effects.from_se(r.estimate, r.se, log=log)
            if log:
                note = "SE taken as the SE of the log ratio"
        else:
            y, v = effects.from_interval(r.estimate, r.ci_low, r.ci_high, r.ci_level, log=log)
        if route.name == "or_to_smd":
            y, v = effects.log_or_to_smd(y, v)
            note = "log OR converted to SMD (Chinn 2000)"
        elif route.name == "smd_to_or":
            y, v = effects.smd_to_log_or(y, v)
            note = "SMD converted to log OR (Chinn 2000)"
    elif route.name == "fisher_z":
        if r.n is not None:
            y, v = effects.fisher_z(r.estimate, r.n)
        else:
            y = np.arctanh(r.estimate)
            if r.se is not None:
                v = r.se**2
            else:
                lo, hi = np.arctanh(r.ci_low), np.arctanh(r.ci_high)
                v = ((hi - lo) / (2 * effects.z_for(r.ci_level))) ** 2
    else:  # pragma: no cover - routes are closed
        raise ValueError(route.name)
    return float(y), float(v), note


def _n(result) -> tuple[float, float, float]:
    if result.form == "continuous":
        n1, n2 = result.intervention.n, result.control.n
        return n1 + n2, n1, n2
    if result.form == "binary":
        n1, n2 = result.intervention.total, result.control.total
        return n1 + n2, n1, n2
    if result.form == "effect" and result.n_intervention is not None:
        n1, n2 = result.n_intervention, result.n_control
        return float(result.n or n1 + n2), n1, n2
    return (float(result.n) if getattr(result, "n", None) else np.nan), np.nan, np.nan


def record_rows(
    key: str, rec: Record, outcomes: dict[str, Outcome], file: str = "", lines=None
) -> list[dict]:
    rows = []
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
        elif result.form in UNPOOLED_FORMS:
            reason = f"{result.form.replace('_', ' ')}: {result.reason}"
        elif result.form == "pooled":
            reason = "review-level result (shown beside the pooled estimate, never pooled)"
        else:
            route = measure_route(result, outcome)
            direction, derr = resolve_direction(result, outcome)
            if route.error or derr:
                reason = route.error or derr
            else:
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
    rows: list[dict] = []
    for key, loaded in sorted(base.records.items()):
        rows.extend(record_rows(key, loaded.record, outcomes, loaded.file, loaded.lines))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["outcome", "study", "result"], kind="stable").reset_index(drop=True)


def pooling_data(table: pd.DataFrame, outcome_id: str) -> pd.DataFrame:
    """The included rows of one outcome, one per study, sorted by study."""
    rows = table[(table["outcome"] == outcome_id) & table["included"]]
    return rows.sort_values("study", kind="stable").reset_index(drop=True)
