"""Regenerate docs/screenshots/ from reports/ (run `make run` first).

    .venv/bin/python docs/screenshots.py

Debian's Chromium through Playwright (no browser download), desktop 1400x900 and phone
390x844, as the README shows them.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        shots = [
            ("index-desktop.png", "index.html", DESKTOP, None),
            ("index-phone.png", "index.html", PHONE, None),
            ("outcome-readmission-desktop.png", "outcomes/readmission.html", DESKTOP, None),
            ("outcome-readmission-phone.png", "outcomes/readmission.html", PHONE, None),
            ("sof-phone.png", "index.html", PHONE, "#sof, #summary-of-findings, section.sof"),
            (
                "forest-personal-recovery.png",
                "outcomes/personal_recovery.html",
                DESKTOP,
                "figure.forest, .forest",
            ),
            ("robustness-personal-recovery.png", "outcomes/personal_recovery.html", DESKTOP, "#robustness"),
        ]
        for name, page_path, viewport, selector in shots:
            page = browser.new_page(viewport=viewport)
            page.goto((REPORTS / page_path).as_uri())
            element = page.query_selector(selector) if selector else None
            if element is not None:
                element.screenshot(path=str(OUT / name))
            else:
                page.screenshot(path=str(OUT / name))
            page.close()
            print(f"wrote docs/screenshots/{name}")
        browser.close()


if __name__ == "__main__":
    main()
