"""Defect 10: CSV errors named the wrong row.

A row with surplus fields was blamed on the next row (pandas turned the leading fields into
an index), and `pool-many` counted rows within each analysis rather than in the file.
"""

from __future__ import annotations

import pytest

from peerevidence.errors import DataError
from peerevidence.pooling.adhoc import effects_from_frame, read_csv, split_analyses
from projectkit import write

from .clirun import run


def test_row_with_surplus_fields_is_named(tmp_path):
    path = write(tmp_path, "s.csv", "study,yi,vi\nA,0.1,0.02\nB,0.2,0.03,9\nC,0.3,0.04\n")
    with pytest.raises(DataError) as info:
        read_csv(path)
    assert str(info.value) == f"{path}: row 3: has 4 field(s), the header has 3"


def test_surplus_field_on_the_first_row_is_not_an_index(tmp_path):
    path = write(tmp_path, "s.csv", "study,yi,vi\nA,0.1,0.02,extra\nB,0.2,0.03\n")
    with pytest.raises(DataError, match=r": row 2: has 4 field\(s\), the header has 3$"):
        read_csv(path)


def test_row_with_missing_fields_is_named(tmp_path):
    path = write(tmp_path, "s.csv", "study,yi,vi\nA,0.1,0.02\nB,0.2\n")
    with pytest.raises(DataError, match=r": row 3: has 2 field\(s\), the header has 3$"):
        read_csv(path)


def test_pool_many_names_the_row_of_the_file(tmp_path):
    text = "analysis,study,yi,vi\na,A,0.1,0.02\nb,B,0.2,0.03\na,C,0.3,0.04\nb,D,0.4,-1\n"
    path = write(tmp_path, "many.csv", text)
    frame = read_csv(path)
    messages = []
    for name, sub in split_analyses(frame, str(path)):
        try:
            effects_from_frame(sub, None, f"{path} [analysis {name}]")
        except DataError as exc:
            messages.append(str(exc))
    assert messages == [f"{path} [analysis b]: row 5: vi: must be > 0 (got -1)"]


def test_blank_lines_keep_row_numbers(tmp_path):
    path = write(tmp_path, "s.csv", "study,yi,vi\nA,0.1,0.02\n\nB,x,0.03\n")
    with pytest.raises(DataError, match=r": row 4: yi: not a number \(got 'x'\)$"):
        effects_from_frame(read_csv(path), None, str(path))


def test_pool_cli_reports_the_surplus_row(tmp_path):
    path = write(tmp_path, "s.csv", "study,yi,vi\nA,0.1,0.02\nB,0.2,0.03,9\n")
    proc = run("pool", path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{path}: row 3: has 4 field(s), the header has 3"
