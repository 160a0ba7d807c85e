"""Issue 12, defects 7 and 8: effect sizes and ``pool`` input checks as metafor has them.

Expected effect sizes come from tests/data/metafor/effects.json (metafor 3.8-1 escalc(),
written by tests/data/metafor/make_reference.R).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from peerevidence.errors import DataError
from peerevidence.pooling.adhoc import effects_from_frame
from peerevidence.stats import effects
from peerevidence.stats.priors import parse_tau_prior

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "metafor"
ESCALC = json.loads((FIXTURES / "effects.json").read_text("utf-8"))


def frame(text: str) -> pd.DataFrame:
    rows = [line.split(",") for line in text.strip().splitlines()]
    return pd.DataFrame(rows[1:], columns=rows[0])


# ---------------------------------------------------------------- defect 7: SMD with n = 3


def test_smd_with_three_participants_is_undefined_like_escalc():
    a = ESCALC["smd_n3"]["args"]
    assert ESCALC["smd_n3"]["yi"] is None  # escalc: NA
    g, v = effects.smd(a["m1i"], a["sd1i"], a["n1i"], a["m2i"], a["sd2i"], a["n2i"])
    assert math.isnan(float(g)) and math.isnan(float(v))


def test_smd_with_four_participants_matches_escalc():
    a = ESCALC["smd_n4"]["args"]
    g, v = effects.smd(a["m1i"], a["sd1i"], a["n1i"], a["m2i"], a["sd2i"], a["n2i"])
    assert float(g) == pytest.approx(ESCALC["smd_n4"]["yi"], abs=1e-12)
    assert float(v) == pytest.approx(ESCALC["smd_n4"]["vi"], abs=1e-12)


def test_pool_rejects_smd_with_three_participants():
    text = "study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,1,1,2,0,1,1\nB,1,1,10,0,1,10\n"
    with pytest.raises(DataError) as err:
        effects_from_frame(frame(text), "SMD", "c.csv")
    assert str(err.value).startswith("c.csv: row 2: n1i + n2i: SMD needs at least 4 participants")


# ---------------------------------------------------------------- defect 8: pool inputs


def test_duplicate_study_names_are_an_error_naming_both_rows():
    text = "study,yi,vi\nA,0.1,0.02\nB,0.2,0.03\nA,0.3,0.04\n"
    with pytest.raises(DataError) as err:
        effects_from_frame(frame(text), None, "c.csv")
    assert str(err.value) == (
        "c.csv: row 4: study: 'A' repeats row 2 (each study once; give distinct names to distinct studies)"
    )


def test_yi_vi_and_raw_columns_together_need_a_choice():
    text = "study,yi,vi,ai,bi,ci,di\nA,0.5,0.2,3,7,5,5\nB,0.1,0.3,4,6,4,6\n"
    with pytest.raises(DataError) as err:
        effects_from_frame(frame(text), None, "c.csv")
    msg = str(err.value)
    assert msg.startswith("c.csv: both yi,vi and ai,bi,ci,di columns given")
    assert "--columns yi" in msg and "--columns raw" in msg
    data, measure = effects_from_frame(frame(text), None, "c.csv", columns="yi")
    assert (measure, list(data.yi)) == ("GEN", [0.5, 0.1])
    data, measure = effects_from_frame(frame(text), None, "c.csv", columns="raw")
    assert measure == "OR"
    assert data.yi[0] == pytest.approx(math.log(3 * 5 / (7 * 5)))


@pytest.mark.parametrize("key,measure", [("or_fractional", "OR"), ("rr_fractional", "RR")])
def test_non_integer_counts_are_accepted_like_escalc_with_a_note(key, measure):
    a = ESCALC[key]["args"]
    text = f"study,ai,bi,ci,di\nA,{a['ai']},{a['bi']},{a['ci']},{a['di']}\n"
    notes: list[str] = []
    data, _ = effects_from_frame(frame(text), measure, "c.csv", notes=notes)
    assert data.yi[0] == pytest.approx(ESCALC[key]["yi"], abs=1e-12)
    assert data.vi[0] == pytest.approx(ESCALC[key]["vi"], abs=1e-12)
    assert len(notes) == 1 and "non-integer counts" in notes[0] and "ai row 2 (2.5)" in notes[0]


def test_rhodes_overall_is_named_so_and_any_still_parses():
    overall = parse_tau_prior("rhodes2015:overall")
    old = parse_tau_prior("rhodes2015:any")
    assert overall.params == old.params == (-3.44, 2.59)
    assert overall.family == "logt2"


def test_pool_many_errors_name_the_file_line(tmp_path):
    """Within ``pool-many`` the rows of one analysis keep their line in the file."""
    from peerevidence.pooling.adhoc import read_csv, split_analyses

    path = tmp_path / "many.csv"
    path.write_text("analysis,study,yi,vi\nx,A,0.1,0.02\ny,A,0.2,0.03\nx,B,0.3,0.04\ny,A,0.5,0.05\n")
    groups = dict(split_analyses(read_csv(path), "many.csv"))
    effects_from_frame(groups["x"], None, "many.csv [analysis x]")
    with pytest.raises(DataError) as err:
        effects_from_frame(groups["y"], None, "many.csv [analysis y]")
    assert str(err.value).startswith("many.csv [analysis y]: row 5: study: 'A' repeats row 3 ")
