"""`pdk pack` through the CLI on the session-built text-tools: deterministic archives
that standard ZIP tools accept, the `--json` document, and the friendly refusal to
pack a plugin that has not been built."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from pdk.package import package_digest

pytestmark = pytest.mark.slow

PDK = Path(sys.executable).with_name("pdk")
EXPECTED_FILES = ["README.md", "build/text_tools.wasm", "plugin.toml"]


def run_pdk(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PDK), *map(str, args)], capture_output=True, text=True, timeout=900, cwd=cwd, env=dict(os.environ))


@pytest.fixture
def text_tools(built_plugin: Callable[[str], Path], tmp_path: Path) -> Path:
    dest = tmp_path / "text-tools"
    shutil.copytree(built_plugin("text-tools"), dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    # Things a plugin directory typically holds that must never be packed.
    (dest / ".git").mkdir()
    (dest / ".git" / "config").write_text("[core]\n")
    (dest / ".venv" / "lib").mkdir(parents=True)
    (dest / "secrets.env").write_text("TOKEN=do-not-ship\n")
    return dest


def test_two_packs_are_byte_identical_and_zip_tools_accept_them(text_tools: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.yoi-plugin", tmp_path / "b.yoi-plugin"
    for out in (first, second):
        proc = run_pdk("pack", text_tools, "-o", out)
        assert proc.returncode == 0, proc.stderr
    # Touching the sources' timestamps changes nothing in the archive.
    os.utime(text_tools / "plugin.toml", (1_000_000_000, 1_000_000_000))
    third = tmp_path / "c.yoi-plugin"
    assert run_pdk("pack", text_tools, "-o", third).returncode == 0
    assert first.read_bytes() == second.read_bytes() == third.read_bytes()

    tested = subprocess.run([sys.executable, "-m", "zipfile", "-t", str(first)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr

    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == EXPECTED_FILES
        contents = {name: archive.read(name) for name in archive.namelist()}
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_STORED
    for name, data in contents.items():
        assert data == (text_tools / name).read_bytes()


def test_default_output_and_human_summary(text_tools: Path) -> None:
    proc = run_pdk("pack", cwd=text_tools)
    assert proc.returncode == 0, proc.stderr
    out = text_tools / "dist" / "text-tools-0.1.0.yoi-plugin"
    assert out.is_file()
    assert proc.stdout.startswith("dist/text-tools-0.1.0.yoi-plugin: 3 files, ")
    assert "digest: sha256:" in proc.stdout
    # Packing again (the archive now lies inside the directory) is still identical.
    before = out.read_bytes()
    assert run_pdk("pack", text_tools).returncode == 0
    assert out.read_bytes() == before


def test_json_output_matches_the_archive(text_tools: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.yoi-plugin"
    proc = run_pdk("pack", text_tools, "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"ok", "path", "digest", "files", "bytes"}
    assert doc["ok"] is True and doc["path"] == str(out)
    assert doc["files"] == EXPECTED_FILES
    assert doc["bytes"] == out.stat().st_size
    with zipfile.ZipFile(out) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert doc["digest"] == package_digest(files)
    check = run_pdk("check", out, "--json")
    assert json.loads(check.stdout)["digest"] == doc["digest"]


def test_packing_without_a_built_component_says_run_pdk_build(text_tools: Path, tmp_path: Path) -> None:
    shutil.rmtree(text_tools / "build")
    out = tmp_path / "never.yoi-plugin"
    proc = run_pdk("pack", text_tools, "-o", out)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith("pdk pack: ")
    assert "run `pdk build`" in proc.stderr and "build/text_tools.wasm" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []


def test_packing_a_directory_without_plugin_toml(tmp_path: Path) -> None:
    proc = run_pdk("pack", tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "no plugin.toml" in proc.stderr
