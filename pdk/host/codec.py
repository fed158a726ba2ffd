"""The one value codec between wasmtime-py component values and plain Python values.

Everything the host sends into or reads out of a component goes through here, so
the rest of the host only ever sees *plain values*:

=====================  ==========================================================
WIT type               plain Python value
=====================  ==========================================================
record                 ``dict[str, Any]`` with snake_case keys (``"input_json"``).
                       Encode also accepts a dataclass instance (its fields) and
                       kebab-case keys; a missing ``option`` field means ``None``;
                       unknown keys are an error.
variant                ``Case(tag, value)``: tag in snake_case, value ``None`` for
                       a case without payload, e.g. ``Case("websocket_send", {...})``.
enum                   ``str`` in snake_case (``"invalid_input"``); encode also
                       accepts kebab-case and ``enum.Enum`` members with a str value.
option<T>              ``None`` or the value of T. When T is itself an option the
                       present case is wrapped: ``option<option<string>>`` is
                       ``None`` / ``Some(None)`` / ``Some("x")``. Encode accepts
                       ``Some(x)`` for any option.
result<T, E>           ``Ok(value)`` / ``Err(value)`` (value ``None`` for ``_``).
flags                  ``frozenset[str]`` of snake_case names (encode: any set,
                       frozenset, list or tuple of names).
tuple<...>             ``tuple`` (encode also accepts a list of the right length).
list<u8>               ``bytes`` (encode also accepts bytearray / memoryview).
list<T>                ``list`` (encode also accepts a tuple).
string / char          ``str`` (valid UTF-8 only; a char is one code point).
bool                   ``bool`` (``0``/``1`` are refused).
integers               ``int`` within the type's range (``bool`` is refused).
f32 / f64              ``float``; encode accepts ``int`` and converts it.
own / borrow           ``ResourceAny`` / ``ResourceHost``, passed through.
=====================  ==========================================================

How wasmtime-py 50 represents the same values (``wasmtime/component/_types.py``):
records are ``Record`` objects with kebab-case attributes, enums ``str``, flags
``set[str]``, ``list<u8>`` ``bytes``, tuples ``tuple``. Variant, option and result
values are *untagged* (the bare payload; ``None`` for a case without payload)
unless ``VariantLikeType._tagged()`` finds two cases whose Python classes overlap
(every payload-less case counts as ``object``), in which case they are
``Variant(tag, payload)`` with the kebab-case tag (``none``/``some``,
``ok``/``err`` for options and results). The codec asks the type, never guesses.

Two wasmtime-py 50 hazards the encoder guards against: integers are stored into
ctypes fields, which truncate silently (``300`` as ``u8`` arrives as ``44``); and
untagged lowering picks the *first* case whose classes match with ``isinstance``,
so ``bool`` payloads can be taken by an earlier ``int`` case (``flag(true)`` sent
as ``small(1)``) and a case containing ``object`` (an untagged option) claims
every value. Such values raise ``CodecError`` instead of being sent wrong.
(Untagged lowering also uses a module-global scratch set, ``case_test_cache``,
which is not thread-safe; see the note on ``_VariantLikePlan``.)

Export calls of the host go through ``pdk/host/_fastcall.py``, which compiles
these plans once more into converters that write plain values straight into
wasmtime's C values (no wasmtime-py values, no per-call type walk) and read
results straight back; it produces and accepts exactly the plain values described
here, and uses these plans to word its errors. ``YOI_PDK_CODEC=plain`` sends every
call through this module and wasmtime-py instead.

API: ``encode(ty, value)`` / ``decode(ty, raw)`` for one component type, and
``FuncCodec`` for a whole function (``encode_params`` / ``decode_result`` for
exports, ``decode_params`` / ``encode_result`` for host imports). Encode failures
raise ``CodecError`` (a ``ValueError``) with a JSONPath-like location, e.g.
``$.kind.websocket_send.connection: expected string, got int``; the encoder checks
everything wasmtime-py would otherwise reject (or silently truncate, like
out-of-range integers) so a bad value never reaches wasmtime.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from wasmtime.component import (
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    BorrowType,
    Bool,
    Char,
    EnumType,
    FlagsType,
    Func,
    FuncType,
    ListType,
    OptionType,
    OwnType,
    Record,
    RecordType,
    ResourceAny,
    ResourceHost,
    ResultType,
    String,
    TupleType,
    ValType,
    Variant,
    VariantType,
)

from pdk.limits import RESULT_BYTES_MAX, RESULT_LIST_ITEMS_MAX

if TYPE_CHECKING:
    # Not re-exported by `wasmtime` for type checkers; only needed in annotations.
    from wasmtime._store import Storelike

__all__ = [
    "Case",
    "CodecError",
    "Err",
    "ResultError",
    "FuncCodec",
    "Ok",
    "Plan",
    "Some",
    "decode",
    "encode",
    "plan_for",
]

T = TypeVar("T")

# The attribute under which a compiled plan is cached on a wasmtime type object.
_PLAN_ATTR = "_yoi_codec_plan"

_F32_MAX = 3.4028234663852886e38


# --------------------------------------------------------------------------- values


@dataclasses.dataclass(frozen=True)
class Case:
    """A variant value: ``tag`` is the case name in snake_case."""

    tag: str
    value: Any = None


@dataclasses.dataclass(frozen=True)
class Ok(Generic[T]):
    """The ok case of a ``result`` (``value`` is ``None`` for ``result<_, E>``)."""

    value: T = None  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class Err(Generic[T]):
    """The err case of a ``result`` (``value`` is ``None`` for ``result<T>``)."""

    value: T = None  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class Some(Generic[T]):
    """The present case of an option whose payload can itself be ``None``."""

    value: T


class CodecError(ValueError):
    """A value does not fit its component type.

    ``path`` locates the offending part (``$`` is the value itself), ``reason``
    says what is wrong. Containers prepend their segment while the error
    propagates, so building the path costs nothing on the success path."""

    def __init__(self, reason: str, segments: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str] = segments if segments is not None else []

    @property
    def path(self) -> str:
        return "$" + "".join(self.segments)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class ResultError(CodecError):
    """What a guest returned does not fit its type, or is larger than the host reads
    (`RESULT_LIST_ITEMS_MAX`, `RESULT_BYTES_MAX`): the guest's fault, not the caller's.
    Raised by `FuncCodec.decode_result` and the fast path's lift alike."""


