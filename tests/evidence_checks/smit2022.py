"""Re-pool the Smit et al. 2022 trials by its outcome categories, as it did (all its trials).

Uses the g and SE that the Smit 2022 dataset stores for each row (``reported`` in our
records, or the harmonised g of g-only rows), so it reproduces the review's own analysis,
not ours: every trial, including those our analyses exclude. Rows of one trial in one
category are averaged, their variance combined assuming a within-study correlation of 0.5.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from peerevidence.records.project import EvidenceBase
from peerevidence.stats.frequentist import RandomEffects, random_effects

PUBLISHED = {  # Smit et al. 2022, abstract: Hedges' g (95% CI)
    "clinical": (0.19, 0.11, 0.27),
    "personal": (0.15, 0.04, 0.27),
    "functional": (0.08, -0.02, 0.18),
}
RHO = 0.5


def smit_rows(base: EvidenceBase) -> list[tuple[str, str, float, float]]:
    """(study, category, g, se) for every record result tagged ``groups: {smit2022: ...}``."""
    rows = []
    for key, loaded in sorted(base.records.items()):
        for result in loaded.record.results:
            category = result.groups.get("smit2022")
            if category is None or result.form == "pooled":
                continue
            if result.reported is not None and result.reported.measure == "g":
                rows.append((key, category, result.reported.estimate, result.reported.se))
            elif result.form == "effect" and result.harmonised and result.se is not None:
                rows.append((key, category, result.estimate, result.se))
    return rows


def by_study(
    rows: list[tuple[str, str, float, float]], category: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for study, cat, g, se in rows:
        if cat == category:
            groups[study].append((g, se))
    labels, yi, vi = [], [], []
    for study in sorted(groups):
        g = np.array([x[0] for x in groups[study]])
        se = np.array([x[1] for x in groups[study]])
        m = g.size
        cov = RHO * np.outer(se, se)
        np.fill_diagonal(cov, se**2)
        labels.append(study)
        yi.append(float(g.mean()))
        vi.append(float(cov.sum() / m**2))
    return labels, np.array(yi), np.array(vi)


def reproduce(base: EvidenceBase) -> dict[str, tuple[int, RandomEffects]]:
    rows = smit_rows(base)
    out = {}
    for category in PUBLISHED:
        labels, yi, vi = by_study(rows, category)
        out[category] = (len(labels), random_effects(yi, vi, "REML"))
    return out
