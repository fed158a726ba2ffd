"""Plain, binding-independent shapes of what crosses the export boundary.

The bridge (`pdk._bridge`) converts these to componentize-py binding types inside a
component; unit tests use them directly in CPython."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any

from ._bounds import bound_text
from .errors import ErrorCode, PluginError
from .limits import (
    ERROR_DETAILS_MAX_BYTES,
    ERROR_MESSAGE_MAX_BYTES,
    TOOL_CONTENT_MAX_BYTES,
    TOOL_SUMMARY_MAX_BYTES,
    TRACEBACK_MAX_FRAMES,
)


@dataclass(frozen=True)
class WireError:
    """`yoi:plugin/types.plugin-error`, bounded."""

    code: ErrorCode
    message: str
    details_json: str | None = None
    retryable: bool = False


@dataclass(frozen=True)
class WireToolOutput:
    """`yoi:plugin/types.tool-output`, bounded."""

    summary: str
    content_json: str | None


def dumps(value: Any) -> str:
    # Compact, deterministic and strict (NaN is not JSON).
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _details_json(details: Any) -> str | None:
    if details is None:
        return None
    try:
        text = dumps(details)
    except (TypeError, ValueError):
        text = dumps({"repr": bound_text(repr(details), ERROR_DETAILS_MAX_BYTES // 2)})
    if len(text.encode("utf-8")) > ERROR_DETAILS_MAX_BYTES:
        # Cut JSON cannot stay JSON; keep a bounded string form instead.
        text = dumps({"truncated": bound_text(text, ERROR_DETAILS_MAX_BYTES // 2)})
    return text


def error_from_plugin_error(err: PluginError) -> WireError:
    return WireError(
        code=err.code,
        message=bound_text(err.message or err.code.value, ERROR_MESSAGE_MAX_BYTES),
        details_json=_details_json(err.details),
        retryable=err.retryable,
    )


def short_traceback(exc: BaseException) -> list[str]:
    """The innermost frames as `file:line in function`, without source text."""
    frames = traceback.extract_tb(exc.__traceback__)[-TRACEBACK_MAX_FRAMES:]
    return [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames]


def error_from_exception(exc: BaseException) -> WireError:
    """Any exception → a typed error. Escaping exceptions trap and poison the
    instance, so the export glue routes every one of them through here."""
    if isinstance(exc, PluginError):
        return error_from_plugin_error(exc)
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    details = {"exception": type(exc).__name__, "traceback": short_traceback(exc)}
    return WireError(
        code=ErrorCode.FAILED,
        message=bound_text(message, ERROR_MESSAGE_MAX_BYTES),
        details_json=_details_json(details),
        retryable=False,
    )


def tool_output(summary: str, content: Any) -> WireToolOutput:
    """Bound a tool result. The summary is cut char-safely; content that does not
    fit cannot be cut without breaking its JSON, so it is an `invalid_output` error."""
    summary = summary.strip() or "ok"
    content_json = None if content is None else dumps(content)
    if content_json is not None and len(content_json.encode("utf-8")) > TOOL_CONTENT_MAX_BYTES:
        raise PluginError(
            f"tool content is {len(content_json.encode('utf-8'))} bytes; the limit is {TOOL_CONTENT_MAX_BYTES}",
            code=ErrorCode.INVALID_OUTPUT,
            details={"size": len(content_json.encode("utf-8")), "limit": TOOL_CONTENT_MAX_BYTES},
        )
    return WireToolOutput(summary=bound_text(summary, TOOL_SUMMARY_MAX_BYTES), content_json=content_json)
