"""evidence/searches.yaml: the search log (optional), its checks, and its PRISMA 2020 counts."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from peerevidence.records.schema import SearchLog
from projectkit import dump_yaml, line_no, make_project, problems, write

LOG = {
    "searches": [
        {
            "id": "pages_trials",
            "date": "2026-12-06",
            "method": "database",
            "source": "web pages corpus",
            "query": "peer support randomised trial 2025",
            "identified": 8,
            "duplicates": 2,
            "excluded_on_screening": 3,
        },
        {
            "id": "registry",
            "date": "2026-12-06",
            "method": "register",
            "source": "ClinicalTrials.gov",
            "query": "NCT00000000 results",
            "identified": 2,
            "duplicates": 1,
        },
    ],
    "reports": [
        {"id": "trial2020", "found_by": "pages_trials", "decision": "included", "study": "trial2020"},
        {
            "id": "trial2020 follow-up",
            "found_by": "pages_trials",
            "decision": "included",
            "study": "trial2020",
        },
        {"id": "other2024", "found_by": "pages_trials", "decision": "excluded", "reason": "not peer support"},
        {
            "id": "NCT00000000",
            "found_by": "registry",
            "decision": "not_retrieved",
            "reason": "no results posted",
        },
    ],
}


def log(**changes) -> dict:
    data = copy.deepcopy(LOG)
    data.update(changes)
    return data


def message(data: dict) -> str:
    with pytest.raises(ValidationError) as info:
        SearchLog.model_validate(data)
    (error,) = info.value.errors()
    return error["msg"].removeprefix("Value error, ")


def test_prisma_counts_follow_the_log():
    counts = SearchLog.model_validate(log()).prisma()
    assert counts == {
        "identified": {"database": 8, "register": 2, "other": 0},
        "duplicates_removed": 3,
        "screened": 7,
        "excluded_on_screening": 3,
        "sought_for_retrieval": 4,
        "not_retrieved": 1,
        "assessed_for_eligibility": 3,
        "excluded_with_reasons": {"not peer support": 1},
        "reports_included": 2,
        "studies_included": 1,
    }


def test_counts_must_match_the_listed_reports():
    data = log()
    data["searches"][0]["excluded_on_screening"] = 2
    assert message(data) == (
        "search 'pages_trials': identified 8 - duplicates 2 - excluded_on_screening 2 = 4, "
        "but 3 report(s) name it in found_by"
    )


def test_duplicates_and_exclusions_cannot_exceed_what_was_found():
    data = log()
    data["searches"][1]["duplicates"] = 3
    assert message(data) == "duplicates (3) + excluded_on_screening (0) exceed identified (2)"


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ({"decision": "excluded", "reason": None}, "a report that is excluded needs a `reason`"),
        ({"decision": "not_retrieved", "reason": " "}, "a report that is not retrieved needs a `reason`"),
        ({"decision": "included", "study": None}, "an included report names the `study` record it feeds"),
    ],
)
def test_decisions_need_their_reason_or_study(report, expected):
    data = log()
    data["reports"][2].update(report)
    data["reports"][2] = {k: v for k, v in data["reports"][2].items() if v is not None}
    assert message(data) == expected


def test_unknown_and_repeated_search_ids_are_refused():
    data = log()
    data["reports"][0]["found_by"] = "pages_trails"
    assert message(data) == "reports name unknown searches in found_by: pages_trails"
    data = log()
    data["searches"][1]["id"] = "pages_trials"
    assert message(data) == "search ids must be unique (repeated: pages_trials)"


def test_the_log_is_optional_and_checked_when_present(tmp_path):
    root = make_project(tmp_path)
    assert problems(root) == []
    write(root, "evidence/searches.yaml", dump_yaml(log()))
    assert problems(root) == []
    data = log()
    data["reports"][0]["study"] = "trial2002"
    write(root, "evidence/searches.yaml", dump_yaml(data))
    line = line_no(root, "evidence/searches.yaml", "study: trial2002")
    assert problems(root) == [
        f"evidence/searches.yaml:{line}: reports[0].study: 'trial2002' has no extraction record; "
        "did you mean 'trial2020'?"
    ]


def test_a_malformed_log_gives_one_located_line(tmp_path):
    root = make_project(tmp_path)
    data = log()
    data["searches"][0]["date"] = "6 December 2026"
    write(root, "evidence/searches.yaml", dump_yaml(data))
    line = line_no(root, "evidence/searches.yaml", "date: 6 December 2026")
    (problem,) = problems(root)
    assert problem.startswith(f"evidence/searches.yaml:{line}: searches[0].date: ")
