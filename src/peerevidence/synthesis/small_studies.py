"""Small-study effects per analysis with k >= 5: funnel-plot data and regression tests.

* Egger's test: ``regtest(model="lm", predictor="sei")`` (weighted least squares of y on its
  standard error, weights 1/v; t test on k - 2 df) — the classical test (egger1997);
* PET and PEESE: the intercept of the mixed-effects meta-regression of y on its standard
  error (PET) or its variance (PEESE), ``regtest(model="rma", predictor="sei"|"vi")``;
* Peters' test for analyses whose results are all two-arm binary on the log odds ratio
  scale: ``regtest(model="lm", predictor="ninv")`` — y on 1/n (n = both arms' totals),
  weights 1/v as metafor computes it. (Peters et al. 2006 weighted by S*F/N, events times
  non-events over n; metafor's inverse-variance weights are used here, matched to metafor.)

All on the bias-adjusted data the main model sees; every number is metafor's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from peerevidence.stats.metareg import RegTest, regtest

if TYPE_CHECKING:  # pragma: no cover
    from peerevidence.pooling.fitting import AnalysisFit

MIN_K = 5


@dataclass(frozen=True)
class FunnelPoint:
    study: str
    yi: float
    sei: float


@dataclass(frozen=True)
class SmallStudyEffects:
    analysis: str
    k: int
    funnel: tuple[FunnelPoint, ...]
    egger: RegTest  # lm, sei: zval is Egger's t, est the limit estimate
    pet: RegTest  # rma, sei
    peese: RegTest  # rma, vi
    peters: RegTest | None  # binary log OR analyses only
    peters_note: str


def small_study_effects(fit: AnalysisFit) -> SmallStudyEffects | None:
    """None when k < 5."""
    rows = fit.analysis.rows
    k = len(rows)
    if k < MIN_K:
        return None
    y, v = fit.analysis.data.adjusted()
    funnel = tuple(
        FunnelPoint(str(s), float(a), math.sqrt(float(b)))
        for s, a, b in zip(rows["study"], y, v, strict=True)
    )
    binary = bool((rows["form"] == "binary").all()) and fit.analysis.outcome.measure == "logOR"
    n = rows["n"].to_numpy(float)
    if binary and np.all(np.isfinite(n)) and np.all(n > 0):
        peters, note = (
            regtest(y, v, model="lm", predictor="ninv", ni=n),
            "log odds ratios of two-arm binary results",
        )
    else:
        peters = None
        note = "needs every result as two-arm binary data pooled as log odds ratios"
    return SmallStudyEffects(
        analysis=fit.analysis.name,
        k=k,
        funnel=funnel,
        egger=regtest(y, v, model="lm", predictor="sei"),
        pet=regtest(y, v, model="rma", predictor="sei"),
        peese=regtest(y, v, model="rma", predictor="vi"),
        peters=peters,
        peters_note=note,
    )
