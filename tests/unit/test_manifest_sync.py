"""Keeping `[[tools]]` in `plugin.toml` in agreement with the code (tomlkit).

`pdk build` owns each tool's description and input_schema; every other byte of the
file is the author's. These tests drive `sync_tools` / `tool_drift` on real TOML
text and compare the rewritten text line by line. (`tests/e2e/test_build.py`
proves the same through `pdk build` on a real plugin.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from generator.manifest_sync import sync_tools, tool_drift, toml_safe
from pdk.package.manifest import parse_manifest_text

ROOT = Path(__file__).resolve().parents[2]

AUTHOR_TEXT = """\
# My plugin: hand-written header comment.
#   (indented, with  two  spaces)
schema_version = 2
id = "notes"            # aligned inline comment
name = "Notes"
version = "0.3.0"
description = '''
Multi-line literal, kept as written.'''
surfaces = [ "tools" ]  # odd spacing kept
host_apis = ["log", "fs"]

[runtime]
# Why this world: tools only.
kind = "wasm-component"
world = "tool"
component = "build/notes.wasm"   # written by `pdk build`

[build]
module = "app"

[[tools]]
# a comment inside a generated table (owned by the build)
name = "search"
description = "Old description."

[tools.input_schema]
type = "object"

[[tools]]
name = "gone"
description = "Removed from the code."

# The notes directory, read-only. This comment introduces [[fs]].
[[fs]]
name = "notes"   # root name the plugin uses
operations = ["read", "list"]

# Final comment of the file.
"""

CODE_TOOLS: list[dict[str, Any]] = [
    {
        "name": "search",
        "description": "Search the notes for a phrase.",
        "input_schema": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer", "default": 10, "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string"}},
                "filter": {
                    "type": "object",
                    "title": "Filter",
                    "properties": {"after": {"type": "string", "format": "date"}, "kind": {"enum": ["a", "b"]}},
                    "required": ["after"],
                    "additionalProperties": False,
                },
                "mode": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
    {"name": "add", "description": "Add a note.", "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": False}},
]


def author_lines() -> list[str]:
    """The author's lines outside the generated [[tools]] tables."""
    lines, in_tools = [], False
    for line in AUTHOR_TEXT.splitlines():
        if line.startswith("[[tools]]") or line.startswith("[tools."):
            in_tools = True
        elif line.startswith("[") or line.startswith("# The notes directory"):
            in_tools = False
        if not in_tools:
            lines.append(line)
    return lines


def synced_text(text: str = AUTHOR_TEXT, tools: list[dict[str, Any]] = CODE_TOOLS) -> str:
    doc = tomlkit.parse(text)
    assert sync_tools(doc, tools)
    return tomlkit.dumps(doc)


def test_drift_lists_added_removed_and_changed_tools() -> None:
    drift = tool_drift(tomlkit.parse(AUTHOR_TEXT), CODE_TOOLS)
    assert (drift.added, drift.removed, drift.changed) == (["add"], ["gone"], ["search"])
    text = drift.describe()
    assert "in the code but not in plugin.toml: add" in text
    assert "in plugin.toml but not in the code: gone" in text
    assert "description or input_schema differ: search" in text


def test_sync_rewrites_tools_to_match_the_code_exactly() -> None:
    data = tomllib.loads(synced_text())
    assert data["tools"] == CODE_TOOLS
    parse_manifest_text(synced_text())  # still a valid manifest


def test_sync_keeps_every_author_line_byte_for_byte_and_in_order() -> None:
    out = synced_text().splitlines()
    expected = author_lines()
    # Every line the author wrote outside [[tools]] survives unchanged...
    positions = [out.index(line) for line in expected if line]
    # ...and in the original order, with [[tools]] still before [[fs]].
    assert positions == sorted(positions)
    assert out.index("[[tools]]") < out.index("[[fs]]")
    # The comment that introduces [[fs]] still sits directly above it.
    fs = out.index("[[fs]]")
    assert out[fs - 1] == "# The notes directory, read-only. This comment introduces [[fs]]."
    assert out[-1] == "# Final comment of the file."


def test_everything_before_the_tools_is_untouched() -> None:
    head = AUTHOR_TEXT.split("[[tools]]", 1)[0]
    assert synced_text().startswith(head)


def test_sync_is_idempotent_and_in_sync_documents_are_untouched() -> None:
    once = synced_text()
    doc = tomlkit.parse(once)
    drift = sync_tools(doc, CODE_TOOLS)
    assert not drift and drift.describe() == ""
    assert tomlkit.dumps(doc) == once


def test_tools_appear_when_the_manifest_had_none() -> None:
    text = AUTHOR_TEXT.split("[[tools]]", 1)[0]
    out = synced_text(text)
    assert out.startswith(text)
    assert tomllib.loads(out)["tools"] == CODE_TOOLS


def test_tools_disappear_when_the_code_has_none() -> None:
    doc = tomlkit.parse(AUTHOR_TEXT)
    drift = sync_tools(doc, [])
    assert drift.removed == ["search", "gone"]
    out = tomlkit.dumps(doc)
    assert "[[tools]]" not in out and "tools" not in tomllib.loads(out)
    assert "[[fs]]" in out and out.startswith(AUTHOR_TEXT.split("[[tools]]", 1)[0])


def test_reordering_in_the_code_is_followed() -> None:
    out = synced_text(tools=list(reversed(CODE_TOOLS)))
    assert [t["name"] for t in tomllib.loads(out)["tools"]] == ["add", "search"]


def test_an_absent_input_schema_counts_as_an_empty_object() -> None:
    text = '[[tools]]\nname = "x"\ndescription = "X."\n'
    assert not tool_drift(tomlkit.parse(text), [{"name": "x", "description": "X.", "input_schema": {"type": "object"}}])
    assert tool_drift(tomlkit.parse(text), [{"name": "x", "description": "Y.", "input_schema": {"type": "object"}}]).changed == ["x"]


def test_toml_safe_drops_null_defaults_and_refuses_other_nulls() -> None:
    schema = {"type": "object", "properties": {"tag": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}}}
    assert toml_safe(schema) == {"type": "object", "properties": {"tag": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    with pytest.raises(ValueError, match=r"\$\.properties\.x\.const: null cannot be written"):
        toml_safe({"properties": {"x": {"const": None}}})


def test_the_example_manifest_agrees_with_its_code() -> None:
    """The introspection `pdk build` runs (a child CPython) finds no drift in the
    checked-in example, so `pdk build` leaves its plugin.toml alone."""
    example = ROOT / "examples" / "text-tools"
    proc = subprocess.run(
        [sys.executable, "-m", "generator.introspect", str(example), "app", ""],
        capture_output=True, text=True, cwd=str(example), check=True,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": ""},
    )
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    tools = [{**t, "input_schema": toml_safe(t["input_schema"])} for t in info["tools"]]
    doc = tomlkit.parse((example / "plugin.toml").read_text(encoding="utf-8"))
    assert not tool_drift(doc, tools), tool_drift(doc, tools).describe()
