"""Error and data records the runtime makes from what the guest returned: faults and
`plugin-error`s as bounded, redacted error records; JSON the guest sent as views."""

from __future__ import annotations

from typing import Any

from ..error_record import error_record, fault_record, plugin_error_record
from ..guest_json import GuestJsonError, loads_guest
from ..instance import GuestFault

# Every error record, tool call or runtime, is built by `pdk.host.error_record`: one
# redaction and one bound (`pdk.limits.ERROR_MESSAGE_MAX_BYTES`, `ERROR_DETAILS_MAX_BYTES`).


def bounded_message(text: str) -> str:
    return error_record("failed", text).message


def fault_error(fault: GuestFault) -> dict[str, Any]:
    """A trap, deadline or fuel exhaustion as an error record (always retryable)."""
    return {**fault_record(fault).to_json(), "fault": fault.kind}


def tool_fault_error() -> dict[str, Any]:
    """The instance was recycled by a fault in a tool call (not in one of our calls)."""
    return {"code": "failed", "message": "the instance was recycled after a fault in a tool call", "retryable": True, "fault": "trap"}


def invalid_output_error(message: str) -> dict[str, Any]:
    """The guest's output could not be accepted (never retried: the same code returns
    the same output)."""
    return {**error_record("invalid_output", message).to_json(), "retryable": False}


def guest_error(value: Any) -> dict[str, Any]:
    """A `plugin-error` the guest returned, bounded and redacted."""
    return plugin_error_record(value).to_json()


def json_view(data_json: Any, limit: int) -> Any:
    """Parsed JSON for status/outcome views, or a marker when it is too large or broken
    (`{"invalid_output": reason}` for JSON the host refuses: too deep, NaN/Infinity, not
    JSON; `pdk.host.guest_json`). Never raises."""
    if data_json is None:
        return None
    text = data_json if isinstance(data_json, str) else str(data_json)
    size = len(text.encode("utf-8", "replace"))
    if size > limit:
        return {"truncated": True, "bytes": size}
    try:
        return loads_guest(text)
    except GuestJsonError as exc:
        return {"invalid_output": str(exc)}


def json_problem(data_json: Any, limit: int) -> str | None:
    """Why guest JSON text (None allowed) would be refused by `json_view`, or None."""
    if data_json is None:
        return None
    if not isinstance(data_json, str):
        return "data_json must be a string of JSON"
    size = len(data_json.encode("utf-8", "replace"))
    if size > limit:
        return f"data_json is larger than {limit} bytes"
    try:
        loads_guest(data_json)
    except GuestJsonError as exc:
        return f"data_json: {exc}"
    return None
