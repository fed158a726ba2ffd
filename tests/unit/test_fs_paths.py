"""Pure path rules of the `fs` host API (`pdk.host.fs_api.normalize_relative_path`).

No filesystem here: symlinks and the no-follow walk are tested on real directories in
`tests/e2e/test_fs_backend.py`."""

from __future__ import annotations

from typing import Any

import pytest

from pdk.host.fs_api import FsPathError, normalize_relative_path
from pdk.limits import FS_PATH_MAX_BYTES, FS_SEGMENT_MAX_BYTES


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("a.txt", ("a.txt",)),
        ("a/b/c.md", ("a", "b", "c.md")),
        ("./a//b/./c", ("a", "b", "c")),  # `.` and empty segments are dropped
        ("notes/.hidden", ("notes", ".hidden")),
        ("...", ("...",)),  # three dots is a name, not a parent
        ("..a/b..", ("..a", "b..")),
        ("caf\u00e9/\u65e5\u672c.txt", ("caf\u00e9", "\u65e5\u672c.txt")),
        ("C:/x", ("C:", "x")),  # on POSIX a colon is an ordinary character
        ("~/x", ("~", "x")),  # never expanded
        ("a b/c", ("a b", "c")),
    ],
)
def test_file_paths_normalize(path: str, segments: tuple[str, ...]) -> None:
    assert normalize_relative_path(path, directory=False) == segments
    assert normalize_relative_path(path, directory=True) == segments


@pytest.mark.parametrize("path", ["", ".", "./", "./."])
def test_the_root_is_a_directory_not_a_file(path: str) -> None:
    assert normalize_relative_path(path, directory=True) == ()
    with pytest.raises(FsPathError, match="root"):
        normalize_relative_path(path, directory=False)


def test_a_trailing_slash_names_a_directory() -> None:
    assert normalize_relative_path("a/b/", directory=True) == ("a", "b")
    with pytest.raises(FsPathError, match="ends with '/'"):
        normalize_relative_path("a/b/", directory=False)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("//server/share", "absolute"),
        ("..", r"'\.\.'"),
        ("../x", r"'\.\.'"),
        ("a/../../x", r"'\.\.'"),
        ("a/../b", r"'\.\.'"),  # even when it would stay inside: `..` is never needed
        ("a/b/..", r"'\.\.'"),
        ("a\\b", "backslash"),
        ("..\\x", "backslash"),
        ("a\0b", "NUL"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("a\tb", "control"),
        ("x" * (FS_SEGMENT_MAX_BYTES + 1), "segment"),
        ("a/" * (FS_PATH_MAX_BYTES // 2 + 1), "longer"),
    ],
)
@pytest.mark.parametrize("directory", [False, True])
def test_escaping_and_malformed_paths_are_refused(path: str, reason: str, directory: bool) -> None:
    with pytest.raises(FsPathError, match=reason):
        normalize_relative_path(path, directory=directory)


@pytest.mark.parametrize("path", [None, 3, b"a.txt", ["a"]])
def test_non_strings_are_refused(path: Any) -> None:
    with pytest.raises(FsPathError, match="string"):
        normalize_relative_path(path, directory=False)


def test_a_segment_at_the_bound_is_fine() -> None:
    name = "\u00e9" * (FS_SEGMENT_MAX_BYTES // 2)  # 2 bytes each (254): the bound counts bytes
    assert normalize_relative_path(name, directory=False) == (name,)
    with pytest.raises(FsPathError, match="segment"):
        normalize_relative_path(name + "ee", directory=False)