class _ResultBudget(threading.local):
    """List elements and bytes left to read of the guest result being decoded on this
    thread; None outside a result (host-import arguments, single values)."""

    items: int | None = None
    bytes: int | None = None


_budget = _ResultBudget()


def charge_items(size: int) -> None:
    """Counts a list of `size` elements against the result being read, before any of
    them is converted; refuses the result past `RESULT_LIST_ITEMS_MAX` in all."""
    left = _budget.items
    if left is not None:
        left -= size
        _budget.items = left
        if left < 0:
            raise CodecError(f"the result holds more than {RESULT_LIST_ITEMS_MAX} list elements in all (this list has {size})")


def charge_bytes(size: int) -> None:
    """The same for the bytes of a list<u8> (`RESULT_BYTES_MAX` in all)."""
    left = _budget.bytes
    if left is not None:
        left -= size
        _budget.bytes = left
        if left < 0:
            raise CodecError(f"the result holds more than {RESULT_BYTES_MAX} bytes of list<u8> in all (this list has {size})")


def start_result() -> None:
    """Arms the budget for one guest result on this thread (`end_result` disarms it)."""
    _budget.items = RESULT_LIST_ITEMS_MAX
    _budget.bytes = RESULT_BYTES_MAX


def end_result() -> None:
    _budget.items = None
    _budget.bytes = None


def _describe(value: Any) -> str:
    """The Python type of ``value`` for error messages."""
    return "None" if value is None else type(value).__name__


