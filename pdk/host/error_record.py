"""The one builder of error records: what a tool call or a runtime call failed with.

A record has the contract's `code`, a redacted `message` cut to
`ERROR_MESSAGE_MAX_BYTES`, optional JSON `details` within `ERROR_DETAILS_MAX_BYTES`
and `retryable`. Tool results (`pdk.host.tools`) and the service runtime's outcomes,
dead letters and status all build their errors here, so one bound and one redaction
hold for all of them. Nothing here raises on guest-made input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pdk.errors import ErrorCode
from pdk.limits import ERROR_DETAILS_MAX_BYTES, ERROR_MESSAGE_MAX_BYTES
from pdk.package.errors import PdkError

from .guest_json import GuestJsonError, loads_guest
from .instance import GuestFault
from .redact import redact, redact_bounded

__all__ = ["ErrorRecord", "details_from_json", "error_record", "fault_record", "plugin_error_record"]


class ErrorRecord(PdkError):
    """A typed, bounded, redacted error from the host or the plugin (the host's
    counterpart of the guest's `pdk.ToolError`). Build one with `error_record`."""

    code: ErrorCode

    def __init__(self, code: ErrorCode, message: str, details: Any = None, retryable: bool = False) -> None:
        super().__init__(message, code=code)
        self.details = details
        self.retryable = retryable

    def json_fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {"retryable": self.retryable}
        if self.details is not None:
            data["details"] = self.details
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ErrorRecord):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.code, self.message, self.retryable))


def error_record(code: ErrorCode | str, message: str, details: Any = None, *, retryable: bool = False) -> ErrorRecord:
    """A record with `message` redacted and bounded and `details` bounded. An unknown
    code becomes `failed`."""
    return ErrorRecord(_code(code), redact_bounded(str(message), ERROR_MESSAGE_MAX_BYTES), _bounded_details(details), bool(retryable))


def plugin_error_record(value: Any) -> ErrorRecord:
    """A `plugin-error` the guest returned (`{"code", "message", "details_json",
    "retryable"}`), checked: the code is one of the contract's, the message redacted
    and bounded, the details strict JSON within bounds (else left out)."""
    if not isinstance(value, Mapping):
        return error_record(ErrorCode.INVALID_OUTPUT, "the plugin returned no result")
    code = _code(_text(value.get("code")) or "failed")
    message = _text(value.get("message")) or code.value
    return ErrorRecord(
        code,
        redact_bounded(message, ERROR_MESSAGE_MAX_BYTES),
        details_from_json(value.get("details_json")),
        bool(value.get("retryable")),
    )


def fault_record(fault: GuestFault, details: Any = None, *, retryable: bool = True) -> ErrorRecord:
    """A trap, deadline or fuel exhaustion: `timeout` for time and fuel, else `failed`."""
    code = ErrorCode.TIMEOUT if fault.kind in ("timeout", "fuel") else ErrorCode.FAILED
    return error_record(code, fault.message, details, retryable=retryable)


def details_from_json(details_json: Any) -> Any:
    """Guest-made details JSON as a value: redacted, strict (no NaN/Infinity, nesting
    bounded: `pdk.host.guest_json`), at most `ERROR_DETAILS_MAX_BYTES`; a marker when too
    large or refused (`{"invalid_output": reason}`), None when absent."""
    if not isinstance(details_json, str) or not details_json:
        return None
    size = len(details_json.encode("utf-8", "surrogatepass"))
    if size > ERROR_DETAILS_MAX_BYTES:
        return {"truncated": True, "bytes": size}
    try:
        return loads_guest(redact(details_json))
    except GuestJsonError as exc:
        return {"invalid_output": str(exc)}


def _bounded_details(details: Any) -> Any:
    if details is None:
        return None
    try:
        size = len(json.dumps(details, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError, RecursionError):
        return {"unrepresentable": type(details).__name__}
    return details if size <= ERROR_DETAILS_MAX_BYTES else {"truncated": True, "bytes": size}


def _code(code: Any) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.FAILED


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))
