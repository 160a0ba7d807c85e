"""Content-addressed fit cache, the run lock, and the manifest.

Layout under ``reports/``::

    fits/by-key/<sha256>.nc     ArviZ InferenceData of one fit (netCDF, h5netcdf engine)
    fits/by-key/<sha256>.json   its summary (the ``pool --json`` object plus provenance)
    fits/<analysis>.nc          hard link to the current fit of each analysis
    fits/<analysis>.json        hard link to its summary
    manifest.json               inputs' hashes, versions, seeds, which fits were reused
    manifest.previous.json      the manifest of the run before (for ``peerevidence diff``)
    .lock                       held while a run writes

A fit's key hashes everything that determines it: the harmonised data (labels, yi, vi and
bias terms, rounded to 15 significant digits), the priors, the sampler settings, the model
version, the exact-check tolerances and the versions of peerevidence, PyMC, PyTensor, nutpie,
ArviZ and NumPy. Every file is written to a temporary name and renamed, so a run killed at
any point (even with SIGKILL) leaves the previous fits, summaries and report valid.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from peerevidence.atomic import atomic_path, write_text
from peerevidence.errors import LockBusy
from peerevidence.stats.summary import FitSummary

PACKAGES = ("peerevidence", "pymc", "pytensor", "nutpie", "arviz", "numpy", "scipy", "pandas")


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for name in PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:  # pragma: no cover
            out.append((name, "not installed"))
    return tuple(out)


def versions() -> dict[str, str]:
    """Installed versions of the packages a fit depends on (read once per process)."""
    return dict(_versions())


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return float(f"{value:.15g}")
    if isinstance(value, np.ndarray):
        return [_canonical(float(x)) for x in value.ravel()]
    if isinstance(value, np.floating | np.integer):
        return _canonical(value.item())
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def digest(value: Any) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def dumps(value: Any) -> str:
    """Deterministic JSON (sorted keys, NaN/inf as null) for files we write."""
    return json.dumps(_jsonable(value), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return [_jsonable(x) for x in value.tolist()]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class FitStore:
    """Fits stored by key, with a readable hard-linked name per analysis."""

    def __init__(self, reports: Path):
        self.root = reports / "fits"
        self.by_key = self.root / "by-key"

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.by_key / f"{key}.nc", self.by_key / f"{key}.json"

    def has(self, key: str) -> bool:
        nc, js = self.paths(key)
        return nc.exists() and js.exists()

    def load_summary(self, key: str) -> FitSummary:
        return FitSummary.from_json(json.loads(self.paths(key)[1].read_text("utf-8")))

    def save(self, key: str, idata: Any, summary: FitSummary) -> None:
        """Write the posterior and its summary (atomically; refuses early when the disk
        cannot hold them, since HDF5 fails badly when a write runs out of space)."""
        nc, js = self.paths(key)
        nc.parent.mkdir(parents=True, exist_ok=True)
        need = netcdf_size(idata)
        free = shutil.disk_usage(nc.parent).free
        if free < need:
            raise OSError(errno.ENOSPC, f"needs about {need / 1e6:.1f} MB, {free / 1e6:.1f} MB free", str(nc))
        with atomic_path(nc, ".nc") as tmp:
            idata.to_netcdf(str(tmp), engine="h5netcdf")
        write_text(js, dumps(summary.to_json()))

    def posterior_draws(self, key: str, name: str) -> np.ndarray:
        """All posterior draws of one variable of a stored fit, chains concatenated."""
        import xarray as xr

        with xr.open_dataset(self.paths(key)[0], group="posterior", engine="h5netcdf") as post:
            return np.asarray(post[name].values, dtype=float).ravel()

    def link(self, key: str, name: str) -> None:
        """Point ``fits/<name>.nc|json`` at the keyed files (atomic replace of the links)."""
        for src, suffix in zip(self.paths(key), (".nc", ".json"), strict=True):
            target = self.root / f"{name}{suffix}"
            if _same_file(src, target):
                continue  # already linked: os.replace() of two links to one inode does nothing
            tmp = self.root / f".{name}{suffix}.link-{os.getpid()}"
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:  # file systems without hard links: fall back to a copy
                tmp.write_bytes(src.read_bytes())
            os.replace(tmp, target)
            tmp.unlink(missing_ok=True)

    def sweep(self) -> int:
        """Remove temporaries that killed runs left behind (call with the run lock held)."""
        removed = 0
        for folder in (self.root, self.by_key):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.startswith(".") and (".link-" in path.name or path.name.endswith(".tmp")):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def netcdf_size(idata: Any) -> int:
    """A generous estimate of an InferenceData's netCDF size: its arrays plus 64 kB a group
    and 25% for HDF5's own structures."""
    groups = idata.groups()
    raw = idata.nbytes() if hasattr(idata, "nbytes") else sum(int(idata[g].nbytes) for g in groups)
    return int(raw * 1.25) + 65536 * (len(groups) + 1)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextmanager
def run_lock(reports: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold ``reports/.lock`` for the duration; a second run fails fast with LockBusy."""
    reports.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(reports / ".lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise LockBusy(
            f"{reports / '.lock'}: another peerevidence run is writing to this project; wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _fingerprint(manifest: dict[str, Any]) -> dict[str, str]:
    return {name: entry.get("key", "") for name, entry in manifest.get("analyses", {}).items()}


def write_manifest(reports: Path, manifest: dict[str, Any]) -> None:
    """Write manifest.json. The one it replaces becomes manifest.previous.json only when the
    analyses changed, so "what changed" always compares with the last different run and an
    unchanged rerun reproduces the same report."""
    current = reports / "manifest.json"
    old = read_manifest(current)
    if old is not None and _fingerprint(old) != _fingerprint(manifest):
        write_text(reports / "manifest.previous.json", current.read_text("utf-8"))
    write_text(current, dumps(manifest))


def read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return manifest
