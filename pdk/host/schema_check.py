"""JSON Schema checks on the host, answered in the guest decoder's words.

Every regular expression of a schema (`pattern`, `patternProperties`, and the
`patternProperties` that `additionalProperties` consults) runs on RE2, in time linear in
the input (`pdk.package.schema_pattern`): jsonschema's own keywords would use Python's
backtracking `re`, where a manifest's `^(a+)+$` takes seconds per input.

The host checks tool inputs (and ingress payloads) against the manifest's schema
before any guest code runs; the guest's decoder checks them again against the
handler's hints. Either way a bad input gets the same answer: `(path, message)`
problems such as `$.items[2].name: expected string, got number`, every one listed up
to `VALIDATION_ERRORS_MAX` (see `pdk._validation`). Keywords the decoder has no words
for keep jsonschema's message, bounded.

jsonschema takes tens of microseconds even for a valid three-field input, more than a
small tool call itself. `schema_validator` therefore also compiles a quick check for
the common keywords (`_quick`): a plain function that answers True only for data the
schema certainly accepts (its types are stricter: `3.0` is not an integer to it, enum
members compare by type too). Everything else - a False, or a schema with any other
keyword - goes to jsonschema, which alone words the problems.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator as JsonSchemaValidator

from pdk._validation import Problems, choices_message, expected_message, json_kind, path_of, quote, render
from pdk.limits import VALIDATION_ERRORS_MAX
from pdk.package.schema_pattern import PatternError, compile_pattern

__all__ = ["Validator", "schema_problems", "schema_validator"]


def _search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text) is not None


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        if not _search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")
    except PatternError as exc:  # the manifest check refuses these; a schema made in code may not
        yield ValidationError(f"the schema pattern {pattern!r} cannot be evaluated: {exc}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        try:
            matching = [key for key in instance if _search(pattern, key)]
        except PatternError as exc:
            yield ValidationError(f"the schema pattern {pattern!r} cannot be evaluated: {exc}")
            continue
        for key in matching:
            yield from validator.descend(instance[key], subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    try:
        extras = [key for key in instance if key not in known and not any(_search(p, key) for p in patterns)]
    except PatternError as exc:
        yield ValidationError(f"a schema pattern cannot be evaluated: {exc}")
        return
    if validator.is_type(additional, "object"):
        for key in extras:
            yield from validator.descend(instance[key], additional, path=key)
    elif not additional and extras:
        names = ", ".join(repr(k) for k in sorted(extras))
        if patterns:
            yield ValidationError(f"unexpected properties (matching none of {', '.join(repr(p) for p in sorted(patterns))}): {names}")
        else:
            yield ValidationError(f"Additional properties are not allowed ({names} unexpected)")


# Draft 2020-12 with its regular-expression keywords on RE2.
_Draft202012Re2 = jsonschema.validators.extend(  # type: ignore[no-untyped-call, unused-ignore]
    jsonschema.Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


@dataclass(frozen=True)
class Validator:
    """A compiled schema: jsonschema's validator and, when the schema allows, the quick check."""

    jsonschema: JsonSchemaValidator
    quick: Callable[[Any], bool] | None


def schema_validator(schema: Mapping[str, Any]) -> Validator:
    """A compiled validator; build once per tool or ingress (compiling per call costs
    more than the call)."""
    full: JsonSchemaValidator = _Draft202012Re2(schema)
    return Validator(full, _quick(schema))


def schema_problems(validator: Validator, data: Any) -> Problems | None:
    """Every way `data` breaks the schema, in the decoder's words; None when it fits."""
    quick = validator.quick
    if quick is not None and quick(data):
        return None
    full = validator.jsonschema
    if full.is_valid(data):  # collect errors only on failure
        return None
    problems = Problems()
    errors: list[ValidationError] = []
    beyond = 0  # errors past the listed ones are counted, not worded (or kept)
    for error in full.iter_errors(data):
        if len(errors) < VALIDATION_ERRORS_MAX:
            errors.append(error)
        else:
            beyond += 1
    # Unknown properties first, as the decoder reports them: they are usually typos,
    # and a "missing" error that follows then reads as the explanation.
    errors.sort(key=lambda e: 0 if e.validator == "additionalProperties" else 1)
    seen_required: set[str] = set()
    for error in errors:
        _add(problems, error, seen_required)
    problems.total += beyond
    if not problems.total:  # a schema that fails without a located error
        problems.add("$", "does not match the schema")
    return problems


