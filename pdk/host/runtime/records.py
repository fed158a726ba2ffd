"""Error and data records the runtime makes from what the guest returned: faults and
`plugin-error`s as bounded, redacted error records; JSON the guest sent as views."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..instance import GuestFault
from ..redact import bound_text, redact

ERROR_MESSAGE_MAX_BYTES = 1024
DETAILS_MAX_BYTES = 4096


def bounded_message(text: str) -> str:
    return bound_text(redact(text), ERROR_MESSAGE_MAX_BYTES)


def fault_error(fault: GuestFault) -> dict[str, Any]:
    """A trap, deadline or fuel exhaustion as an error record (always retryable)."""
    code = "timeout" if fault.kind in ("timeout", "fuel") else "failed"
    return {"code": code, "message": bounded_message(fault.message), "retryable": True, "fault": fault.kind}


def tool_fault_error() -> dict[str, Any]:
    """The instance was recycled by a fault in a tool call (not in one of our calls)."""
    return {"code": "failed", "message": "the instance was recycled after a fault in a tool call", "retryable": True, "fault": "trap"}


def guest_error(value: Any) -> dict[str, Any]:
    """A `plugin-error` the guest returned, bounded and redacted."""
    if not isinstance(value, Mapping):
        return {"code": "invalid_output", "message": "the plugin returned no result", "retryable": False}
    error: dict[str, Any] = {
        "code": str(value.get("code") or "failed"),
        "message": bounded_message(str(value.get("message") or value.get("code") or "failed")),
        "retryable": bool(value.get("retryable")),
    }
    details_json = value.get("details_json")
    if isinstance(details_json, str) and len(details_json) <= DETAILS_MAX_BYTES:
        try:
            error["details"] = json.loads(redact(details_json))
        except ValueError:
            pass
    return error


def json_view(data_json: Any, limit: int) -> Any:
    """Parsed JSON for status/outcome views, or a marker when it is too large or broken."""
    if data_json is None:
        return None
    text = str(data_json)
    if len(text.encode("utf-8", "replace")) > limit:
        return {"truncated": True, "bytes": len(text.encode("utf-8", "replace"))}
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": bound_text(redact(text), 256)}