def _short(value: Any) -> str:
    """A bounded repr: error messages end up in logs and typed errors."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(what: str, value: Any) -> CodecError:
    return CodecError(f"expected {what}, got {_describe(value)}")


def _snake(name: str) -> str:
    return name.replace("-", "_")


# --------------------------------------------------------------------------- plans


class Plan:
    """A compiled, immutable converter for one component type.

    Plans hold no wasmtime objects, so one plan serves every store, instance and
    thread of a component."""

    wit: str = "?"
    # True when the plain value of this type can be None (an option), which is
    # what forces an enclosing option to wrap its present case in `Some`.
    may_be_none: bool = False

    def encode(self, value: Any) -> Any:
        raise NotImplementedError

    def decode(self, raw: Any) -> Any:
        raise NotImplementedError


class _BoolPlan(Plan):
    wit = "bool"

    def encode(self, value: Any) -> Any:
        if value is True or value is False:
            return value
        raise _expected("bool", value)

    def decode(self, raw: Any) -> Any:
        return raw


class _IntPlan(Plan):
    def __init__(self, wit: str, lo: int, hi: int) -> None:
        self.wit = wit
        self.lo = lo
        self.hi = hi

    def encode(self, value: Any) -> Any:
        # bool is an int subclass; wasmtime-py would accept it silently.
        if not isinstance(value, int) or isinstance(value, bool):
            raise _expected(self.wit, value)
        if not self.lo <= value <= self.hi:
            # ctypes would truncate the value without a word.
            raise CodecError(f"{_short(value)} out of range for {self.wit} [{self.lo}, {self.hi}]")
        return int(value)

    def decode(self, raw: Any) -> Any:
        return raw


class _FloatPlan(Plan):
    def __init__(self, wit: str, limit: float | None) -> None:
        self.wit = wit
        self.limit = limit

    def encode(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _expected(self.wit, value)
        try:
            number = float(value)  # wasmtime-py rejects int for floats
        except OverflowError:
            raise CodecError(f"{_short(value)} out of range for {self.wit}") from None
        if self.limit is not None and math.isfinite(number) and abs(number) > self.limit:
            raise CodecError(f"{_short(value)} out of range for {self.wit}")
        return number

    def decode(self, raw: Any) -> Any:
        return raw


def _check_utf8(value: str) -> None:
    # Lone surrogates cannot be encoded; wasmtime-py would raise UnicodeEncodeError.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise CodecError("string is not valid UTF-8 (lone surrogate)") from None


class _StringPlan(Plan):
    wit = "string"

    def encode(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise _expected("string", value)
        _check_utf8(value)
        return value

    def decode(self, raw: Any) -> Any:
        return raw


class _CharPlan(Plan):
    wit = "char"

    def encode(self, value: Any) -> Any:
        if not isinstance(value, str) or len(value) != 1:
            raise _expected("char (a one-character string)", value)
        if 0xD800 <= ord(value) <= 0xDFFF:
            raise CodecError("char must be a Unicode scalar value, got a surrogate")
        return value

    def decode(self, raw: Any) -> Any:
        return raw


class _BytesPlan(Plan):
    wit = "list<u8>"

    def encode(self, value: Any) -> Any:
        if isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)  # wasmtime-py insists on bytes
        raise _expected("list<u8> (bytes)", value)

    def decode(self, raw: Any) -> Any:
        charge_bytes(len(raw))
        return raw


class _ListPlan(Plan):
    def __init__(self, element: Plan) -> None:
        self.element = element
        self.wit = f"list<{element.wit}>"

    def encode(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _expected(self.wit, value)
        encode_element = self.element.encode
        out = []
        for index, item in enumerate(value):
            try:
                out.append(encode_element(item))
            except CodecError as error:
                error.segments.insert(0, f"[{index}]")
                raise
        return out

    def decode(self, raw: Any) -> Any:
        charge_items(len(raw))
        decode_element = self.element.decode
        out = []
        for index, item in enumerate(raw):
            try:
                out.append(decode_element(item))
            except CodecError as error:
                error.segments.insert(0, f"[{index}]")
                raise
        return out


class _TuplePlan(Plan):
    def __init__(self, elements: list[Plan]) -> None:
        self.elements = tuple(elements)
        self.wit = f"tuple<{', '.join(e.wit for e in elements)}>"

    def encode(self, value: Any) -> Any:
        if not isinstance(value, (tuple, list)):
            raise _expected(self.wit, value)
        if len(value) != len(self.elements):
            raise CodecError(f"expected {len(self.elements)} elements, got {len(value)}")
        out = []
        for index, (plan, item) in enumerate(zip(self.elements, value)):
            try:
                out.append(plan.encode(item))
            except CodecError as error:
                error.segments.insert(0, f"[{index}]")
                raise
        return tuple(out)

    def decode(self, raw: Any) -> Any:
        out = []
        for index, (plan, item) in enumerate(zip(self.elements, raw)):
            try:
                out.append(plan.decode(item))
            except CodecError as error:
                error.segments.insert(0, f"[{index}]")
                raise
        return tuple(out)


@dataclasses.dataclass(frozen=True)
class _Field:
    kebab: str
    snake: str
    plan: Plan


def _record_items(value: Any) -> Mapping[str, Any]:
    """The fields of a plain record value: a mapping, or a dataclass instance."""
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Shallow on purpose: nested dataclasses are handled by their own plans.
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise _expected("record (dict or dataclass)", value)


class _RecordPlan(Plan):
    wit = "record"

    def __init__(self, fields: list[_Field]) -> None:
        self.fields = tuple(fields)
        self.known = frozenset([f.snake for f in fields] + [f.kebab for f in fields])

    def encode(self, value: Any) -> Any:
        items = _record_items(value)
        record = Record()
        used = 0
        for field in self.fields:
            if field.snake in items:
                item = items[field.snake]
                used += 1
            elif field.kebab in items:
                item = items[field.kebab]
                used += 1
            elif field.plan.may_be_none:
                item = None  # an absent option field is `none`
            else:
                raise CodecError(f"missing field {field.snake!r}")
            try:
                setattr(record, field.kebab, field.plan.encode(item))
            except CodecError as error:
                error.segments.insert(0, f".{field.snake}")
                raise
        if used != len(items):
            self._reject_unknown(items)
        return record

    def _reject_unknown(self, items: Mapping[str, Any]) -> None:
        unknown = sorted(repr(k) for k in items if k not in self.known)
        if unknown:
            raise CodecError(f"unexpected field(s) {', '.join(unknown)}")
        raise CodecError("field given twice (snake_case and kebab-case)")

    def decode(self, raw: Any) -> Any:
        out = {}
        for field in self.fields:
            try:
                item = getattr(raw, field.kebab)
            except AttributeError:
                raise CodecError(f"record lacks field {field.kebab!r}", [f".{field.snake}"]) from None
            try:
                out[field.snake] = field.plan.decode(item)
            except CodecError as error:
                error.segments.insert(0, f".{field.snake}")
                raise
        return out


def _name_table(names: list[str]) -> dict[str, str]:
    """Accepted spelling (kebab-case or snake_case) -> WIT name."""
    table = {name: name for name in names}
    table.update({_snake(name): name for name in names})
    return table


def _plain_name(value: Any) -> Any:
    # `enum.Enum` members stand for their value (e.g. pdk.errors.ErrorCode).
    return value.value if isinstance(value, enum.Enum) else value


class _EnumPlan(Plan):
    wit = "enum"

    def __init__(self, names: list[str]) -> None:
        self.to_wit = _name_table(names)
        self.to_plain = {name: _snake(name) for name in names}
        self.choices = ", ".join(_snake(name) for name in names)

    def encode(self, value: Any) -> Any:
        name = _plain_name(value)
        if not isinstance(name, str):
            raise _expected(f"enum name ({self.choices})", value)
        try:
            return self.to_wit[name]
        except KeyError:
            raise CodecError(f"unknown enum name {_short(name)} (expected one of {self.choices})") from None

    def decode(self, raw: Any) -> Any:
        try:
            return self.to_plain[raw]
        except (KeyError, TypeError):
            raise CodecError(f"unknown enum name {raw!r}") from None


class _FlagsPlan(Plan):
    wit = "flags"

    def __init__(self, names: list[str]) -> None:
        self.to_wit = _name_table(names)
        self.to_plain = {name: _snake(name) for name in names}
        self.choices = ", ".join(_snake(name) for name in names)

    def encode(self, value: Any) -> Any:
        if not isinstance(value, (set, frozenset, list, tuple)):
            raise _expected("flags (a set of names)", value)
        out = set()
        for item in value:
            name = _plain_name(item)
            if not isinstance(name, str) or name not in self.to_wit:
                raise CodecError(f"unknown flag {_short(item)} (expected names from {self.choices})")
            out.add(self.to_wit[name])
        return out

    def decode(self, raw: Any) -> Any:
        try:
            return frozenset(self.to_plain[name] for name in raw)
        except (KeyError, TypeError):
            raise CodecError(f"unknown flags {raw!r}") from None


class _ResourcePlan(Plan):
    wit = "resource"

    def encode(self, value: Any) -> Any:
        if isinstance(value, (ResourceAny, ResourceHost)):
            return value
        raise _expected("resource (ResourceAny or ResourceHost)", value)

    def decode(self, raw: Any) -> Any:
        return raw


class _UnsupportedPlan(Plan):
    def __init__(self, wit: str) -> None:
        self.wit = wit

    def encode(self, value: Any) -> Any:
        raise CodecError(f"{self.wit} values are not supported by the host codec")

    def decode(self, raw: Any) -> Any:
        raise CodecError(f"{self.wit} values are not supported by the host codec")


# ------------------------------------------------------------- variant-like types


@dataclasses.dataclass(frozen=True)
class _CaseSpec:
    """One case of a variant, option or result, with wasmtime-py's view of it."""

    wit: str  # the tag wasmtime-py uses (kebab-case; none/some; ok/err)
    plain: str  # the snake_case tag
    plan: Plan | None  # None: the case has no payload
    classes: tuple[type, ...]  # what wasmtime-py's untagged lowering tests with isinstance
    needs_check: bool = False  # an earlier case may capture this case's values


