"""Issue 13, item 5: `pdk build` of a tool with an untyped parameter builds (the
parameter accepts any JSON value) and warns, naming file:line; an up-to-date build
says it again, and `--json` carries the warnings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MANIFEST = """schema_version = 2
id = "untyped"
name = "Untyped"
version = "0.1.0"
description = "A tool with an untyped parameter."
surfaces = ["tools"]

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/untyped.wasm"

[build]
module = "app"
"""

APP = '''from pdk import Plugin

plugin = Plugin()


@plugin.tool
def echo(text: str, times=1) -> str:
    """Repeat the text."""
    return text * times
'''

WARNING = (
    "pdk build: warning: app.py:7: tool 'echo': parameter 'times' has no type hint, so it accepts any JSON value "
    "unchecked; annotate it (e.g. `times: int`)"
)


def pdk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pdk.cli", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_build_warns_about_an_untyped_tool_parameter(tmp_path: Path) -> None:
    (tmp_path / "plugin.toml").write_text(MANIFEST, encoding="utf-8")
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    done = pdk("build", tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "warning" in line] == [WARNING]
    again = pdk("build", tmp_path)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert [line for line in again.stderr.splitlines() if "warning" in line] == [WARNING]
    doc = json.loads(pdk("build", tmp_path, "--json").stdout)
    assert doc["warnings"] == [WARNING.removeprefix("pdk build: warning: ")]
    called = pdk("call", tmp_path, "echo", '{"text": "ab", "times": 2}', "--dev-grants", "--json")
    assert json.loads(called.stdout)["summary"] == "abab"  # accepted, as the warning says