def _add(problems: Problems, error: ValidationError, seen_required: set[str]) -> None:
    path = path_of(error.absolute_path)
    keyword, value = error.validator, error.instance
    expected: Any = error.validator_value  # the keyword's value in the schema: any JSON
    if keyword == "type":
        problems.add(path, expected_message([expected] if isinstance(expected, str) else expected, value))
    elif keyword == "enum" and isinstance(expected, (list, tuple)):
        problems.add(path, choices_message(list(expected), value))
    elif keyword == "const":
        problems.add(path, choices_message([expected], value))
    elif keyword == "required" and isinstance(value, dict) and isinstance(expected, list):
        if path not in seen_required:  # jsonschema yields one error per missing name
            seen_required.add(path)
            for name in expected:
                if name not in value:
                    problems.add(path, f"missing required property {quote(str(name))}")
    elif keyword == "additionalProperties" and expected is False and isinstance(value, dict) and isinstance(error.schema, Mapping) and "patternProperties" not in error.schema:
        known = error.schema.get("properties") or {}
        for key in value:
            if key not in known:
                problems.add(path, f"unexpected property {quote(str(key))}")
    elif keyword in ("anyOf", "oneOf") and _union(problems, error, seen_required):
        pass
    elif keyword in _BOUNDS:
        problems.add(path, _BOUNDS[keyword](expected, value))
    else:
        problems.add(path, str(error.message))


def _union(problems: Problems, error: ValidationError, seen_required: set[str]) -> bool:
    """An `anyOf`/`oneOf` miss, worded like the decoder's unions: the types it takes
    when no member takes this JSON type, else the errors of the closest member."""
    members = error.validator_value
    if not isinstance(members, list) or not members:
        return False
    kinds = [_member_types(m) for m in members]
    value_type = _value_type(error.instance)
    if all(k is not None for k in kinds):
        candidates = [i for i, k in enumerate(kinds) if k is not None and _accepts(k, value_type)]
        if not candidates:
            types = [t for k in kinds if k is not None for t in k]
            problems.add(path_of(error.absolute_path), expected_message(types, error.instance))
            return True
    else:
        candidates = list(range(len(members)))
    by_member: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        index = sub.relative_schema_path[0] if sub.relative_schema_path else None
        if isinstance(index, int) and index in candidates:
            by_member.setdefault(index, []).append(sub)
    if not by_member:
        return False
    closest = min(by_member.values(), key=len)
    for sub in closest:
        _add(problems, sub, seen_required)
    return True


def _member_types(schema: Any) -> frozenset[str] | None:
    """The JSON types a union member takes at top level; None when it cannot tell."""
    if not isinstance(schema, Mapping):
        return None
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list) and all(isinstance(t, str) for t in declared):
        return frozenset(declared)
    if "enum" in schema and isinstance(schema["enum"], list):
        return frozenset(_value_type(v) for v in schema["enum"])
    if "const" in schema:
        return frozenset({_value_type(schema["const"])})
    return None


def _value_type(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "integer"
    return json_kind(value)


def _accepts(types: Iterable[str], value_type: str) -> bool:
    types = set(types)
    # An integer is a number; JSON Schema's `integer` also takes 3.0, the decoder does not.
    return value_type in types or (value_type == "integer" and "number" in types)


def _size(value: Any) -> str:
    return f"{len(value)}" if isinstance(value, (str, list, dict)) else render(value)


_BOUNDS: dict[str, Any] = {
    "minimum": lambda e, v: f"expected a number >= {render(e)}, got {render(v)}",
    "maximum": lambda e, v: f"expected a number <= {render(e)}, got {render(v)}",
    "exclusiveMinimum": lambda e, v: f"expected a number > {render(e)}, got {render(v)}",
    "exclusiveMaximum": lambda e, v: f"expected a number < {render(e)}, got {render(v)}",
    "multipleOf": lambda e, v: f"expected a multiple of {render(e)}, got {render(v)}",
    "minLength": lambda e, v: f"expected at least {render(e)} characters, got {_size(v)}",
    "maxLength": lambda e, v: f"expected at most {render(e)} characters, got {_size(v)}",
    "minItems": lambda e, v: f"expected at least {render(e)} items, got {_size(v)}",
    "maxItems": lambda e, v: f"expected at most {render(e)} items, got {_size(v)}",
    "minProperties": lambda e, v: f"expected at least {render(e)} properties, got {_size(v)}",
    "maxProperties": lambda e, v: f"expected at most {render(e)} properties, got {_size(v)}",
    "uniqueItems": lambda e, v: "expected unique items",
    "pattern": lambda e, v: f"expected a string matching {quote(str(e))}, got {render(v)}",
}


# ------------------------------------------------------------------- the quick check

Quick = Callable[[Any], bool]

# Keywords that never reject (annotations; `format` asserts nothing without a format
# checker, and `$schema` does not change the draft: `_Draft202012Re2` is used as is).
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly", "format", "$schema"})
# JSON types by the exact Python classes `json.loads` produces for them.
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}
_SCALARS = (str, int, float, bool, type(None))
_NUMBERS = (int, float)


