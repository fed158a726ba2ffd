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

import functools
import math
from typing import Any, Callable, Final

from ._schema import Kind, Member, SchemaError, Shape, class_members, function_members, json_type_of_value, shape_of
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
    fast = _arguments_converter(func)
    if fast is not None and isinstance(data, dict):
        converted = fast(data)
        if converted is not _INVALID:
            return converted  # type: ignore[return-value]
    # Bad input (or a hint only the full decoder handles): decode again, recording errors.
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
    converted = _value_converter(hint)(value)
    if converted is not _INVALID:
        return converted
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


# ---------------------------------------------------------------------------------
# The fast path: converters built once per hint
#
# A converter returns the decoded value or `_INVALID`, recording nothing: it accepts
# exactly what the decoders above accept without an error and returns the same value.
# When it says `_INVALID`, the caller decodes again with the decoders above, which word
# the errors; so valid input (nearly every call) pays for no hint analysis, no paths and
# no error bookkeeping. A hint the decoders refuse (`SchemaError`) gets a converter
# that always says `_INVALID`, so the decoders above raise exactly as before.

Converter = Callable[[object], object]
_CACHE_MAX: Final = 256


def _identity(value: object) -> object:
    return value


def _always_invalid(value: object) -> object:
    return _INVALID


def _fast_null(value: object) -> object:
    return None if value is None else _INVALID


def _fast_string(value: object) -> object:
    return value if isinstance(value, str) else _INVALID


def _fast_boolean(value: object) -> object:
    return value if isinstance(value, bool) else _INVALID


def _fast_integer(value: object) -> object:
    return value if isinstance(value, int) and not isinstance(value, bool) else _INVALID


def _fast_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _INVALID
    try:
        number = float(value)
    except OverflowError:
        return _INVALID
    return number if math.isfinite(number) else _INVALID


_SCALARS: dict[Kind, Converter] = {
    Kind.ANY: _identity,
    Kind.NULL: _fast_null,
    Kind.STRING: _fast_string,
    Kind.BOOLEAN: _fast_boolean,
    Kind.INTEGER: _fast_integer,
    Kind.NUMBER: _fast_number,
}


_EXACT: dict[Converter, type] = {_fast_string: str, _fast_integer: int, _fast_boolean: bool}


def _safe_build(hint: object) -> Converter:
    try:
        return _build(hint)
    except SchemaError:
        return _always_invalid


def _build(hint: object) -> Converter:
    shape = shape_of(hint)
    kind = shape.kind
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return scalar
    if kind is Kind.LITERAL or kind is Kind.ENUM:
        return _build_choice(shape)
    if kind is Kind.ARRAY or kind is Kind.TUPLE:
        return _build_array(_safe_build(shape.args[0]) if shape.args else _identity, kind is Kind.TUPLE)
    if kind is Kind.MAP:
        return _build_map(_safe_build(shape.args[0]) if shape.args else _identity)
    if kind is Kind.UNION:
        return _build_union(shape.args)
    assert isinstance(shape.hint, type)
    return _class_converter(shape.hint, kind is Kind.DATACLASS)


def _build_choice(shape: Shape) -> Converter:
    if shape.kind is Kind.ENUM:
        choices: tuple[object, ...] = tuple(m.value for m in shape.args)
        results: tuple[object, ...] = shape.args
    else:
        choices, results = shape.args, shape.literal_objects
    pairs = tuple(zip(choices, results))
    # A decoded string only ever equals a choice that is a plain `str` (see `_same_json_value`).
    strings: dict[str, object] = {}
    for choice, result in pairs:
        if type(choice) is str:
            strings.setdefault(choice, result)

    def convert(value: object) -> object:
        if type(value) is str:
            return strings.get(value, _INVALID)
        for choice, result in pairs:
            if _same_json_value(choice, value):
                return result
        return _INVALID

    return convert


def _build_array(item: Converter, as_tuple: bool) -> Converter:
    scalar = item in (_fast_string, _fast_boolean, _fast_integer)

    def convert(value: object) -> object:
        if not isinstance(value, (list, tuple)):
            return _INVALID
        if item is _identity or (scalar and all(item(x) is not _INVALID for x in value)):
            return tuple(value) if as_tuple else list(value)
        out: list[object] = []
        for x in value:
            decoded = item(x)
            if decoded is _INVALID:
                return _INVALID
            out.append(decoded)
        return tuple(out) if as_tuple else out

    return convert