def _wasmtime_classes(ty: ValType | None) -> frozenset[type]:
    """The Python classes wasmtime-py associates with a case (`add_classes`);
    a payload-less case counts as `object`, exactly like `VariantLikeType._tagged`."""
    if ty is None:
        return frozenset([object])
    classes: set[type] = set()
    ty.add_classes(classes)
    return frozenset(classes)


def _is_tagged(ty: ValType) -> bool:
    # `_tagged` is wasmtime-py's own decision (wasmtime/component/_types.py,
    # VariantLikeType._tagged); fall back to the same rule if it ever disappears.
    tagged = getattr(ty, "_tagged", None)
    if tagged is not None:
        return bool(tagged())
    seen: set[type] = set()
    for _, case_ty in ty._cases():  # type: ignore[attr-defined]
        classes = _wasmtime_classes(case_ty)
        if classes & seen:
            return True
        seen |= classes
    return False


def _may_capture(earlier: tuple[Plan | None, frozenset[type]], later: frozenset[type]) -> bool:
    """Whether wasmtime-py's untagged lowering, which picks the *first* case that
    matches, can pick the `earlier` case for a value of the `later` one.

    A payload-less case matches only `None`; a case with payload matches by
    isinstance against its classes (so `object` matches anything, and `int`
    matches `bool`)."""
    plan, classes = earlier
    if plan is None:
        return object in later
    if object in classes:
        return True
    return any(issubclass(c, e) for c in later for e in classes)


