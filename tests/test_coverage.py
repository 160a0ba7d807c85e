"""The committed coverage table (docs/coverage.md) matches the records."""

from __future__ import annotations

from pathlib import Path

from peerevidence.pooling.coverage import coverage_markdown
from peerevidence.pooling.fitting import load_valid
from peerevidence.pooling.table import evidence_table

ROOT = Path(__file__).resolve().parents[1]


def test_committed_coverage_table_is_current():
    base, _ = load_valid(ROOT)
    expected = coverage_markdown(base, evidence_table(base))
    committed = (ROOT / "docs" / "coverage.md").read_text("utf-8")
    assert committed == expected, "run `peerevidence coverage --out docs/coverage.md` and commit it"


def test_at_least_four_outcomes_pool_three_or_more_studies():
    base, _ = load_valid(ROOT)
    table = evidence_table(base)
    counts = table[table["included"]].groupby("outcome")["study"].nunique()
    assert (counts >= 3).sum() >= 4, counts.to_dict()
