"""`pdk call` as a user runs it: a subprocess, real components, exit codes.

0 on success (human and --json output), 1 for a tool error, bad input, an unknown
tool or missing grants — always as one short line on stderr, never a traceback.
The subprocesses inherit the session compile cache (`YOI_PDK_CACHE_DIR`), so only
the first one compiles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from pdk.host import open_package

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def text_tools_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("text-tools")


def pdk_call(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pdk.cli", "call", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PDK_DEBUG": ""},
        timeout=300,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    # `pdk: ...` lines are notices and progress (the dev-grants notice, a first compile).
    lines = [line for line in done.stderr.splitlines() if line and not line.startswith("pdk: ")]
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_success_prints_the_summary(text_tools_dir: Path) -> None:
    done = pdk_call(text_tools_dir, "text_stats", '{"text": "a b a"}', "--dev-grants")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == 'text_stats: {"words":3,"unique_words":2,"lines":1,"top":["a","b"]}'
    assert done.stderr.startswith("pdk: DEV GRANTS: text-tools 0.1.0")


def test_success_as_json(text_tools_dir: Path) -> None:
    records = [{"name": "b", "value": 2, "tags": []}, {"name": "a", "value": 1, "tags": ["t"]}]
    done = pdk_call(text_tools_dir, "reshape", json.dumps({"records": records, "order": "desc"}), "--dev-grants", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["content"] == {"count": 2, "names": ["b", "a"], "by_name": {"b": 2.0, "a": 1.0}, "total": 3.0}
    assert doc["summary"].startswith("reshape: ")


def test_input_from_a_file(text_tools_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "input.json").write_text(json.dumps({"text": "x y z x", "top": 1}))
    done = pdk_call(text_tools_dir, "text_stats", "@input.json", "--dev-grants", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["content"] == {"words": 4, "unique_words": 3, "lines": 1, "top": ["x"]}


def test_a_missing_input_file(text_tools_dir: Path, tmp_path: Path) -> None:
    done = pdk_call(text_tools_dir, "text_stats", f"@{tmp_path / 'nope.json'}", "--dev-grants")
    assert_one_line_error(done, "pdk call: cannot read input file", "nope.json")


def test_a_tool_error_exits_1(text_tools_dir: Path) -> None:
    done = pdk_call(text_tools_dir, "text_stats", '{"text": "a", "top": 500}', "--dev-grants")
    assert done.stdout == ""
    assert assert_one_line_error(done) == "tool error (invalid_input): top must be between 0 and 100"


def test_a_tool_error_as_json(text_tools_dir: Path) -> None:
    done = pdk_call(text_tools_dir, "text_stats", '{"text": "a", "top": 500}', "--dev-grants", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "summary": "tool error: invalid_input",
        "content": {"error": {"code": "invalid_input", "message": "top must be between 0 and 100", "retryable": False, "details": {"top": 500}}},
        "logs": [],
    }


@pytest.mark.parametrize("raw", ['{"text": ', "not json", "{'text': 'a'}"])
def test_bad_json_input(text_tools_dir: Path, raw: str) -> None:
    done = pdk_call(text_tools_dir, "text_stats", raw, "--dev-grants")
    assert done.stdout == ""
    assert_one_line_error(done, "pdk call: input is not valid JSON")


def test_input_the_schema_refuses(text_tools_dir: Path) -> None:
    done = pdk_call(text_tools_dir, "text_stats", '{"txt": "a"}', "--dev-grants")
    # Every error, the typo first (the one wording of validation errors, pdk._validation).
    assert_one_line_error(done, "tool error (invalid_input):", '$: unexpected property "txt" (and 1 more)')


def test_an_unknown_tool(text_tools_dir: Path) -> None:
    done = pdk_call(text_tools_dir, "word_count", "{}", "--dev-grants")
    assert_one_line_error(done, "tool error (unsupported): unknown tool 'word_count'")


def test_no_grants_means_denied(text_tools_dir: Path) -> None:
    done = pdk_call(text_tools_dir, "text_stats", '{"text": "a"}')
    assert done.stdout == ""
    assert_one_line_error(done, "tool error (denied):", "no grants file given")


def test_a_grants_file(text_tools_dir: Path, tmp_path: Path) -> None:
    digest = open_package(text_tools_dir).digest
    grants = tmp_path / "grants.toml"
    grants.write_text(
        f'[[plugins]]\nid = "text-tools"\nversion = "0.1.0"\ndigest = "{digest}"\nsurfaces = ["tools"]\ntools = ["text_stats"]\n'
    )
    ok = pdk_call(text_tools_dir, "text_stats", '{"text": "a"}', "--grants", grants)
    assert ok.returncode == 0, ok.stderr
    assert "DEV GRANTS" not in ok.stderr  # no dev-grants notice (progress of a first compile may be there)
    denied = pdk_call(text_tools_dir, "reshape", '{"records": []}', "--grants", grants)
    assert_one_line_error(denied, "tool error (denied): tool 'reshape' is not granted to text-tools")


def test_a_missing_grants_file(text_tools_dir: Path, tmp_path: Path) -> None:
    done = pdk_call(text_tools_dir, "text_stats", '{"text": "a"}', "--grants", tmp_path / "missing.toml")
    assert_one_line_error(done, "missing.toml", "cannot read")


def test_a_path_that_is_not_a_plugin(tmp_path: Path) -> None:
    done = pdk_call(tmp_path / "nowhere", "text_stats", "{}", "--dev-grants")
    assert_one_line_error(done, "nowhere", "does not exist")