class _VariantLikePlan(Plan):
    """Shared machinery of variant, option and result: case lookup, tagging,
    and a guard against wasmtime-py lowering a value as the wrong case.

    Thread note: wasmtime-py's untagged `_lower` clears and refills the
    module-global `case_test_cache` before each isinstance test, so two threads
    lowering untagged values with payloads at the same moment can race on it (a
    GIL switch between the refill and the test; the loser sees a ValueError or,
    rarely, a wrong case). The codec cannot fix that from outside; a host that
    calls such functions from several threads at once carries that risk."""

    def __init__(self, cases: list[tuple[str, str, Plan | None, frozenset[type]]], tagged: bool) -> None:
        self.tagged = tagged
        specs = []
        for index, (wit, plain, plan, classes) in enumerate(cases):
            needs_check = not tagged and any(_may_capture((c[2], c[3]), classes) for c in cases[:index])
            specs.append(_CaseSpec(wit, plain, plan, tuple(classes), needs_check))
        self.cases = tuple(specs)
        self.by_wit = {spec.wit: spec for spec in specs}
        # Untagged decoding: wasmtime-py returns exact classes, and untagged cases
        # have disjoint class sets, so the class identifies the case; the one case
        # containing `object` (payload-less or an untagged option) takes the rest.
        self.by_class: dict[type, _CaseSpec] = {}
        self.catch_all: _CaseSpec | None = None
        for spec in specs:
            for cls in spec.classes:
                if cls is object:
                    self.catch_all = spec
                else:
                    self.by_class[cls] = spec

    def _lower(self, spec: _CaseSpec, payload: Any) -> Any:
        raw = None
        if spec.plan is not None:
            try:
                raw = spec.plan.encode(payload)
            except CodecError as error:
                if spec.plain:
                    error.segments.insert(0, f".{spec.plain}")
                raise
        elif payload is not None:
            raise CodecError(f"case {spec.plain!r} has no payload, got {_describe(payload)}")
        if self.tagged:
            return Variant(spec.wit, raw)
        if spec.needs_check:
            self._check_untagged(spec, raw)
        return raw

    def _check_untagged(self, spec: _CaseSpec, raw: Any) -> None:
        # Mirrors the case loop of VariantLikeType._lower in wasmtime-py.
        for other in self.cases:
            matches = raw is None if other.plan is None else isinstance(raw, other.classes)
            if matches:
                if other is spec:
                    return
                raise CodecError(
                    f"wasmtime-py cannot send case {spec.plain or spec.wit!r} of this type: "
                    f"it would treat the value as case {other.plain or other.wit!r}"
                )

    def _lift(self, raw: Any) -> tuple[_CaseSpec, Any]:
        if self.tagged:
            if not isinstance(raw, Variant) or raw.tag not in self.by_wit:
                raise CodecError(f"unexpected variant value {raw!r}")
            spec = self.by_wit[raw.tag]
            payload = raw.payload
        else:
            found = self.by_class.get(type(raw), self.catch_all)
            if found is None:
                raise CodecError(f"value of type {_describe(raw)} matches no case")
            spec, payload = found, raw
        if spec.plan is None:
            return spec, None
        try:
            return spec, spec.plan.decode(payload)
        except CodecError as error:
            if spec.plain:
                error.segments.insert(0, f".{spec.plain}")
            raise


