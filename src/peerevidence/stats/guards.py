"""Inputs the sampler can work with, checked before any sampling.

nutpie's sampler aborts the process (a Rust panic, exit 139) when every initialisation
point has a non-finite log density, which happens with absurd magnitudes (y = 1e300,
v = 1e300) or non-finite prior scales. These checks refuse such inputs with a message that
names the value, so a bad CSV or setting is an error, never a crash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from peerevidence.errors import DataError

MAX_ABS_EFFECT = 1e8  # |yi| above this is not an effect size on any scale we pool
MAX_VARIANCE = 1e16  # vi above this carries no information and overflows the density
MIN_VARIANCE = 1e-300  # a positive variance the density can still invert


def check_fit_inputs(labels: Sequence[str], yi: np.ndarray, vi: np.ndarray, where: str = "data") -> None:
    """Raise DataError naming the first study whose effect or variance the sampler cannot use."""
    for label, y, v in zip(labels, np.asarray(yi, float), np.asarray(vi, float), strict=True):
        if not math.isfinite(y) or abs(y) > MAX_ABS_EFFECT:
            raise DataError(
                f"{where}: study '{label}': effect {y:g} is not usable (accepted: finite, |yi| <= {MAX_ABS_EFFECT:g})"
            )
        if not math.isfinite(v) or not MIN_VARIANCE <= v <= MAX_VARIANCE:
            raise DataError(
                f"{where}: study '{label}': variance {v:g} is not usable "
                f"(accepted: finite, {MIN_VARIANCE:g} <= vi <= {MAX_VARIANCE:g})"
            )


def check_prior_parameters(spec: str, params: Sequence[float]) -> None:
    """Raise DataError when a prior's parameters are not finite, normal-range numbers."""
    for p in params:
        if not math.isfinite(p) or (p != 0 and abs(p) < 1e-300) or abs(p) > 1e12:
            raise DataError(
                f"prior {spec}: parameter {p:g} is not usable (accepted: finite, 1e-300 < |p| <= 1e12)"
            )
