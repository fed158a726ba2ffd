"""A hostile plugin against the reference host's limits, in real wasmtime.

tests/plugins/hostile spins forever, allocates past the memory cap, returns more
than the output bound (through the PDK and around it), raises unexpected exceptions
and typed refusals. Every fault must come back as a typed, bounded error, and the
plugin must keep serving calls afterwards — on a fresh instance when the old one
was poisoned, on the same instance (state kept) when it was not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from pdk.errors import ErrorCode
from pdk.host import Host, InstanceLimits, LoadedPlugin
from pdk.limits import (
    ERROR_MESSAGE_MAX_BYTES,
    MEMORY_DEFAULT_BYTES,
    MIB,
    TOOL_CONTENT_MAX_BYTES,
    TOOL_INPUT_MAX_BYTES,
    TOOL_SUMMARY_MAX_BYTES,
    TRACEBACK_MAX_FRAMES,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hostile_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("hostile")


@pytest.fixture
def hostile(host: Host, hostile_dir: Path) -> LoadedPlugin:
    return host.load(hostile_dir, dev_grants=True)


@pytest.fixture
def quick_host() -> Iterator[Host]:
    with Host(limits=InstanceLimits(deadline_s=1.0)) as h:
        yield h


# --------------------------------------------------------------------- deadline


def test_an_infinite_loop_is_stopped_at_the_deadline(quick_host: Host, hostile_dir: Path) -> None:
    plugin = quick_host.load(hostile_dir, dev_grants=True)
    assert plugin.call_tool("count").content == 1
    assert plugin.call_tool("count").content == 2

    started = time.perf_counter()
    result = plugin.call_tool("spin")
    elapsed = time.perf_counter() - started

    assert result.error is not None
    assert result.error.code is ErrorCode.TIMEOUT
    assert result.error.message == "the call exceeded its deadline and was stopped"
    assert result.error.retryable is True
    assert result.error.details == {"fault": "timeout", "instance_recycled": True}
    assert elapsed < 1.0 + 0.5, f"spin ran {elapsed:.2f}s with a 1.0s deadline"
    assert plugin.status()["instance"]["recycles"] == 1

    # The next call runs on a fresh instance: it works, and the old state is gone.
    after = plugin.call_tool("count")
    assert after.ok, after.error
    assert after.content == 1
    assert plugin.status()["instance"] == {"instantiations": 2, "recycles": 1, "calls": 4}
    assert any("timeout" in m for m in plugin.diagnostics.messages("host"))


def test_the_deadline_applies_to_every_call(quick_host: Host, hostile_dir: Path) -> None:
    plugin = quick_host.load(hostile_dir, dev_grants=True)
    for round in range(1, 3):
        started = time.perf_counter()
        result = plugin.call_tool("spin")
        elapsed = time.perf_counter() - started
        assert result.error is not None and result.error.code is ErrorCode.TIMEOUT
        assert elapsed < 1.0 + 0.5, f"spin ran {elapsed:.2f}s with a 1.0s deadline"
        assert plugin.status()["instance"]["recycles"] == round
        assert plugin.call_tool("echo", {"text": "still here"}).content == {"text": "still here", "length": 10}


def test_a_per_plugin_deadline_overrides_the_host_default(host: Host, hostile_dir: Path) -> None:
    plugin = host.load(hostile_dir, dev_grants=True, limits=InstanceLimits(deadline_s=0.5))
    started = time.perf_counter()
    result = plugin.call_tool("spin")
    elapsed = time.perf_counter() - started
    assert result.error is not None and result.error.code is ErrorCode.TIMEOUT
    assert elapsed < 0.5 + 0.5, f"spin ran {elapsed:.2f}s with a 0.5s deadline"


# --------------------------------------------------------------------- traps


@pytest.mark.parametrize(
    ("tool", "reason"),
    [
        ("abort", "wasm trap: wasm `unreachable` instruction executed"),  # os.abort()
        ("exit", "Exited with i32 exit status 1"),  # os._exit(3): WASI exit, not the host's
    ],
)
def test_a_trap_is_failed_with_its_reason_and_the_instance_is_replaced(hostile: LoadedPlugin, tool: str, reason: str) -> None:
    assert hostile.call_tool("count").content == 1
    result = hostile.call_tool(tool)
    assert result.error is not None
    assert result.error.code is ErrorCode.FAILED
    assert result.error.message == f"the guest trapped: {reason}"
    assert result.error.details == {"fault": "trap", "instance_recycled": True}
    assert hostile.status()["instance"]["recycles"] == 1
    # The host process is alive and the plugin serves calls on a fresh instance.
    assert hostile.call_tool("count").content == 1
    assert hostile.diagnostics.messages("host") == [f"tool {tool}: trap: the guest trapped: {reason}"]


# --------------------------------------------------------------------- memory


def test_a_memory_bomb_gets_a_typed_error_and_the_plugin_survives(hostile: LoadedPlugin) -> None:
    assert hostile.instance.limits.memory_bytes == MEMORY_DEFAULT_BYTES == 64 * MIB
    result = hostile.call_tool("allocate", {"mib": 128})
    assert result.error is not None
    assert result.error.code is ErrorCode.FAILED
    assert result.error.message == "MemoryError"
    assert result.summary == "tool error: failed"

    after = hostile.call_tool("allocate", {"mib": 8})
    assert after.ok, after.error
    assert after.content == {"allocated": 8 * MIB}
    assert hostile.call_tool("echo", {"text": "ok"}).ok


def test_repeated_memory_bombs_do_not_wear_the_plugin_down(hostile: LoadedPlugin) -> None:
    for _ in range(5):
        result = hostile.call_tool("allocate", {"mib": 1024})
        assert result.error is not None and result.error.code is ErrorCode.FAILED
    assert hostile.call_tool("allocate", {"mib": 16}).content == {"allocated": 16 * MIB}


def test_a_smaller_memory_cap_is_enforced(host: Host, hostile_dir: Path) -> None:
    plugin = host.load(hostile_dir, dev_grants=True, limits=InstanceLimits(memory_bytes=32 * MIB))
    result = plugin.call_tool("allocate", {"mib": 24})  # fits under 64 MiB, not under 32 MiB
    assert result.error is not None and result.error.code is ErrorCode.FAILED
    assert plugin.call_tool("allocate", {"mib": 1}).ok


# --------------------------------------------------------------------- input bound


def test_oversized_input_is_refused_without_crossing_the_boundary(hostile: LoadedPlugin) -> None:
    assert hostile.call_tool("count").content == 1
    calls = hostile.instance.calls

    result = hostile.call_tool("echo", {"text": "x" * (TOOL_INPUT_MAX_BYTES + 1)})
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_INPUT
    size = len(json.dumps({"text": "x" * (TOOL_INPUT_MAX_BYTES + 1)}, separators=(",", ":")))
    assert result.error.message == f"input is {size} bytes; the limit is {TOOL_INPUT_MAX_BYTES}"
    assert hostile.instance.calls == calls
    assert hostile.call_tool("count").content == 2


def test_input_exactly_at_the_limit_is_accepted(hostile: LoadedPlugin) -> None:
    envelope = json.dumps({"text": "", "length_only": True})
    text = "x" * (TOOL_INPUT_MAX_BYTES - len(envelope))
    raw = json.dumps({"text": text, "length_only": True})
    assert len(raw.encode()) == TOOL_INPUT_MAX_BYTES
    result = hostile.call_tool("echo", raw)
    assert result.ok, result.error
    assert result.content == {"length": len(text), "utf8_bytes": len(text)}

    over = hostile.call_tool("echo", raw.replace('"text": "', '"text": "x'))
    assert over.error is not None and over.error.code is ErrorCode.INVALID_INPUT


def test_the_input_bound_counts_utf8_bytes_however_the_input_is_passed(hostile: LoadedPlugin) -> None:
    # 12,000 CJK characters are 36,000 UTF-8 bytes: well inside the 64 KiB bound,
    # whether the caller passes a JSON string or a value.
    text = "中" * 12_000
    as_value = hostile.call_tool("echo", {"text": text, "length_only": True})
    as_text = hostile.call_tool("echo", json.dumps({"text": text, "length_only": True}, ensure_ascii=False))
    assert as_value.ok, as_value.error
    assert as_text.ok, as_text.error
    assert as_value.content == as_text.content == {"length": 12_000, "utf8_bytes": 36_000}

    # 22,000 of them are 66,000 bytes: refused, again without crossing.
    calls = hostile.instance.calls
    big = hostile.call_tool("echo", {"text": "中" * 22_000})
    assert big.error is not None and big.error.code is ErrorCode.INVALID_INPUT
    assert hostile.instance.calls == calls


def test_text_that_is_not_unicode_is_refused_not_raised(hostile: LoadedPlugin) -> None:
    for input in ('{"text": "\udc80"}', {"text": "a\udc80b"}):
        result = hostile.call_tool("echo", input)
        assert result.error is not None
        assert result.error.code is ErrorCode.INVALID_INPUT
        assert "lone surrogate" in result.error.message
    assert hostile.instance.calls == 0


# --------------------------------------------------------------------- output bound


def test_oversized_output_is_invalid_output(hostile: LoadedPlugin) -> None:
    result = hostile.call_tool("big_output", {"kib": 70})
    assert result.error is not None
    assert result.error.code is ErrorCode.INVALID_OUTPUT
    assert result.error.message.endswith(f"the limit is {TOOL_CONTENT_MAX_BYTES}")

    fits = hostile.call_tool("big_output", {"kib": 60})
    assert fits.ok, fits.error
    assert fits.content == {"data": "x" * 60 * 1024}


def test_the_host_bounds_output_even_when_the_guest_skips_its_own_checks(hostile: LoadedPlugin) -> None:
    # `raw_output` goes around the guest PDK's bounds, as a malicious or buggy guest could.
    huge = hostile.call_tool("raw_output", {"content_kib": 70})
    assert huge.error is not None
    assert huge.error.code is ErrorCode.INVALID_OUTPUT
    assert huge.error.message == f"content is larger than {TOOL_CONTENT_MAX_BYTES} bytes"
    assert huge.content == {"error": {"code": "invalid_output", "message": huge.error.message, "retryable": False}}

    broken = hostile.call_tool("raw_output", {"bad_json": True})
    assert broken.error is not None
    assert broken.error.code is ErrorCode.INVALID_OUTPUT
    assert broken.error.message == "content is refused: not valid JSON: Expecting value at line 1 column 9"

    long_summary = hostile.call_tool("raw_output", {"summary_kib": 3})
    assert long_summary.ok, long_summary.error
    assert 0 < len(long_summary.summary.encode("utf-8")) <= TOOL_SUMMARY_MAX_BYTES
    assert long_summary.content == {"fine": True}

    # None of these poisoned the instance.
    assert hostile.status()["instance"]["recycles"] == 0


# --------------------------------------------------------------------- errors


def test_an_unexpected_exception_is_failed_with_a_bounded_message_and_short_traceback(hostile: LoadedPlugin) -> None:
    assert hostile.call_tool("count").content == 1
    result = hostile.call_tool("boom", {"depth": 20, "size": 5000})
    assert result.error is not None
    assert result.error.code is ErrorCode.FAILED
    assert result.error.retryable is False
    assert result.error.message.startswith("RuntimeError: kaboom kaboom")
    assert len(result.error.message.encode("utf-8")) <= ERROR_MESSAGE_MAX_BYTES
    assert "Traceback" not in result.error.message

    details = result.error.details
    assert details["exception"] == "RuntimeError"
    frames = details["traceback"]
    assert 0 < len(frames) <= TRACEBACK_MAX_FRAMES
    assert frames[-1].startswith("app.py:") and frames[-1].endswith(" in _deeper")
    assert all(len(frame) < 200 for frame in frames)

    # An exception is not a trap: the same instance serves the next call, state kept.
    assert hostile.call_tool("count").content == 2
    assert hostile.status()["instance"] == {"instantiations": 1, "recycles": 0, "calls": 3}


def test_a_shallow_exception_keeps_its_whole_traceback(hostile: LoadedPlugin) -> None:
    result = hostile.call_tool("boom")
    assert result.error is not None
    assert result.error.message == "RuntimeError: kaboom"
    frames = result.error.details["traceback"]
    assert [frame.rsplit(" in ", 1)[1] for frame in frames[-2:]] == ["boom", "_deeper"]


def test_a_typed_refusal_keeps_its_code_and_details(hostile: LoadedPlugin) -> None:
    assert hostile.call_tool("count").content == 1
    result = hostile.call_tool("refuse")
    assert result.error is not None
    assert result.error.code is ErrorCode.DENIED
    assert result.error.message == "this plugin refuses"
    assert result.error.details == {"reason": "policy", "attempts": 1}
    assert result.error.retryable is False
    assert result.summary == "tool error: denied"
    assert result.content == {"error": {"code": "denied", "message": "this plugin refuses", "retryable": False, "details": {"reason": "policy", "attempts": 1}}}

    assert hostile.call_tool("count").content == 2
    assert hostile.status()["instance"]["recycles"] == 0
    assert hostile.status()["tools"]["errors"] == {"denied": 1}
