"""Error and data records the runtime makes from what the guest returned: faults and
`plugin-error`s as bounded, redacted error records; JSON the guest sent as views."""

from __future__ import annotations

import json
from typing import Any

from ..error_record import error_record, fault_record, plugin_error_record
from ..instance import GuestFault
from ..redact import redact_bounded

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


def guest_error(value: Any) -> dict[str, Any]:
    """A `plugin-error` the guest returned, bounded and redacted."""
    return plugin_error_record(value).to_json()


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
        return {"unparsed": redact_bounded(text, 256)}
