"""Type hints → JSON Schema, and the hint analysis the decoder shares.

Standard library only: bundled into every component. Everything used is
imported at module level, because a module not imported at build time does not
exist inside the component.

The schema stays inside the subset the manifest accepts: type, title,
description, properties, required, additionalProperties, items, enum, const,
default, anyOf, minimum, maximum. `Optional[X]` / `X | None` is always spelled
`{"anyOf": [<X>, {"type": "null"}]}`: one form for every X (objects and enums
included), and no list-valued `type`, which the subset does not promise.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Required, Union

from ._encode import EncodeError, to_json_value

__all__ = [
    "Kind",
    "Member",
    "SchemaError",
    "Shape",
    "class_members",
    "function_members",
    "input_schema_for",
    "schema_for_hint",
    "shape_of",
]

JsonSchema = dict[str, Any]

# `ReadOnly` only exists from Python 3.13; the tuple keeps 3.11 working.
_QUALIFIERS: tuple[object, ...] = tuple(
    q for q in (Required, NotRequired, getattr(typing, "ReadOnly", None)) if q is not None
)
_UNION_ORIGINS: tuple[object, ...] = (Union, types.UnionType)
_SEQUENCE_ORIGINS: tuple[object, ...] = (list, collections.abc.Sequence, collections.abc.MutableSequence)
_MAPPING_ORIGINS: tuple[object, ...] = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


class SchemaError(TypeError):
    """A type hint has no JSON Schema in the supported subset.

    Raised when the plugin is built (or a tool first described), never for a
    user's input: it is the author's mistake, so it names the parameter, the
    hint and where the hint sits (`Options.tags`)."""

    def __init__(
        self,
        reason: str,
        *,
        hint: object = None,
        parameter: str | None = None,
        location: str | None = None,
    ) -> None:
        self.reason = reason
        self.hint = hint
        self.parameter = parameter
        self.location = location
        text = reason
        if location:
            text += f" (at {location})"
        if parameter is not None:
            text = f"parameter {parameter!r}: {text}"
        super().__init__(text)

    def located(self, *, parameter: str | None = None, location: str | None = None) -> SchemaError:
        """The same error with the parameter/location filled in where still unknown."""
        return SchemaError(
            self.reason,
            hint=self.hint,
            parameter=self.parameter if self.parameter is not None else parameter,
            location=self.location or location,
        )


def hint_name(hint: object) -> str:
    """A readable spelling of a hint for error messages (`set[str]`, `Options`)."""
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


# ---------------------------------------------------------------------------------
# Hint analysis (shared with the decoder, so both agree on what a hint means)


class Kind(enum.Enum):
    ANY = "any"
    NULL = "null"
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    LITERAL = "literal"  # args: the allowed JSON values; `enum_class` unused
    ENUM = "enum"  # args: the Enum members
    ARRAY = "array"  # args: () or (item hint,)
    TUPLE = "tuple"  # same as ARRAY, decoded to a tuple
    MAP = "map"  # args: () or (value hint,)
    DATACLASS = "dataclass"
    TYPEDDICT = "typeddict"
    UNION = "union"  # args: the member hints


@dataclass(frozen=True)
class Shape:
    """What a hint means once `Annotated`, `NewType` and `Required`-style
    qualifiers are peeled off."""

    kind: Kind
    hint: object  # the peeled hint
    args: tuple[Any, ...] = ()
    description: str | None = None
    # For LITERAL: the original literal (an Enum member stays a member).
    literal_objects: tuple[object, ...] = ()


def _peel(hint: object) -> tuple[object, str | None]:
    """Strip `Annotated`, `Required`/`NotRequired`/`ReadOnly` and `NewType`;
    return the bare hint and the first string found in `Annotated` metadata."""
    description: str | None = None
    while True:
        origin = typing.get_origin(hint)
        if origin is Annotated:
            for extra in getattr(hint, "__metadata__", ()):
                if description is None and isinstance(extra, str):
                    description = extra
            hint = getattr(hint, "__origin__")
        elif origin in _QUALIFIERS:
            hint = typing.get_args(hint)[0]
        elif isinstance(hint, typing.NewType):
            hint = hint.__supertype__
        else:
            return hint, description


def shape_of(hint: object) -> Shape:
    """Classify a hint, or raise `SchemaError` if it is not supported."""
    hint, description = _peel(hint)
    kind, args = _classify(hint)
    literal_objects: tuple[object, ...] = ()
    if kind is Kind.LITERAL:
        literal_objects = args
        args = tuple(_literal_json_value(hint, v) for v in args)
    return Shape(kind, hint, args, description, literal_objects)


_SIMPLE: dict[object, Kind] = {
    str: Kind.STRING,
    int: Kind.INTEGER,
    float: Kind.NUMBER,
    bool: Kind.BOOLEAN,
    None: Kind.NULL,
    type(None): Kind.NULL,
    Any: Kind.ANY,
    object: Kind.ANY,
}


def _classify(hint: object) -> tuple[Kind, tuple[Any, ...]]:
    simple = _SIMPLE.get(hint) if _hashable(hint) else None
    if simple is not None:
        return simple, ()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        return Kind.LITERAL, args
    if origin in _UNION_ORIGINS:
        return Kind.UNION, args
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            _require_json_scalar(hint, member.value)
        return Kind.ENUM, tuple(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return Kind.DATACLASS, ()
    if typing.is_typeddict(hint):
        return Kind.TYPEDDICT, ()
    container = origin if origin is not None else hint
    if container in _SEQUENCE_ORIGINS:
        return Kind.ARRAY, args[:1]
    if container is tuple:
        if not args:
            return Kind.TUPLE, ()
        if len(args) == 2 and args[1] is Ellipsis:
            return Kind.TUPLE, args[:1]
        raise SchemaError(
            f"unsupported type hint {hint_name(hint)}: fixed-length tuples have no schema here; use tuple[X, ...] or a dataclass",
            hint=hint,
        )
    if container in _MAPPING_ORIGINS:
        if not args:
            return Kind.MAP, ()
        key, _ = _peel(args[0])
        if key is not str:
            raise SchemaError(
                f"unsupported type hint {hint_name(hint)}: JSON object keys are strings, use dict[str, ...]",
                hint=hint,
            )
        return Kind.MAP, args[1:2]
    raise SchemaError(f"unsupported type hint {hint_name(hint)}", hint=hint)


def _hashable(hint: object) -> bool:
    try:
        hash(hint)
    except TypeError:
        return False
    return True


def _require_json_scalar(owner: object, value: object) -> None:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise SchemaError(
            f"unsupported type hint {hint_name(owner)}: value {value!r:.60} is not a JSON string, number, boolean or null",
            hint=owner,
        )


def _literal_json_value(owner: object, value: object) -> object:
    # `Literal[Color.RED]` travels as the member's value, like the Enum itself.
    if isinstance(value, enum.Enum):
        value = value.value
    _require_json_scalar(owner, value)
    return value


# ---------------------------------------------------------------------------------
# Members: function parameters, dataclass fields, TypedDict keys

class _NoDefault:
    """Marks a member without a default (not `dataclasses.MISSING`: a dataclass
    field defaulting to that would have no default at all)."""

    def __repr__(self) -> str:
        return "<no default>"


_NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class Member:
    """One named input: a parameter, a dataclass field or a TypedDict key."""

    name: str
    hint: object
    required: bool
    default: Any = _NO_DEFAULT  # what the schema shows (and, for parameters, what is applied)
    description: str | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


def _type_hints(owner: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(owner, include_extras=True)
    except Exception as exc:  # NameError for unresolvable strings, TypeError for odd objects
        raise SchemaError(
            f"cannot resolve the type hints of {getattr(owner, '__qualname__', owner)!r}: {exc}",
            hint=owner,
        ) from None


@functools.lru_cache(maxsize=512)
def function_members(func: Any) -> tuple[Member, ...]:
    """The parameters of a tool function as members, in declaration order.

    Cached: it runs on every call, and hints do not change after import."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"cannot read the signature of {func!r}: {exc}", hint=func) from None
    hints = _type_hints(func)
    members = []
    for param in signature.parameters.values():
        if param.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD and param.kind is not inspect.Parameter.KEYWORD_ONLY:
            # Arguments arrive as one JSON object, so every parameter needs a name.
            raise SchemaError(
                f"{param.kind.description} parameters are not supported; use named parameters",
                parameter=param.name,
            )
        has_default = param.default is not inspect.Parameter.empty
        members.append(
            Member(
                name=param.name,
                hint=hints.get(param.name, Any),
                required=not has_default,
                default=param.default if has_default else _NO_DEFAULT,
            )
        )
    return tuple(members)


