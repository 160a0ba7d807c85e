"""The pipeline's layering, enforced: each stage imports only the stages before it.

    stats        pure numerics                     imports no other stage
    records      files -> EvidenceBase             may use stats (prior specs)
    pooling      table, plans, fits                may use records, stats
    synthesis    certainty, sensitivity, ...       may use records, stats, pooling
    report       HTML                              may use all of the above, never a sampler
    interchange  importers and exporters           may use records, stats, pooling
    run, cli     orchestration                     anything

Imports inside functions count too (they are read from the syntax tree).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "peerevidence"
STAGES = ("stats", "records", "pooling", "synthesis", "report", "interchange")
ALLOWED = {
    "stats": set(),
    "records": {"stats"},
    "pooling": {"records", "stats"},
    "synthesis": {"records", "stats", "pooling"},
    "report": {"records", "stats", "pooling", "synthesis"},
    "interchange": {"records", "stats", "pooling"},
}
SAMPLERS = ("pymc", "pytensor", "nutpie", "numba")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def stage_modules(stage: str) -> list[Path]:
    return sorted((SRC / stage).rglob("*.py"))


@pytest.mark.parametrize("stage", STAGES)
def test_stage_imports_only_earlier_stages(stage):
    bad = []
    for path in stage_modules(stage):
        for name in sorted(imports_of(path)):
            parts = name.split(".")
            if parts[0] != "peerevidence" or len(parts) < 2:
                continue
            other = parts[1]
            if other in STAGES and other != stage and other not in ALLOWED[stage]:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
            if other in ("run", "cli"):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert bad == []


def test_report_and_synthesis_never_import_a_sampler():
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for stage in ("report", "synthesis", "records")
        for path in stage_modules(stage)
        for name in sorted(imports_of(path))
        if name.split(".")[0] in SAMPLERS
    ]
    assert bad == []


def test_every_module_belongs_to_a_stage_or_is_a_known_top_level_module():
    top = {p.name for p in SRC.glob("*.py")}
    assert top == {"__init__.py", "atomic.py", "cli.py", "errors.py", "run.py"}
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders <= set(STAGES)
