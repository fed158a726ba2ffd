"""The `fs` backend on real temporary directories, without a component.

Covers what a tool's 64 KiB input cannot carry (1 MiB writes) and every refusal in
detail; `tests/e2e/test_fs_api.py` repeats representative cases through the real
component. Every error message is checked for the host path of the root: it must
never appear.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pdk.host.codec import Err, Ok
from pdk.host.fs_api import DeclaredRoot, FsBackend
from pdk.host.grants import GrantsFile, GrantSet
from pdk.limits import FS_LIST_MAX_ENTRIES, FS_READ_MAX_BYTES, FS_WRITE_MAX_BYTES
from pdk.package.manifest import parse_manifest

DIGEST = "sha256:" + "b" * 64
ALL = ("read", "list", "write")


def grant_set(roots: Sequence[tuple[str, Path, Sequence[str]]], *, host_apis: Sequence[str] = ("fs",)) -> GrantSet:
    text = (
        "[[plugins]]\nid = \"p\"\nversion = \"0.1.0\"\n"
        f"digest = \"{DIGEST}\"\nsurfaces = [\"tools\"]\nhost_apis = {json.dumps(list(host_apis))}\n"
        + "".join(
            f"[[plugins.fs]]\nname = {json.dumps(name)}\npath = {json.dumps(str(path))}\noperations = {json.dumps(list(ops))}\n"
            for name, path, ops in roots
        )
    )
    return GrantsFile.parse(text).for_package("p", "0.1.0", DIGEST)


class Checked:
    """An FsBackend whose every error message is checked for host paths."""

    def __init__(self, backend: FsBackend, *secret_paths: Path) -> None:
        self.backend = backend
        self.secret_paths = [str(p) for p in secret_paths]

    def _checked(self, result: Any) -> Any:
        if isinstance(result, Err):
            for path in self.secret_paths:
                assert path not in result.value["message"], result.value
        return result

    def read(self, path: str, root: str = "data") -> Any:
        return self._checked(self.backend.read_file(root, path))

    def write(self, path: str, data: bytes, root: str = "data") -> Any:
        return self._checked(self.backend.write_file(root, path, data))

    def list(self, path: str = "", root: str = "data") -> Any:
        return self._checked(self.backend.list_dir(root, path))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(root, outside): a granted root and a directory next to it that must stay untouched."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside secret")
    return root, outside


@pytest.fixture
def fs(tree: tuple[Path, Path]) -> Checked:
    root, outside = tree
    return Checked(FsBackend(grant_set([("data", root, ALL)]), [DeclaredRoot("data", ALL)]), root, outside)


def code(result: Any) -> str:
    assert isinstance(result, Err), result
    value: str = result.value["code"]
    return value


# --- the happy path ----------------------------------------------------------------------------


def test_write_read_list_round_trip(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert fs.write("a.txt", b"hello") == Ok(None)
    assert fs.read("a.txt") == Ok(b"hello")
    assert (root / "a.txt").read_bytes() == b"hello"
    assert fs.write("deep/er/b.txt", b"") == Ok(None)  # parents are created, inside the root
    assert (root / "deep" / "er" / "b.txt").is_file()
    assert fs.list() == Ok([{"name": "a.txt", "kind": "file", "size": 5}, {"name": "deep", "kind": "directory", "size": 0}])
    assert fs.list("deep/er/") == Ok([{"name": "b.txt", "kind": "file", "size": 0}])
    assert fs.read("./deep//er/b.txt") == Ok(b"")


def test_listing_is_sorted_and_deterministic(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    names = ["zeta", "Alpha", "alpha", "\u00e9t\u00e9", "10", "9", "_x", ".hidden"]
    for name in reversed(names):
        (root / name).write_text(name)
    (root / "sub").mkdir()
    os.mkfifo(root / "pipe")
    (root / "link").symlink_to(root / "zeta")
    first = fs.list()
    assert isinstance(first, Ok)
    listed = [e["name"] for e in first.value]
    assert listed == sorted(names + ["sub", "pipe", "link"])
    kinds = {e["name"]: e["kind"] for e in first.value}
    assert kinds["sub"] == "directory" and kinds["pipe"] == "other" and kinds["link"] == "other"
    assert {e["name"]: e["size"] for e in first.value}["zeta"] == 4
    assert fs.list() == first


def test_write_is_atomic_and_keeps_the_mode(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    target = root / "state.json"
    assert fs.write("state.json", b"old") == Ok(None)
    os.chmod(target, 0o600)
    before = os.stat(target)
    assert fs.write("state.json", b"new content") == Ok(None)
    after = os.stat(target)
    # A new inode: the content was written elsewhere and renamed over the old file,
    # so no reader ever saw a half-written file.
    assert after.st_ino != before.st_ino
    assert target.read_bytes() == b"new content"
    assert after.st_mode & 0o777 == 0o600
    assert sorted(p.name for p in root.iterdir()) == ["state.json"]  # no temporary file left


def test_a_refused_write_leaves_the_old_content(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert fs.write("keep.txt", b"v1") == Ok(None)
    assert code(fs.write("keep.txt", b"x" * (FS_WRITE_MAX_BYTES + 1))) == "too_large"
    assert (root / "keep.txt").read_bytes() == b"v1"
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]


# --- bounds --------------------------------------------------------------------------------------


def test_read_and_write_bounds(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert fs.write("max.bin", b"m" * FS_WRITE_MAX_BYTES) == Ok(None)
    assert fs.read("max.bin") == Ok(b"m" * FS_READ_MAX_BYTES)
    (root / "big.bin").write_bytes(b"b" * (FS_READ_MAX_BYTES + 1))
    result = fs.read("big.bin")
    assert code(result) == "too_large"
    assert "big.bin" in result.value["message"]


def test_list_bound(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    full = root / "full"
    full.mkdir()
    for i in range(FS_LIST_MAX_ENTRIES):
        (full / f"{i:05d}").touch()
    listed = fs.list("full")
    assert isinstance(listed, Ok) and len(listed.value) == FS_LIST_MAX_ENTRIES
    (full / "one-more").touch()
    assert code(fs.list("full")) == "too_large"


# --- escapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../outside/secret.txt", "a/../../outside/secret.txt", "/etc/passwd", "..\\outside", "a\0b"])
def test_escaping_paths_are_invalid(fs: Checked, path: str) -> None:
    assert code(fs.read(path)) == "invalid_path"
    assert code(fs.write(path, b"x")) == "invalid_path"
    assert code(fs.list(path)) == "invalid_path"


def test_symlink_leaf_is_never_followed(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    assert code(fs.read("leak.txt")) == "invalid_path"
    assert code(fs.write("leak.txt", b"overwritten")) == "invalid_path"
    assert (outside / "secret.txt").read_bytes() == b"outside secret"
    (root / "dangling").symlink_to(outside / "new.txt")
    assert code(fs.write("dangling", b"created?")) == "invalid_path"
    assert not (outside / "new.txt").exists()


def test_symlink_in_the_middle_is_never_followed(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (root / "escape").symlink_to(outside, target_is_directory=True)
    assert code(fs.read("escape/secret.txt")) == "invalid_path"
    assert code(fs.list("escape")) == "invalid_path"
    assert code(fs.list("escape/")) == "invalid_path"
    assert code(fs.write("escape/planted.txt", b"x")) == "invalid_path"
    assert code(fs.write("escape/deeper/planted.txt", b"x")) == "invalid_path"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    (root / "real").mkdir()
    (root / "real" / "hop").symlink_to(outside, target_is_directory=True)
    assert code(fs.read("real/hop/secret.txt")) == "invalid_path"


def test_symlinks_inside_the_root_are_refused_too(fs: Checked, tree: tuple[Path, Path]) -> None:
    """A link's target can change between check and use; links are not followed at all."""
    root, _ = tree
    (root / "target.txt").write_bytes(b"t")
    (root / "alias.txt").symlink_to("target.txt")
    (root / "dir").mkdir()
    (root / "dir-alias").symlink_to("dir", target_is_directory=True)
    assert code(fs.read("alias.txt")) == "invalid_path"
    assert code(fs.list("dir-alias")) == "invalid_path"


