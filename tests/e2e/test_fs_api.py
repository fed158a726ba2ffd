"""The `fs` host API end to end: the notes example, built with componentize-py, run in
wasmtime, working in a real temporary directory granted as its root.

Representative cases through the real import; the backend's full set of refusals is
tested on real directories in `tests/e2e/test_fs_backend.py` and the pure path rules
in `tests/unit/test_fs_paths.py`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pdk.errors import ErrorCode
from pdk.host import Host, LoadedPlugin, open_package
from pdk.host.tools import ToolResult
from pdk.limits import FS_READ_MAX_BYTES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def notes_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("notes")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "notes-root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("outside secret")
    return root, outside


@pytest.fixture
def load(host: Host, notes_dir: Path, tmp_path: Path, tree: tuple[Path, Path]) -> Callable[..., LoadedPlugin]:
    def _load(operations: Sequence[str] = ("read", "list", "write"), host_apis: Sequence[str] = ("fs",)) -> LoadedPlugin:
        root, _ = tree
        grants = tmp_path / "grants.toml"
        grants.write_text(
            "[[plugins]]\nid = \"notes\"\nversion = \"0.1.0\"\n"
            f"digest = \"{open_package(notes_dir).digest}\"\nsurfaces = [\"tools\"]\ntools = [\"*\"]\n"
            f"host_apis = {json.dumps(list(host_apis))}\n"
            f"[[plugins.fs]]\nname = \"notes\"\npath = {json.dumps(str(root))}\noperations = {json.dumps(list(operations))}\n",
            encoding="utf-8",
        )
        return host.load(notes_dir, grants=grants)

    return _load


def host_error(result: ToolResult, root: Path) -> str:
    assert result.error is not None, result
    assert str(root) not in json.dumps(result.error.to_json()), "a host path reached the guest"
    code: str = result.error.details["host_error"]
    return code


def test_write_read_list(load: Any, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    notes = load()
    written = notes.call_tool("write_note", {"path": "ideas/today.md", "text": "caf\u00e9 \u2615"})
    assert written.ok, written
    assert (root / "ideas" / "today.md").read_text(encoding="utf-8") == "caf\u00e9 \u2615"
    read = notes.call_tool("read_note", {"path": "ideas/today.md"})
    assert read.content == {"path": "ideas/today.md", "text": "caf\u00e9 \u2615", "bytes": 9}
    listed = notes.call_tool("list_notes", {})
    assert listed.content == [{"name": "ideas", "kind": "directory", "size": 0}]
    assert notes.call_tool("list_notes", {"dir": "ideas"}).content == [{"name": "today.md", "kind": "file", "size": 9}]


def test_listing_is_sorted_and_deterministic(load: Any, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    for name in ["b.md", "a.md", "C.md", "\u00e4.md", "10.md", "9.md"]:
        (root / name).write_text(name)
    (root / "sub").mkdir()
    notes = load()
    first = notes.call_tool("list_notes", {})
    assert [e["name"] for e in first.content] == ["10.md", "9.md", "C.md", "a.md", "b.md", "sub", "\u00e4.md"]
    assert notes.call_tool("list_notes", {}).content == first.content


@pytest.mark.parametrize("path", ["../outside/secret.txt", "ideas/../../outside/secret.txt", "/etc/passwd", "..\\outside\\secret.txt"])
def test_traversal_and_absolute_paths_are_invalid(load: Any, tree: tuple[Path, Path], path: str) -> None:
    root, outside = tree
    notes = load()
    for tool, args in (("read_note", {}), ("write_note", {"text": "planted"}), ("list_notes", None)):
        result = notes.call_tool(tool, {"dir": path} if args is None else {"path": path, **args})
        assert result.error is not None and result.error.code is ErrorCode.INVALID_INPUT
        assert host_error(result, root) == "invalid_path"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "outside secret"


def test_symlink_escapes_are_invalid(load: Any, tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (root / "leaf.txt").symlink_to(outside / "secret.txt")
    (root / "hop").symlink_to(outside, target_is_directory=True)
    notes = load()
    assert host_error(notes.call_tool("read_note", {"path": "leaf.txt"}), root) == "invalid_path"
    assert host_error(notes.call_tool("write_note", {"path": "leaf.txt", "text": "x"}), root) == "invalid_path"
    assert host_error(notes.call_tool("read_note", {"path": "hop/secret.txt"}), root) == "invalid_path"
    assert host_error(notes.call_tool("write_note", {"path": "hop/planted.txt", "text": "x"}), root) == "invalid_path"
    assert host_error(notes.call_tool("list_notes", {"dir": "hop"}), root) == "invalid_path"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "outside secret"


def test_read_bound(load: Any, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "big.md").write_bytes(b"a" * (FS_READ_MAX_BYTES + 1))
    notes = load()
    # Refused by the host before a byte is copied into the guest. (Reads at the bound are
    # tested on the backend: a guest turning 1 MiB into a tool result is a timing question.)
    assert host_error(notes.call_tool("read_note", {"path": "big.md"}), root) == "too_large"
    assert notes.status()["instance"]["recycles"] == 0


def test_atomic_overwrite(load: Any, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    notes = load()
    assert notes.call_tool("write_note", {"path": "n.md", "text": "one"}).ok
    inode = os.stat(root / "n.md").st_ino
    assert notes.call_tool("write_note", {"path": "n.md", "text": "two"}).ok
    assert os.stat(root / "n.md").st_ino != inode  # replaced by rename, never rewritten in place
    assert (root / "n.md").read_text() == "two"
    assert [p.name for p in root.iterdir()] == ["n.md"]


def test_not_found_and_denied(load: Any, tree: tuple[Path, Path]) -> None:
    root, _ = tree
    read_only = load(operations=("read", "list"))
    assert host_error(read_only.call_tool("read_note", {"path": "missing.md"}), root) == "not_found"
    denied = read_only.call_tool("write_note", {"path": "n.md", "text": "x"})
    assert denied.error is not None and denied.error.code is ErrorCode.DENIED
    assert host_error(denied, root) == "denied"
    assert not (root / "n.md").exists()
    no_api = load(host_apis=())
    assert host_error(no_api.call_tool("list_notes", {}), root) == "denied"
    assert no_api.status()["instance"]["recycles"] == 0