class _VariantPlan(_VariantLikePlan):
    wit = "variant"

    def __init__(self, ty: VariantType, tagged: bool) -> None:
        cases = [
            (name, _snake(name), plan_for(case_ty) if case_ty is not None else None, _wasmtime_classes(case_ty))
            for name, case_ty in ty.cases
        ]
        super().__init__(cases, tagged)
        self.by_name = {spec.plain: spec for spec in self.cases}
        self.by_name.update(self.by_wit)
        self.choices = ", ".join(spec.plain for spec in self.cases)

    def encode(self, value: Any) -> Any:
        if not isinstance(value, Case):
            raise _expected(f"Case(tag, value) with tag in ({self.choices})", value)
        spec = self.by_name.get(value.tag) if isinstance(value.tag, str) else None
        if spec is None:
            raise CodecError(f"unknown case {_short(value.tag)} (expected one of {self.choices})")
        return self._lower(spec, value.value)

    def decode(self, raw: Any) -> Any:
        spec, payload = self._lift(raw)
        return Case(spec.plain, payload)


class _OptionPlan(_VariantLikePlan):
    may_be_none = True

    def __init__(self, ty: OptionType, tagged: bool) -> None:
        payload_ty = ty.payload
        inner = plan_for(payload_ty)
        # Option paths get no segment of their own: `$.details_json`, not `$.details_json.some`.
        super().__init__(
            [("none", "", None, _wasmtime_classes(None)), ("some", "", inner, _wasmtime_classes(payload_ty))],
            tagged,
        )
        self.none, self.some = self.cases
        self.wrap = inner.may_be_none  # option<option<T>>: present case needs `Some`
        self.wit = f"option<{inner.wit}>"

    def encode(self, value: Any) -> Any:
        if value is None:
            return self._lower(self.none, None)
        if isinstance(value, Some):
            value = value.value
        return self._lower(self.some, value)

    def decode(self, raw: Any) -> Any:
        spec, payload = self._lift(raw)
        if spec is self.none:
            return None
        return Some(payload) if self.wrap else payload


