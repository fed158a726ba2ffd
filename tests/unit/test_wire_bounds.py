"""Output bounds of the guest: summaries (1 KiB), error messages (4 KiB) and details
(16 KiB) are cut on a character boundary; content over 64 KiB is an
`invalid_output` error, because cut JSON is not JSON.

Every cut is exercised with 2-, 3- and 4-byte UTF-8 characters placed so that one
of them straddles the byte where the cut falls.
"""

from __future__ import annotations

import json

import pytest

from pdk import ErrorCode, Plugin, PluginError, ToolError, ToolOutput
from pdk._bounds import ELLIPSIS, bound_text
from pdk._wire import error_from_exception, error_from_plugin_error, tool_output
from pdk.limits import (
    ERROR_DETAILS_MAX_BYTES,
    ERROR_MESSAGE_MAX_BYTES,
    TOOL_CONTENT_MAX_BYTES,
    TOOL_SUMMARY_MAX_BYTES,
)

MULTIBYTE = ["é", "€", "😀"]  # 2, 3 and 4 bytes in UTF-8
MARKER_BYTES = len(ELLIPSIS.encode("utf-8"))


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def straddling(limit: int, char: str, shift: int) -> str:
    """ASCII up to just before the cut, then `char`s; `shift` moves where the first
    multibyte character starts relative to the last byte that fits."""
    budget = limit - MARKER_BYTES
    return "a" * (budget - shift) + char * 2000


def assert_cut_on_char_boundary(original: str, result: str, limit: int) -> None:
    assert utf8(result) <= limit
    assert result.endswith(ELLIPSIS)
    kept = result[: -len(ELLIPSIS)]
    assert original.startswith(kept)  # a prefix of whole characters, nothing mangled
    # As much as fits: the next character would not have fitted with the marker.
    assert utf8(kept) + utf8(original[len(kept)]) > limit - MARKER_BYTES


@pytest.mark.parametrize("char", MULTIBYTE)
@pytest.mark.parametrize("shift", [0, 1, 2, 3])
@pytest.mark.parametrize("limit", [TOOL_SUMMARY_MAX_BYTES, ERROR_MESSAGE_MAX_BYTES])
def test_bound_text_cuts_on_a_character_boundary(char: str, shift: int, limit: int) -> None:
    text = straddling(limit, char, shift)
    assert_cut_on_char_boundary(text, bound_text(text, limit), limit)


