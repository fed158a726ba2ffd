"""`open_package` hands back the package it opened before only while nothing changed.

pdk/host/loader.py keeps each opened package with the `lstat` signature of its files
(directory, every path segment, or the archive) and trusts it only when every file
had settled before the open began (`_SETTLED_NS`, git's "racily clean" rule). Real
directories and archives; every change a user or a build makes must be seen on the
next open: a manifest edited in place at the same size, a rebuilt component, a
README added or removed, a component swapped for a symlink, a rewritten archive,
the same relative path from another working directory.

So that a change made right after an open is seen even when the file system's clock
has not ticked (the very race `_SETTLED_NS` exists for), the tests back-date the
files' mtime (`settle`) and shrink `_SETTLED_NS` to 0: every later write then moves
the mtime forward from the back-dated value.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from generator.pack import pack
from pdk.host import loader
from pdk.host.loader import open_package
from pdk.package import PackageError

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = "build/text_tools.wasm"


def settle(*paths: Path) -> None:
    """Back-date every file (and directory) under `paths` by an hour."""
    past = time.time_ns() - 3600 * 10**9
    for top in paths:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            os.utime(path, ns=(past, past), follow_symlinks=False)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(loader, "_SETTLED_NS", 0)
    monkeypatch.setattr(loader, "_OPENED", {})
    root = tmp_path / "text-tools"
    root.mkdir()
    shutil.copy(ROOT / "examples" / "text-tools" / "plugin.toml", root / "plugin.toml")
    (root / "build").mkdir()
    (root / COMPONENT).write_bytes(b"\0asm component v1" * 64)
    settle(root)
    return root


def test_an_unchanged_directory_is_the_same_package(plugin: Path) -> None:
    first = open_package(plugin)
    assert open_package(plugin) is first
    assert open_package(str(plugin)) is first


def test_a_manifest_edited_in_place_at_the_same_size_is_seen(plugin: Path) -> None:
    first = open_package(plugin)
    manifest = plugin / "plugin.toml"
    text = manifest.read_text(encoding="utf-8")
    assert 'version = "0.1.0"' in text
    with open(manifest, "r+", encoding="utf-8") as f:  # same inode, same size
        f.write(text.replace('version = "0.1.0"', 'version = "0.1.1"'))
    again = open_package(plugin)
    assert again is not first and again.manifest.version == "0.1.1" and again.digest != first.digest


def test_a_rebuilt_component_is_seen(plugin: Path) -> None:
    first = open_package(plugin)
    with open(plugin / COMPONENT, "r+b") as f:  # in place, same size
        f.write(b"\1")
    rebuilt = open_package(plugin)
    assert rebuilt.digest != first.digest
    assert rebuilt.files.entry(COMPONENT).sha256 != first.files.entry(COMPONENT).sha256
    settle(plugin)
    tmp = plugin / "build" / "new.wasm"  # replaced by rename, as builds write
    tmp.write_bytes(b"\0asm other" * 64)
    os.replace(tmp, plugin / COMPONENT)
    assert open_package(plugin).digest not in (first.digest, rebuilt.digest)


def test_a_readme_added_or_removed_is_seen(plugin: Path) -> None:
    first = open_package(plugin)
    (plugin / "README.md").write_text("# text tools\n", encoding="utf-8")
    with_readme = open_package(plugin)
    assert "README.md" in with_readme.files and "README.md" not in first.files
    settle(plugin)
    assert open_package(plugin) is open_package(plugin)
    (plugin / "README.md").unlink()
    assert "README.md" not in open_package(plugin).files


def test_a_component_swapped_for_a_symlink_is_refused(plugin: Path, tmp_path: Path) -> None:
    open_package(plugin)
    outside = tmp_path / "outside.wasm"
    outside.write_bytes(b"\0asm elsewhere")
    (plugin / COMPONENT).unlink()
    (plugin / COMPONENT).symlink_to(outside)
    with pytest.raises(PackageError) as refused:
        open_package(plugin)
    assert refused.value.code == "symlink"


def test_a_rewritten_archive_is_seen(plugin: Path, tmp_path: Path) -> None:
    archive = pack(plugin, tmp_path / "tt.yoi-plugin").path
    settle(archive)
    first = open_package(archive)
    assert open_package(archive) is first
    with open(plugin / COMPONENT, "r+b") as f:
        f.write(b"\2")
    pack(plugin, tmp_path / "tt-new.yoi-plugin")
    os.replace(tmp_path / "tt-new.yoi-plugin", archive)
    again = open_package(archive)
    assert again is not first and again.digest != first.digest


def test_a_relative_path_is_opened_where_it_points(plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere" / "text-tools"
    shutil.copytree(plugin, other)
    (other / "README.md").write_text("# the other copy\n", encoding="utf-8")
    settle(other)
    monkeypatch.chdir(plugin.parent)
    here = open_package("text-tools")
    monkeypatch.chdir(other.parent)
    there = open_package("text-tools")
    assert there is not here and "README.md" in there.files and "README.md" not in here.files


def test_files_changed_just_before_the_open_are_not_trusted_by_their_stat(plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_SETTLED_NS", 2_000_000_000)
    (plugin / "plugin.toml").touch()  # changed now: within the settling time
    first = open_package(plugin)
    assert open_package(plugin) is not first, "a package whose files just changed was kept"
    monkeypatch.setattr(loader, "_SETTLED_NS", 0)  # (settled: ctime, which settle() cannot back-date, is before the open)
    kept = open_package(plugin)
    assert open_package(plugin) is kept
