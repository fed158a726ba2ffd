"""Decoded JSON → the typed Python values a handler's hints ask for.

Standard library only: bundled into every component. Everything used is
imported at module level, because a module not imported at build time does not
exist inside the component.

The rules mirror the schema `pdk._schema` derives from the same hints, and are
a little stricter where Python types are: `true` is not an integer and `3.0` is
not an `int` (JSON Schema would accept the latter; a handler doing `range(x)`
would not).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Final

from ._schema import Kind, Member, Shape, class_members, function_members, json_type_of_value, shape_of
from ._validation import Problems, choices_message, join_types, json_path, render, validation_message
from ._validation import json_kind as _json_kind
from ._validation import quote as _quote
from .errors import ErrorCode
from .limits import VALIDATION_ERRORS_MAX

__all__ = ["DecodeError", "MAX_ERRORS", "decode_arguments", "decode_value"]

MAX_ERRORS: Final = VALIDATION_ERRORS_MAX  # errors kept per decode; enough to fix a call in one round trip


class DecodeError(ValueError):
    """The input does not match the hints.

    `errors` holds up to `MAX_ERRORS` `(path, message)` pairs in input order;
    `total` counts all of them; `path`/`message` are the first. `str()` reads
    `$.items[2].name: expected string, got number (and 2 more)`."""

    code = ErrorCode.INVALID_INPUT

    def __init__(self, errors: list[tuple[str, str]], total: int | None = None) -> None:
        if not errors:
            raise ValueError("DecodeError needs at least one error")
        self.errors = list(errors)
        self.total = max(total if total is not None else 0, len(self.errors))
        self.path, self.message = self.errors[0]
        super().__init__(validation_message(self.errors, self.total))


class _Errors(Problems):
    def raise_if_any(self) -> None:
        if self.total:
            raise DecodeError(self.items, self.total)


class _Invalid:
    """Marks a value that failed to decode (its errors are already recorded)."""


_INVALID: Final = _Invalid()


def decode_arguments(func: Callable[..., Any], data: object) -> dict[str, object]:
    """Validate a decoded JSON object against `func`'s parameter hints and convert
    it into keyword arguments, defaults applied for missing optional parameters.

    Raises `DecodeError` for bad input, `SchemaError` for unsupported hints."""
    members = function_members(func)
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add("$", f"expected object, got {_json_kind(data)}")
        errors.raise_if_any()
    assert isinstance(data, dict)
    decoded = _decode_members(members, data, "$", errors)
    errors.raise_if_any()
    assert decoded is not None
    # Parameters are returned in declaration order, defaults included, so the call
    # and anything logging it see every argument.
    return {
        m.name: decoded[m.name] if m.name in decoded else m.default
        for m in members
        if m.name in decoded or m.has_default
    }


def decode_value(hint: object, value: object, path: str = "$") -> object:
    """Validate and convert one decoded JSON value against `hint`."""
    errors = _Errors()
    result = _decode(hint, value, path, errors)
    errors.raise_if_any()
    return result


def _decode(hint: object, value: object, path: str, errors: _Errors) -> object:
    shape = shape_of(hint)
    return _DECODERS[shape.kind](shape, value, path, errors)


# ---------------------------------------------------------------------------------
# One decoder per kind. Each records its errors and returns `_INVALID` on failure.


def _any(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    return value


def _scalar(expected: str, accept: Callable[[object], bool]) -> Callable[[Shape, object, str, _Errors], object]:
    def decode(shape: Shape, value: object, path: str, errors: _Errors) -> object:
        if accept(value):
            return value
        errors.add(path, f"expected {expected}, got {_json_kind(value)}")
        return _INVALID

    return decode


def _number(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.add(path, f"expected number, got {_json_kind(value)}")
        return _INVALID
    try:
        number = float(value)  # an int is a fine float; the handler gets the type it declared
    except OverflowError:
        errors.add(path, "number out of range")
        return _INVALID
    if not math.isfinite(number):
        errors.add(path, f"expected number, got {render(value)}")  # NaN/Infinity are not JSON
        return _INVALID
    return number


def _choice(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    if shape.kind is Kind.ENUM:
        choices: tuple[object, ...] = tuple(m.value for m in shape.args)
        results: tuple[object, ...] = shape.args
    else:
        choices, results = shape.args, shape.literal_objects
    for choice, result in zip(choices, results):
        if _same_json_value(choice, value):
            return result
    errors.add(path, choices_message(choices, value))
    return _INVALID


def _array(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    if not isinstance(value, (list, tuple)):
        errors.add(path, f"expected array, got {_json_kind(value)}")
        return _INVALID
    item_hint = shape.args[0] if shape.args else Any
    items = [_decode(item_hint, item, json_path(path, i), errors) for i, item in enumerate(value)]
    if any(item is _INVALID for item in items):
        return _INVALID
    return tuple(items) if shape.kind is Kind.TUPLE else items


def _map(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    if not isinstance(value, dict):
        errors.add(path, f"expected object, got {_json_kind(value)}")
        return _INVALID
    value_hint = shape.args[0] if shape.args else Any
    out: dict[str, object] = {}
    ok = True
    for key, item in value.items():
        if not isinstance(key, str):
            errors.add(path, f"expected string keys, got {_json_kind(key)} key {render(key)}")
            ok = False
            continue
        decoded = _decode(value_hint, item, json_path(path, key), errors)
        ok = ok and decoded is not _INVALID
        out[key] = decoded
    return out if ok else _INVALID


def _typeddict(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    if not isinstance(value, dict):
        errors.add(path, f"expected object, got {_json_kind(value)}")
        return _INVALID
    assert isinstance(shape.hint, type)
    decoded = _decode_members(class_members(shape.hint), value, path, errors)
    return _INVALID if decoded is None else decoded


def _dataclass(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    if not isinstance(value, dict):
        errors.add(path, f"expected object, got {_json_kind(value)}")
        return _INVALID
    cls = shape.hint
    assert isinstance(cls, type)
    decoded = _decode_members(class_members(cls), value, path, errors)
    if decoded is None:
        return _INVALID
    # Missing optional fields are left out: the dataclass applies its own defaults
    # (including default factories, which the schema may not show).
    try:
        return cls(**decoded)
    except ValueError as exc:
        # A `__post_init__` that validates its fields speaks about the input.
        errors.add(path, str(exc) or f"invalid {cls.__name__}")
        return _INVALID


def _union(shape: Shape, value: object, path: str, errors: _Errors) -> object:
    kind = _value_type(value)
    candidates = [m for m in shape.args if _accepts(_json_types(m), kind)]
    if not candidates:
        expected = join_types([t for m in shape.args for t in _json_types(m) or ()])
        errors.add(path, f"expected {expected}, got {_json_kind(value)}")
        return _INVALID
    if len(candidates) == 1:
        return _decode(candidates[0], value, path, errors)
    # Several members take this JSON type (e.g. two dataclasses): the first that
    # decodes cleanly wins, in declaration order; if none does, the errors of the
    # closest one are reported, since they point inside the value.
    best: _Errors | None = None
    for member in candidates:
        trial = _Errors()
        result = _decode(member, value, path, trial)
        if not trial.total:
            return result
        if best is None or trial.total < best.total:
            best = trial
    assert best is not None
    errors.extend(best)
    return _INVALID


_DECODERS: dict[Kind, Callable[[Shape, object, str, _Errors], object]] = {
    Kind.ANY: _any,
    Kind.NULL: _scalar("null", lambda v: v is None),
    Kind.STRING: _scalar("string", lambda v: isinstance(v, str)),
    Kind.BOOLEAN: _scalar("boolean", lambda v: isinstance(v, bool)),
    # `bool` is an `int` subclass and `3.0` is a float: neither is an integer here.
    Kind.INTEGER: _scalar("integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    Kind.NUMBER: _number,
    Kind.LITERAL: _choice,
    Kind.ENUM: _choice,
    Kind.ARRAY: _array,
    Kind.TUPLE: _array,
    Kind.MAP: _map,
    Kind.TYPEDDICT: _typeddict,
    Kind.DATACLASS: _dataclass,
    Kind.UNION: _union,
}


def _decode_members(
    members: tuple[Member, ...], value: dict[Any, object], path: str, errors: _Errors
) -> dict[str, object] | None:
    """Decode the properties of one JSON object; `None` if any error was recorded."""
    known = {m.name for m in members}
    ok = True
    # Unknown keys first: they are usually typos, and the "missing" error that
    # follows then reads as the explanation.
    for key in value:
        if key not in known:
            errors.add(path, f"unexpected property {_quote(str(key))}")
            ok = False
    out: dict[str, object] = {}
    for member in members:
        if member.name in value:
            decoded = _decode(member.hint, value[member.name], json_path(path, member.name), errors)
            if decoded is _INVALID:
                ok = False
            else:
                out[member.name] = decoded
        elif member.required:
            errors.add(path, f"missing required property {_quote(member.name)}")
            ok = False
    return out if ok else None


# ---------------------------------------------------------------------------------
# JSON types of hints and values (for unions and messages)


def _json_types(hint: object) -> frozenset[str] | None:
    """The JSON types a hint can accept at top level; `None` means any."""
    shape = shape_of(hint)
    kind = shape.kind
    if kind is Kind.ANY:
        return None
    if kind in (Kind.NULL, Kind.STRING, Kind.INTEGER, Kind.NUMBER, Kind.BOOLEAN):
        return frozenset({kind.value})
    if kind is Kind.LITERAL:
        return frozenset(json_type_of_value(v) for v in shape.args)
    if kind is Kind.ENUM:
        return frozenset(json_type_of_value(m.value) for m in shape.args)
    if kind in (Kind.ARRAY, Kind.TUPLE):
        return frozenset({"array"})
    if kind is Kind.UNION:
        types: set[str] = set()
        for member in shape.args:
            member_types = _json_types(member)
            if member_types is None:
                return None
            types |= member_types
        return frozenset(types)
    return frozenset({"object"})


def _value_type(value: object) -> str:
    """Like `_json_kind`, but telling integers from other numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "integer"
    return _json_kind(value)


def _accepts(types: frozenset[str] | None, value_type: str) -> bool:
    if types is None or value_type in types:
        return True
    # A literal/enum of floats (type "number") may still match an integer value.
    return value_type == "integer" and "number" in types


def _same_json_value(expected: object, value: object) -> bool:
    """Equality as JSON Schema `enum` sees it: 1 == 1.0, but true != 1."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected is value
    if isinstance(expected, (int, float)) and isinstance(value, (int, float)):
        return expected == value
    return type(expected) is type(value) and expected == value