def test_the_root_may_itself_be_a_symlink(tree: tuple[Path, Path], tmp_path: Path) -> None:
    """Where the operator points a root is the operator's choice."""
    root, _ = tree
    (root / "x.txt").write_bytes(b"x")
    link = tmp_path / "root-link"
    link.symlink_to(root, target_is_directory=True)
    backend = FsBackend(grant_set([("data", link, ALL)]), [DeclaredRoot("data", ALL)])
    assert backend.read_file("data", "x.txt") == Ok(b"x")


# --- not files ----------------------------------------------------------------------------------


def test_directories_fifos_and_missing_files(fs: Checked, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "dir").mkdir()
    os.mkfifo(root / "fifo")
    (root / "file.txt").write_bytes(b"f")
    assert code(fs.read("dir")) == "invalid_path"
    assert code(fs.write("dir", b"x")) == "invalid_path"
    assert code(fs.read("fifo")) == "invalid_path"  # and no hang waiting for a writer
    assert code(fs.write("fifo", b"x")) == "invalid_path"
    assert code(fs.read("missing.txt")) == "not_found"
    assert code(fs.list("missing")) == "not_found"
    assert code(fs.read("file.txt/x")) == "not_found"
    assert code(fs.list("file.txt")) == "not_found"
    assert code(fs.write("file.txt/x", b"x")) == "not_found"


