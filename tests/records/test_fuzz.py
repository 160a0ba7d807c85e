"""Property tests: no input, however broken, makes `peerevidence validate` crash.

For every generated input the CLI exits 0 or 1 (never an "internal error", never a
traceback), prints its one-line summary on stderr, and every line on stdout is a located
problem that starts with a project-relative file path.

Strings that the generators put inside a record may hold any character, line breaks
included: a problem line quotes such a value escaped, so it stays on one line.

One known crash is tolerated, and only while it exists: sorting a file's errors when one has
a line and another has none raises TypeError (see
test_validate.py::test_problems_with_and_without_a_line_in_one_file). Without this, almost
every generated mapping would stop at that one bug and hide any other.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projectkit import (
    PROBLEM_LINE,
    SPARE_FILE,
    CliResult,
    dump_yaml,
    make_project,
    read,
    spare_record_data,
    validate,
    write,
)

# PEEREVIDENCE_FUZZ_SCALE=20 runs twenty times as many examples (for a long local hunt)
SCALE = float(os.environ.get("PEEREVIDENCE_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


FUZZ = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUMMARY = re.compile(r"^(valid|invalid): \d+ records, \d+ error\(s\), \d+ warning\(s\)\n$")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One project per property; each example overwrites the file under test."""
    return make_project(tmp_path_factory.mktemp("fuzz"))


def check(result: CliResult, file_prefix: str | None = None) -> None:
    assert "Traceback" not in result.text
    assert "internal error" not in result.text, result.err
    assert result.code in (0, 1), result.text
    assert SUMMARY.match(result.err), result.err
    assert (result.code == 1) == result.err.startswith("invalid"), result.err
    for line in result.lines:
        assert PROBLEM_LINE.match(line), f"unlocated line: {line!r}\n{result.out}"
        if file_prefix is not None:
            assert line.removeprefix("warning: ").startswith(file_prefix), (
                f"line about another file: {line!r}"
            )


# --------------------------------------------------------------------------- strategies

one_line_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
YAMLISH = ":-[]{},#&*!|>'\"%@` \n\t?.0123456789abcdefnoyustrule~\\"
yamlish_text = st.text(st.sampled_from(YAMLISH), max_size=200)
any_text = st.one_of(st.text(max_size=300), yamlish_text)

# words the validators react to, so that mutations reach the deeper, cross-file rules
VOCABULARY = [
    "hope",
    "symptoms",
    "readmission",
    "continuous",
    "binary",
    "effect",
    "pooled",
    "not_reported",
    "not_obtained",
    "rct",
    "cohort",
    "systematic_review",
    "SMD",
    "OR",
    "RR",
    "HR",
    "MD",
    "r",
    "BPRS",
    "BHS",
    "Herth Hope Index",
    "spare2020",
    "spare2021",
    "trial2020",
    "higher_is_better",
    "lower_is_better",
    "figure",
    "table",
    "dataset",
    "low",
    "high",
    "TODO",
    "2024-01-01",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    one_line_text,
    st.sampled_from(VOCABULARY),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(one_line_text, st.sampled_from(VOCABULARY)), children, max_size=4)
    ),
    max_leaves=12,
)


def all_paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from all_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from all_paths(value, (*prefix, i))


SPARE_PATHS = list(all_paths(spare_record_data()))[1:]


@st.composite
def mutated_records(draw) -> Any:
    """The valid spare record with one value replaced, one key removed or one key added."""
    data = spare_record_data()
    path = draw(st.sampled_from(SPARE_PATHS))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(values)
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(one_line_text)] = draw(values)
    else:
        parent.append(draw(values))
    return data


# --------------------------------------------------------------------------- properties


@FUZZ
@given(text=any_text)
def test_any_text_as_a_record(project, text):
    write(project, SPARE_FILE, text)
    check(validate(project), SPARE_FILE)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_as_a_record(project, data):
    write(project, SPARE_FILE, data)
    check(validate(project), SPARE_FILE)


@FUZZ
@given(data=values)
def test_any_yaml_data_as_a_record(project, data):
    write(project, SPARE_FILE, dump_yaml(data))
    check(validate(project), SPARE_FILE)


@settings(FUZZ, max_examples=examples(80))
@given(data=mutated_records())
def test_a_mutated_valid_record(project, data):
    write(project, SPARE_FILE, dump_yaml(data))
    check(validate(project), SPARE_FILE)


BIB_ALPHABET = '@{}=,"#%\n ()abcdeilrtuy0129_-:\\'
bib_text = st.one_of(st.text(max_size=300), st.text(st.sampled_from(BIB_ALPHABET), max_size=300))


@pytest.fixture(scope="module")
def bib_project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("fuzzbib"))


@FUZZ
@given(text=bib_text)
def test_any_text_as_references_bib(bib_project, text):
    write(bib_project, "references.bib", text)
    check(validate(bib_project))


@pytest.fixture(scope="module")
def original_bib(bib_project):
    return read(bib_project, "references.bib")


@FUZZ
@given(insert=bib_text, where=st.floats(min_value=0, max_value=1))
def test_text_spliced_into_a_valid_bib(bib_project, original_bib, insert, where):
    cut = int(where * len(original_bib))
    write(bib_project, "references.bib", original_bib[:cut] + insert + original_bib[cut:])
    check(validate(bib_project))


EVIDENCE_FILES = [
    "evidence/change_model.yaml",
    "evidence/outcomes.yaml",
    "evidence/analysis.yaml",
    "evidence/certainty.yaml",
]


@pytest.fixture(scope="module")
def evidence_project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("fuzzev"))


@settings(FUZZ, max_examples=examples(60))
@given(text=any_text, rel=st.sampled_from(EVIDENCE_FILES))
def test_any_text_as_an_evidence_file(evidence_project, text, rel):
    path = evidence_project / rel
    original = path.read_bytes() if path.exists() else None
    try:
        write(evidence_project, rel, text)
        check(validate(evidence_project))
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)
