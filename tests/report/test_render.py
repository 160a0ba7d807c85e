"""The HTML evidence report: safety (escaping, paths), determinism, and content.

Most tests render from the minimal test project (tests/data/minimal) with fit summaries
computed exactly (quadrature, no sampling), so they are fast. One test fits the project
with PyMC (few draws) and renders from the real fits and the real synthesis.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from peerevidence.errors import DataError, PeerEvidenceError
from peerevidence.pooling.fitting import AnalysisFit, RunResult
from peerevidence.report.render import Scale, fmt, render, safe_page
from peerevidence.synthesis import (
    Synthesis,
)
from projectkit import edit, exact_result, hand_synthesis, make_project, run_cli

PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
RAW_TAGS = ("<script>alert(1)</script>", "<img src=x onerror", "onerror=alert(2)>")


# --------------------------------------------------------------------------- cheap inputs


def html_files(reports: Path) -> dict[str, bytes]:
    files = sorted(reports.glob("*.html")) + sorted((reports / "outcomes").glob("*.html"))
    return {p.relative_to(reports).as_posix(): p.read_bytes() for p in files}


def block(html: str, edge: str) -> str:
    m = re.search(rf'<article class="edge[^"]*" id="edge-{edge}">(.*?)</article>', html, re.S)
    assert m, f"no block for {edge}"
    return m.group(1)


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path)


# --------------------------------------------------------------------------- tests


def test_render_writes_every_page_and_a_block_per_edge(project):
    result = exact_result(project)
    written = render(result, Synthesis())
    reports = project / "reports"
    names = {p.relative_to(reports).as_posix() for p in written}
    assert {"index.html", "references.html", "evidence_table.csv"} <= names
    for f in result.fits:
        assert f"outcomes/{f.analysis.name}.html" in names
    html = (reports / "index.html").read_text("utf-8")
    for edge in result.base.change_model.edges:
        assert f'id="edge-{edge.id}"' in html
        assert f'href="#edge-{edge.id}"' in html  # the diagram links to it
    ids = re.findall(r'<article class="edge[^"]*" id="edge-(\w+)"', html)
    assert ids == sorted(ids)
    refs = (reports / "references.html").read_text("utf-8")
    assert refs.index('id="ref-cohort2019"') < refs.index('id="ref-trial2020"')


def test_edge_without_data_says_evidence_gap(project):
    render(exact_result(project), Synthesis())
    html = (project / "reports" / "index.html").read_text("utf-8")
    gap = block(html, "E04")  # hope -> readmission: no outcome measures it
    assert "No quantitative evidence:" in gap and "(evidence gap)" in gap
    with_data = block(html, "E01")  # peer support -> hope: trial2020 pooled
    assert "No quantitative evidence" not in with_data
    assert "Pooled effect" in with_data and "REML" in with_data
    assert "Review" in with_data and "0.24" in with_data  # review2021 beside ours
    assert "Hope was measured but no numbers were given" in with_data  # cohort2019, not pooled


def test_ratio_outcome_is_shown_on_its_natural_scale(project):
    result = exact_result(project)
    render(result, Synthesis())
    fit = next(f for f in result.fits if f.analysis.name == "readmission")
    mu = fit.summary.mu
    # lower is better: OR = exp(-mu); the interval flips
    expected = f"OR {fmt(math.exp(-mu.q50))} ({fmt(math.exp(-mu.q975))} to {fmt(math.exp(-mu.q025))})"
    html = (project / "reports" / "index.html").read_text("utf-8")
    assert expected in block(html, "E03")
    assert expected in (project / "reports" / "outcomes" / "readmission.html").read_text("utf-8")


def test_scale_conversions():
    lower = Scale("logOR", -1.0, False, intervention="a vaccine", comparator="placebo")
    assert lower.natural(math.log(2)) == pytest.approx(0.5)
    assert lower.interval(0.1, 0.7) == pytest.approx((math.exp(-0.7), math.exp(-0.1)))
    assert lower.natural_desc == "OR (odds ratio), a vaccine vs placebo; below 1 favours a vaccine"
    assert Scale("logHR", 1.0, True, "x").natural(math.log(3)) == pytest.approx(3)
    assert Scale("fisher_z", 1.0, True).natural(math.atanh(0.3)) == pytest.approx(0.3)
    smd = Scale("SMD", 1.0, False)
    assert not smd.transformed and smd.natural(0.25) == 0.25
    assert fmt(-0.0001) == "0.00" and fmt(-1.234) == "\u22121.23" and fmt(None) == "–"


def test_injected_markup_renders_as_text(project):
    edit(project, "extraction/trial2020.yaml", "locator: Table 2\n", f"locator: '{PAYLOAD}'\n")
    edit(project, "extraction/trial2020.yaml", "timepoint: 6 months\n    form: continuous",
         f"timepoint: '{PAYLOAD}'\n    form: continuous")  # fmt: skip
    edit(project, "extraction/trial2020.yaml", "setting: Community mental health teams",
         f"setting: '{PAYLOAD}'")  # fmt: skip
    edit(project, "extraction/cohort2019.yaml", "reason: Hope was measured but no numbers were given",
         f"reason: '{PAYLOAD}'")  # fmt: skip
    edit(project, "evidence/change_model.yaml", "label: Hope\n", f"label: '{PAYLOAD}'\n")
    edit(project, "evidence/change_model.yaml", 'wording: "peer workers offer hope for the future"',
         f"wording: '{PAYLOAD}'")  # fmt: skip
    edit(project, "evidence/change_model.yaml", 'text: "She showed me it gets better."', f"text: '{PAYLOAD}'")
    edit(
        project,
        "references.bib",
        "title   = {A randomised trial of peer support}",
        f"title   = {{{PAYLOAD}}}",
    )
    edit(
        project, "references.bib", "author  = {Trial, A. and Arm, B.}", f"author  = {{{PAYLOAD} and Arm, B.}}"
    )
    result = exact_result(project)
    render(
        result, Synthesis(), changes=[{"analysis": PAYLOAD, "status": PAYLOAD, "studies_added": [PAYLOAD]}]
    )
    pages = html_files(project / "reports")
    assert len(pages) >= 4
    shown = 0
    for name, data in pages.items():
        text = data.decode("utf-8")
        for raw in RAW_TAGS:
            assert raw not in text, f"{name} contains raw {raw!r}"
        assert "<script" not in text.lower(), name
        shown += text.count("&lt;script&gt;alert(1)&lt;/script&gt;")
    index = pages["index.html"].decode("utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in block(index, "E01")  # wording, quote, node label
    assert "&lt;img src=x onerror=alert(2)&gt;" in index
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["outcomes/hope.html"].decode("utf-8")  # locator
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["references.html"].decode("utf-8")  # BibTeX
    assert shown >= 6


def test_rendering_twice_is_byte_identical_and_path_independent(project, tmp_path):
    result = exact_result(project)
    render(result, hand_synthesis(result))
    first = html_files(project / "reports")
    csv_first = (project / "reports" / "evidence_table.csv").read_bytes()
    render(exact_result(project), hand_synthesis(result))
    assert html_files(project / "reports") == first
    assert (project / "reports" / "evidence_table.csv").read_bytes() == csv_first
    other = make_project(tmp_path, "elsewhere")
    moved = exact_result(other)
    render(moved, hand_synthesis(moved))
    assert html_files(other / "reports") == first  # nothing path-dependent in any page
    for data in first.values():
        assert str(project).encode() not in data
        assert not re.search(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", data)  # no timestamps


@pytest.mark.parametrize(
    "name", ["../escape", "../../etc/passwd", "a/b", "/abs", "Hope", "x--", "", "a\x00b"]
)
def test_analysis_names_that_could_escape_reports_are_refused(tmp_path, name):
    with pytest.raises(DataError, match="refusing"):
        safe_page(tmp_path / "reports", name)


def test_render_refuses_a_fit_named_outside_reports(project, tmp_path):
    result = exact_result(project)
    bad = result.fits[0]
    analysis = dataclasses.replace(bad.analysis, name="../../outside")
    result.fits.append(AnalysisFit(analysis, bad.key, True, 0.0, bad.summary))
    with pytest.raises(DataError, match="refusing"):
        render(result, Synthesis())
    assert not (project / "outside.html").exists() and not (tmp_path / "outside.html").exists()
    assert not (project / "reports" / "index.html").exists()  # refused before writing anything


def test_synthesis_sections_are_rendered(project):
    result = exact_result(project)
    changes = [
        {"analysis": "hope", "status": "changed", "studies_added": ["trial2020"], "studies_removed": [],
         "d_mu": 0.1, "d_width": -0.05, "certainty_before": "low", "certainty_after": "moderate"},
        {"analysis": "readmission", "status": "unchanged", "studies_added": [], "studies_removed": [],
         "d_mu": 0.0, "d_width": 0.0, "certainty_before": None, "certainty_after": None},
    ]  # fmt: skip
    render(result, hand_synthesis(result), changes)
    html = (project / "reports" / "index.html").read_text("utf-8")
    assert "reviewer judged the trial small" in html and "Rated down 1 level for risk of bias" in html
    assert 'class="level level-low"' in block(html, "E01")
    assert "EXPLORATORY" in html and "the link is causal" in html and "Tentative." in html
    assert "crosses 0.95" in html and 'class=" flip"' in html
    section = html[html.index('id="changes"') :]
    assert "changed" in section and "Unchanged: 1 other analysis" in section
    hope = (project / "reports" / "outcomes" / "hope.html").read_text("utf-8")
    assert "halfcauchy:0.5" in hope and "Prior sensitivity" in hope
    assert 'href="../index.html#edge-E01"' in hope


def test_outcome_page_shows_diagnostics_data_and_a_failed_check_loudly(project):
    result = exact_result(project)
    i, fit = next((i, f) for i, f in enumerate(result.fits) if f.analysis.name == "hope")
    failed = dataclasses.replace(fit.summary.exact_check, ok=False, max_sd_discrepancy=0.4, max_z=9.0)
    result.fits[i] = dataclasses.replace(fit, summary=dataclasses.replace(fit.summary, exact_check=failed))
    render(result, Synthesis())
    page = (project / "reports" / "outcomes" / "hope.html").read_text("utf-8")
    assert "FAILED: the sampler disagrees with the exact posterior" in page
    assert "<svg" in page and "Pooled effect (posterior median, 95% CrI)" in page  # forest plot
    assert "HHI 33.1 (5.2) vs 31.0 (5.5)" in page  # snippet
    assert "extraction/trial2020.yaml:" in page  # record file:line
    assert "Divergent transitions" in page and "normal:0:1" in page
    index = (project / "reports" / "index.html").read_text("utf-8")
    assert "fits that failed their check" in index


def test_evidence_csv_has_outcome_labels(project):
    render(exact_result(project), Synthesis())
    lines = (project / "reports" / "evidence_table.csv").read_text("utf-8").splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["study", "outcome", "outcome_label"]
    assert any(",hope,Hope," in line for line in lines[1:])


def test_generated_svg_is_checked(tmp_path):
    from peerevidence.report.diagram import DiagramError, check_svg

    check_svg('<svg xmlns="http://www.w3.org/2000/svg"><a href="#edge-E01"><path d="M0 0"/></a></svg>')
    for bad in (
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        '<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)"><path/></a></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
    ):
        with pytest.raises(DiagramError):
            check_svg(bad)


def test_missing_graphviz_is_one_clear_error(project, monkeypatch, tmp_path):
    result = exact_result(project)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PeerEvidenceError, match="apt-get install graphviz"):
        render(result, Synthesis())


def test_report_modules_do_not_import_pymc():
    code = (
        "import sys, peerevidence.report.render, peerevidence.report.forest, peerevidence.report.diagram; "
        "bad = [m for m in ('pymc', 'pytensor', 'nutpie') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_report_without_fits_is_one_line_and_exit_1(project):
    res = run_cli("report", "--project", project)
    assert res.code == 1
    lines = [x for x in res.err.splitlines() if x.strip()]
    assert len(lines) == 1 and "no current fit" in lines[0], res.err
    assert "Traceback" not in res.text


@pytest.mark.slow
def test_fitted_project_renders_from_real_fits(project, models):
    """Fit the minimal project with PyMC (few draws), synthesise, render, rerender identically."""
    import warnings

    from peerevidence.pooling.fitting import load_fits, run_fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_fits(project, {"draws": 100, "tune": 100}, models=models)
    try:
        from peerevidence.synthesis import synthesise
    except ImportError:  # pragma: no cover - before the lead's synthesis lands
        synthesis = Synthesis()
    else:
        synthesis = synthesise(result)
    render(result, synthesis)
    first = html_files(project / "reports")
    assert {f"outcomes/{f.analysis.name}.html" for f in result.fits} <= set(first)
    # `peerevidence report` reads the stored fits back: same pages, byte for byte
    again = load_fits(project, {"draws": 100, "tune": 100})
    render(again, synthesise(again) if synthesis.certainty else Synthesis())
    assert html_files(project / "reports") == first
    hope = first["outcomes/hope.html"].decode("utf-8")
    assert "R̂" in hope and "Effective sample size" in hope


def test_an_evidence_base_without_fits_still_renders(project):
    result = exact_result(project)
    empty = RunResult(result.base, result.table, [], {})
    written = render(empty, None)
    html = (project / "reports" / "index.html").read_text("utf-8")
    assert "No quantitative evidence" not in block(html, "E01")  # data exist, just no fit
    assert all(p.parent.name != "outcomes" for p in written)
    assert "No prior-sensitivity analysis is available" in html


def test_cached_svg_is_redrawn_when_the_drawing_code_changes(tmp_path, monkeypatch):
    from peerevidence.report import render as report
    from peerevidence.report.layout import ReportPaths

    builder = ReportPaths(tmp_path)
    assert report.cached_svg(builder, "forest", ("k",), lambda: "<svg>A</svg>") == "<svg>A</svg>"
    # same inputs, same code: the cached drawing is reused
    assert report.cached_svg(builder, "forest", ("k",), lambda: "<svg>B</svg>") == "<svg>A</svg>"
    monkeypatch.setattr(report, "_code_hashes", lambda names: {n: "edited" for n in names})
    assert report.cached_svg(builder, "forest", ("k",), lambda: "<svg>B</svg>") == "<svg>B</svg>"


def _luminance(hex_colour: str) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour."""
    if len(hex_colour) == 4:  # #abc -> #aabbcc
        hex_colour = "#" + "".join(c * 2 for c in hex_colour[1:])
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_certainty_badges_meet_wcag_aa_contrast():
    css = (
        Path(__import__("peerevidence.report", fromlist=["x"]).__file__).parent / "templates" / "report.css"
    ).read_text()
    found = re.findall(
        r"\.level-(\w+) \{ background: (#[0-9a-fA-F]{3,6}); color: (#[0-9a-fA-F]{3,6}); \}", css
    )
    assert {name for name, _, _ in found} >= {"high", "moderate", "low", "very_low"}
    for name, bg, fg in found:
        hi, lo = sorted((_luminance(bg), _luminance(fg)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, (name, bg, fg)


def test_headings_never_skip_a_level(project):
    result = exact_result(project)
    render(result, hand_synthesis(result))
    for name, data in html_files(project / "reports").items():
        levels = [int(h) for h in re.findall(rb"<h([1-6])[\s>]", data)]
        assert levels and levels[0] == 1, name
        jumps = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
        assert not jumps, (name, jumps)


def test_a_first_run_shows_no_what_changed_table(project):
    result = exact_result(project)
    added = [
        {"analysis": f.analysis.name, "status": "added", "studies_added": ["trial2020"]} for f in result.fits
    ]
    render(result, Synthesis(), changes=added)
    html = (project / "reports" / "index.html").read_text("utf-8")
    assert 'id="changes"' not in html and "What changed" not in html


def test_outcome_pages_say_how_each_effect_was_computed_in_words(project):
    render(exact_result(project), Synthesis())
    hope = (project / "reports" / "outcomes" / "hope.html").read_text("utf-8")
    assert "Computed as: SMD (Hedges&#39; g) from the arms&#39; means, SDs and sizes." in hope
    assert "[smd]" not in hope
