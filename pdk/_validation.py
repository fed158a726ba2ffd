"""The one shape and wording of validation errors, for the guest and the host.

A bad input gets the same answer whoever checks it (the guest's decoder, or the host's
schema check before any guest code runs): a message that reads
`$.items[2].name: expected string, got number (and 2 more)` and details
`{"errors": [{"path": "$.items[2].name", "message": "expected string, got number"}, ...]}`
listing every error up to `VALIDATION_ERRORS_MAX`.

Standard library only: bundled into every component.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from .limits import VALIDATION_ERRORS_MAX, VALIDATION_MESSAGE_MAX_CHARS

__all__ = [
    "Problems",
    "expected_message",
    "json_kind",
    "json_path",
    "path_of",
    "quote",
    "render",
    "validation_details",
    "validation_message",
]

RENDER_MAX_CHARS: Final = 40
CHOICES_SHOWN: Final = 10
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ORDER: Final = ("string", "integer", "number", "boolean", "null", "array", "object")


@dataclass
class Problems:
    """Collected `(path, message)` errors: the first `VALIDATION_ERRORS_MAX` kept in
    order, every one counted in `total`; each message cut to a bounded length."""

    items: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    total: int = 0

    def add(self, path: str, message: str) -> None:
        self.total += 1
        if len(self.items) < VALIDATION_ERRORS_MAX:
            if len(message) > VALIDATION_MESSAGE_MAX_CHARS:
                message = message[:VALIDATION_MESSAGE_MAX_CHARS] + "…"
            if len(path) > VALIDATION_MESSAGE_MAX_CHARS:
                path = path[:VALIDATION_MESSAGE_MAX_CHARS] + "…"
            self.items.append((path, message))

    def extend(self, other: Problems) -> None:
        for path, message in other.items:
            self.add(path, message)
        self.total += other.total - len(other.items)


def validation_message(items: list[tuple[str, str]], total: int) -> str:
    """`<path>: <message>` of the first error, `(and N more)` when there are more."""
    path, message = items[0]
    text = f"{path}: {message}"
    if total > 1:
        text += f" (and {total - 1} more)"
    return text


def validation_details(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The `details` of an `invalid_input` error: `{"errors": [{path, message}, ...]}`."""
    return {"errors": [{"path": path, "message": message} for path, message in items]}


# -- paths ----------------------------------------------------------------------------------


def json_path(parent: str, key: str | int) -> str:
    """The path of `key` below `parent`: `$.name`, `$.items[2]`, `$["a b"]`."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{parent}[{key}]"
    key = str(key)
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}"
    # Keys that are not identifiers are quoted so that the path stays unambiguous.
    return f"{parent}[{_quote(key, 64)}]"


def path_of(segments: Iterable[str | int], root: str = "$") -> str:
    """The path of a sequence of keys and indexes (a schema error's location)."""
    path = root
    for segment in segments:
        path = json_path(path, segment)
    return path


# -- wording --------------------------------------------------------------------------------


def json_kind(value: object) -> str:
    """The JSON type a decoded value has, as a reader of the JSON text sees it
    (so `3` and `3.5` are both `number`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__  # not JSON at all (a Python caller passed it)


def join_types(types: Iterable[str]) -> str:
    """`string or null`, in a fixed order."""
    unique = sorted(set(types), key=lambda t: (_ORDER.index(t) if t in _ORDER else len(_ORDER), t))
    return " or ".join(unique)


def expected_message(types: Iterable[str], value: object) -> str:
    """`expected string or null, got number`."""
    return f"expected {join_types(types)}, got {json_kind(value)}"


def choices_message(choices: tuple[object, ...] | list[object], value: object) -> str:
    """`expected one of "a", "b", got "c"`."""
    shown = ", ".join(render(c) for c in choices[:CHOICES_SHOWN])
    if len(choices) > CHOICES_SHOWN:
        shown += f", … ({len(choices)} in all)"
    return f"expected one of {shown}, got {render(value)}"


def render(value: object) -> str:
    """A short JSON spelling of a value for messages; containers by type only."""
    if isinstance(value, str):
        return quote(value)
    if value is None or isinstance(value, (bool, int, float)):
        try:
            text = json.dumps(value)
        except (ValueError, OverflowError):
            text = type(value).__name__
        return text if len(text) <= RENDER_MAX_CHARS else text[:RENDER_MAX_CHARS] + "…"
    return json_kind(value)


def quote(text: str) -> str:
    """A JSON string literal of `text`, cut to a short length."""
    return _quote(text, RENDER_MAX_CHARS)


def _quote(text: str, limit: int) -> str:
    if len(text) > limit:
        text = text[:limit] + "…"
    return json.dumps(text, ensure_ascii=False)
