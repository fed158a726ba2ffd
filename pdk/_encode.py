"""Python values → JSON values, for what handlers return.

Standard library only: bundled into every component. Everything used is
imported at module level, because a module not imported at build time does not
exist inside the component.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math

from ._validation import json_path
from .errors import ErrorCode

__all__ = ["EncodeError", "to_json_value", "json_path"]


class EncodeError(TypeError):
    """A returned value cannot be represented as JSON.

    `path` locates the offending value (`$.when`), `message` says why."""

    code = ErrorCode.INVALID_OUTPUT

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def to_json_value(value: object, path: str = "$") -> object:
    """Convert `value` into plain JSON data (dict, list, str, int, float, bool, None).

    Dataclasses become objects (all fields, recursively), Enum members their
    `.value`, tuples and lists arrays. Sets are refused: their order is not
    deterministic, so the same result would not always encode the same way.
    Non-finite floats are refused: they are not valid JSON."""
    try:
        return _fast(value, 0)
    except _Slow:
        # Anything unusual (or wrong): encode again, tracking paths and cycles.
        return _encode(value, path, set())


class _Slow(Exception):
    """Raised by the fast path for what only `_encode` handles (or words the error of)."""


_FAST_DEPTH_MAX = 64  # deeper (or circular) values take the path-tracking encoder
_LEAVES = frozenset({str, int, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fast(value: object, depth: int) -> object:
    """`_encode` for plain values (exact built-in types, Enum members, dataclasses)
    without building paths; raises `_Slow` for anything else."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        raise _Slow
    if depth > _FAST_DEPTH_MAX:
        raise _Slow
    depth += 1
    # Children that are strings, ints, booleans or None are taken as they are, without a call.
    if kind is dict:
        out: dict[str, object] = {}
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise _Slow
            out[key] = item if type(item) in _LEAVES else _fast(item, depth)
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _LEAVES else _fast(item, depth) for item in value]  # type: ignore[attr-defined]
    names = _FIELDS.get(kind)
    if names is None:
        if isinstance(value, enum.Enum):
            return _fast(value.value, depth)
        if isinstance(value, (str, int, float, list, tuple, dict)) or not _is_dataclass_instance(value):
            raise _Slow
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))  # type: ignore[arg-type]
    fields = {name: getattr(value, name) for name in names}
    for name, item in fields.items():
        if type(item) not in _LEAVES:
            fields[name] = _fast(item, depth)
    return fields


def _encode(value: object, path: str, active: set[int]) -> object:
    # `bool` before `int`, and Enum before everything: `IntEnum`/`StrEnum` members
    # are also ints/strs but must encode as their value's plain type.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return _encode(value.value, path, active)
    if isinstance(value, str):
        return str(value) if type(value) is not str else value
    if isinstance(value, int):
        return int(value) if type(value) is not int else value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(path, f"cannot encode non-finite number {value!r}")
        return float(value) if type(value) is not float else value
    if isinstance(value, (list, tuple, dict)) or _is_dataclass_instance(value):
        # Containers are tracked while they are being encoded: a cycle would
        # otherwise end in RecursionError with no useful path.
        if id(value) in active:
            raise EncodeError(path, "cannot encode a circular reference")
        active.add(id(value))
        try:
            return _encode_container(value, path, active)
        finally:
            active.discard(id(value))
    raise EncodeError(path, f"cannot encode {type(value).__name__}")


def _encode_container(value: object, path: str, active: set[int]) -> object:
    if isinstance(value, (list, tuple)):
        return [_encode(item, json_path(path, i), active) for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            name = _key(key, path)
            out[name] = _encode(item, json_path(path, name), active)
        return out
    return {
        f.name: _encode(getattr(value, f.name), json_path(path, f.name), active)
        for f in dataclasses.fields(value)  # type: ignore[arg-type]
    }


def _key(key: object, path: str) -> str:
    if isinstance(key, enum.Enum) and isinstance(key.value, str):
        return key.value
    if isinstance(key, str):
        return str(key)
    raise EncodeError(path, f"object keys must be strings, got {type(key).__name__} key {key!r:.40}")


def _is_dataclass_instance(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)
