"""The report in a real browser: Debian's headless Chromium driven by Playwright.

Never downloads a browser: Playwright is pointed at the system ``chromium``
(``make test`` installs it with apt-get when it is missing). Without it the test fails,
it does not skip: the report's linking is part of what the suite promises.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peerevidence.report.render import render
from projectkit import exact_result, hand_synthesis, make_project

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EDGE = "E03"  # peer support -> readmission in the minimal project (quantitative)


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "Debian's chromium is not installed (no `chromium` on PATH, no /usr/bin/chromium); "
            "run `make test`, which installs it with apt-get, or `apt-get install chromium`"
        )
    return path


@pytest.fixture
def report(tmp_path) -> Path:
    root = make_project(tmp_path)
    result = exact_result(root)
    render(result, hand_synthesis(result))
    return root / "reports" / "index.html"


def test_clicking_an_edge_in_the_diagram_shows_its_evidence(report, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda r: requests.append(r.url))
            page.on(
                "console",
                lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")

            links = page.locator(f'#diagram svg a[href="#edge-{EDGE}"]')  # the arrow and its label
            assert links.count() >= 1
            link = links.last
            link.scroll_into_view_if_needed()
            link.click()
            page.wait_for_function(f"location.hash === '#edge-{EDGE}'")

            assert page.evaluate("location.hash") == f"#edge-{EDGE}"
            assert page.evaluate(
                "document.querySelector(':target') && document.querySelector(':target').id"
            ) == (f"edge-{EDGE}")
            block = page.locator(f"#edge-{EDGE}")
            assert block.is_visible()
            box = page.evaluate(
                f"""(() => {{
                    const r = document.getElementById('edge-{EDGE}').getBoundingClientRect();
                    return {{top: r.top, bottom: r.bottom, height: window.innerHeight}};
                }})()"""
            )
            assert 0 <= box["top"] < box["height"], box  # the block's top is in the viewport
            assert block.evaluate("el => getComputedStyle(el).outlineStyle") != "none"  # :target styling
            assert "Pooled effect" in block.inner_text()
            page.screenshot(path=str(tmp_path / "edge-click.png"))
            page.screenshot(path=str(tmp_path / "full.png"), full_page=True)
        finally:
            browser.close()

    assert not problems, problems
    outside = [u for u in requests if not u.startswith("file://")]
    assert not outside, f"the report made network requests: {outside}"
    assert requests and all(u.startswith("file://") for u in requests)
    assert (tmp_path / "edge-click.png").stat().st_size > 0


@pytest.fixture
def synthesised(tmp_path) -> Path:
    from peerevidence.synthesis import synthesise

    root = make_project(tmp_path)
    result = exact_result(root)
    render(result, synthesise(result))
    return root / "reports"


VIEWPORTS = [(390, 844), (1400, 900)]


def test_no_page_scrolls_sideways_and_the_sof_is_on_the_first_screen(synthesised, tmp_path):
    from playwright.sync_api import sync_playwright

    pages = [synthesised / "index.html", synthesised / "references.html"]
    pages += sorted((synthesised / "outcomes").glob("*.html"))
    too_wide: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            for width, height in VIEWPORTS:
                page = browser.new_page(viewport={"width": width, "height": height})
                for path in pages:
                    page.goto(path.as_uri())
                    page.wait_for_load_state("load")
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    if scroll > width:
                        too_wide.append(f"{path.name} at {width}px: {scroll}px wide")
                    if path.name == "index.html":
                        # the readmission row of the Summary of Findings: GRADE symbols, per 1,000
                        row = page.locator(
                            "table.sof tr", has=page.locator('a[href="outcomes/readmission.html"]')
                        )
                        text = row.inner_text()
                        assert "⊕" in text and "per 1,000" in text, text
                        if width >= 1400:
                            top = page.evaluate(
                                "document.querySelector('table.sof').getBoundingClientRect().top"
                            )
                            assert top < height, f"the Summary of Findings starts at {top}px"
                        page.screenshot(path=str(tmp_path / f"index-{width}.png"))
                page.close()
        finally:
            browser.close()
    assert not too_wide, too_wide
