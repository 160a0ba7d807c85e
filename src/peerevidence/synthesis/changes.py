"""What changed between the previous run and this one (``peerevidence diff``, report section).

Compares ``reports/manifest.previous.json`` with ``reports/manifest.json`` (written by the
fit stage): per analysis, studies added or removed, the change in the posterior median of
mu and in the width of its 95% interval, and the certainty before and after. Certainty is
synthesis's own file, ``reports/certainty.json`` (:func:`record_certainty`), tied to the
manifest it was computed for; when the fits change it becomes ``certainty.previous.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peerevidence.atomic import write_text
from peerevidence.pooling.store import digest, dumps, read_manifest

TOLERANCE = 1e-12
CERTAINTY = "certainty.json"
PREVIOUS_CERTAINTY = "certainty.previous.json"


def _width(entry: dict[str, Any]) -> float:
    width: float = entry["mu"]["q975"] - entry["mu"]["q025"]
    return width


def _rating(entry: dict[str, Any] | None, ratings: dict[str, str] | None) -> str | None:
    if entry is None:
        return None
    if ratings is None:  # manifests written before certainty.json existed carried it inline
        return entry.get("certainty")
    return ratings.get(entry.get("outcome", "")) if entry.get("variant") == "all" else None


def changes(
    previous: dict[str, Any] | None,
    current: dict[str, Any],
    certainty_before: dict[str, str] | None = None,
    certainty_after: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per analysis in either manifest, sorted by name (certainty by outcome id)."""
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
            "certainty_before": _rating(old, certainty_before),
            "certainty_after": _rating(new, certainty_after),
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


def _manifest_id(manifest: dict[str, Any] | None) -> str:
    analyses = (manifest or {}).get("analyses", {})
    return digest({name: entry.get("key", "") for name, entry in analyses.items()})


def _ratings(path: Path, manifest: dict[str, Any] | None) -> dict[str, str] | None:
    """The ratings stored in ``path`` if they were computed for ``manifest``."""
    import json

    try:
        stored = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if manifest is None or stored.get("manifest") != _manifest_id(manifest):
        return None
    return dict(stored.get("ratings", {}))


def project_changes(reports: Path) -> list[dict[str, Any]] | None:
    """Changes between the two manifests in ``reports/``; None when there is no current run."""
    current = read_manifest(reports / "manifest.json")
    if current is None:
        return None
    previous = read_manifest(reports / "manifest.previous.json")
    after = _ratings(reports / CERTAINTY, current)
    before = _ratings(reports / PREVIOUS_CERTAINTY, previous)
    return changes(previous, current, before, after)


def record_certainty(reports: Path, ratings: dict[str, str]) -> None:
    """Write ``reports/certainty.json`` for the current manifest, atomically; the ratings of
    an earlier set of fits move to ``certainty.previous.json``."""
    current = read_manifest(reports / "manifest.json")
    if current is None:
        return
    path = reports / CERTAINTY
    ident = _manifest_id(current)
    try:
        import json

        old = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        old = None
    if old is not None and old.get("manifest") != ident:
        write_text(reports / PREVIOUS_CERTAINTY, dumps(old))
    write_text(path, dumps({"manifest": ident, "ratings": dict(sorted(ratings.items()))}))
