"""Defect 8: the word ``javascript:`` in a node label (plain text) made `report` refuse the
whole report, without saying where: the SVG check tested tooltips (text) as if they were URLs."""

from __future__ import annotations

import shutil

import pytest

from peerevidence.records.schema import ChangeModel
from peerevidence.report.diagram import DiagramError, EdgeStyle, change_model_svg, check_svg
from projectkit import MINIMAL, load_yaml_text

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")


def _model(label: str) -> ChangeModel:
    data = load_yaml_text((MINIMAL / "evidence" / "change_model.yaml").read_text("utf-8"))
    data["nodes"][1]["label"] = label
    return ChangeModel.model_validate(data)


@needs_dot
def test_javascript_word_in_a_label_is_shown_as_text():
    label = 'Hope: javascript:alert(1) <script>"x"</script>'
    svg = change_model_svg(_model(label), {"E01": EdgeStyle("quantitative", "low")})
    assert "javascript:alert(1)" in svg  # shown, as escaped text
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg


def _svg(inner: str) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">{inner}</svg>'


def test_text_and_tooltips_may_say_javascript():
    check_svg(
        _svg('<g id="cm-node-hope"><a xlink:title="javascript:alert(1)"><text>javascript:x</text></a></g>')
    )


@pytest.mark.parametrize(
    "href", ["javascript:alert(1)", " javascript:alert(1)", "http://evil.example/", "data:text/html,x", "//x"]
)
def test_links_outside_the_page_are_refused_naming_the_node(href):
    svg = _svg(f'<g id="cm-node-hope"><a href="{href}"><text>Hope</text></a></g>')
    with pytest.raises(DiagramError, match=r"links outside the page .* \(in node 'hope'\)"):
        check_svg(svg)


def test_refusal_names_the_edge():
    svg = _svg('<g id="cm-edge-E01"><a xlink:href="javascript:alert(1)"><path d="M0 0"/></a></g>')
    with pytest.raises(DiagramError, match=r"\(in edge 'E01'\)"):
        check_svg(svg)


def test_fragment_links_are_accepted():
    check_svg(_svg('<g id="cm-edge-E01"><a xlink:href="#edge-E01"><path d="M0 0"/></a></g>'))


def test_event_handlers_and_scripts_are_still_refused():
    with pytest.raises(DiagramError, match="event-handler"):
        check_svg(_svg('<g id="cm-node-a" onclick="x()"/>'))
    with pytest.raises(DiagramError, match="<script>"):
        check_svg(_svg("<script>alert(1)</script>"))