@functools.lru_cache(maxsize=512)
def class_members(cls: type) -> tuple[Member, ...]:
    """The fields of a dataclass or the keys of a TypedDict, in declaration order."""
    hints = _type_hints(cls)
    if dataclasses.is_dataclass(cls):
        return tuple(_dataclass_member(f, hints) for f in dataclasses.fields(cls) if f.init)
    return tuple(_typeddict_member(cls, name, hint) for name, hint in hints.items())


def _dataclass_member(f: dataclasses.Field[Any], hints: dict[str, Any]) -> Member:
    default: Any = _NO_DEFAULT
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory in (list, dict):
        # Only well-known factories are called: an arbitrary one may have side effects.
        default = f.default_factory()
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    description = f.metadata.get("description")
    return Member(
        name=f.name,
        hint=hints.get(f.name, Any),
        required=required,
        default=default,
        description=description if isinstance(description, str) else None,
    )


def _typeddict_member(cls: Any, name: str, hint: object) -> Member:
    # An explicit Required/NotRequired wins over `__required_keys__`: with string
    # annotations, Python 3.11 cannot see qualifiers when building the class.
    required: bool = name in cls.__required_keys__
    current = hint
    while True:
        origin = typing.get_origin(current)
        if origin is Required:
            required = True
        elif origin is NotRequired:
            required = False
        elif origin is not Annotated and origin not in _QUALIFIERS:
            break
        current = typing.get_args(current)[0]
    return Member(name=name, hint=hint, required=required)


