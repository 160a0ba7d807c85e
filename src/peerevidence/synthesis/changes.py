"""What changed between the previous run and this one (``peerevidence diff``, report section).

Compares ``reports/manifest.previous.json`` with ``reports/manifest.json``: per analysis,
studies added or removed, the change in the posterior median of mu and in the width of its
95% interval, and the certainty before and after (recorded into the manifest after the
synthesis step by :func:`record_certainty`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peerevidence.atomic import write_text
from peerevidence.pooling.store import dumps, read_manifest

TOLERANCE = 1e-12


def _width(entry: dict[str, Any]) -> float:
    return entry["mu"]["q975"] - entry["mu"]["q025"]


def changes(previous: dict[str, Any] | None, current: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per analysis in either manifest, sorted by name."""
    before = (previous or {}).get("analyses", {})
    after = current.get("analyses", {})
    rows = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        row: dict[str, Any] = {
            "analysis": name,
            "studies_added": [],
            "studies_removed": [],
            "d_mu": None,
            "d_width": None,
            "certainty_before": (old or {}).get("certainty"),
            "certainty_after": (new or {}).get("certainty"),
        }
        if old is None:
            row.update(status="added", studies_added=list(new["studies"]))
        elif new is None:
            row.update(status="removed", studies_removed=list(old["studies"]))
        else:
            row["studies_added"] = sorted(set(new["studies"]) - set(old["studies"]))
            row["studies_removed"] = sorted(set(old["studies"]) - set(new["studies"]))
            row["d_mu"] = new["mu"]["q50"] - old["mu"]["q50"]
            row["d_width"] = _width(new) - _width(old)
            moved = abs(row["d_mu"]) > TOLERANCE or abs(row["d_width"]) > TOLERANCE
            changed = (
                moved
                or row["studies_added"]
                or row["studies_removed"]
                or row["certainty_before"] != row["certainty_after"]
                or old["key"] != new["key"]
            )
            row["status"] = "changed" if changed else "unchanged"
        rows.append(row)
    return rows


def project_changes(reports: Path) -> list[dict[str, Any]] | None:
    """Changes between the two manifests in ``reports/``; None when there is no current run."""
    current = read_manifest(reports / "manifest.json")
    if current is None:
        return None
    return changes(read_manifest(reports / "manifest.previous.json"), current)


def record_certainty(reports: Path, ratings: dict[str, str]) -> None:
    """Add each analysis's certainty (by outcome) to manifest.json, atomically."""
    path = reports / "manifest.json"
    manifest = read_manifest(path)
    if manifest is None:
        return
    for entry in manifest.get("analyses", {}).values():
        entry["certainty"] = ratings.get(entry.get("outcome")) if entry.get("variant") == "all" else None
    write_text(path, dumps(manifest))
