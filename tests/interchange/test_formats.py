"""Importers and exporters: located errors on bad input, and round trips that give back the
same numbers (RevMan study-centric CSVs, RIS, metafor CSV)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from peerevidence.errors import RecordError
from peerevidence.interchange.csvsafe import csv_text, safe_csv_cell, unescape_cell, write_csv
from peerevidence.interchange.exporters import write_exports
from peerevidence.interchange.importers import (
    import_ris,
    read_metafor_csv,
    read_revman_analysis,
    read_revman_study_results,
)
from peerevidence.pooling.table import evidence_table
from peerevidence.records.bib import load_bibliography
from peerevidence.records.project import load_project
from peerevidence.stats import effects
from projectkit import DATA, make_project, problems, run_cli

HERE = DATA / "interchange"
BCG = json.loads((DATA / "metafor_reference.json").read_text())["bcg"]


# --------------------------------------------------------------------------- csvsafe


@pytest.mark.parametrize("cell", ["=SUM(A1:A9)", "+1+1", "-2+3", "@cmd", "\tx", '=HYPERLINK("http://x")'])
def test_formula_cells_are_escaped_and_read_back(cell):
    assert safe_csv_cell(cell) == "'" + cell
    assert unescape_cell(safe_csv_cell(cell)) == cell


def test_numbers_and_plain_text_are_left_alone():
    assert [safe_csv_cell(v) for v in (-0.5, 3, None, float("nan"), "Smith 2020", True)] == [
        "-0.5",
        "3",
        "",
        "",
        "Smith 2020",
        "TRUE",
    ]
    assert csv_text(["a", "b"], [["=1", -1.25]]) == "a,b\n'=1,-1.25\n"


def test_write_csv_is_atomic_and_safe(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["study"], [["=cmd|' /C calc'!A0"]])
    assert path.read_text() == "study\n'=cmd|' /C calc'!A0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


# --------------------------------------------------------------------------- metafor CSV


def test_metafor_csv_gives_one_draft_per_study_with_located_numbers():
    drafts = read_metafor_csv(HERE / "dat_bcg.csv", "primary_outcome", timepoint="end of follow-up")
    assert [d.key for d in drafts][:3] == ["aronson1948", "ferguson1949", "rosenthal1960"]
    first = drafts[0].data["results"][0]
    assert first["intervention"] == {"events": 4, "total": 123}
    assert first["control"] == {"events": 11, "total": 139}
    assert first["source"] == {
        "kind": "dataset",
        "ref": "dat_bcg",
        "locator": "dat_bcg.csv row 1, columns study, ai, bi, ci, di",
    }
    # the counts give metafor's log risk ratios exactly
    cells = [
        [
            (r := d.data["results"][0])["intervention"]["events"],
            r["intervention"]["total"] - r["intervention"]["events"],
            r["control"]["events"],
            r["control"]["total"] - r["control"]["events"],
        ]
        for d in drafts
    ]
    y, _ = effects.log_rr(*np.array(cells, dtype=float).T)
    np.testing.assert_allclose(y, BCG["yi"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("study,ai,bi,ci,di\nA 2001,4,x,1,2\n", "bad.csv:2: bi: 'x' is not a number"),
        (
            "study,ai,bi,ci,di\nA 2001,4,5,1,2\nB 2002,1.5,5,1,2\n",
            "bad.csv:3: ai: '1.5' is not a whole count (0, 1, 2, ...)",
        ),
        ("study,ai,n1i,ci,n2i\nA 2001,9,5,1,2\n", "bad.csv:2: ai: 9 events exceed the total 5"),
        ("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA 2001,1,-2,10,1,2,10\n", "bad.csv:2: sd1i: must be > 0 (got -2)"),
        (
            "study,foo\nA,1\n",
            "bad.csv:1: header: no known set of data columns (accepted: ai, bi, ci, di; "
            "ai, n1i, ci, n2i; m1i, sd1i, n1i, m2i, sd2i, n2i; yi, vi)",
        ),
        ("study,ai,bi,ci,di\n", "bad.csv:1: no data rows"),
    ],
)
def test_metafor_csv_bad_input_is_one_located_line(tmp_path, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(RecordError) as info:
        read_metafor_csv(path, "hope")
    assert str(info.value) == expected


def test_import_csv_command_writes_drafts_that_validate_with_their_todos_listed(tmp_path):
    root = make_project(tmp_path)
    src = tmp_path / "trial.csv"
    src.write_text("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nSpare 2021,30.1,5.2,50,28.0,5.5,48\n")
    result = run_cli("import-csv", src, "--outcome", "hope", "--project", root)
    assert result.code == 0, result.err
    draft = (root / "extraction" / "spare2021.yaml").read_text()
    assert "locator: trial.csv row 1, columns study, m1i, sd1i, n1i, m2i, sd2i, n2i" in draft
    found = problems(root)
    assert found and all(p.startswith("extraction/spare2021.yaml:") for p in found), found
    assert any("design: placeholder 'TODO'" in p for p in found)
    assert any("results[0].source.ref: 'trial' is not a key in references.bib" in p for p in found)
    again = run_cli("import-csv", src, "--outcome", "hope", "--project", root)
    assert again.code == 2 and "already exist" in again.err


# --------------------------------------------------------------------------- RevMan


def test_revman_data_package_rows_become_drafts():
    drafts = {
        d.key: d
        for d in read_revman_analysis(
            HERE / "revman_analysis.csv",
            {"Tuberculosis": "tb", "Tuberculosis (GIV)": "tb", "Quality of life": "quality_of_life"},
            giv_measure="RR",
        )
    }
    assert sorted(drafts) == [
        "aronson1948",
        "boevink2016",
        "ferguson1949",
        "frimodt1973",
        "hart1977",
        "rosenthal1960",
    ]
    assert drafts["aronson1948"].data["results"][0]["intervention"] == {"events": 4, "total": 123}
    giv = drafts["hart1977"].data["results"][0]
    # RevMan keeps GIV ratios on the log scale: the draft holds the ratio and the log-scale SE
    assert giv["measure"] == "RR"
    assert math.log(giv["estimate"]) == pytest.approx(BCG["yi"][3], abs=1e-12)
    assert giv["se"] ** 2 == pytest.approx(BCG["vi"][3], abs=1e-12)
    qol = drafts["boevink2016"].data["results"][0]
    assert (qol["outcome"], qol["timepoint"]) == ("quality_of_life", "post-test (12 months)")
    assert qol["intervention"] == {"n": 64, "mean": 4.63, "sd": 1.28}
    assert qol["control"] == {"n": 72, "mean": 4.49, "sd": 1.18}
    assert qol["source"]["locator"] == (
        "revman_analysis.csv row 6, columns Study, Study year, Experimental mean, Experimental SD, "
        "Experimental N, Control mean, Control SD, Control N"
    )


def test_revman_bad_rows_are_located(tmp_path):
    rows = (HERE / "revman_analysis.csv").read_text().splitlines()
    bad = tmp_path / "rm.csv"
    bad.write_text("\n".join([rows[0], rows[1].replace(",4,123,", ",four,123,")]) + "\n")
    with pytest.raises(RecordError) as info:
        read_revman_analysis(bad)
    assert str(info.value) == "rm.csv:2: Experimental cases: 'four' is not a number"
    giv = tmp_path / "giv.csv"
    giv.write_text("\n".join([rows[0], rows[4]]) + "\n")
    with pytest.raises(RecordError) as info:
        read_revman_analysis(giv)
    assert str(info.value) == (
        "giv.csv:2: GIV Mean: generic inverse-variance data need --giv-measure (accepted: SMD, MD, OR, RR, HR)"
    )


# --------------------------------------------------------------------------- round trips


@pytest.fixture
def exported(tmp_path):
    root = make_project(tmp_path)
    base, errors = load_project(root)
    assert not errors
    files = write_exports(base, evidence_table(base), root / "reports")
    return root, base, files


def test_exports_are_written_inside_the_project(exported):
    root, _, files = exported
    names = {p.relative_to(root).as_posix() for p in files}
    assert {
        "reports/exports/references.ris",
        "reports/exports/references.json",
        "reports/exports/revman/study_information.csv",
        "reports/exports/revman/study_arms.csv",
        "reports/exports/revman/study_results.csv",
        "reports/exports/revman/risk_of_bias.csv",
        "reports/exports/evidence_table.csv",
    } <= names
    assert any(n.startswith("reports/exports/robvis/") for n in names)


def test_revman_study_centric_round_trip_gives_back_the_numbers(exported):
    root, base, _ = exported
    drafts = {
        d.key: d
        for d in read_revman_study_results(
            root / "reports/exports/revman/study_results.csv",
            root / "reports/exports/revman/study_information.csv",
        )
    }
    compared = 0
    for key, loaded in base.records.items():
        rec = loaded.record
        back = (
            {(r["outcome"], r["timepoint"]): r for r in drafts[key].data["results"]} if key in drafts else {}
        )
        assert drafts[key].data["design"] == rec.design if key in drafts else True
        for r in rec.results:
            if r.form in ("continuous", "binary"):
                got = back[(r.outcome, r.timepoint)]
                assert got["intervention"] == r.intervention.model_dump()
                assert got["control"] == r.control.model_dump()
                compared += 1
            elif r.form == "effect":
                got = back[(r.outcome, r.timepoint)]
                assert (got["measure"], got["estimate"]) == (r.measure, r.estimate)
                assert (got.get("ci_low"), got.get("ci_high"), got.get("se")) == (r.ci_low, r.ci_high, r.se)
                compared += 1
    assert compared >= 4


def test_ris_round_trip_gives_back_every_reference(exported, tmp_path):
    root, base, _ = exported
    bib = tmp_path / "new.bib"
    keys = import_ris(root / "reports/exports/references.ris", bib)
    assert sorted(keys) == sorted(base.bib.keys())
    back, errors = load_bibliography(bib)
    assert errors == []
    for key in base.bib.keys():  # noqa: SIM118
        a, b = base.bib[key], back[key]
        assert (b.get("title"), b.year, b.doi, b.authors()) == (a.get("title"), a.year, a.doi, a.authors())
    # importing again adds nothing: every key (and DOI) is already there
    assert import_ris(root / "reports/exports/references.ris", bib) == []


def test_metafor_csv_round_trip_gives_back_yi_and_vi(exported, tmp_path):
    root, _, _ = exported
    with open(root / "reports/exports/evidence_table.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["outcome"] == "hope" and r["yi"]]
    assert rows
    sub = tmp_path / "hope.csv"
    write_csv(
        sub,
        ["study", "yi", "vi", "measure"],
        [[r["study"], float(r["yi"]), float(r["vi"]), r["measure"]] for r in rows],
    )
    drafts = read_metafor_csv(sub, "hope")
    for r, d in zip(rows, drafts, strict=True):
        res = d.data["results"][0]
        assert res["estimate"] == pytest.approx(float(r["yi"]), abs=1e-12)
        assert res["se"] ** 2 == pytest.approx(float(r["vi"]), abs=1e-12)


def test_evidence_table_has_metafor_columns(exported):
    root, _base, _ = exported
    with open(root / "reports/exports/evidence_table.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames[:7] == ["slab", "study", "outcome", "yi", "vi", "sei", "measure"]
    for r in rows:
        if r["vi"]:
            assert float(r["sei"]) == pytest.approx(math.sqrt(float(r["vi"])), rel=1e-15)
    assert {r["measure"] for r in rows if r["pool_measure"] == "logOR"} == {"OR"}


def test_robvis_csv_per_tool_uses_the_tools_words(exported):
    root, _, _ = exported
    # trial2020: RoB 2, D1 low, D2 some_concerns, overall some_concerns
    assert (root / "reports/exports/robvis/rob-2.csv").read_text() == (
        "Study,D1,D2,Overall\nTrial & Arm 2020,Low,Some concerns,Some concerns\n"
    )
    # cohort2019: ROBINS-I, overall high -> "Serious" (ROBINS-I's word for it)
    assert (
        root / "reports/exports/robvis/robins-i.csv"
    ).read_text() == "Study,Overall\nCohort 2019,Serious\n"


def test_export_command_escapes_formula_cells(tmp_path):
    root = make_project(tmp_path)
    path = next(p for p in (root / "extraction").glob("*.yaml") if "setting:" in p.read_text())
    text = path.read_text()
    setting = next(line for line in text.splitlines() if line.startswith("setting:"))
    path.write_text(text.replace(setting, "setting: '=HYPERLINK(\"http://example.org\")'"))
    result = run_cli("export", "--project", root)
    assert result.code == 0, result.err
    info = (root / "reports/exports/revman/study_information.csv").read_text()
    assert '"\'=HYPERLINK(""http://example.org"")"' in info
    assert "=HYPERLINK" not in info.replace("'=HYPERLINK", "")
