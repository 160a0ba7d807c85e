"""Defect 14: text starting with = + - @ went into CSV exports unescaped (formula injection)."""

from __future__ import annotations

import io

import pandas as pd

from peerevidence.atomic import csv_safe, csv_text, write_csv


def test_formula_text_is_prefixed_numbers_are_not(tmp_path):
    frame = pd.DataFrame(
        {
            "study": ['=HYPERLINK("http://x")', "+cmd", "-2+3", "@SUM(A1)", "plain"],
            "yi": [-0.3, 0.1, -1.0, 2.0, 0.0],
        }
    )
    target = tmp_path / "out.csv"
    write_csv(target, frame)
    back = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert back["study"].tolist() == ['\'=HYPERLINK("http://x")', "'+cmd", "'-2+3", "'@SUM(A1)", "plain"]
    assert back["yi"].tolist() == ["-0.3", "0.1", "-1.0", "2.0", "0.0"]


def test_csv_text_escapes_headers_and_keeps_options():
    frame = pd.DataFrame({"=a": ["x"], "b": [-0.123456789012]})
    text = csv_text(frame, float_format="%.3g", lineterminator="\n")
    assert text == "'=a,b\nx,-0.123\n"


def test_csv_safe_leaves_non_strings():
    assert csv_safe(-0.3) == -0.3
    assert csv_safe(None) is None
    assert csv_safe("-") == "'-"


def test_evidence_csv_escapes_formula_text():
    from types import SimpleNamespace

    from peerevidence.report import render

    builder = SimpleNamespace(  # the two attributes evidence_csv reads
        table=pd.DataFrame({"outcome": ["hope"], "study": ["=1+1"], "yi": [-0.3]}),
        outcomes={"hope": SimpleNamespace(label="@Hope")},
    )
    rows = list(pd.read_csv(io.StringIO(render.evidence_csv(builder)), dtype=str).itertuples(index=False))
    assert rows[0] == ("hope", "'@Hope", "'=1+1", "-0.3")


def test_every_csv_export_goes_through_the_escaping_helper():
    """No module but peerevidence.atomic calls DataFrame.to_csv directly."""
    from projectkit import REPO_ROOT

    src = REPO_ROOT / "src" / "peerevidence"
    offenders = [
        p.relative_to(src).as_posix()
        for p in src.rglob("*.py")
        if ".to_csv(" in p.read_text("utf-8") and p.name != "atomic.py"
    ]
    assert offenders == []
