"""GRADE informative statements (synthesis/statements.py): the documented rule, cell by cell.

Expected sentences follow Santesso et al. 2020 (GRADE guidelines 26, Table 2): high
certainty "reduces", moderate "probably reduces", low "may reduce", very low "the evidence
is very uncertain about the effect of ... on ..."; "slightly" for a small important effect,
"little or no difference" below the MID.
"""

from __future__ import annotations

import pytest

from peerevidence.synthesis.statements import certainty_label, size, statement


@pytest.mark.parametrize(
    ("effect", "certainty", "lower", "expected"),
    [
        (0.9, "high", False, "Peer support improves hope."),
        (0.3, "moderate", False, "Peer support probably improves hope slightly."),
        (0.3, "low", True, "Peer support may reduce hope slightly."),
        (-0.6, "moderate", True, "Peer support probably increases hope."),
        (-0.6, "high", False, "Peer support worsens hope."),
        (0.1, "high", False, "Peer support makes little or no difference to hope."),
        (-0.1, "low", False, "Peer support may make little or no difference to hope."),
        (2.0, "very_low", False, "The evidence is very uncertain about the effect of peer support on hope."),
    ],
)
def test_statement_rule(effect, certainty, lower, expected):
    assert statement("peer support", "Hope", effect, 0.2, certainty, lower) == expected


def test_size_boundaries_against_the_mid():
    assert size(0.199, 0.2) == "trivial"
    assert size(0.2, 0.2) == "slight" and size(-0.499, 0.2) == "slight"
    assert size(0.5, 0.2) == "important"
    with pytest.raises(ValueError):
        size(0.3, 0)


def test_outcome_labels_keep_acronyms_and_unknown_certainty_is_refused():
    assert statement("BCG vaccination", "TB cases", 0.7, 0.2, "moderate", True) == (
        "BCG vaccination probably reduces TB cases."
    )
    with pytest.raises(ValueError, match="accepted"):
        statement("x", "y", 0.1, 0.2, "certain")


def test_grade_symbols():
    assert certainty_label("high") == "⊕⊕⊕⊕ High"
    assert certainty_label("very_low") == "⊕◯◯◯ Very low"
