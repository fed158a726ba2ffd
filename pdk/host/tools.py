"""The tool-call path: grant → input bound → schema → call → bounded `ToolResult`."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import jsonschema

from pdk.errors import ErrorCode
from pdk.limits import ERROR_MESSAGE_MAX_BYTES, TOOL_CONTENT_MAX_BYTES, TOOL_INPUT_MAX_BYTES, TOOL_SUMMARY_MAX_BYTES

from .codec import CodecError, Err, Ok
from .instance import GuestFault
from .redact import bound_text, redact

TOOLS_IFACE = "yoi:plugin/tools@2.0.0"


@dataclass(frozen=True)
class ToolError:
    """A typed, bounded, redacted error (from the host or the plugin)."""

    code: ErrorCode
    message: str
    details: Any = None
    retryable: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code.value, "message": self.message, "retryable": self.retryable}
        if self.details is not None:
            data["details"] = self.details
        return data


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
    error: ToolError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The ToolOutput document: `{"summary": ..., "content": ...}`."""
        return {"summary": self.summary, "content": self.content}


def error_result(tool: str, call_id: str, code: ErrorCode, message: str, details: Any = None, retryable: bool = False) -> ToolResult:
    err = ToolError(code, bound_text(redact(message), ERROR_MESSAGE_MAX_BYTES), details, retryable)
    return ToolResult(tool, call_id, f"tool error: {code.value}", {"error": err.to_json()}, err)


def _schema_error_message(err: jsonschema.ValidationError) -> str:
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    return f"{path}: {err.message}"


def schema_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A compiled validator; build once per tool (compiling per call costs more than the call)."""
    return jsonschema.Draft202012Validator(schema)


def validate_input(tool: str, call_id: str, validator: jsonschema.protocols.Validator, raw: str) -> tuple[Any, ToolResult | None]:
    """Bound, parse and schema-check a tool input on the host side, before any guest code runs."""
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a lone surrogate: not text any guest could receive
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input is not valid Unicode text (lone surrogate at index {exc.start})")
    if size > TOOL_INPUT_MAX_BYTES:
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input is {size} bytes; the limit is {TOOL_INPUT_MAX_BYTES}")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input is not valid JSON: {exc}")
    if validator.is_valid(data):  # the fast path; collect errors only on failure
        return data, None
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        messages = [_schema_error_message(e) for e in errors[:10]]
        return None, error_result(tool, call_id, ErrorCode.INVALID_INPUT, messages[0], {"errors": messages})
    return data, None


def result_from_guest(tool: str, call_id: str, value: Any) -> ToolResult:
    """Check and bound what the guest returned (never trust the guest's own bounds)."""
    if isinstance(value, Err):
        e = value.value
        try:
            code = ErrorCode(str(e["code"]))
        except ValueError:
            code = ErrorCode.FAILED
        details = None
        if e.get("details_json"):
            try:
                details = json.loads(e["details_json"])
            except ValueError:
                details = None
        return error_result(tool, call_id, code, str(e.get("message") or code.value), details, bool(e.get("retryable")))
    if not isinstance(value, Ok):
        return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, "the plugin returned no result")
    out = value.value
    summary = str(out.get("summary") or "").strip()
    content_json = out.get("content_json")
    if not summary:
        return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, "the plugin returned an empty summary")
    if len(summary.encode("utf-8")) > TOOL_SUMMARY_MAX_BYTES:
        summary = bound_text(summary, TOOL_SUMMARY_MAX_BYTES)
    content = None
    if content_json is not None:
        if len(content_json.encode("utf-8")) > TOOL_CONTENT_MAX_BYTES:
            return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, f"content is larger than {TOOL_CONTENT_MAX_BYTES} bytes")
        try:
            content = json.loads(content_json)
        except ValueError:
            return error_result(tool, call_id, ErrorCode.INVALID_OUTPUT, "content is not valid JSON")
    return ToolResult(tool, call_id, summary, content)


def new_call_id() -> str:
    return uuid.uuid4().hex


def fault_result(tool: str, call_id: str, fault: GuestFault) -> ToolResult:
    code = ErrorCode.TIMEOUT if fault.kind in ("timeout", "fuel") else ErrorCode.FAILED
    return error_result(tool, call_id, code, fault.message, {"fault": fault.kind, "instance_recycled": True}, retryable=fault.kind != "instantiate")


def codec_result(tool: str, call_id: str, exc: CodecError) -> ToolResult:
    return error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input cannot be passed to the plugin: {exc}")