def test_bound_text_leaves_fitting_text_alone() -> None:
    exact = "😀" * (TOOL_SUMMARY_MAX_BYTES // 4)
    assert utf8(exact) == TOOL_SUMMARY_MAX_BYTES
    assert bound_text(exact, TOOL_SUMMARY_MAX_BYTES) == exact
    assert bound_text(exact + "a", TOOL_SUMMARY_MAX_BYTES).endswith(ELLIPSIS)
    # A limit smaller than the marker still never yields more bytes than the limit.
    assert bound_text("abc", 2) == ""


@pytest.mark.parametrize("char", MULTIBYTE)
@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_tool_summary_is_cut_at_1_kib_through_run_tool(char: str, shift: int) -> None:
    plugin = Plugin()
    summary = straddling(TOOL_SUMMARY_MAX_BYTES, char, shift)

    @plugin.tool
    def long_summary() -> ToolOutput:
        """Returns a long summary."""
        return ToolOutput(summary=summary, content={"ok": True})

    out = plugin.run_tool("long_summary", "{}")
    assert_cut_on_char_boundary(summary, out.summary, TOOL_SUMMARY_MAX_BYTES)
    assert out.content_json == '{"ok":true}'


@pytest.mark.parametrize("char", MULTIBYTE)
def test_a_long_string_result_is_summarised_and_kept_whole_as_content(char: str) -> None:
    plugin = Plugin()
    text = "a" * 1000 + char * 500

    @plugin.tool
    def echo() -> str:
        """Returns a long string."""
        return text

    out = plugin.run_tool("echo", "{}")
    assert_cut_on_char_boundary(text, out.summary, TOOL_SUMMARY_MAX_BYTES)
    assert json.loads(out.content_json or "") == text


def test_a_generated_summary_of_large_content_is_cut() -> None:
    plugin = Plugin()

    @plugin.tool
    def big() -> list[str]:
        """Large content."""
        return ["€" * 100] * 50

    out = plugin.run_tool("big", "{}")
    assert utf8(out.summary) <= TOOL_SUMMARY_MAX_BYTES and out.summary.startswith('big: ["€€')
    assert json.loads(out.content_json or "") == ["€" * 100] * 50


def test_blank_summary_becomes_ok() -> None:
    assert tool_output("   ", None).summary == "ok"


@pytest.mark.parametrize("char", MULTIBYTE)
@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_error_message_is_cut_at_4_kib(char: str, shift: int) -> None:
    message = straddling(ERROR_MESSAGE_MAX_BYTES, char, shift)
    wire = error_from_plugin_error(ToolError(message, code="invalid_input"))
    assert wire.code is ErrorCode.INVALID_INPUT
    assert_cut_on_char_boundary(message, wire.message, ERROR_MESSAGE_MAX_BYTES)


@pytest.mark.parametrize("char", MULTIBYTE)
def test_unexpected_exception_message_is_cut_at_4_kib(char: str) -> None:
    exc = RuntimeError("a" * 4070 + char * 100)
    wire = error_from_exception(exc)
    assert_cut_on_char_boundary("RuntimeError: " + str(exc), wire.message, ERROR_MESSAGE_MAX_BYTES)


def test_oversized_details_stay_valid_json_and_bounded() -> None:
    wire = error_from_plugin_error(ToolError("x", details={"blob": "😀" * ERROR_DETAILS_MAX_BYTES}))
    assert wire.details_json is not None
    assert utf8(wire.details_json) <= ERROR_DETAILS_MAX_BYTES
    assert set(json.loads(wire.details_json)) == {"truncated"}


def test_details_that_are_not_json_become_a_bounded_repr() -> None:
    wire = error_from_plugin_error(ToolError("x", details={"when": object()}))
    assert set(json.loads(wire.details_json or "")) == {"repr"}


def test_content_up_to_64_kib_passes_and_one_byte_more_is_invalid_output() -> None:
    fits = "x" * (TOOL_CONTENT_MAX_BYTES - 2)  # the JSON string adds two quotes
    assert utf8(tool_output("s", fits).content_json or "") == TOOL_CONTENT_MAX_BYTES
    with pytest.raises(PluginError) as info:
        tool_output("s", fits + "x")
    assert info.value.code is ErrorCode.INVALID_OUTPUT
    assert info.value.details == {"size": TOOL_CONTENT_MAX_BYTES + 1, "limit": TOOL_CONTENT_MAX_BYTES}


def test_content_size_counts_utf8_bytes_not_characters() -> None:
    chars = (TOOL_CONTENT_MAX_BYTES - 2) // 4 + 1  # fewer characters than the limit, more bytes
    with pytest.raises(PluginError) as info:
        tool_output("s", "😀" * chars)
    assert info.value.code is ErrorCode.INVALID_OUTPUT


def test_oversized_content_from_a_tool_is_an_invalid_output_wire_error() -> None:
    plugin = Plugin()

    @plugin.tool
    def huge(n: int) -> dict[str, str]:
        """Returns n KiB."""
        return {"data": "€" * (n * 1024 // 3)}

    assert plugin.run_tool("huge", '{"n": 1}').content_json is not None
    with pytest.raises(PluginError) as info:
        plugin.run_tool("huge", '{"n": 65}')
    wire = error_from_exception(info.value)
    assert wire.code is ErrorCode.INVALID_OUTPUT
    assert "limit is 65536" in wire.message
    assert json.loads(wire.details_json or "")["limit"] == TOOL_CONTENT_MAX_BYTES
