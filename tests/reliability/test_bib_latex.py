"""Defect 16: LaTeX in BibTeX fields was mangled (``\\textit{Peer}`` -> ``\\textitPeer``,
``M{\\"u}ller`` -> ``Muller``, ``{\\O}stergaard`` -> ``\\Ostergaard``)."""

from __future__ import annotations

import pytest

from peerevidence.records.bib import parse_bibtex

BIB = r"""@article{mueller2020,
  author = {M{\"u}ller, Anna and {\O}stergaard, Bo and Garc{\'\i}a, Carla},
  title = {\textit{Peer} support: 50% fewer admissions \& more hope -- a trial},
  journal = {Journal of {NHS} Studies},
  year = {2020},
  pages = {1--10},
  doi = {10.1000/ab--c_d}
}
"""


@pytest.fixture
def ref():
    bib, errors = parse_bibtex(BIB)
    assert errors == []
    return bib["mueller2020"]


def test_authors_become_unicode(ref):
    assert ref.authors() == ["Müller, Anna", "Østergaard, Bo", "García, Carla"]
    assert ref.short() == "Müller et al. 2020"


def test_title_markup_becomes_text(ref):
    assert ref.get("title") == "Peer support: 50% fewer admissions & more hope – a trial"


def test_full_citation(ref):
    assert ref.full() == (
        "Müller, Anna, Østergaard, Bo, García, Carla (2020). Peer support: 50% fewer admissions & more "
        "hope – a trial. Journal of NHS Studies 1–10."
    )


def test_doi_is_left_verbatim(ref):
    assert ref.doi == "10.1000/ab--c_d"
