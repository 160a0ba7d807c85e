"""An evidence base that is not about peer support (metafor's dat.bcg) goes through the
whole package: its effect sizes equal metafor's, and its report speaks of its own
intervention only."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerevidence.pooling.table import evidence_table
from peerevidence.records.project import load_project, wording
from peerevidence.records.rules import validate_project
from peerevidence.report.render import render
from peerevidence.synthesis import synthesise
from projectkit import exact_result

BCG = Path(__file__).parent / "data" / "bcg"
# "peerevidence", the generating package's own name in the provenance, is not domain wording
DOMAIN_WORDS = re.compile(r"peer(?!evidence\b)|gillard|mental health|usual care", re.IGNORECASE)


@pytest.fixture
def bcg(tmp_path) -> Path:
    return Path(shutil.copytree(BCG, tmp_path / "bcg"))


def test_bcg_project_is_valid_and_says_what_it_compares():
    base, findings = validate_project(BCG)
    assert findings.errors == [] and findings.warnings == []
    assert len(base.records) == 13
    assert wording(base.change_model) == type(wording(base.change_model))("BCG vaccination", "no vaccination")


def test_bcg_effect_sizes_equal_metafor_escalc():
    base, _ = load_project(BCG)
    table = evidence_table(base).set_index("study")
    ref = pd.read_csv(BCG / "metafor_escalc_rr.csv")
    years = ref["study"].str.extract(r"\((\d{4})\)")[0]
    firsts = ref["study"].str.split().str[0].str.replace("-", "").str.lower()
    keys = firsts + years
    # lower is better (fewer tuberculosis cases): the harmonised yi is minus the log RR
    np.testing.assert_allclose(
        table.loc[keys, "yi"].to_numpy(float), -ref["yi"].to_numpy(), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        table.loc[keys, "vi"].to_numpy(float), ref["vi"].to_numpy(), rtol=0, atol=1e-12
    )


def test_bcg_report_names_its_intervention_and_never_peer_support(bcg):
    result = exact_result(bcg)
    render(result, synthesise(result))
    pages = [*bcg.glob("reports/*.html"), *bcg.glob("reports/outcomes/*.html")]
    assert pages
    text = "\n".join(p.read_text("utf-8") for p in pages)
    visible = re.sub(r"<[^>]+>", " ", text)
    assert "BCG vaccination" in visible
    found = sorted({m.group(0).lower() for m in DOMAIN_WORDS.finditer(visible)})
    assert found == [], found