class _Unsupported(Exception):
    """A keyword or value the quick check does not handle: jsonschema alone decides."""


def _quick(schema: Any) -> Quick | None:
    """A function True only for data `schema` certainly accepts; None when the schema
    uses anything outside the keywords handled here."""
    try:
        return _compile_quick(schema)
    except (_Unsupported, RecursionError, TypeError, ValueError):
        return None


def _number(value: Any) -> int | float:
    if type(value) not in _NUMBERS:
        raise _Unsupported
    number: int | float = value
    return number


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise _Unsupported
    count: int = value
    return count


def _always(data: Any) -> bool:
    return True


def _compile_quick(schema: Any) -> Quick:
    if schema is True:
        return _always
    if type(schema) is not dict:  # `false` included: it rejects everything
        raise _Unsupported
    checks: list[Quick] = []
    for key, value in schema.items():
        if key in _ANNOTATIONS or key in ("properties", "required", "additionalProperties"):
            continue
        checks.append(_keyword(key, value))
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        checks.append(_object_check(schema))
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    all_checks = tuple(checks)
    return lambda data: all(check(data) for check in all_checks)


def _keyword(key: str, value: Any) -> Quick:  # noqa: C901 - one branch per keyword
    if key == "type":
        names = [value] if type(value) is str else value
        if type(names) is not list or not names or any(type(n) is not str or n not in _TYPES for n in names):
            raise _Unsupported
        allowed = frozenset(t for n in names for t in _TYPES[n])
        return lambda data: type(data) in allowed
    if key in ("enum", "const"):
        members = value if key == "enum" else [value]
        if type(members) is not list or any(type(m) not in _SCALARS for m in members):
            raise _Unsupported
        pairs = frozenset((type(m), m) for m in members)
        return lambda data: type(data) in _SCALARS and (type(data), data) in pairs
    if key == "minimum":
        low = _number(value)
        return lambda data: type(data) not in _NUMBERS or not data < low
    if key == "maximum":
        high = _number(value)
        return lambda data: type(data) not in _NUMBERS or not data > high
    if key == "exclusiveMinimum":
        above = _number(value)
        return lambda data: type(data) not in _NUMBERS or data > above
    if key == "exclusiveMaximum":
        below = _number(value)
        return lambda data: type(data) not in _NUMBERS or data < below
    if key == "minLength":
        shortest = _count(value)
        return lambda data: type(data) is not str or len(data) >= shortest
    if key == "maxLength":
        longest = _count(value)
        return lambda data: type(data) is not str or len(data) <= longest
    if key == "pattern":
        if type(value) is not str:
            raise _Unsupported
        try:
            search = compile_pattern(value).search
        except PatternError:
            raise _Unsupported from None
        return lambda data: type(data) is not str or search(data) is not None
    if key == "items":
        item = _compile_quick(value)
        return lambda data: type(data) is not list or all(item(x) for x in data)
    if key in ("minItems", "maxItems", "minProperties", "maxProperties"):
        bound = _count(value)
        kind = list if key.endswith("Items") else dict
        if key.startswith("min"):
            return lambda data: type(data) is not kind or len(data) >= bound
        return lambda data: type(data) is not kind or len(data) <= bound
    raise _Unsupported


def _object_check(schema: dict[str, Any]) -> Quick:
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if type(properties) is not dict or type(required) is not list or any(type(r) is not str for r in required):
        raise _Unsupported
    if "patternProperties" in schema:
        raise _Unsupported
    named = tuple((name, _compile_quick(sub)) for name, sub in properties.items())
    must = tuple(required)
    known = frozenset(properties)
    closed = additional is False
    extra: Quick | None = None if additional is True or closed else _compile_quick(additional)

    def check_object(data: Any) -> bool:
        if type(data) is not dict:
            return True
        for name in must:
            if name not in data:
                return False
        for name, check in named:
            if name in data and not check(data[name]):
                return False
        if closed:
            for key in data:
                if key not in known:
                    return False
        elif extra is not None:
            for key in data:
                if key not in known and not extra(data[key]):
                    return False
        return True

    return check_object
