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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

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


def schema_validator(schema: Mapping[str, Any]) -> Validator:
    """A compiled validator; build once per tool or ingress (compiling per call costs
    more than the call)."""
    validator: Validator = _Draft202012Re2(schema)
    return validator


def schema_problems(validator: Validator, data: Any) -> Problems | None:
    """Every way `data` breaks the schema, in the decoder's words; None when it fits."""
    if validator.is_valid(data):  # the fast path; collect errors only on failure
        return None
    problems = Problems()
    errors: list[ValidationError] = []
    beyond = 0  # errors past the listed ones are counted, not worded (or kept)
    for error in validator.iter_errors(data):
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
