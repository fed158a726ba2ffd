"""Plain, binding-independent shapes of what crosses the export boundary.

The bridge (`pdk._bridge`) converts these to componentize-py binding types inside a
component; unit tests use them directly in CPython."""

from __future__ import annotations

import json
import json.encoder
import traceback
from dataclasses import dataclass
from typing import Any, TypeVar

from ._bounds import bound_text, encodable
from .errors import ErrorCode, PluginError
from .limits import (
    ERROR_DETAILS_MAX_BYTES,
    ERROR_MESSAGE_MAX_BYTES,
    TOOL_CONTENT_MAX_BYTES,
    TOOL_SUMMARY_MAX_BYTES,
    TRACEBACK_MAX_FRAMES,
)


_T = TypeVar("_T")


_new = object.__new__
_set = object.__setattr__


def frozen(cls: type[_T], fields: dict[str, Any]) -> _T:
    """`cls(**fields)` for a frozen dataclass without `__post_init__`, given every field
    (in declaration order) in a dict of the caller's own: that dict becomes the
    instance's, instead of the generated `__init__`'s `object.__setattr__` per field
    (each event, command and tool output is built this way; tests/unit/test_fast_paths.py
    checks the results equal the constructor's)."""
    made = _new(cls)
    _set(made, "__dict__", fields)
    return made


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


# Compact, deterministic and strict (NaN is not JSON). One encoder for every call:
# `json.dumps` with options builds a new `JSONEncoder` each time, and its `encode`
# builds a new C encoder each time; the C encoder is built once here instead (what
# `JSONEncoder.encode` runs for these options, so the text is the same).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_MARKERS: dict[int, Any] = {}  # the C encoder's circular-reference check


def _c_encoder() -> Any:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:  # the arguments `JSONEncoder.iterencode` passes it; another signature falls back
        return make(_MARKERS, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    except TypeError:
        return None


_C_ENCODER = _c_encoder()


def dumps(value: Any) -> str:
    if _C_ENCODER is None:
        return _ENCODER.encode(value)
    try:
        return "".join(_C_ENCODER(value, 0))
    except BaseException:
        _MARKERS.clear()  # an error mid-value leaves its containers marked
        raise


def _details_json(details: Any) -> str | None:
    """Bounded details JSON; never raises, whatever `details` does when encoded
    (a `__iter__`, `__str__` or `__repr__` that raises, nesting too deep)."""
    if details is None:
        return None
    try:
        text = dumps(details)
    except BaseException:  # noqa: BLE001 - an error path must not raise
        try:
            text = dumps({"repr": bound_text(safe_text(details, repr_of=True), ERROR_DETAILS_MAX_BYTES // 2)})
        except BaseException:  # noqa: BLE001
            return None
    text = encodable(text)
    if len(text.encode("utf-8")) > ERROR_DETAILS_MAX_BYTES:
        # Cut JSON cannot stay JSON; keep a bounded string form instead.
        text = dumps({"truncated": bound_text(text, ERROR_DETAILS_MAX_BYTES // 2)})
    return text


UNSHOWABLE = "(the message cannot be shown: formatting it raised)"


def safe_text(value: Any, *, repr_of: bool = False) -> str:
    """`str(value)` (or `repr`), or a placeholder when that raises or is not a str.
    A `str` subclass is read as a plain `str`, so no overridden method runs later."""
    try:
        if isinstance(value, str) and not repr_of:
            return str.__str__(value)
        text = repr(value) if repr_of else str(value)
        return str.__str__(text) if isinstance(text, str) else UNSHOWABLE
    except BaseException:  # noqa: BLE001 - an error path must not raise
        return UNSHOWABLE


def type_name(exc: BaseException) -> str:
    try:
        name = type(exc).__name__
        return str.__str__(name) if isinstance(name, str) else "Exception"
    except BaseException:  # noqa: BLE001
        return "Exception"


def error_from_plugin_error(err: PluginError) -> WireError:
    code = getattr(err, "code", None)
    message = safe_text(getattr(err, "message", None) or "")
    return WireError(
        code=code if isinstance(code, ErrorCode) else ErrorCode.FAILED,
        message=bound_text(message or (code.value if isinstance(code, ErrorCode) else "failed"), ERROR_MESSAGE_MAX_BYTES),
        details_json=_details_json(getattr(err, "details", None)),
        retryable=getattr(err, "retryable", False) is True,
    )


def short_traceback(exc: BaseException) -> list[str]:
    """The innermost frames as `file:line in function`, without source text; empty
    when the traceback cannot be read."""
    try:
        frames = traceback.extract_tb(exc.__traceback__, limit=-TRACEBACK_MAX_FRAMES)
        return [f"{safe_text(f.filename).rsplit('/', 1)[-1]}:{f.lineno} in {safe_text(f.name)}" for f in frames]
    except BaseException:  # noqa: BLE001
        return []


def error_from_exception(exc: BaseException) -> WireError:
    """Any exception → a typed error. Escaping exceptions trap and poison the
    instance, so the export glue routes every one of them through here, and this
    never raises: an exception whose `__str__`, `__repr__`, details or traceback
    raise still becomes a `failed` error."""
    try:
        if isinstance(exc, PluginError):
            return error_from_plugin_error(exc)
        name = type_name(exc)
        text = safe_text(exc)
        message = f"{name}: {text}" if text else name
        details = {"exception": name, "traceback": short_traceback(exc)}
        return WireError(
            code=ErrorCode.FAILED,
            message=bound_text(message, ERROR_MESSAGE_MAX_BYTES),
            details_json=_details_json(details),
            retryable=False,
        )
    except BaseException:  # noqa: BLE001 - e.g. MemoryError while formatting
        return WireError(code=ErrorCode.FAILED, message=UNSHOWABLE)


def tool_output(summary: str, content: Any) -> WireToolOutput:
    """Bound a tool result. The summary is cut char-safely; content that does not
    fit cannot be cut without breaking its JSON, so it is an `invalid_output` error."""
    return tool_output_json(summary, None if content is None else dumps(content))


def tool_output_json(summary: str, content_json: str | None) -> WireToolOutput:
    """`tool_output` for content already encoded as JSON text."""
    summary = summary.strip() or "ok"
    size = None if content_json is None else len(content_json.encode("utf-8"))
    if size is not None and size > TOOL_CONTENT_MAX_BYTES:
        raise PluginError(
            f"tool content is {size} bytes; the limit is {TOOL_CONTENT_MAX_BYTES}",
            code=ErrorCode.INVALID_OUTPUT,
            details={"size": size, "limit": TOOL_CONTENT_MAX_BYTES},
        )
    return frozen(WireToolOutput, {"summary": bound_text(summary, TOOL_SUMMARY_MAX_BYTES), "content_json": content_json})
