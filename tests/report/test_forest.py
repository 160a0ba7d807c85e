"""Forest plot layout: study labels stay inside their column."""

from __future__ import annotations

import pytest
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath

from peerevidence.report.forest import LABEL_CHARS, ForestData, ForestRow, forest_svg, split_label

# The Study column runs from 0.015 to the Design column at 0.215 of a 10-inch figure.
COLUMN_PT = (0.215 - 0.015) * 10 * 72
LONG_LABELS = [
    "van Gestel-Timmermans et al. 2012",  # the label that ran into the Design column
    "Lloyd-Evans, Mayo-Wilson, Harrison et al. 2014",
    "Ranzenhofer-Wilfley-Tanofsky-Kraff et al. 2020",
    "Supercalifragilisticexpialidociousness 2020",  # no space to cut at
]


def _width_pt(text: str) -> float:
    path = TextPath((0, 0), text, size=8.5, prop=FontProperties(family="DejaVu Sans"))
    return path.get_extents().width


@pytest.mark.parametrize("label", LONG_LABELS)
def test_long_labels_split_into_lines_that_fit_the_column(label):
    first, rest = split_label(label)
    assert rest, "a label longer than the column must continue on a second line"
    for line in (first, rest):
        assert len(line) <= LABEL_CHARS
        assert _width_pt(line) < COLUMN_PT - 4, line
    if " " in label[: LABEL_CHARS + 1]:
        assert label.startswith(first + " ")  # cut at a space, nothing lost from the first line


def test_short_labels_are_left_alone():
    assert split_label("Johnson et al. 2018") == ("Johnson et al. 2018", "")


def test_forest_svg_draws_both_lines_of_a_long_label():
    label = "van Gestel-Timmermans et al. 2012"
    row = ForestRow(label, "RCT", "260", "high", 0.1, -0.1, 0.3, 0.5)
    svg = forest_svg(ForestData("t", "SMD", [row], pooled=(0.1, -0.1, 0.3)))
    first, rest = split_label(label)
    assert f">{first}<" in svg
    assert f">{rest}<" in svg
    assert label not in svg
