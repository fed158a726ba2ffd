"""The tool-call path: grant → input bound → schema → call → bounded `ToolResult`.

A failed call's error is an `ErrorRecord` (`pdk.host.error_record`), the host's
counterpart of the guest's `pdk.ToolError`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from pdk._validation import validation_details, validation_message
from pdk.errors import ErrorCode
from pdk.limits import TOOL_CONTENT_MAX_BYTES, TOOL_INPUT_MAX_BYTES, TOOL_SUMMARY_MAX_BYTES

from .codec import CodecError, Err, Ok, ResultError
from .error_record import ErrorRecord, error_record, fault_record, plugin_error_record
from .guest_json import GuestJsonError, loads_guest
from .instance import GuestFault
from .redact import bound_text
from .schema_check import Validator, schema_problems, schema_validator

TOOLS_IFACE = "yoi:plugin/tools@2.0.0"


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call, in the v1 ToolOutput shape when rendered.

    Success: `summary` and `content` (any JSON value or None). Failure: `error`, and
    `summary`/`content` render it the way models see errors
    (`summary = "tool error: <code>"`, `content = {"error": {...}}`)."""

    tool: str
    call_id: str
    summary: str
    content: Any = None
    error: ErrorRecord | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The ToolOutput document: `{"summary": ..., "content": ...}`."""
        return {"summary": self.summary, "content": self.content}


def error_result(tool: str, call_id: str, code: ErrorCode, message: str, details: Any = None, retryable: bool = False) -> ToolResult:
    return failed_result(tool, call_id, error_record(code, message, details, retryable=retryable))


def failed_result(tool: str, call_id: str, err: ErrorRecord) -> ToolResult:
    """The ToolOutput a model sees for an error: `tool error: <code>` and `{"error": ...}`."""
    return ToolResult(tool, call_id, f"tool error: {err.code.value}", {"error": err.to_json()}, err)


def validate_input(tool: str, call_id: str, validator: Validator, raw: str) -> tuple[Any, ToolResult | None]:
    """Bound, parse and schema-check a tool input on the host side, before any guest code runs."""
    try:
        size = len(raw) if raw.isascii() else len(raw.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate: not text any guest could receive
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input is not valid Unicode text (lone surrogate at index {exc.start})")
    if size > TOOL_INPUT_MAX_BYTES:
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input is {size} bytes; the limit is {TOOL_INPUT_MAX_BYTES}")
    try:
        data = json.loads(raw)
    except RecursionError:
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, "input is not valid JSON: nested too deeply")
    except ValueError as exc:
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input is not valid JSON: {exc}")
    problems = schema_problems(validator, data)
    if problems is None:
        return data, None
    # The guest's decoder answers the same input in the same words and shape.
    message = validation_message(problems.items, problems.total)
    return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, message, validation_details(problems.items))


def result_from_guest(tool: str, call_id: str, value: Any) -> ToolResult:
    """Check and bound what the guest returned (never trust the guest's own bounds).
    Never raises: whatever the guest returned, a result (`invalid_output` at worst)."""
    try:
        return _result_from_guest(tool, call_id, value)
    except Exception as exc:  # noqa: BLE001 - nothing a guest returns may raise in the caller
        return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, f"the plugin's result could not be processed: {type(exc).__name__}")


def _result_from_guest(tool: str, call_id: str, value: Any) -> ToolResult:
    if isinstance(value, Err):
        return failed_result(tool, call_id, plugin_error_record(value.value))
    if not isinstance(value, Ok):
        return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, "the plugin returned no result")
    out = value.value
    summary = str(out.get("summary") or "").strip()
    content_json = out.get("content_json")
    if not summary:
        return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, "the plugin returned an empty summary")
    if len(summary) * 4 > TOOL_SUMMARY_MAX_BYTES and len(summary.encode("utf-8")) > TOOL_SUMMARY_MAX_BYTES:
        summary = bound_text(summary, TOOL_SUMMARY_MAX_BYTES)
    content = None
    if content_json is not None:
        if len(content_json) * 4 > TOOL_CONTENT_MAX_BYTES and len(content_json.encode("utf-8")) > TOOL_CONTENT_MAX_BYTES:
            return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, f"content is larger than {TOOL_CONTENT_MAX_BYTES} bytes")
        try:
            content = loads_guest(content_json)  # bounded depth, no NaN/Infinity
        except GuestJsonError as exc:
            return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, f"content is refused: {exc}")
    return ToolResult(tool, call_id, summary, content)


def new_call_id() -> str:
    """A random (version 4) UUID as 32 hex digits, like `uuid.uuid4().hex` at a quarter
    of its cost (no `UUID` object)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def fault_result(tool: str, call_id: str, fault: GuestFault) -> ToolResult:
    details = {"fault": fault.kind, "instance_recycled": True}
    return failed_result(tool, call_id, fault_record(fault, details, retryable=fault.kind != "instantiate"))


def codec_result(tool: str, call_id: str, exc: CodecError) -> ToolResult:
    return error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input cannot be passed to the plugin: {exc}")


def result_error_result(tool: str, call_id: str, exc: ResultError) -> ToolResult:
    """The guest's result did not fit the contract, or was larger than the host reads."""
    return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, bound_text(f"the plugin's result does not fit the contract: {exc}", 1024))
