"""Shared fixtures: reference numbers (tests/data) and one compiled-model cache per session."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def metafor_ref() -> dict:
    return json.loads((DATA / "metafor_reference.json").read_text("utf-8"))


@pytest.fixture(scope="session")
def cochrane_subset() -> list[dict]:
    return json.loads((DATA / "cochrane_subset.json").read_text("utf-8"))["cases"]


@pytest.fixture(scope="session")
def eight_schools(metafor_ref) -> tuple[np.ndarray, np.ndarray]:
    d = metafor_ref["eight_schools"]
    return np.array(d["yi"]), np.array(d["vi"])


@pytest.fixture(scope="session")
def bcg(metafor_ref) -> tuple[np.ndarray, np.ndarray]:
    d = metafor_ref["bcg"]
    return np.array(d["yi"]), np.array(d["vi"])


@pytest.fixture(scope="session")
def models():
    """Compiled nutpie models shared by every sampling test of the session."""
    from peerevidence.stats.model import CompiledModels

    return CompiledModels()


@pytest.fixture(autouse=True)
def _quiet_pytensor():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        yield