def class_description(cls: type) -> str | None:
    """The class docstring, unless it is missing or the one `@dataclass` generates."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "("):
        return None  # `@dataclass` writes "Name(field: type, ...)" when there is no docstring
    return inspect.cleandoc(doc)


# ---------------------------------------------------------------------------------
# Schema derivation


def schema_for_hint(hint: object) -> JsonSchema:
    """The JSON Schema of one type hint. Raises `SchemaError` if unsupported."""
    return _Deriver().schema(hint)


def input_schema_for(func: Any) -> JsonSchema:
    """The JSON Schema of a function's parameters: an object with one property per
    parameter, parameters without a default required, no other properties."""
    members = function_members(func)
    deriver = _Deriver()
    properties: JsonSchema = {}
    for member in members:
        try:
            properties[member.name] = deriver.member_schema(member)
        except SchemaError as exc:
            raise exc.located(parameter=member.name) from None
    return {
        "type": "object",
        "properties": properties,
        "required": [m.name for m in members if m.required],
        "additionalProperties": False,
    }


@dataclass
class _Deriver:
    # Classes being expanded: the subset has no `$ref`, so a recursive type cannot
    # be written down and must be refused instead of recursing forever.
    expanding: list[type] = dataclasses.field(default_factory=list)

    def schema(self, hint: object) -> JsonSchema:
        shape = shape_of(hint)
        schema = self._shape_schema(shape)
        if shape.description is not None:
            schema = {**schema, "description": shape.description}
        return schema

    def member_schema(self, member: Member) -> JsonSchema:
        schema = self.schema(member.hint)
        # Precedence: `Annotated[...]` text, then `field(metadata={"description": ...})`,
        # then the docstring of the field's own class.
        if member.description is not None and _peel(member.hint)[1] is None:
            schema["description"] = member.description
        if member.has_default:
            try:
                schema["default"] = to_json_value(member.default)
            except EncodeError:
                pass  # not JSON-representable: the default still applies, it is just not shown
        return schema

    def _shape_schema(self, shape: Shape) -> JsonSchema:
        kind = shape.kind
        if kind is Kind.ANY:
            return {}
        if kind in (Kind.NULL, Kind.STRING, Kind.INTEGER, Kind.NUMBER, Kind.BOOLEAN):
            return {"type": kind.value}
        if kind is Kind.LITERAL:
            return _values_schema(list(shape.args))
        if kind is Kind.ENUM:
            return self._enum_schema(shape.hint)
        if kind in (Kind.ARRAY, Kind.TUPLE):
            schema: JsonSchema = {"type": "array"}
            if shape.args:
                schema["items"] = self.schema(shape.args[0])
            return schema
        if kind is Kind.MAP:
            schema = {"type": "object"}
            if shape.args:
                schema["additionalProperties"] = self.schema(shape.args[0])
            return schema
        if kind is Kind.UNION:
            return {"anyOf": [self.schema(m) for m in shape.args]}
        assert isinstance(shape.hint, type)
        return self._class_schema(shape.hint)

    def _enum_schema(self, cls: Any) -> JsonSchema:
        values = _values_schema([m.value for m in cls])
        # Same key order as objects: type, title, description, then the rest.
        schema: JsonSchema = {"type": values.pop("type")} if "type" in values else {}
        schema["title"] = cls.__name__
        description = class_description(cls)
        if description is not None:
            schema["description"] = description
        schema.update(values)
        return schema

    def _class_schema(self, cls: type) -> JsonSchema:
        if cls in self.expanding:
            raise SchemaError(
                f"unsupported type hint {cls.__qualname__}: recursive types have no schema here (no $ref)",
                hint=cls,
            )
        self.expanding.append(cls)
        try:
            schema: JsonSchema = {"type": "object", "title": cls.__name__}
            description = class_description(cls)
            if description is not None:
                schema["description"] = description
            members = class_members(cls)
            properties: JsonSchema = {}
            for member in members:
                try:
                    properties[member.name] = self.member_schema(member)
                except SchemaError as exc:
                    raise exc.located(location=f"{cls.__qualname__}.{member.name}") from None
            schema["properties"] = properties
            schema["required"] = [m.name for m in members if m.required]
            schema["additionalProperties"] = False
            return schema
        finally:
            self.expanding.pop()


def json_type_of_value(value: object) -> str:
    """The JSON Schema type name a scalar value belongs to (`integer` for ints)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _values_schema(values: list[object]) -> JsonSchema:
    """`enum` with a `type`: one schema if the values share a JSON type, else
    `anyOf` of one typed enum per type (in order of first appearance)."""
    groups: dict[str, list[object]] = {}
    for value in values:
        groups.setdefault(json_type_of_value(value), []).append(value)
    if "integer" in groups and "number" in groups:
        # Integers are numbers: one `number` enum keeps 1 and 1.5 together.
        groups["number"] = [v for v in values if json_type_of_value(v) in ("integer", "number")]
        del groups["integer"]
    parts: list[JsonSchema] = [
        {"type": "null"} if kind == "null" else {"type": kind, "enum": group} for kind, group in groups.items()
    ]
    if len(parts) == 1:
        return parts[0]
    return {"anyOf": parts}
