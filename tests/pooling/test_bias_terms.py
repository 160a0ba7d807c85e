"""Design-bias settings: one table per scale, one shared group per design present."""

from __future__ import annotations

import numpy as np
import pandas as pd

from peerevidence.pooling.fitting import bias_terms
from peerevidence.records.schema import AnalysisConfig

CONFIG = AnalysisConfig.model_validate(
    {
        "design_bias": {
            "smd": {"cohort": {"mean": 0.1, "sd": 0.25}, "before_after": {"sd": 0.3, "study_sd": 0.1}},
            "log_ratio": {"cohort": {"sd": 0.45}},
        }
    }
)
ROWS = pd.DataFrame({"design": ["rct", "cohort", "before_after", "cohort", "rct"]})


def test_smd_outcomes_share_one_bias_per_design():
    terms = bias_terms(ROWS, CONFIG, True, "SMD")
    assert terms.group_names == ("before_after", "cohort")
    np.testing.assert_array_equal(terms.group, [-1, 1, 0, 1, -1])
    np.testing.assert_allclose(terms.group_var, [0.09, 0.0625])
    np.testing.assert_allclose(terms.mean, [0, 0.1, 0, 0.1, 0])
    np.testing.assert_allclose(terms.study_var, [0, 0, 0.01, 0, 0])
    np.testing.assert_allclose(terms.inflation, 1.0)


def test_log_ratio_outcomes_use_their_own_table():
    terms = bias_terms(ROWS, CONFIG, True, "logOR")
    assert terms.group_names == ("cohort",)
    np.testing.assert_array_equal(terms.group, [-1, 0, -1, 0, -1])
    np.testing.assert_allclose(terms.group_var, [0.45**2])


def test_measures_without_a_table_and_randomised_only_analyses_get_no_terms():
    for measure in ("MD", "fisher_z"):
        assert bias_terms(ROWS, CONFIG, True, measure).group is None
    assert bias_terms(ROWS, CONFIG, False, "SMD").group is None
