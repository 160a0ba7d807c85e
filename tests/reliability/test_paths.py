"""Defect 1: `new-record` wrote outside the project for a BibTeX key such as ``../../pwned``."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerevidence.atomic import OutsideProject, inside
from projectkit import make_project, problems, read, write

from .clirun import run

EVIL_KEYS = ["../../pwned", "/tmp/pwned", "a/b", "..", ".hidden", "-rf", "x\\y", "a b"]


def _add_entry(root: Path, key: str) -> int:
    """Append ``@article{KEY, ...}`` to references.bib; return its 1-based line."""
    text = read(root, "references.bib")
    line = text.count("\n") + 2
    write(root, "references.bib", text + f"\n@article{{{key},\n  title = {{T}},\n  year = {{2020}}\n}}\n")
    return line


def test_inside_accepts_paths_under_root(tmp_path):
    assert inside(tmp_path, tmp_path / "a" / "b.yaml") == (tmp_path / "a" / "b.yaml").resolve()
    assert inside(tmp_path, Path("a/b.yaml")) == (tmp_path / "a" / "b.yaml").resolve()


@pytest.mark.parametrize("rel", ["../x.yaml", "a/../../x.yaml", "/etc/x.yaml"])
def test_inside_refuses_escapes(tmp_path, rel):
    with pytest.raises(OutsideProject):
        inside(tmp_path / "root", Path(rel) if rel.startswith("/") else tmp_path / "root" / rel)


def test_inside_refuses_symlinked_directory_out(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "extraction").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutsideProject):
        inside(root, root / "extraction" / "x.yaml")


def test_new_record_with_traversal_key_writes_nothing_outside(tmp_path):
    root = make_project(tmp_path / "deep" / "er")
    _add_entry(root, "../../pwned")
    proc = run("new-record", "../../pwned", "--project", root)
    assert proc.returncode == 2
    assert not list(tmp_path.rglob("pwned.yaml"))
    assert proc.stderr.startswith("references.bib: BibTeX key '../../pwned' cannot be a record file name (")
    assert proc.stderr.count("\n") == 1


def test_new_record_library_refuses_unsafe_keys(tmp_path):
    from peerevidence.errors import UsageError
    from peerevidence.records.project import ProjectPaths

    paths = ProjectPaths(make_project(tmp_path))
    for key in EVIL_KEYS:
        with pytest.raises(UsageError, match="cannot be a record file name"):
            paths.record_path(key)
    assert paths.record_path("smith2020").name == "smith2020.yaml"


@pytest.mark.parametrize("key", ["../../pwned", "/abs", "a/b", ".hidden"])
def test_validate_locates_unsafe_key_in_references_bib(tmp_path, key):
    root = make_project(tmp_path)
    line = _add_entry(root, key)
    found = [p for p in problems(root) if "cannot be a record file name" in p]
    assert found and found[0].startswith(f"references.bib:{line}: "), problems(root)


def test_ordinary_keys_are_accepted(tmp_path):
    root = make_project(tmp_path)
    for key in ("smith2020", "Smith_2020a", "doe:2019", "van-gestel2012", "x.y2020"):
        _add_entry(root, key)
    assert not [p for p in problems(root) if "cannot be a record file name" in p]


def test_write_text_with_root_refuses_escapes(tmp_path):
    from peerevidence.atomic import write_text

    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(OutsideProject):
        write_text(root / ".." / "pwned.yaml", "x", root=root)
    assert not (tmp_path / "pwned.yaml").exists()
    write_text(root / "ok.yaml", "x", root=root)
    assert (root / "ok.yaml").read_text() == "x"
