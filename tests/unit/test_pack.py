"""`pack`: deterministic, valid `.yoi-plugin` archives holding only declared files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from generator.pack import PackResult, pack
from pdk.package.contents import package_file_list
from pdk.package import PackageError, PackageFiles, package_digest

MANIFEST = """\
schema_version = 2
id = "demo"
name = "Demo"
version = "0.1.0"
description = "A demo plugin."
surfaces = ["tools"]
host_apis = []

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/plugin.wasm"

[build]
module = "app"
sources = ["app.py"]
"""

EXPECTED_FILES = ["LICENSE", "README.md", "build/plugin.wasm", "plugin.toml"]


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    files = {
        "plugin.toml": MANIFEST.encode(),
        "build/plugin.wasm": b"\0asm\1\0\0\0" + os.urandom(50_000),
        "README.md": b"# Demo\n",
        "LICENSE": b"Apache-2.0\n",
        # Everything below must stay out of the package.
        "app.py": b"plugin = None\n",
        "helpers.py": b"x = 1\n",
        "build/app.o": b"object",
        "docs/README.md": b"nested readme\n",
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".git/config": b"[core]\n",
        "__pycache__/app.cpython-311.pyc": b"\x00pyc",
        ".venv/lib/python3.11/site-packages/x.py": b"x = 1\n",
        ".pytest_cache/v/cache/nodeids": b"[]",
        "notes.txt": b"private\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _pack_code(plugin_dir: Path, out: Path | None = None) -> PackageError:
    with pytest.raises(PackageError) as info:
        pack(plugin_dir, out)
    return info.value


def test_pack_writes_the_default_path_with_only_declared_files(plugin_dir: Path) -> None:
    result = pack(plugin_dir)
    assert isinstance(result, PackResult)
    assert result.path == plugin_dir / "dist" / "demo-0.1.0.yoi-plugin"
    assert result.files == EXPECTED_FILES
    assert result.size == result.path.stat().st_size
    with zipfile.ZipFile(result.path) as archive:
        assert archive.namelist() == EXPECTED_FILES


def test_ignored_trees_and_undeclared_sources_are_excluded(plugin_dir: Path) -> None:
    with zipfile.ZipFile(pack(plugin_dir).path) as archive:
        names = archive.namelist()
    for name in names:
        assert not name.startswith((".git/", "__pycache__/", ".venv/", ".pytest_cache/", "docs/", "dist/"))
        assert not name.endswith((".py", ".pyc", ".o"))
    assert "notes.txt" not in names


def test_two_packs_are_byte_identical(plugin_dir: Path, tmp_path: Path) -> None:
    first = pack(plugin_dir, tmp_path / "one.yoi-plugin")
    # Timestamps and permission bits of the sources must not leak into the archive.
    os.utime(plugin_dir / "README.md", (1_900_000_000, 1_900_000_000))
    os.chmod(plugin_dir / "build" / "plugin.wasm", 0o755)
    second = pack(plugin_dir, tmp_path / "two.yoi-plugin")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.digest == second.digest


def test_repacking_over_the_default_path_is_stable(plugin_dir: Path) -> None:
    first = pack(plugin_dir).path.read_bytes()
    assert pack(plugin_dir).path.read_bytes() == first
    assert sorted(p.name for p in (plugin_dir / "dist").iterdir()) == ["demo-0.1.0.yoi-plugin"]


def test_standard_zip_tool_accepts_the_archive(plugin_dir: Path) -> None:
    result = pack(plugin_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "zipfile", "-t", str(result.path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "Done testing" in proc.stdout
    assert "corrupted" not in proc.stdout


def test_entries_have_fixed_metadata(plugin_dir: Path) -> None:
    with zipfile.ZipFile(pack(plugin_dir).path) as archive:
        assert archive.comment == b""
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == stat.S_IFREG | 0o644
            assert info.create_system == 3
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.extra == b""
            assert info.flag_bits == 0  # no data descriptor, no encryption
        assert archive.testzip() is None


def test_archive_and_directory_digests_are_identical(plugin_dir: Path) -> None:
    result = pack(plugin_dir)
    contents = {p: (plugin_dir / p).read_bytes() for p in EXPECTED_FILES}
    assert result.digest == package_digest(contents)
    assert PackageFiles.from_archive(result.path).digest() == result.digest
    assert PackageFiles.from_directory(plugin_dir, result.files).digest() == result.digest


def test_package_file_list_matches_pack(plugin_dir: Path) -> None:
    assert package_file_list(plugin_dir) == pack(plugin_dir).files


def test_explicit_output_path_creates_parent_dirs(plugin_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "er" / "x.yoi-plugin"
    assert pack(plugin_dir, out).path == out
    assert out.is_file()


def test_missing_component_says_to_build_first(plugin_dir: Path) -> None:
    (plugin_dir / "build" / "plugin.wasm").unlink()
    err = _pack_code(plugin_dir)
    assert err.code == "missing_file"
    assert "pdk build" in err.message
    assert not (plugin_dir / "dist").exists()


def test_missing_manifest(plugin_dir: Path) -> None:
    (plugin_dir / "plugin.toml").unlink()
    assert _pack_code(plugin_dir).code == "missing_manifest"


@pytest.mark.parametrize(
    "manifest",
    [
        "this is = not [toml",
        MANIFEST.replace('component = "build/plugin.wasm"\n', ""),
        MANIFEST.replace('id = "demo"', 'id = "../demo"'),
        MANIFEST.replace('version = "0.1.0"', "version = 1"),
        b"\xff\xfe".decode("latin-1"),
    ],
)
def test_unreadable_manifest(plugin_dir: Path, manifest: str) -> None:
    (plugin_dir / "plugin.toml").write_text(manifest, encoding="latin-1" if "\xff" in manifest else "utf-8")
    assert _pack_code(plugin_dir).code == "bad_manifest"


def test_component_outside_the_plugin_is_refused(plugin_dir: Path) -> None:
    text = MANIFEST.replace("build/plugin.wasm", "../plugin.wasm")
    (plugin_dir / "plugin.toml").write_text(text)
    assert _pack_code(plugin_dir).code == "path_traversal"


def test_symlinked_readme_is_refused_loudly(plugin_dir: Path) -> None:
    (plugin_dir / "README.md").unlink()
    (plugin_dir / "README.md").symlink_to(plugin_dir / "docs" / "README.md")
    assert _pack_code(plugin_dir).code == "symlink"


def test_symlinked_manifest_is_refused(plugin_dir: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.toml"
    real.write_text(MANIFEST)
    (plugin_dir / "plugin.toml").unlink()
    (plugin_dir / "plugin.toml").symlink_to(real)
    assert _pack_code(plugin_dir).code == "symlink"


def test_refuses_to_overwrite_a_package_file(plugin_dir: Path) -> None:
    err = _pack_code(plugin_dir, plugin_dir / "plugin.toml")
    assert err.code == "bad_output"
    assert (plugin_dir / "plugin.toml").read_text() == MANIFEST
