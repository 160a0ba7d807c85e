"""The committed coverage table (docs/coverage.md) matches the records."""

from __future__ import annotations

from pathlib import Path

from peerevidence.pooling.coverage import coverage_markdown
from peerevidence.pooling.fitting import load_valid
from peerevidence.pooling.table import evidence_table
from projectkit import dump_yaml, make_project, spare_record_data, write

ROOT = Path(__file__).resolve().parents[2]


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


def _row(markdown: str, first_cell: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row '{first_cell}' in:\n{markdown}")


def test_coverage_counts_not_obtained_apart_from_not_reported(tmp_path):
    """cohort2019 did not report hope; for spare2020 the hope numbers were not obtained."""
    root = make_project(tmp_path)
    data = spare_record_data()
    data["results"] = [
        {
            "outcome": "hope",
            "timepoint": "6 months",
            "form": "not_obtained",
            "reason": "Per-arm means are in the full text, which was not reached",
            "searched": [{"date": "2026-12-06", "route": "publisher page", "result": "abstract only"}],
            "source": {"locator": "Abstract", "snippet": "hope improved"},
        }
    ]
    write(root, "extraction/spare2020.yaml", dump_yaml(data))
    base, _ = load_valid(root)
    markdown = coverage_markdown(base, evidence_table(base))
    header = _row(markdown, "outcome")
    hope = dict(zip(header, _row(markdown, "hope"), strict=True))
    assert (hope["records"], hope["poolable studies"]) == ("4", "1")
    assert (hope["not reported"], hope["not obtained"]) == ("1", "1")
    assert "spare2020: not obtained" in hope["not poolable (reason)"]
    assert "cohort2019: not reported" in hope["not poolable (reason)"]
    assert _row(markdown, "not_obtained (not obtained)")[1:] == ["1", "1"]
    assert _row(markdown, "not_reported (not reported)")[1:] == ["2", "2"]  # and review2021 (symptoms)
    assert _row(markdown, "spare2020")[4] == "not obtained"