def test_a_missing_root_directory_is_io_without_its_path(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    fs = Checked(FsBackend(grant_set([("data", gone, ALL)]), [DeclaredRoot("data", ALL)]), gone)
    result = fs.read("x")
    assert code(result) == "io"
    assert "'data'" in result.value["message"]


# --- authority ----------------------------------------------------------------------------------


def test_declared_and_granted_roots_and_operations(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "r.txt").write_bytes(b"r")
    grants = grant_set([("data", root, ("read", "list")), ("other", root, ALL)])
    fs = Checked(FsBackend(grants, [DeclaredRoot("data", ALL), DeclaredRoot("ro", ("read",))]), root)
    assert fs.read("r.txt") == Ok(b"r")
    assert "not granted" in fs.write("w.txt", b"w").value["message"]  # declared, not granted
    assert code(fs.read("r.txt", root="other")) == "denied"  # granted, not declared
    assert code(fs.read("r.txt", root="ro")) == "denied"  # declared, not granted
    assert code(fs.read("r.txt", root="")) == "denied"
    assert not (root / "w.txt").exists()
    narrow = Checked(FsBackend(grant_set([("data", root, ALL)]), [DeclaredRoot("data", ("read",))]), root)
    assert "not declared" in narrow.list().value["message"]
    assert code(narrow.write("w.txt", b"w")) == "denied"


def test_the_fs_api_itself_must_be_declared_and_granted(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "r.txt").write_bytes(b"r")
    declared = [DeclaredRoot("data", ALL)]
    assert code(FsBackend(grant_set([("data", root, ALL)], host_apis=()), declared).read_file("data", "r.txt")) == "denied"
    assert code(FsBackend(grant_set([("data", root, ALL)]), declared, api_declared=False).read_file("data", "r.txt")) == "denied"
    assert code(FsBackend(GrantSet.empty("no grant"), declared).read_file("data", "r.txt")) == "denied"


def test_dev_grants_have_no_host_directory() -> None:
    manifest = parse_manifest({
        "schema_version": 2, "id": "p", "name": "P", "version": "0.1.0", "surfaces": ["tools"], "host_apis": ["fs"],
        "runtime": {"kind": "wasm-component", "world": "tool", "component": "p.wasm"},
        "fs": [{"name": "data", "operations": ["read"]}],
    })
    backend = FsBackend.for_manifest(GrantSet.dev_grants(manifest), manifest)
    result = backend.read_file("data", "x")
    assert code(result) == "denied"
    assert "dev grants" in result.value["message"]


def test_denial_comes_before_path_checks(fs: Checked) -> None:
    assert code(fs.read("../x", root="nope")) == "denied"