def _build_map(item: Converter) -> Converter:
    def convert(value: object) -> object:
        if not isinstance(value, dict):
            return _INVALID
        out: dict[str, object] = {}
        for key, x in value.items():
            if not isinstance(key, str):
                return _INVALID
            decoded = item(x)
            if decoded is _INVALID:
                return _INVALID
            out[key] = decoded
        return out

    return convert


def _build_union(members: tuple[object, ...]) -> Converter:
    plan = tuple((_json_types(m), _safe_build(m)) for m in members)
    nulls = [i for i, m in enumerate(members) if shape_of(m).kind is Kind.NULL]
    if len(plan) == 2 and len(nulls) == 1:
        # `X | None`: whichever member takes a null returns None for it.
        other = plan[1 - nulls[0]][1]
        return lambda value: None if value is None else other(value)

    def convert(value: object) -> object:
        kind = _value_type(value)
        for types, member in plan:
            if _accepts(types, kind):
                decoded = member(value)
                if decoded is not _INVALID:
                    return decoded
        return _INVALID

    return convert


def _members_converter(members: tuple[Member, ...], *, defaults: bool) -> Callable[[dict[Any, object]], object]:
    """Decode the properties of one JSON object (present ones, plus the defaults of
    missing ones if `defaults`), or `_INVALID`."""
    known = frozenset(m.name for m in members)
    plan = []
    for m in members:
        member = _safe_build(m.hint)
        # A value of this exact type is taken as it is, without calling the converter.
        exact = _EXACT.get(member, _Invalid)
        plan.append((m.name, member, exact, m.required, defaults and m.has_default, m.default))

    def convert(value: dict[Any, object]) -> object:
        if not known.issuperset(value):
            return _INVALID
        out: dict[str, object] = {}
        for name, member, exact, required, has_default, default in plan:
            item = value.get(name, _INVALID)
            if item is not _INVALID:
                if type(item) is not exact:
                    item = member(item)
                    if item is _INVALID:
                        return _INVALID
                out[name] = item
            elif has_default:
                out[name] = default
            elif required:
                return _INVALID
        return out

    return convert


_CLASS_CONVERTERS: dict[type, Converter] = {}


def _class_converter(cls: type, is_dataclass: bool) -> Converter:
    found = _CLASS_CONVERTERS.get(cls)
    if found is not None:
        return found
    # The members are read on first use: a class may contain itself (`children: list[Node]`).
    built: list[Callable[[dict[Any, object]], object]] = []

    def convert(value: object) -> object:
        if not isinstance(value, dict):
            return _INVALID
        if not built:
            try:
                built.append(_members_converter(class_members(cls), defaults=False))
            except SchemaError:
                return _INVALID
        decoded = built[0](value)
        if decoded is _INVALID or not is_dataclass:
            return decoded
        try:
            return cls(**decoded)  # type: ignore[arg-type]
        except ValueError:
            return _INVALID

    if len(_CLASS_CONVERTERS) >= _CACHE_MAX:
        _CLASS_CONVERTERS.clear()
    _CLASS_CONVERTERS[cls] = convert
    return convert


@functools.lru_cache(maxsize=512)
def _arguments_converter(func: Callable[..., Any]) -> Callable[[dict[Any, object]], object] | None:
    """A tool function's arguments: declaration order, defaults applied."""
    try:
        members = function_members(func)
    except SchemaError:
        return None
    return _members_converter(members, defaults=True)


# By `id`, holding the hint itself (so the id stays its own): equal hints are not always
# interchangeable (`A | B == B | A`, but the first member that decodes wins).
_VALUE_CONVERTERS: dict[int, tuple[object, Converter]] = {}


def _value_converter(hint: object) -> Converter:
    entry = _VALUE_CONVERTERS.get(id(hint))
    if entry is not None and entry[0] is hint:
        return entry[1]
    convert = _safe_build(hint)
    if len(_VALUE_CONVERTERS) >= _CACHE_MAX:
        _VALUE_CONVERTERS.clear()
    _VALUE_CONVERTERS[id(hint)] = (hint, convert)
    return convert
