"""Parsing JSON that a guest returned: bounded in size and depth, strict about numbers.

Everything a plugin hands back as JSON text (tool content, handler output data, emit and
status data, error details) goes through `loads_guest` before the host touches it, so
that no guest document can raise `RecursionError` in the host (nesting is checked by a
linear scan before parsing) or smuggle `NaN`, `Infinity` or `1e999` (an overflow to
infinity) into documents the host later prints as JSON. A refusal is a `GuestJsonError`,
which callers turn into a typed `invalid_output`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from pdk.limits import GUEST_JSON_DEPTH_MAX

__all__ = ["GuestJsonError", "loads_guest", "dumps_strict", "check_depth"]

# A JSON string token (escapes included); removed before counting brackets.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class GuestJsonError(ValueError):
    """Guest-supplied JSON that the host refuses; `str()` is a short, safe reason."""


def check_depth(text: str, max_depth: int = GUEST_JSON_DEPTH_MAX) -> None:
    """Refuse `text` if its arrays/objects nest deeper than `max_depth` (linear time)."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot nest deeper than it has opening brackets (the common case)
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise GuestJsonError(f"JSON nested deeper than {max_depth} levels")
        else:
            depth -= 1


def _no_constant(name: str) -> Any:
    raise GuestJsonError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise GuestJsonError(f"the number {text[:32]} is out of range")
    return value


# Built once: `json.loads` with keyword arguments builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
# `_DECODER.decode` skips whitespace around the value by regex and goes through two
# Python frames; a text that starts and ends with its value needs only the scanner.
_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(_DECODER, "scan_once")  # (not in the stubs)


def loads_guest(text: str | bytes, *, max_bytes: int | None = None, max_depth: int = GUEST_JSON_DEPTH_MAX) -> Any:
    """Parse guest JSON or raise `GuestJsonError` (never `RecursionError`/`ValueError`)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise GuestJsonError("JSON is not valid UTF-8") from None
    if max_bytes is not None and len(text) > max_bytes // 4 and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise GuestJsonError(f"JSON is larger than {max_bytes} bytes")
    check_depth(text, max_depth)
    try:  # the decoder's C scanner on the whole text: what `decode` returns when it ends the text
        value, end = _SCAN(text, 0)
        if end == len(text):
            return value
    except GuestJsonError:
        raise
    except Exception:  # noqa: BLE001 - `decode` below words the refusal
        pass
    try:
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except GuestJsonError:
        raise
    except RecursionError:  # defensive: the depth check makes this unreachable
        raise GuestJsonError(f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise GuestJsonError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, TypeError) as exc:
        raise GuestJsonError(f"not valid JSON: {type(exc).__name__}") from None


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """`json.dumps` that refuses NaN/Infinity (raises `GuestJsonError`), for documents the
    host prints or stores."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except (ValueError, TypeError, RecursionError) as exc:
        raise GuestJsonError(f"not representable as JSON: {type(exc).__name__}") from None