class _ResultPlan(_VariantLikePlan):
    def __init__(self, ty: ResultType, tagged: bool) -> None:
        ok_ty, err_ty = ty.ok, ty.err
        ok = plan_for(ok_ty) if ok_ty is not None else None
        err = plan_for(err_ty) if err_ty is not None else None
        super().__init__(
            [("ok", "ok", ok, _wasmtime_classes(ok_ty)), ("err", "err", err, _wasmtime_classes(err_ty))],
            tagged,
        )
        self.ok, self.err = self.cases
        self.wit = f"result<{ok.wit if ok else '_'}, {err.wit if err else '_'}>"

    def encode(self, value: Any) -> Any:
        if isinstance(value, Ok):
            return self._lower(self.ok, value.value)
        if isinstance(value, Err):
            return self._lower(self.err, value.value)
        raise _expected("Ok(value) or Err(value)", value)

    def decode(self, raw: Any) -> Any:
        spec, payload = self._lift(raw)
        return Ok(payload) if spec is self.ok else Err(payload)


# ---------------------------------------------------------------------- compiling


_PRIMITIVES: dict[type, Plan] = {
    Bool: _BoolPlan(),
    U8: _IntPlan("u8", 0, 2**8 - 1),
    U16: _IntPlan("u16", 0, 2**16 - 1),
    U32: _IntPlan("u32", 0, 2**32 - 1),
    U64: _IntPlan("u64", 0, 2**64 - 1),
    S8: _IntPlan("s8", -(2**7), 2**7 - 1),
    S16: _IntPlan("s16", -(2**15), 2**15 - 1),
    S32: _IntPlan("s32", -(2**31), 2**31 - 1),
    S64: _IntPlan("s64", -(2**63), 2**63 - 1),
    F32: _FloatPlan("f32", _F32_MAX),
    F64: _FloatPlan("f64", None),
    Char: _CharPlan(),
    String: _StringPlan(),
}


def _compile_variant_like(ty: ValType) -> Plan:
    try:
        tagged = _is_tagged(ty)
    except NotImplementedError:
        # A payload wasmtime-py cannot convert at all (error-context, future, stream).
        return _UnsupportedPlan(type(ty).__name__)
    if isinstance(ty, OptionType):
        return _OptionPlan(ty, tagged)
    if isinstance(ty, ResultType):
        return _ResultPlan(ty, tagged)
    assert isinstance(ty, VariantType)
    return _VariantPlan(ty, tagged)


def _compile(ty: ValType) -> Plan:
    primitive = _PRIMITIVES.get(type(ty))
    if primitive is not None:
        return primitive
    if isinstance(ty, ListType):
        element = ty.element
        return _BytesPlan() if isinstance(element, U8) else _ListPlan(plan_for(element))
    if isinstance(ty, RecordType):
        return _RecordPlan([_Field(name, _snake(name), plan_for(t)) for name, t in ty.fields])
    if isinstance(ty, TupleType):
        return _TuplePlan([plan_for(t) for t in ty.elements])
    if isinstance(ty, EnumType):
        return _EnumPlan(ty.names)
    if isinstance(ty, FlagsType):
        return _FlagsPlan(ty.names)
    if isinstance(ty, (VariantType, OptionType, ResultType)):
        return _compile_variant_like(ty)
    if isinstance(ty, (OwnType, BorrowType)):
        return _ResourcePlan()
    return _UnsupportedPlan(type(ty).__name__)


