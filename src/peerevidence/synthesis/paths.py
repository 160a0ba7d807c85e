"""Exploratory effects along change-model paths: intervention -> process outcome -> downstream.

Posterior draws of the intervention's effect on a process outcome are propagated through
an association of that outcome with a downstream event, under assumptions stated with
each result. The project's own caveat (``meta.path_caveat`` in the change model) is shown
with them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import special

from peerevidence.pooling.store import FitStore
from peerevidence.records.project import intervention_node, wording
from peerevidence.synthesis.certainty import main_fits
from peerevidence.synthesis.types import PathEffect

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit, RunResult
    from peerevidence.records.schema import Outcome

FloatArray = npt.NDArray[np.float64]


def _mu_draws(result: RunResult, fit: AnalysisFit) -> FloatArray:
    """The fit's posterior draws of mu (harmonised scale), from the fit store."""
    return FitStore(result.base.paths.reports).posterior_draws(fit.key, "mu")


def split_distance(p: float) -> float:
    """Difference in SD units between the means of a normal variable's lower p and upper 1-p."""
    z = float(special.ndtri(p))
    return float(math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / (p * (1 - p)))


def _cached_path(
    result: RunResult,
    first: AnalysisFit,
    second: AnalysisFit,
    split: float,
    compute: Callable[[], PathEffect],
) -> PathEffect:
    """Path effects depend only on the two fits and the split: cache them by those keys."""
    from peerevidence.atomic import write_text
    from peerevidence.pooling.store import digest, dumps

    key = digest({"first": first.key, "second": second.key, "split": split, "version": 2})
    path = result.base.paths.reports / "fits" / "paths" / f"{key}.json"
    try:
        raw = json.loads(path.read_text("utf-8"))
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return PathEffect(**fields)
    except (OSError, ValueError, TypeError):
        pass
    effect = compute()
    write_text(path, dumps(effect.__dict__))
    return effect


def implied_ratio(delta: FloatArray, link: FloatArray, assoc: Outcome, d: float) -> tuple[FloatArray, bool]:
    """Implied event ratio (intervention vs comparator) through an association, and whether
    the event is a harm (so that a ratio below 1 is benefit).

    ``delta``: draws of the intervention's effect on the exposure node (SMD, harmonised:
    positive = towards the node's better end). ``link``: draws of the association's pooled
    log ratio, harmonised (positive = the direction the change model predicts;
    ``assoc.direction`` says which natural sign that is). The exposed group sits at
    ``assoc.exposure_pole`` of the exposure, ``d`` latent SDs from the unexposed group.
    Moving the latent exposure by ``delta`` towards its better end moves the log ratio by
    ``delta * L / d`` towards the exposed group when the exposed group is the better end,
    away from it otherwise (``L``: natural log ratio, exposed vs unexposed).

    The change model predicts the better end of the exposure gives the better outcome, so
    the event is a harm exactly when (ratio above 1 supports the link) differs from (the
    exposed group is the better end).
    """
    natural = (1.0 if assoc.direction == "higher_is_better" else -1.0) * link
    towards_exposed = 1.0 if assoc.exposure_pole == "high" else -1.0
    ratio = np.exp(towards_exposed * natural / d * delta)
    event_is_harm = (assoc.direction == "higher_is_better") != (assoc.exposure_pole == "high")
    return ratio, event_is_harm


def _path_effect(
    result: RunResult,
    first: AnalysisFit,
    second: AnalysisFit,
    trial: Outcome,
    assoc: Outcome,
    intervention: str,
    split: float,
    d: float,
    caveat: str,
) -> PathEffect:
    words = wording(result.base.change_model)
    delta = _mu_draws(result, first)
    link = _mu_draws(result, second)
    n = min(delta.size, link.size)
    ratio, event_is_harm = implied_ratio(delta[:n], link[:n], assoc, d)
    scale = {"logHR": "HR", "logOR": "OR", "logRR": "RR"}[assoc.measure]
    q = np.quantile(ratio, [0.025, 0.5, 0.975], method="hazen")
    k1, k2 = first.summary.k, second.summary.k
    assumptions = (
        f"{words.intervention[:1].upper()}{words.intervention[1:]} changes {trial.label.lower()} by the pooled SMD of '{trial.id}' "
        f"(k = {k1}); the trials' instruments measure the exposure of the cohort study.",
        f"'{assoc.label}' is a dichotomy of a normally distributed latent score at its "
        f"{split:.0%} quantile, so exposed and unexposed differ by {d:.2f} SD "
        "(set exposure_split in evidence/analysis.yaml).",
        f"The log {scale} is linear in that latent score and the association (k = {k2}) "
        f"is causal, unconfounded and transportable to the populations {words.intervention} serves.",
        "The two posteriors are independent; draws are paired index by index.",
        "Implied ratio = exp(±(log ratio per exposure contrast / "
        f"{d:.2f}) x SMD), the sign set by which end of the exposure is 'exposed'; "
        + (
            f"below 1 = fewer events with {words.intervention} (benefit)."
            if event_is_harm
            else f"above 1 = more of this (wanted) event with {words.intervention} (benefit)."
        ),
    )
    edges = tuple(dict.fromkeys([*trial.edges, *assoc.edges]))
    assert assoc.exposure is not None  # schema: an association outcome names its exposure
    return PathEffect(
        path=(intervention, assoc.exposure, assoc.node),
        edges=edges,
        first=trial.id,
        second=assoc.id,
        scale=scale,
        median=float(q[1]),
        q025=float(q[0]),
        q975=float(q[2]),
        p_benefit=float(np.mean(ratio < 1) if event_is_harm else np.mean(ratio > 1)),
        assumptions=assumptions,
        caveat=caveat,
        benefit="below 1" if event_is_harm else "above 1",
    )


def path_effects(result: RunResult) -> list[PathEffect]:
    fits = main_fits(result)
    cm = result.base.change_model
    intervention = intervention_node(cm)
    caveat = (cm.meta.path_caveat if cm else None) or ""
    split = result.base.analysis.exposure_split
    d = split_distance(split)
    out = []
    for second in sorted(
        (f for f in fits.values() if f.analysis.outcome.kind == "association"), key=lambda f: f.analysis.name
    ):
        assoc = second.analysis.outcome
        for first in sorted(
            (
                f
                for f in fits.values()
                if f.analysis.outcome.kind == "intervention_effect"
                and f.analysis.outcome.node == assoc.exposure
            ),
            key=lambda f: f.analysis.name,
        ):
            trial = first.analysis.outcome
            if trial.measure != "SMD" or assoc.measure not in ("logHR", "logOR", "logRR"):
                continue

            def compute(
                first: AnalysisFit = first,
                second: AnalysisFit = second,
                trial: Outcome = trial,
                assoc: Outcome = assoc,
            ) -> PathEffect:
                return _path_effect(result, first, second, trial, assoc, intervention, split, d, caveat)

            out.append(_cached_path(result, first, second, split, compute))
    return out
