"""Issue 11, family 10: `pdk build --help` and the README say plainly that building an
untrusted project runs its code on the user's machine, and that check/call/run do not."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_build_help_says_building_runs_the_projects_code() -> None:
    proc = subprocess.run([sys.executable, "-m", "pdk.cli", "build", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    text = _flat(proc.stdout)
    assert "building an untrusted project runs its code on your machine" in text
    assert "like `pip install` of an sdist" in text
    assert "`pdk check`, `pdk call` and `pdk run` of a built component do not" in text


def test_top_level_help_flags_build() -> None:
    proc = subprocess.run([sys.executable, "-m", "pdk.cli", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "runs the project's code on this machine" in _flat(proc.stdout)


def test_readme_security_note_next_to_the_build_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = readme.index("## Commands")
    note = readme.index("**Security: `pdk build` runs the project's code.**")
    assert commands < note < readme.index("\n## ", commands + 1)
    text = _flat(readme[note : readme.index("\n\n", note)])
    assert "building an untrusted project runs its code on your machine, like `pip install` of an sdist" in text
    assert "`pdk check`, `pdk call` and `pdk run` of an already built component never run plugin code outside the WebAssembly sandbox" in text