def plan_for(ty: ValType) -> Plan:
    """The compiled plan for a wasmtime-py component type, cached on the type
    object (wasmtime-py types are unhashable, and a fresh object comes back from
    every `Func.type` call, so keep the plan — or a `FuncCodec` — not the type)."""
    cached = getattr(ty, _PLAN_ATTR, None)
    if isinstance(cached, Plan):
        return cached
    plan = _compile(ty)
    try:
        setattr(ty, _PLAN_ATTR, plan)
    except AttributeError:
        pass  # a type object that refuses attributes just isn't cached
    return plan


# ----------------------------------------------------------------------- public API


def _run_encode(plan: Plan, value: Any, segment: str | None = None) -> Any:
    try:
        return plan.encode(value)
    except CodecError as error:
        if segment is not None:
            error.segments.insert(0, segment)
        raise
    except Exception as error:  # a bug or an odd value must stay a typed error
        raise CodecError(f"cannot encode {_describe(value)}: {error!r}", [segment] if segment else []) from error


def _run_decode(plan: Plan, raw: Any, segment: str | None = None) -> Any:
    try:
        return plan.decode(raw)
    except CodecError as error:
        if segment is not None:
            error.segments.insert(0, segment)
        raise
    except Exception as error:  # malformed wasmtime value (should not happen)
        raise CodecError(f"cannot decode {_describe(raw)}: {error!r}", [segment] if segment else []) from error


def encode(ty: ValType, value: Any) -> Any:
    """The wasmtime-py value for a plain ``value`` of component type ``ty``.

    Raises ``CodecError`` (with a path) when the value does not fit."""
    return _run_encode(plan_for(ty), value)


def decode(ty: ValType, raw: Any) -> Any:
    """The plain value for a wasmtime-py value ``raw`` of component type ``ty``."""
    return _run_decode(plan_for(ty), raw)


class FuncCodec:
    """Encodes the parameters and decodes the result of one component function.

    Build it once per (component, function), e.g. ``FuncCodec(func, store)`` or
    ``FuncCodec(func_type)`` from ``Component.type`` without instantiating; it is
    immutable and can be shared across stores and threads.
    For host imports, ``decode_params`` / ``encode_result`` run the other way."""

    def __init__(self, func: Func | FuncType, store: Storelike | None = None) -> None:
        if isinstance(func, FuncType):
            fty = func
        else:
            if store is None:
                raise TypeError("FuncCodec(func, store): a Func needs the store it belongs to")
            fty = func.type(store)
        self.params: tuple[tuple[str, Plan], ...] = tuple((_snake(name), plan_for(ty)) for name, ty in fty.params)
        result_ty = fty.result
        self.result: Plan | None = plan_for(result_ty) if result_ty is not None else None

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in snake_case, in order."""
        return tuple(name for name, _ in self.params)

    def _check_arity(self, count: int) -> None:
        if count != len(self.params):
            names = ", ".join(self.param_names)
            raise CodecError(f"expected {len(self.params)} argument(s) ({names}), got {count}")

    def encode_params(self, *plain: Any) -> list[Any]:
        """wasmtime-py arguments for a call; errors carry ``$.<param>...`` paths."""
        self._check_arity(len(plain))
        return [_run_encode(plan, value, f".{name}") for (name, plan), value in zip(self.params, plain)]

    def decode_result(self, raw: Any) -> Any:
        """The plain result of a call (``None`` for a function without result).
        Raises ``ResultError`` when it does not fit, or holds more list elements or
        bytes than the host reads (``RESULT_LIST_ITEMS_MAX``, ``RESULT_BYTES_MAX``)."""
        if self.result is None:
            return None
        start_result()
        try:
            return _run_decode(self.result, raw)
        except CodecError as error:
            raise ResultError(error.reason, error.segments) from None
        finally:
            end_result()

    def decode_params(self, *raw: Any) -> list[Any]:
        """Plain arguments of a host import call."""
        self._check_arity(len(raw))
        return [_run_decode(plan, value, f".{name}") for (name, plan), value in zip(self.params, raw)]

    def encode_result(self, plain: Any) -> Any:
        """The wasmtime-py return value of a host import."""
        if self.result is None:
            if plain is not None:
                raise CodecError(f"function has no result, got {_describe(plain)}")
            return None
        return _run_encode(self.result, plain)
