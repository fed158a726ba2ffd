"""Issue 13, item 5: the README's command table lists every command, `pdk build` and
`pdk check --help` document the positional directory, and a tool parameter without
a type hint is reported by introspection (a real child CPython) with its file:line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pdk.cli import _parser

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> set[str]:
    sub = next(a for a in _parser()._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def test_the_readme_command_table_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"^\| `pdk ([a-z][a-z-]*)", table, re.M))
    assert _commands() <= listed, f"missing from the README: {sorted(_commands() - listed)}"
    assert "| `pdk --version` |" in table


def _help(command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pdk.cli", command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


def test_build_and_check_help_document_the_directory() -> None:
    build = _help("build")
    assert "[DIR]" in build and "DIR the plugin project directory (with plugin.toml; default: the current directory)" in build
    check = _help("check")
    assert "[DIR|PKG]" in check and "DIR|PKG a plugin project directory or a .yoi-plugin archive (default: the current directory)" in check


APP = '''from pdk import Plugin

plugin = Plugin()


@plugin.tool
def echo(text: str, times=1) -> str:
    """Echo."""
    return text * times


@plugin.tool
def shout(
    text,
    loud: bool = True,
) -> str:
    """Shout."""
    return text.upper()
'''


def test_introspection_warns_about_untyped_parameters_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "generator.introspect", str(tmp_path), "app"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["warnings"] == [
        "app.py:7: tool 'echo': parameter 'times' has no type hint, so it accepts any JSON value unchecked; annotate it (e.g. `times: int`)",
        "app.py:14: tool 'shout': parameter 'text' has no type hint, so it accepts any JSON value unchecked; annotate it (e.g. `text: str`)",
    ]
    assert [t["name"] for t in info["tools"]] == ["echo", "shout"]  # accepted, with a warning
