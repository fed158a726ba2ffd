"""The guest authoring API in plain CPython: `Plugin`, `@plugin.tool`, `run_tool`,
typed errors and `pdk.log`.

`run_tool` is exactly what the component's `tools.call` export runs (the bridge
only converts its result or exception to binding types), so these tests prove the
guest-side behaviour without building a component.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, Optional, TypedDict

import pytest

import pdk
from pdk import ErrorCode, Plugin, PluginError, RetryableError, ToolError, ToolOutput
from pdk._wire import WireError, WireToolOutput, error_from_exception
from pdk.limits import ERROR_MESSAGE_MAX_BYTES, LOG_MESSAGE_MAX_BYTES, TRACEBACK_MAX_FRAMES
from pdk.testing import FakeHost


class Record(TypedDict):
    name: str
    value: float
    tags: list[str]


@dataclass
class Stats:
    words: int
    top: list[str]


def make_plugin() -> Plugin:
    plugin = Plugin()

    @plugin.tool
    def word_count(text: str, unique: bool = False) -> dict[str, int]:
        """Count the words in a text.

        Everything after the first paragraph is for people reading the code,
        not for the model.
        """
        words = text.split()
        return {"count": len(set(words) if unique else words)}

    @plugin.tool(name="sort-records", description="Sort records by a key.")
    def sort_records(records: list[Record], key: Literal["name", "value"] = "name", tag: Optional[str] = None) -> list[str]:
        """This docstring loses to description=."""
        kept = [r for r in records if tag is None or tag in r["tags"]]
        return [r["name"] for r in sorted(kept, key=lambda r: r[key])]

    @plugin.tool
    def stats(text: str) -> Stats:
        """Word statistics."""
        words = text.split()
        return Stats(words=len(words), top=sorted(set(words))[:2])

    @plugin.tool
    def explain(text: str) -> ToolOutput:
        """Summarise explicitly."""
        return ToolOutput(summary=f"{len(text)} characters", content={"length": len(text)})

    @plugin.tool
    def greet(name: str) -> str:
        """Greet someone."""
        return f"hello {name}"

    @plugin.tool
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    @plugin.tool
    def refuse(reason: str) -> None:
        """Always refuses."""
        raise ToolError(f"refused: {reason}", code="denied", details={"reason": reason})

    return plugin


# -- registration -----------------------------------------------------------------------------


def test_bare_decorator_uses_function_name_and_first_docstring_paragraph() -> None:
    plugin = make_plugin()
    spec = plugin.tools["word_count"]
    assert spec.name == "word_count"
    assert spec.description == "Count the words in a text."
    assert spec.input_schema == {
        "type": "object",
        "properties": {"text": {"type": "string"}, "unique": {"type": "boolean", "default": False}},
        "required": ["text"],
        "additionalProperties": False,
    }


def test_decorator_with_name_and_description_overrides_both() -> None:
    plugin = make_plugin()
    assert "sort_records" not in plugin.tools
    spec = plugin.tools["sort-records"]
    assert spec.description == "Sort records by a key."
    assert spec.input_schema["required"] == ["records"]


def test_multiline_first_paragraph_is_joined_and_missing_docstring_is_empty() -> None:
    plugin = Plugin()

    @plugin.tool
    def wrapped(x: int) -> int:
        """Add one to a number,
        which is a very useful thing.

        Second paragraph."""
        return x + 1

    @plugin.tool
    def undocumented(x: int) -> int:
        return x

    assert plugin.tools["wrapped"].description == "Add one to a number, which is a very useful thing."
    assert plugin.tools["undocumented"].description == ""


def test_handlers_stay_plain_functions() -> None:
    plugin = Plugin()

    def word_count(text: str) -> dict[str, int]:
        """Count."""
        return {"count": len(text.split())}

    decorated = plugin.tool(word_count)
    assert decorated is word_count
    assert word_count("a b c") == {"count": 3}

    @plugin.tool(name="named")
    def other(n: int) -> int:
        """Other."""
        return n * 2

    assert other(4) == 8  # called with a plain int, no JSON, no validation
    assert plugin.tools["named"].func is other


@pytest.mark.parametrize("name", ["", "Upper", "has space", "9lives", "_x", "a" * 65, "tool!"])
def test_invalid_tool_names_are_refused_at_registration(name: str) -> None:
    plugin = Plugin()
    with pytest.raises(ValueError, match="invalid tool name"):
        plugin.tool(name=name)(lambda: None)


def test_registering_a_name_twice_is_refused() -> None:
    plugin = Plugin()

    @plugin.tool
    def dup() -> int:
        return 1

    with pytest.raises(ValueError, match="registered twice"):
        plugin.tool(name="dup")(lambda: 2)


# -- run_tool: success --------------------------------------------------------------------------


def test_run_tool_decodes_calls_and_encodes() -> None:
    out = make_plugin().run_tool("word_count", json.dumps({"text": "a b a", "unique": True}))
    assert isinstance(out, WireToolOutput)
    assert json.loads(out.content_json or "") == {"count": 2}
    assert out.summary == 'word_count: {"count":2}'


def test_run_tool_decodes_typed_records_literal_and_optional() -> None:
    records = [{"name": "b", "value": 1.5, "tags": ["x"]}, {"name": "a", "value": 2, "tags": []}]
    plugin = make_plugin()
    out = plugin.run_tool("sort-records", json.dumps({"records": records, "key": "value"}))
    assert json.loads(out.content_json or "") == ["b", "a"]
    out = plugin.run_tool("sort-records", json.dumps({"records": records, "tag": "x"}))
    assert json.loads(out.content_json or "") == ["b"]


def test_dataclass_results_are_encoded_as_objects() -> None:
    out = make_plugin().run_tool("stats", '{"text": "b a b"}')
    assert json.loads(out.content_json or "") == {"words": 3, "top": ["a", "b"]}


def test_tool_output_sets_the_summary_explicitly() -> None:
    out = make_plugin().run_tool("explain", '{"text": "hello"}')
    assert out == WireToolOutput(summary="5 characters", content_json='{"length":5}')


def test_a_short_string_result_is_its_own_summary() -> None:
    out = make_plugin().run_tool("greet", '{"name": "Ada"}')
    assert out == WireToolOutput(summary="hello Ada", content_json=None)


def test_a_none_result_reports_done() -> None:
    plugin = Plugin()

    @plugin.tool
    def noop() -> None:
        """Does nothing."""

    assert plugin.run_tool("noop", "{}") == WireToolOutput(summary="noop: done", content_json=None)


# -- run_tool: errors ---------------------------------------------------------------------------


def test_invalid_input_names_the_exact_path() -> None:
    records = [{"name": "a", "value": 1, "tags": []}, {"name": 3, "value": 2, "tags": []}]
    with pytest.raises(ToolError) as info:
        make_plugin().run_tool("sort-records", json.dumps({"records": records}))
    err = info.value
    assert err.code is ErrorCode.INVALID_INPUT
    assert str(err) == "$.records[1].name: expected string, got number"
    assert err.details == {"errors": [{"path": "$.records[1].name", "message": "expected string, got number"}]}


def test_several_input_errors_are_all_reported() -> None:
    records = [{"name": 1, "value": "x", "tags": []}]
    with pytest.raises(ToolError) as info:
        make_plugin().run_tool("sort-records", json.dumps({"records": records, "key": "size"}))
    paths = [e["path"] for e in info.value.details["errors"]]
    assert paths == ["$.records[0].name", "$.records[0].value", "$.key"]
    assert str(info.value).endswith("(and 2 more)")


@pytest.mark.parametrize(
    ("input_json", "message"),
    [
        ("{not json", "input is not valid JSON"),
        ("[]", "$: expected object, got array"),
        ("{}", '$: missing required property "text"'),
        ('{"text": "x", "extra": 1}', 'unexpected property "extra"'),
        ('{"text": 5}', "$.text: expected string, got number"),
        ('{"text": "x", "unique": 1}', "$.unique: expected boolean"),
    ],
)
def test_bad_inputs_are_invalid_input(input_json: str, message: str) -> None:
    with pytest.raises(ToolError) as info:
        make_plugin().run_tool("word_count", input_json)
    assert info.value.code is ErrorCode.INVALID_INPUT
    assert message in str(info.value)


def test_invalid_input_becomes_a_wire_error_with_details() -> None:
    with pytest.raises(ToolError) as info:
        make_plugin().run_tool("word_count", '{"text": 5}')
    wire = error_from_exception(info.value)
    assert wire.code is ErrorCode.INVALID_INPUT
    assert wire.message == "$.text: expected string, got number"
    assert json.loads(wire.details_json or "") == {"errors": [{"path": "$.text", "message": "expected string, got number"}]}
    assert wire.retryable is False


def test_unknown_tool_is_unsupported_and_lists_the_tools() -> None:
    with pytest.raises(PluginError) as info:
        make_plugin().run_tool("nope", "{}")
    assert info.value.code is ErrorCode.UNSUPPORTED
    assert "'nope'" in info.value.message
    assert "word_count" in info.value.message and "sort-records" in info.value.message
    assert error_from_exception(info.value).code is ErrorCode.UNSUPPORTED


def test_tool_error_raised_by_a_handler_keeps_code_and_details() -> None:
    with pytest.raises(ToolError) as info:
        make_plugin().run_tool("refuse", '{"reason": "policy"}')
    wire = error_from_exception(info.value)
    assert wire == WireError(ErrorCode.DENIED, "refused: policy", '{"reason":"policy"}', False)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_tool_error_accepts_every_code_by_member_or_snake_case_name(code: ErrorCode) -> None:
    assert ToolError("x", code=code).code is code
    assert ToolError("x", code=code.value).code is code
    assert error_from_exception(ToolError("x", code=code.value)).code is code


def test_tool_error_defaults_and_rejects_unknown_codes() -> None:
    assert ToolError("x").code is ErrorCode.FAILED
    assert ToolError("x").details is None
    assert ErrorCode.INVALID_INPUT.wit_name == "invalid-input"
    with pytest.raises(ValueError):
        ToolError("x", code="not_a_code")


def test_retryable_error_is_failed_and_retryable() -> None:
    wire = error_from_exception(RetryableError("busy", details={"after_ms": 100}))
    assert (wire.code, wire.retryable, json.loads(wire.details_json or "")) == (ErrorCode.FAILED, True, {"after_ms": 100})


def test_unexpected_exception_becomes_failed_with_a_short_traceback() -> None:
    with pytest.raises(ZeroDivisionError) as info:
        make_plugin().run_tool("divide", '{"a": 1, "b": 0}')
    wire = error_from_exception(info.value)
    assert wire.code is ErrorCode.FAILED
    assert wire.message == "ZeroDivisionError: division by zero"
    assert wire.retryable is False
    details = json.loads(wire.details_json or "")
    assert details["exception"] == "ZeroDivisionError"
    frames = details["traceback"]
    assert 1 <= len(frames) <= TRACEBACK_MAX_FRAMES
    # `file:line in function`, file names without directories, no source text.
    assert frames[-1].startswith("test_plugin_api.py:") and frames[-1].endswith(" in divide")
    assert all("/" not in f and "return a / b" not in f for f in frames)
    assert "Traceback" not in wire.message + (wire.details_json or "")


def test_unexpected_exception_traceback_keeps_only_the_innermost_frames() -> None:
    def recurse(n: int) -> None:
        if n == 0:
            raise RuntimeError("bottom")
        recurse(n - 1)

    try:
        recurse(30)
    except RuntimeError as exc:
        wire = error_from_exception(exc)
    frames = json.loads(wire.details_json or "")["traceback"]
    assert len(frames) == TRACEBACK_MAX_FRAMES
    assert all(f.endswith(" in recurse") for f in frames)


def test_unexpected_exception_message_is_bounded() -> None:
    wire = error_from_exception(ValueError("é" * 10_000))
    assert len(wire.message.encode("utf-8")) <= ERROR_MESSAGE_MAX_BYTES
    assert wire.message.startswith("ValueError: éé") and wire.message.endswith("…")
    assert error_from_exception(KeyError()).message == "KeyError"


def test_a_result_that_is_not_json_is_invalid_output() -> None:
    plugin = Plugin()

    @plugin.tool
    def bad() -> object:
        """Returns a set."""
        return {"ids": {1, 2}}

    with pytest.raises(ToolError) as info:
        plugin.run_tool("bad", "{}")
    assert info.value.code is ErrorCode.INVALID_OUTPUT
    assert "'bad'" in info.value.message and "$.ids" in info.value.message


def test_a_nan_result_is_invalid_output_not_a_crash() -> None:
    plugin = Plugin()

    @plugin.tool
    def nan() -> float:
        """Not a number."""
        return float("nan")

    with pytest.raises(PluginError) as info:
        plugin.run_tool("nan", "{}")
    assert info.value.code is ErrorCode.INVALID_OUTPUT


# -- logging ------------------------------------------------------------------------------------


def test_log_goes_to_the_installed_fake_host_and_never_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    plugin = Plugin()

    @plugin.tool
    def noisy(text: str) -> int:
        """Logs at every level."""
        pdk.log.debug("d")
        pdk.log.info(f"counting {text!r}")
        pdk.log.warn("w")
        pdk.log.error({"not": "a string"})
        return len(text)

    with FakeHost() as host:
        plugin.run_tool("noisy", '{"text": "hey"}')
        assert noisy("x") == 1  # a direct call logs the same way
    assert host.logs[:4] == [("debug", "d"), ("info", "counting 'hey'"), ("warn", "w"), ("error", "{'not': 'a string'}")]
    assert host.logs[5] == ("info", "counting 'x'")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_fake_host_is_uninstalled_on_exit_and_logs_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeHost() as outer:
        with FakeHost() as inner:
            pdk.log.info("é" * LOG_MESSAGE_MAX_BYTES)
        pdk.log.info("after")
    pdk.log.info("detached: kept in memory, not printed")
    assert outer.logs == [("info", "after")]
    (level, message), = inner.logs
    assert level == "info" and len(message.encode("utf-8")) <= LOG_MESSAGE_MAX_BYTES and message.endswith("…")
    assert capsys.readouterr().out == ""


def test_logging_never_raises_into_the_plugin() -> None:
    class BrokenHost(FakeHost):
        def log(self, level: str, message: str) -> None:
            raise RuntimeError("host is gone")

    with BrokenHost():
        pdk.log.info("still fine")
