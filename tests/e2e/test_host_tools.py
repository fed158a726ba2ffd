"""Tool calls through the reference host, with real components in real wasmtime.

Round trips of every text-tools tool (primitives, a dataclass result, TypedDict
records, an Enum, a Literal and an Optional), and the tool path around the guest:
host-side schema checks that stop bad input before any plugin code runs, unknown
tools, and the per-plugin status counters. The components are built once per
session (`built_plugin`) and loaded from the session compile cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from pdk.errors import ErrorCode
from pdk.host import Host, LoadedPlugin

pytestmark = pytest.mark.slow

RECORDS: list[dict[str, Any]] = [
    {"name": "b", "value": 2.5, "tags": ["x"]},
    {"name": "a", "value": 1, "tags": []},
    {"name": "c", "value": 0.5, "tags": ["x", "y"]},
]


@pytest.fixture(scope="module")
def text_tools_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("text-tools")


@pytest.fixture
def text_tools(host: Host, text_tools_dir: Path) -> LoadedPlugin:
    # A fresh load per test: fresh counters and diagnostics (the compiled component
    # comes from the session cache, so this costs milliseconds).
    return host.load(text_tools_dir, dev_grants=True)


# --------------------------------------------------------------------- text_stats


def test_text_stats_with_defaults(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("text_stats", {"text": "the cat and The dog\nand the bird"})
    assert result.ok, result.error
    assert result.content == {"words": 8, "unique_words": 5, "lines": 2, "top": ["the", "and", "cat"]}
    assert result.summary == 'text_stats: {"words":8,"unique_words":5,"lines":2,"top":["the","and","cat"]}'
    assert result.to_json() == {"summary": result.summary, "content": result.content}


def test_text_stats_with_every_argument(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("text_stats", {"text": "the cat and The dog\nand the bird", "top": 1, "case_sensitive": True})
    assert result.ok, result.error
    assert result.content == {"words": 8, "unique_words": 6, "lines": 2, "top": ["the"]}


def test_text_stats_accepts_a_json_string(text_tools: LoadedPlugin) -> None:
    as_text = text_tools.call_tool("text_stats", '{"text": "a b a", "top": 2}')
    as_value = text_tools.call_tool("text_stats", {"text": "a b a", "top": 2})
    assert as_text.ok and as_value.ok
    assert as_text.content == as_value.content == {"words": 3, "unique_words": 2, "lines": 1, "top": ["a", "b"]}


def test_text_stats_non_ascii_round_trip(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("text_stats", {"text": "über Über straße 中文 中文 😀"})
    assert result.ok, result.error
    assert result.content == {"words": 6, "unique_words": 4, "lines": 1, "top": ["über", "中文", "straße"]}


def test_a_tool_error_raised_by_the_guest_is_typed(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("text_stats", {"text": "a", "top": 500})
    assert not result.ok
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_INPUT
    assert result.error.message == "top must be between 0 and 100"
    assert result.error.details == {"top": 500}
    assert result.summary == "tool error: invalid_input"
    assert result.content == {"error": {"code": "invalid_input", "message": "top must be between 0 and 100", "retryable": False, "details": {"top": 500}}}
    # The guest's own check ran: the call crossed the boundary.
    assert text_tools.instance.calls == 1


def test_guest_log_records_reach_the_diagnostics(text_tools: LoadedPlugin) -> None:
    assert text_tools.call_tool("text_stats", {"text": "one two three"}).ok
    assert text_tools.diagnostics.messages("log") == ["text_stats: 3 words"]
    assert {"source": "log", "level": "info", "message": "text_stats: 3 words"}.items() <= text_tools.status()["diagnostics"][-1].items()


# --------------------------------------------------------------------- reshape


def test_reshape_with_defaults(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("reshape", {"records": RECORDS})
    assert result.ok, result.error
    assert result.content == {"count": 3, "names": ["a", "b", "c"], "by_name": {"a": 1.0, "b": 2.5, "c": 0.5}, "total": 4.0}


def test_reshape_with_literal_enum_and_optional(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("reshape", {"records": RECORDS, "key": "value", "order": "desc", "tag": "x"})
    assert result.ok, result.error
    assert result.content == {"count": 2, "names": ["b", "c"], "by_name": {"b": 2.5, "c": 0.5}, "total": 3.0}


def test_reshape_sorts_ascending_by_value(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("reshape", {"records": RECORDS, "key": "value", "order": "asc"})
    assert result.ok, result.error
    assert result.content["names"] == ["c", "a", "b"]


def test_reshape_optional_may_be_null(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("reshape", {"records": RECORDS, "tag": None})
    assert result.ok, result.error
    assert result.content["count"] == 3


def test_reshape_of_nothing(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("reshape", {"records": []})
    assert result.ok, result.error
    assert result.content == {"count": 0, "names": [], "by_name": {}, "total": 0}


@pytest.mark.parametrize(
    ("tool", "input", "message"),
    [
        ("reshape", {"records": [], "key": "size"}, '$.key: expected one of "name", "value", got "size"'),
        ("reshape", {"records": [], "order": "up"}, '$.order: expected one of "asc", "desc", got "up"'),
        ("reshape", {"records": [{"name": "a", "value": "1", "tags": []}]}, "$.records[0].value: expected number, got string"),
        ("reshape", {"records": [{"name": "a", "value": 1}]}, '$.records[0]: missing required property "tags"'),
        ("reshape", {"records": [], "tag": 3}, "$.tag: expected string or null, got number"),
        ("text_stats", {}, '$: missing required property "text"'),
        ("text_stats", {"text": 5}, "$.text: expected string, got number"),
        ("text_stats", {"text": "a", "extra": 1}, '$: unexpected property "extra"'),
        ("text_stats", [1, 2], "$: expected object, got array"),
    ],
)
def test_schema_violations_are_refused_before_the_guest_runs(text_tools: LoadedPlugin, tool: str, input: Any, message: str) -> None:
    result = text_tools.call_tool(tool, input)
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_INPUT
    assert result.error.message == message
    # The one shape of validation errors, in the guest decoder's words (pdk._validation).
    path, _, text = message.partition(": ")
    assert result.error.details == {"errors": [{"path": path, "message": text}]}
    assert text_tools.instance.calls == 0
    assert text_tools.instance.instantiations == 0


def test_every_schema_violation_is_listed(text_tools: LoadedPlugin) -> None:
    records = [{"name": 1, "value": "x", "tags": []}, {"name": "b", "value": 1, "tags": [2]}]
    result = text_tools.call_tool("reshape", {"records": records, "key": "size"})
    assert result.error is not None and result.error.code is ErrorCode.INVALID_INPUT
    assert sorted(e["path"] for e in result.error.details["errors"]) == ["$.key", "$.records[0].name", "$.records[0].value", "$.records[1].tags[0]"]
    assert result.error.message.endswith("(and 3 more)")
    assert text_tools.instance.calls == 0


@pytest.mark.parametrize("raw", ['{"text": ', "not json", ""])
def test_input_that_is_not_json_is_refused_before_the_guest_runs(text_tools: LoadedPlugin, raw: str) -> None:
    result = text_tools.call_tool("text_stats", raw)
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_INPUT
    assert result.error.message.startswith("input is not valid JSON")
    assert text_tools.instance.calls == 0


def test_values_that_are_not_json_are_refused(text_tools: LoadedPlugin) -> None:
    for value in ({"text": float("nan")}, {"text": object()}):
        result = text_tools.call_tool("text_stats", value)
        assert result.error is not None and result.error.code is ErrorCode.INVALID_INPUT
    assert text_tools.instance.calls == 0


def test_an_unknown_tool_is_unsupported(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("word_count", {"text": "a"})
    assert result.error is not None
    assert result.error.code is ErrorCode.UNSUPPORTED
    assert result.error.message == "unknown tool 'word_count' (this plugin has: text_stats, reshape)"
    assert text_tools.instance.calls == 0


# --------------------------------------------------------------------- status


def test_status_counts_calls_and_errors_by_code(text_tools: LoadedPlugin) -> None:
    assert text_tools.status()["instance"] == {"instantiations": 0, "recycles": 0, "calls": 0}
    text_tools.call_tool("text_stats", {"text": "a"})
    text_tools.call_tool("text_stats", {"text": "a", "top": -1})  # guest refuses
    text_tools.call_tool("text_stats", {})  # host refuses
    text_tools.call_tool("nope")
    text_tools.call_tool("reshape", {"records": RECORDS})
    status = text_tools.status()
    assert status["id"] == "text-tools"
    assert status["version"] == "0.1.0"
    assert status["world"] == "tool"
    assert status["digest"].startswith("sha256:") and len(status["digest"]) == 71
    assert status["grants"]["dev"] is True and status["grants"]["matched"] is True
    assert status["tools"] == {"calls": 5, "errors": {"invalid_input": 2, "unsupported": 1}}
    assert status["instance"] == {"instantiations": 1, "recycles": 0, "calls": 3}
    json.dumps(status)  # a JSON document as it is


def test_call_ids_are_kept(text_tools: LoadedPlugin) -> None:
    result = text_tools.call_tool("text_stats", {"text": "a"}, call_id="call-123")
    assert result.call_id == "call-123"
    assert result.tool == "text_stats"
    other = text_tools.call_tool("text_stats", {"text": "a"})
    assert other.call_id and other.call_id != "call-123"
