"""Python source generated per function type: the fast path's lower and lift.

`pdk/host/_fastcall.py` calls component exports with wasmtime's C values
(``wasmtime_component_val_t``, 32 bytes each: a kind byte, padding, a payload
union). This module turns the codec's plans (``pdk/host/codec.py``) into the two
converters of one function type, as Python source compiled once with ``exec``:

``lower(a, base, cap, v0, v1, ...) -> keep``
    writes the plain arguments ``v0, v1, ...`` as C values into the writable
    byte memoryview ``a`` (an arena whose first byte is at address ``base`` and
    which holds ``cap`` bytes): the argument values at offset 0, then everything
    they point at (record entries, boxes, list elements, list<u8> values).
    Pointers are written as absolute addresses (``base + offset``). A string's
    value points at the buffer of the bytes object ``str.encode`` made for it
    (CPython's layout, checked at import; otherwise the bytes are copied into
    the arena); it returns those objects (a tuple), which the caller keeps
    alive through the call.
    A value that does not fit raises ``Refused`` (the caller lets the codec word
    the error); an arena too small raises ``Full`` (the caller grows it and
    lowers again). Every value is written whole (every byte of every block), so
    an arena can be reused without clearing it.

``lift(p) -> (plain, held)``
    reads the C value at address ``p`` (a result wasmtime wrote) and everything
    it points at into plain values (and counts the bytes of C memory they held:
    32 per list element, the bytes of strings), through one ``memoryview`` over
    the address space (``MEMORY``): ``struct`` reads at absolute addresses, no
    ctypes call.
    A value of the wrong kind, an unknown name, invalid UTF-8, a char out of
    range or a missing payload raises ``CodecError`` with the codec's path
    (``$.commands[0].kind``); list elements and list<u8> bytes are counted
    before they are read, against ``RESULT_LIST_ITEMS_MAX``/``RESULT_BYTES_MAX``
    (the budget of ``charge_items``/``charge_bytes`` in the codec, kept here in
    two locals of the generated code).

``lift_args(p) -> tuple`` (``generate_args``)
    the same reading for a host import's arguments (``pdk/host/_fastimport.py``):
    the C values wasmtime passes side by side at ``p``, without a result budget.

The code is flat: records, tuples and payloads are inlined into their parent
(one ``struct`` call writes or reads a whole block of values: a record's
entries, a box), constants (names, kinds, formats) are bound as module globals
of the generated code. Identifiers in the source are generated (``x12``,
``_S3``); names from the type only ever appear as string literals (``repr``),
so WIT names that are Python keywords are no concern. Deeply nested types are
split into helper functions (``_L``/``_F``) before Python's limit of nested
blocks is reached.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

from wasmtime import _ffi as _ffi

from ._clayout import ENTRY, NAME, VAL
from .codec import (
    Case,
    CodecError,
    Err,
    Ok,
    Plan,
    Some,
    _BoolPlan,
    _BytesPlan,
    _CharPlan,
    _EnumPlan,
    _FlagsPlan,
    _FloatPlan,
    _IntPlan,
    _ListPlan,
    _OptionPlan,
    _RecordPlan,
    _ResultPlan,
    _StringPlan,
    _TuplePlan,
    _VariantPlan,
)
from pdk.limits import RESULT_BYTES_MAX, RESULT_LIST_ITEMS_MAX

__all__ = ["MEMORY", "Full", "Generated", "Refused", "Unsupported", "check_supported", "generate", "generate_args"]

# Every address of this process, as bytes: what the lifters read wasmtime's
# memory through (a read at an address is a `struct` call, not a ctypes call).
MEMORY = memoryview((ctypes.c_char * (1 << 62)).from_address(0) if ctypes.sizeof(ctypes.c_void_p) == 8 else b"").cast("B")

# One C value, a record entry (name + value), a name (size, data): pdk/host/_clayout.py.
_VAL, _ENTRY, _NAME = VAL, ENTRY, NAME

# Value kinds (wasmtime/_ffi.py, WASMTIME_COMPONENT_*).
_K_BOOL = _ffi.WASMTIME_COMPONENT_BOOL.value
_K_CHAR = _ffi.WASMTIME_COMPONENT_CHAR.value
_K_STRING = _ffi.WASMTIME_COMPONENT_STRING.value
_K_LIST = _ffi.WASMTIME_COMPONENT_LIST.value
_K_RECORD = _ffi.WASMTIME_COMPONENT_RECORD.value
_K_TUPLE = _ffi.WASMTIME_COMPONENT_TUPLE.value
_K_VARIANT = _ffi.WASMTIME_COMPONENT_VARIANT.value
_K_ENUM = _ffi.WASMTIME_COMPONENT_ENUM.value
_K_OPTION = _ffi.WASMTIME_COMPONENT_OPTION.value
_K_RESULT = _ffi.WASMTIME_COMPONENT_RESULT.value
_K_FLAGS = _ffi.WASMTIME_COMPONENT_FLAGS.value
_K_F32 = _ffi.WASMTIME_COMPONENT_F32.value
_K_F64 = _ffi.WASMTIME_COMPONENT_F64.value

# WIT integer type -> (kind, struct code of the payload, payload padding to 24 bytes).
_INTS = {
    "u8": (_ffi.WASMTIME_COMPONENT_U8.value, "B23x"),
    "s8": (_ffi.WASMTIME_COMPONENT_S8.value, "b23x"),
    "u16": (_ffi.WASMTIME_COMPONENT_U16.value, "H22x"),
    "s16": (_ffi.WASMTIME_COMPONENT_S16.value, "h22x"),
    "u32": (_ffi.WASMTIME_COMPONENT_U32.value, "I20x"),
    "s32": (_ffi.WASMTIME_COMPONENT_S32.value, "i20x"),
    "u64": (_ffi.WASMTIME_COMPONENT_U64.value, "Q16x"),
    "s64": (_ffi.WASMTIME_COMPONENT_S64.value, "q16x"),
}

# Nesting (loops and try blocks) a generated function may reach before a nested
# value moves to a helper function; CPython refuses more than 20 nested blocks.
_DEPTH_MAX = 12


def _bytes_data_offset() -> int | None:
    """Where a bytes object's data starts (CPython: after its header), checked."""
    offset = bytes.__basicsize__ - 1  # PyBytesObject: the header, then ob_sval[1]
    sample = bytes(range(200, 256))
    if ctypes.string_at(id(sample) + offset, len(sample)) != sample:
        return None
    return offset


_BYTES_DATA = _bytes_data_offset()
# Strings point into the bytes objects `str.encode` made (kept alive by the
# caller through the call) instead of being copied into the arena.
STRINGS_IN_PLACE = _BYTES_DATA is not None
_NAME_MAX = 4096  # a name longer than every name of the type is refused unread


class Unsupported(Exception):
    """The fast path cannot convert this function type; use the plain path."""


class Refused(Exception):
    """A value the fast lowerer will not write; the codec words the error."""


class Full(Exception):
    """The arena is too small for these arguments (`args[0]`: at least this many bytes)."""


# ----------------------------------------------------------------- value layout


def _kind_and_payload(plan: Plan) -> tuple[int, str]:
    """The kind byte of a plan's C value and the struct codes of its 24-byte payload."""
    if isinstance(plan, _BoolPlan):
        return _K_BOOL, "?23x"
    if isinstance(plan, _IntPlan):
        return _INTS[plan.wit]
    if isinstance(plan, _FloatPlan):
        return (_K_F32, "f20x") if plan.wit == "f32" else (_K_F64, "d16x")
    if isinstance(plan, _CharPlan):
        return _K_CHAR, "I20x"
    if isinstance(plan, _StringPlan):
        return _K_STRING, "QQ8x"  # size, data
    if isinstance(plan, (_BytesPlan, _ListPlan)):
        return _K_LIST, "QQ8x"  # count, elements
    if isinstance(plan, _TuplePlan):
        return _K_TUPLE, "QQ8x"
    if isinstance(plan, _RecordPlan):
        return _K_RECORD, "QQ8x"  # count, entries
    if isinstance(plan, _EnumPlan):
        return _K_ENUM, "QQ8x"  # name size, name data
    if isinstance(plan, _FlagsPlan):
        return _K_FLAGS, "QQ8x"  # count, names
    if isinstance(plan, _VariantPlan):
        return _K_VARIANT, "QQQ"  # name size, name data, payload box (or null)
    if isinstance(plan, _OptionPlan):
        return _K_OPTION, "Q16x"  # payload box (null: none)
    if isinstance(plan, _ResultPlan):
        return _K_RESULT, "?7xQ8x"  # is_ok, payload box (or null)
    raise Unsupported(type(plan).__name__)  # resources, future, stream, error-context


def check_supported(plan: Plan) -> None:
    """Raises `Unsupported` when the converters cannot handle `plan` or a type inside
    it (a cheap walk of the plans, for deciding before generating anything)."""
    stack = [plan]
    while stack:
        item = stack.pop()
        _kind_and_payload(item)
        if isinstance(item, _ListPlan):
            stack.append(item.element)
        elif isinstance(item, _TuplePlan):
            stack.extend(item.elements)
        elif isinstance(item, _RecordPlan):
            stack.extend(f.plan for f in item.fields)
        elif isinstance(item, (_VariantPlan, _OptionPlan, _ResultPlan)):
            stack.extend(spec.plan for spec in item.cases if spec.plan is not None)


def _words(payload: str) -> int:
    """How many values a payload's struct codes stand for ("?7xQ8x": 2)."""
    return sum(1 for c in payload if not c.isdigit() and c != "x")


# ------------------------------------------------------------- helpers (runtime)


class _Names:
    """Static, NUL-terminated storage for names that come from the type."""

    def __init__(self) -> None:
        self.keep: list[Any] = []

    def add(self, name: str) -> tuple[int, int]:
        raw = name.encode("utf-8")
        buf = ctypes.create_string_buffer(raw, len(raw) + 1)
        self.keep.append(buf)
        return len(raw), ctypes.addressof(buf)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refused
    return float(value)  # OverflowError for huge ints: refused


def _plain_name(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _items(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise Refused


def _fields_of(plan: _RecordPlan) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The field values of a record in order, the codec's way: snake_case or
    kebab-case keys, an absent option field is None, nothing else allowed."""
    fields = [(f.snake, f.kebab, f.plan.may_be_none) for f in plan.fields]

    def fields_of(items: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        used = 0
        for snake, kebab, optional in fields:
            if snake in items:
                out.append(items[snake])
                used += 1
            elif kebab in items:
                out.append(items[kebab])
                used += 1
            elif optional:
                out.append(None)
            else:
                raise Refused
        if used != len(items):
            raise Refused
        return tuple(out)

    return fields_of


def _bad_kind(kind: int, wit: str) -> None:
    raise CodecError(f"the guest returned a value of kind {kind} where {wit} was expected")


def _bad_utf8(error: UnicodeDecodeError) -> None:
    raise CodecError(f"the guest returned a string that is not valid UTF-8 (byte {error.start})") from None


def _bad_char(point: int) -> None:
    raise CodecError(f"the guest returned {point:#x} for a char, which is not a Unicode scalar value")


def _bad_size(what: str, size: int, count: int) -> None:
    raise CodecError(f"the guest returned a {what} of {size} {'fields' if what == 'record' else 'elements'}, expected {count}")


def _name_read(size: int, data: int) -> bytes:
    return MEMORY[data : data + min(size, 60)].tobytes() if size else b""


def _bad_enum(size: int, data: int) -> None:
    raise CodecError(f"the guest returned an unknown enum name {_name_read(size, data)!r}")


def _bad_case(size: int, data: int) -> None:
    raise CodecError(f"the guest returned an unknown variant case {_name_read(size, data)!r}")


def _no_payload(what: str) -> None:
    raise CodecError(f"the guest returned {what} without its payload")


def _bad_bytes() -> None:
    raise CodecError("the guest returned a list<u8> with elements of another kind")


def _flags_lift(plan: _FlagsPlan) -> Callable[[int, int], frozenset[str]]:
    to_plain = {wit.encode(): plain for wit, plain in plan.to_plain.items()}
    unpack = struct.Struct("<QQ").unpack_from

    def lift_flags(count: int, data: int) -> frozenset[str]:
        out = []
        for at in range(data, data + count * _NAME, _NAME):
            size, name = unpack(MEMORY, at)
            found = to_plain.get(MEMORY[name : name + size].tobytes() if size <= _NAME_MAX else b"")
            if found is None:
                raise CodecError("the guest returned an unknown flag name")
            out.append(found)
        return frozenset(out)

    return lift_flags


def _over_items(size: int) -> None:
    # The words of `charge_items` (pdk/host/codec.py): both paths refuse alike.
    raise CodecError(f"the result holds more than {RESULT_LIST_ITEMS_MAX} list elements in all (this list has {size})")


def _over_bytes(size: int) -> None:
    # The words of `charge_bytes` (pdk/host/codec.py).
    raise CodecError(f"the result holds more than {RESULT_BYTES_MAX} bytes of list<u8> in all (this list has {size})")


_ENV: dict[str, Any] = {
    "M": MEMORY,
    "_R": Refused,
    "_Full": Full,
    "CodecError": CodecError,
    "_Case": Case,
    "_Ok": Ok,
    "_Err": Err,
    "_Some": Some,
    "_new": object.__new__,
    "_flt": _float,
    "_pname": _plain_name,
    "_items": _items,
    "_bad_kind": _bad_kind,
    "_bad_utf8": _bad_utf8,
    "_bad_char": _bad_char,
    "_bad_size": _bad_size,
    "_bad_enum": _bad_enum,
    "_bad_case": _bad_case,
    "_no_payload": _no_payload,
    "_bad_bytes": _bad_bytes,
    "_over_items": _over_items,
    "_over_bytes": _over_bytes,
    "_ITEMS_MAX": RESULT_LIST_ITEMS_MAX,
    "_BYTES_MAX": RESULT_BYTES_MAX,
    "_UNBOUNDED": 1 << 62,  # the budget of values that are not a guest result (host-import arguments)
    "_id": id,
    "_U8": bytes([_INTS["u8"][0]]),
    "_INF": math.inf,
    "_F32_MAX": 3.4028234663852886e38,
}


# -------------------------------------------------------------------- the builder


class _Func:
    """The source lines of one generated function."""

    def __init__(self, header: str) -> None:
        self.lines = [header]
        self.indent = 1

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def placeholder(self) -> tuple[int, str]:
        """A line to fill in later, and its indentation."""
        self.lines.append("")
        return len(self.lines) - 1, "    " * self.indent

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"


class _Scope:
    """Blocks of values a piece of lowering code allocates at a fixed place
    (`frame` + offset: `frame` is a local holding an arena offset, or "" for
    offsets known when generating) and writes at its end with one `struct` call."""

    def __init__(self, frame: str) -> None:
        self.frame = frame
        self.size = 0
        self.writes: list[tuple[int, str, list[str]]] = []  # (offset, struct codes, expressions)

    def alloc(self, size: int) -> int:
        at = self.size
        self.size += size
        return at

    def at(self, offset: int) -> str:
        return f"{self.frame} + {offset}" if self.frame else str(offset)

    def write(self, offset: int, codes: str, exprs: list[str]) -> None:
        self.writes.append((offset, codes, exprs))


class _Gen:
    def __init__(self) -> None:
        self.env: dict[str, Any] = dict(_ENV)
        self.funcs: list[_Func] = []
        self.names = _Names()
        self.count = 0
        self.structs: dict[str, str] = {}
        self.top: _Func | None = None  # the top-level lower
        self.keep: list[str] = []  # its locals to return: bytes objects the arguments point into
        self.uses_k = False  # whether anything else is kept through `k`
        self.uses_budget = False  # whether the lift counts list elements or bytes

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: Any, prefix: str = "_c") -> str:
        name = self.fresh(prefix)
        self.env[name] = value
        return name

    def struct(self, codes: str, method: str) -> str:
        key = f"{method}:{codes}"
        found = self.structs.get(key)
        if found is None:
            found = self.structs[key] = self.const(getattr(struct.Struct("<" + codes), method), "_S")
        return found

    def flush(self, fn: _Func, scope: _Scope) -> None:
        """One `pack_into` for every block of the scope (they are contiguous and
        every byte of them is covered by some value, name or padding)."""
        if not scope.writes:
            return
        writes = sorted(scope.writes, key=lambda w: w[0])
        codes, exprs, at = "", [], 0
        for offset, part, values in writes:
            assert offset == at, (offset, at)
            codes += part
            exprs += values
            at += struct.calcsize("<" + part)
        assert at == scope.size
        fn.line(f"{self.struct(codes, 'pack_into')}(a, {scope.at(0)}, {', '.join(exprs)})")

    def open_scope(self, fn: _Func, frame: str) -> tuple[_Scope, tuple[int, str]]:
        return _Scope(frame), fn.placeholder()

    def close_scope(self, fn: _Func, scope: _Scope, slot: tuple[int, str]) -> None:
        """Writes the scope's blocks, and allocates them (from the arena's free
        end `t`) where the scope began."""
        self.flush(fn, scope)
        if scope.size:
            at, indent = slot
            fn.lines[at] = f"{indent}{scope.frame} = t; t += {scope.size}\n{indent}if t > cap: raise _Full(t)"

    # ------------------------------------------------------------------ lowering

    def lower(self, fn: _Func, scope: _Scope, plan: Plan, x: str, depth: int) -> tuple[int, str, list[str]]:
        """Code checking the plain value in local `x` and writing what it points
        at; returns the value's kind, payload codes and payload expressions."""
        kind, payload = _kind_and_payload(plan)
        if depth > _DEPTH_MAX and isinstance(plan, (_ListPlan, _TuplePlan, _RecordPlan, _VariantPlan, _OptionPlan, _ResultPlan)):
            helper = self.lower_helper(plan)
            outs = [self.fresh("w") for _ in range(_words(payload))]
            self.uses_k = True
            fn.line(f"t, {', '.join(outs)} = {helper}({x}, a, base, cap, k, t)")
            return kind, payload, outs
        line = fn.line
        if isinstance(plan, _BoolPlan):
            line(f"if {x} is not True and {x} is not False: raise _R")
            return kind, payload, [x]
        if isinstance(plan, _IntPlan):
            # `struct` refuses out-of-range integers itself (struct.error: refused).
            line(f"if {x}.__class__ is not int and ({x}.__class__ is bool or not isinstance({x}, int)): raise _R")
            return kind, payload, [x]
        if isinstance(plan, _FloatPlan):
            line(f"if {x}.__class__ is not float: {x} = _flt({x})")
            if plan.wit == "f32":
                line(f"if ({x} > _F32_MAX or {x} < -_F32_MAX) and {x} != _INF and {x} != -_INF: raise _R")
            return kind, payload, [x]
        if isinstance(plan, _CharPlan):
            c = self.fresh("c")
            line(f"if ({x}.__class__ is not str and not isinstance({x}, str)) or len({x}) != 1: raise _R")
            line(f"{c} = ord({x})")
            line(f"if 0xD800 <= {c} <= 0xDFFF: raise _R")
            return kind, payload, [c]
        if isinstance(plan, _StringPlan):
            b = self.fresh("b")
            line(f"if {x}.__class__ is not str and not isinstance({x}, str): raise _R")
            line(f"{b} = {x}.encode()")
            if STRINGS_IN_PLACE:
                # The C value points at the bytes object's own buffer, which the
                # caller keeps alive: in the tuple `lower` returns, or (on a branch,
                # in a loop or a helper) through `k`.
                if fn is self.top and fn.indent == 1:
                    self.keep.append(b)
                else:
                    self.uses_k = True
                    line(f"k({b})")
                return kind, payload, [f"len({b})", f"_id({b}) + {_BYTES_DATA}"]
            n, p = self.fresh("n"), self.fresh("p")
            line(f"{n} = len({b}); {p} = t; t += ({n} + 7) & -8")
            line("if t > cap: raise _Full(t)")
            line(f"a[{p}:{p} + {n}] = {b}")
            return kind, payload, [n, f"base + {p}"]
        if isinstance(plan, _BytesPlan):
            n, d = self.fresh("n"), self.fresh("d")
            line(f"if {x}.__class__ is not bytes:")
            line(f"    if not isinstance({x}, (bytes, bytearray, memoryview)): raise _R")
            line(f"    {x} = bytes({x})")
            line(f"{n} = len({x}); {d} = t; t += {n} << 5")
            line("if t > cap: raise _Full(t)")
            line(f"if {n}:")
            line(f"    a[{d}:t:32] = _U8 * {n}")
            line(f"    a[{d} + 8:t:32] = {x}")
            return kind, payload, [n, f"base + {d}"]
        if isinstance(plan, _ListPlan):
            return kind, payload, self.lower_list(fn, plan, x, depth)
        if isinstance(plan, _TuplePlan):
            count = len(plan.elements)
            line(f"if ({x}.__class__ is not tuple and not isinstance({x}, (tuple, list))) or len({x}) != {count}: raise _R")
            items = [self.fresh("e") for _ in plan.elements]
            if items:
                line(f"{', '.join(items)}, = {x}")
            block = scope.alloc(count * _VAL)
            for i, (element, item) in enumerate(zip(plan.elements, items)):
                k, codes, exprs = self.lower(fn, scope, element, item, depth)
                scope.write(block + i * _VAL, "B7x" + codes, [str(k), *exprs])
            return kind, payload, [str(count), f"base + {scope.at(block)}" if count else "base"]
        if isinstance(plan, _RecordPlan):
            return kind, payload, self.lower_record(fn, scope, plan, x, depth)
        if isinstance(plan, _EnumPlan):
            static = {wit: self.names.add(wit) for wit in plan.to_plain}
            to_c = self.const({name: static[wit] for name, wit in plan.to_wit.items()}, "_enum")
            s, p = self.fresh("z"), self.fresh("z")
            line(f"{s}, {p} = {to_c}[{x} if {x}.__class__ is str else _pname({x})]")
            return kind, payload, [s, p]
        if isinstance(plan, _FlagsPlan):
            static = {wit: self.names.add(wit) for wit in plan.to_plain}
            to_c = self.const({name: static[wit] for name, wit in plan.to_wit.items()}, "_flags")
            chosen, n, d, q = self.fresh("f"), self.fresh("n"), self.fresh("d"), self.fresh("q")
            pack = self.struct("QQ", "pack_into")
            line(f"if not isinstance({x}, (set, frozenset, list, tuple)): raise _R")
            line(f"{chosen} = {{{to_c}[_pname(i)] for i in {x}}}")
            line(f"{n} = len({chosen}); {d} = {q} = t; t += {n} << 4")
            line("if t > cap: raise _Full(t)")
            line(f"for i in {chosen}:")
            line(f"    {pack}(a, {q}, *i); {q} += 16")
            return kind, payload, [n, f"base + {d}"]
        if isinstance(plan, _OptionPlan):
            assert plan.some.plan is not None
            o = self.fresh("o")
            line(f"if {x} is None: {o} = 0")
            line("else:")
            fn.indent += 1
            line(f"if isinstance({x}, _Some): {x} = {x}.value")
            self.lower_boxed(fn, plan.some.plan, x, o, depth)
            fn.indent -= 1
            return kind, payload, [o]
        if isinstance(plan, _ResultPlan):
            ok, o, y = self.fresh("k"), self.fresh("o"), self.fresh("y")
            for index, (spec, cls) in enumerate(((plan.ok, "_Ok"), (plan.err, "_Err"))):
                line(f"{'if' if index == 0 else 'elif'} isinstance({x}, {cls}):")
                fn.indent += 1
                line(f"{ok} = {index == 0}; {y} = {x}.value")
                self.lower_payload(fn, spec.plan, y, o, depth)
                fn.indent -= 1
            line("else: raise _R")
            return kind, payload, [ok, o]
        if isinstance(plan, _VariantPlan):
            index_of: dict[str, int] = {}
            for i, spec in enumerate(plan.cases):
                index_of[spec.plain] = index_of[spec.wit] = i
            table = self.const(index_of, "_cases")
            i_, s, p, o, y = self.fresh("i"), self.fresh("z"), self.fresh("z"), self.fresh("o"), self.fresh("y")
            line(f"if {x}.__class__ is not _Case and not isinstance({x}, _Case): raise _R")
            line(f"{i_} = {table}[{x}.tag]; {y} = {x}.value")  # KeyError / TypeError: refused
            for i, spec in enumerate(plan.cases):
                size, address = self.names.add(spec.wit)
                line(f"{'if' if i == 0 else 'elif'} {i_} == {i}:")
                fn.indent += 1
                line(f"{s} = {size}; {p} = {address}")
                self.lower_payload(fn, spec.plan, y, o, depth)
                fn.indent -= 1
            return kind, payload, [s, p, o]
        raise Unsupported(type(plan).__name__)

    def lower_payload(self, fn: _Func, plan: Plan | None, x: str, out: str, depth: int) -> None:
        """A case's payload: none (`x` must be None; a null box) or its own box."""
        if plan is None:
            fn.line(f"if {x} is not None: raise _R")
            fn.line(f"{out} = 0")
        else:
            self.lower_boxed(fn, plan, x, out, depth)

    def lower_boxed(self, fn: _Func, plan: Plan, x: str, out: str, depth: int) -> None:
        """A payload in its own box, allocated (with its blocks) only on this branch;
        sets `out` to the box's address."""
        frame = self.fresh("s")
        scope, slot = self.open_scope(fn, frame)
        box = scope.alloc(_VAL)
        k, codes, exprs = self.lower(fn, scope, plan, x, depth + 1)
        scope.write(box, "B7x" + codes, [str(k), *exprs])
        self.close_scope(fn, scope, slot)
        fn.line(f"{out} = base + {frame}")

    def lower_list(self, fn: _Func, plan: _ListPlan, x: str, depth: int) -> list[str]:
        n, d, q, e = self.fresh("n"), self.fresh("d"), self.fresh("q"), self.fresh("e")
        line = fn.line
        line(f"if {x}.__class__ is not list and not isinstance({x}, (list, tuple)): raise _R")
        line(f"{n} = len({x}); {d} = {q} = t; t += {n} << 5")
        line("if t > cap: raise _Full(t)")
        line(f"for {e} in {x}:")
        fn.indent += 1
        scope, slot = self.open_scope(fn, self.fresh("s"))
        k, codes, exprs = self.lower(fn, scope, plan.element, e, depth + 1)
        self.close_scope(fn, scope, slot)
        line(f"{self.struct('B7x' + codes, 'pack_into')}(a, {q}, {k}, {', '.join(exprs)}); {q} += 32")
        fn.indent -= 1
        return [n, f"base + {d}"]

    def lower_record(self, fn: _Func, scope: _Scope, plan: _RecordPlan, x: str, depth: int) -> list[str]:
        line = fn.line
        count = len(plan.fields)
        values = [self.fresh("f") for _ in plan.fields]
        fields_of = self.const(_fields_of(plan), "_rec")
        targets = f"{', '.join(values)}," if values else "_"
        lookups = ", ".join(f"{x}[{f.snake!r}]" for f in plan.fields) or "()"
        line(f"if {x}.__class__ is dict:")
        line("    try:")
        line(f"        {targets} = {lookups}" if values else "        pass")
        line("    except KeyError:")
        line(f"        {targets} = {fields_of}({x})")
        line("    else:")
        line(f"        if len({x}) != {count}: {fields_of}({x})")
        line("else:")
        line(f"    {targets} = {fields_of}(_items({x}))")
        block = scope.alloc(count * _ENTRY)
        for i, (field, value) in enumerate(zip(plan.fields, values)):
            size, address = self.names.add(field.kebab)
            k, codes, exprs = self.lower(fn, scope, field.plan, value, depth + 1)
            scope.write(block + i * _ENTRY, "QQB7x" + codes, [str(size), str(address), str(k), *exprs])
        return [str(count), f"base + {scope.at(block)}" if count else "base"]

    def lower_helper(self, plan: Plan) -> str:
        name = self.fresh("_L")
        fn = _Func(f"def {name}(x, a, base, cap, k, t):")
        self.funcs.append(fn)
        scope, slot = self.open_scope(fn, self.fresh("s"))
        _kind, _payload, exprs = self.lower(fn, scope, plan, "x", 0)
        self.close_scope(fn, scope, slot)
        fn.line(f"return t, {', '.join(exprs)}")
        return name

    # -------------------------------------------------------------------- lifting

    def reader(self, plan: Plan) -> str:
        _kind, payload = _kind_and_payload(plan)
        return "B7x" + payload

    def lift(self, fn: _Func, plan: Plan, k: str, w: list[str], depth: int) -> str:
        """Code converting the C value already read into locals (`k`: kind, `w`:
        payload words) into a plain value; returns an expression for it."""
        kind, _payload = _kind_and_payload(plan)
        line = fn.line
        wit = "record" if isinstance(plan, _RecordPlan) else plan.wit
        line(f"if {k} != {kind}: _bad_kind({k}, {wit!r})")
        if isinstance(plan, (_BoolPlan, _IntPlan, _FloatPlan)):
            return w[0]
        if isinstance(plan, _CharPlan):
            line(f"if {w[0]} > 0x10FFFF or 0xD800 <= {w[0]} <= 0xDFFF: _bad_char({w[0]})")
            return f"chr({w[0]})"
        if isinstance(plan, _StringPlan):
            r = self.fresh("r")
            line(f"h += {w[0]}")
            line("try:")
            line(f"    {r} = M[{w[1]}:{w[1]} + {w[0]}].tobytes().decode()")
            line("except UnicodeDecodeError as error:")
            line("    _bad_utf8(error)")
            return r
        if isinstance(plan, _BytesPlan):
            r, v = self.fresh("r"), self.fresh("v")
            line(f"if {w[0]}:")
            self.uses_budget = True
            line(f"    cb -= {w[0]}")  # before anything is read
            line(f"    if cb < 0: _over_bytes({w[0]})")
            line(f"    {v} = M[{w[1]}:{w[1]} + ({w[0]} << 5)]")
            line(f"    if {v}[0::32].tobytes() != _U8 * {w[0]}: _bad_bytes()")
            line(f"    {r} = {v}[8::32].tobytes()")
            line(f"else: {r} = b''")
            return r
        if isinstance(plan, _ListPlan):
            return self.lift_list(fn, plan, w, depth)
        if isinstance(plan, _TuplePlan):
            count = len(plan.elements)
            line(f"if {w[0]} != {count}: _bad_size('tuple', {w[0]}, {count})")
            if not count:
                return "()"
            outs = self.lift_block(fn, w[1], [(p, f"[{i}]", 0) for i, p in enumerate(plan.elements)], _VAL, depth)
            return f"({', '.join(outs)},)"
        if isinstance(plan, _RecordPlan):
            count = len(plan.fields)
            line(f"if {w[0]} != {count}: _bad_size('record', {w[0]}, {count})")
            outs = self.lift_block(fn, w[1], [(f.plan, f".{f.snake}", _NAME) for f in plan.fields], _ENTRY, depth)
            r = self.fresh("r")
            line(f"{r} = {{{', '.join(f'{f.snake!r}: {o}' for f, o in zip(plan.fields, outs))}}}")
            return r
        if isinstance(plan, _EnumPlan):
            table = self.const({wit.encode(): plain for wit, plain in plan.to_plain.items()}, "_enum")
            r = self.fresh("r")
            line(f"{r} = {table}.get(M[{w[1]}:{w[1]} + {w[0]}].tobytes()) if {w[0]} <= {_NAME_MAX} else None")
            line(f"if {r} is None: _bad_enum({w[0]}, {w[1]})")
            return r
        if isinstance(plan, _FlagsPlan):
            return f"{self.const(_flags_lift(plan), '_flags')}({w[0]}, {w[1]})"
        if isinstance(plan, _OptionPlan):
            assert plan.some.plan is not None
            r = self.fresh("r")
            line(f"if not {w[0]}: {r} = None")
            line("else:")
            fn.indent += 1
            inner = self.lift_boxed(fn, plan.some.plan, w[0], None, depth)
            if plan.wrap:
                self.frozen(fn, r, "_Some", {"value": inner})
            else:
                line(f"{r} = {inner}")
            fn.indent -= 1
            return r
        if isinstance(plan, _ResultPlan):
            r = self.fresh("r")
            for index, (spec, cls, tag) in enumerate(((plan.ok, "_Ok", "ok"), (plan.err, "_Err", "err"))):
                line(f"if {w[0]}:" if index == 0 else "else:")
                fn.indent += 1
                if spec.plan is None:
                    self.frozen(fn, r, cls, {"value": "None"})
                else:
                    line(f"if not {w[1]}: _no_payload({tag!r})")
                    inner = self.lift_boxed(fn, spec.plan, w[1], f".{tag}", depth)
                    self.frozen(fn, r, cls, {"value": inner})
                fn.indent -= 1
            return r
        if isinstance(plan, _VariantPlan):
            table = self.const({spec.wit.encode(): i for i, spec in enumerate(plan.cases)}, "_cases")
            i_, r = self.fresh("i"), self.fresh("r")
            line(f"{i_} = {table}.get(M[{w[1]}:{w[1]} + {w[0]}].tobytes()) if {w[0]} <= {_NAME_MAX} else None")
            line(f"if {i_} is None: _bad_case({w[0]}, {w[1]})")
            for i, spec in enumerate(plan.cases):
                line(f"{'if' if i == 0 else 'elif'} {i_} == {i}:")
                fn.indent += 1
                if spec.plan is None:
                    line(f"{r} = {self.const(Case(spec.plain), '_case')}")  # frozen: one shared value
                else:
                    line(f"if not {w[2]}: _no_payload({f'case {spec.plain!r}'!r})")
                    inner = self.lift_boxed(fn, spec.plan, w[2], f".{spec.plain}", depth)
                    self.frozen(fn, r, "_Case", {"tag": repr(spec.plain), "value": inner})
                fn.indent -= 1
            return r
        raise Unsupported(type(plan).__name__)

    def frozen(self, fn: _Func, out: str, cls: str, fields: dict[str, str]) -> None:
        """`out = cls(**fields)` for the codec's frozen dataclasses (Case, Ok, Err,
        Some), without their `__init__`: the same object (fields in `__dict__`),
        built in half the time."""
        d = self.fresh("d")
        sets = "; ".join(f"{d}[{name!r}] = {expr}" for name, expr in fields.items())
        fn.line(f"{out} = _new({cls}); {d} = {out}.__dict__; {sets}")

    def read_value(self, fn: _Func, plan: Plan, address: str) -> tuple[str, list[str]]:
        _kind, payload = _kind_and_payload(plan)
        k = self.fresh("k")
        w = [self.fresh("w") for _ in range(_words(payload))]
        fn.line(f"{', '.join([k, *w])}, = {self.struct(self.reader(plan), 'unpack_from')}(M, {address})")
        return k, w

    def lift_boxed(self, fn: _Func, plan: Plan, address: str, segment: str | None, depth: int) -> str:
        """The value in a box at `address`, its errors located under `segment`."""
        if self.deep(plan, depth):
            call = f"{self.lift_helper(plan)}({address}, ci, cb, h)"
            return self.helper_result(fn, call) if segment is None else self.guarded(fn, call, segment)
        k, w = self.read_value(fn, plan, address)
        if segment is None:
            return self.lift(fn, plan, k, w, depth)
        fn.line("try:")
        fn.indent += 1
        out = self.lift(fn, plan, k, w, depth + 1)
        r = self.fresh("r")
        fn.line(f"{r} = {out}")
        fn.indent -= 1
        fn.line("except CodecError as error:")
        fn.line(f"    error.segments.insert(0, {segment!r}); raise")
        return r

    def helper_result(self, fn: _Func, call: str) -> str:
        r = self.fresh("r")
        fn.line(f"{r}, ci, cb, h = {call}")
        return r

    def guarded(self, fn: _Func, call: str, segment: str) -> str:
        """A helper's value, its errors located under `segment`."""
        r = self.fresh("r")
        fn.line("try:")
        fn.line(f"    {r}, ci, cb, h = {call}")
        fn.line("except CodecError as error:")
        fn.line(f"    error.segments.insert(0, {segment!r}); raise")
        return r

    def deep(self, plan: Plan, depth: int) -> bool:
        return depth > _DEPTH_MAX and isinstance(plan, (_ListPlan, _TuplePlan, _RecordPlan, _VariantPlan, _OptionPlan, _ResultPlan))

    def lift_block(self, fn: _Func, address: str, members: list[tuple[Plan, str, int]], stride: int, depth: int) -> list[str]:
        """A block of values (tuple elements, record entries after their names)
        read with one `struct` call; returns an expression per member."""
        codes = ""
        reads: list[tuple[str, list[str]] | None] = []
        locals_: list[str] = []
        for plan, _segment, skip in members:
            if self.deep(plan, depth):
                codes += f"{skip + _VAL}x" if skip + _VAL else ""
                reads.append(None)
                continue
            _kind, payload = _kind_and_payload(plan)
            k = self.fresh("k")
            w = [self.fresh("w") for _ in range(_words(payload))]
            codes += (f"{skip}x" if skip else "") + "B7x" + payload
            reads.append((k, w))
            locals_ += [k, *w]
        if locals_:
            fn.line(f"{', '.join(locals_)}, = {self.struct(codes, 'unpack_from')}(M, {address})")
        outs = []
        for index, ((plan, segment, skip), read) in enumerate(zip(members, reads)):
            if read is None:
                outs.append(self.guarded(fn, f"{self.lift_helper(plan)}({address} + {index * stride + skip}, ci, cb, h)", segment))
                continue
            fn.line("try:")
            fn.indent += 1
            out = self.lift(fn, plan, read[0], read[1], depth + 1)
            r = self.fresh("r")
            fn.line(f"{r} = {out}")
            fn.indent -= 1
            fn.line("except CodecError as error:")
            fn.line(f"    error.segments.insert(0, {segment!r}); raise")
            outs.append(r)
        return outs

    def lift_list(self, fn: _Func, plan: _ListPlan, w: list[str], depth: int) -> str:
        r = self.fresh("r")
        line = fn.line
        line(f"{r} = []")
        line(f"if {w[0]}:")
        fn.indent += 1
        self.uses_budget = True
        line(f"ci -= {w[0]}")  # before any element is read
        line(f"if ci < 0: _over_items({w[0]})")
        # One struct read per element; its index is only worked out for an error.
        q = self.fresh("q")
        line(f"for {q} in range({w[1]}, {w[1]} + ({w[0]} << 5), 32):")
        fn.indent += 1
        line("try:")
        fn.indent += 1
        if self.deep(plan.element, depth + 2):
            line(f"u, ci, cb, h = {self.lift_helper(plan.element)}({q}, ci, cb, h)")
            line(f"{r}.append(u)")
        else:
            k, ws = self.read_value(fn, plan.element, q)
            out = self.lift(fn, plan.element, k, ws, depth + 2)
            line(f"{r}.append({out})")
        fn.indent -= 1
        line("except CodecError as error:")
        line(f"    error.segments.insert(0, f'[{{({q} - {w[1]}) >> 5}}]'); raise")
        fn.indent -= 1
        fn.indent -= 1
        return r

    def lift_helper(self, plan: Plan) -> str:
        name = self.fresh("_F")
        self.uses_budget = True  # the helper takes and returns the counters
        fn = _Func(f"def {name}(p, ci, cb, h):")
        self.funcs.append(fn)
        k, w = self.read_value(fn, plan, "p")
        out = self.lift(fn, plan, k, w, 0)
        fn.line(f"return {out}, ci, cb, h")
        return name

    def build(self) -> dict[str, Any]:
        namespace = self.env
        source = "\n".join(fn.source() for fn in self.funcs)
        exec(compile(source, "<pdk.host._fastgen>", "exec"), namespace)  # noqa: S102 - our own generated source
        namespace["__source__"] = source
        namespace["__names__"] = self.names  # the static name buffers live as long as the code
        return namespace


@dataclasses.dataclass
class Generated:
    """The converters of one function type."""

    lower: Callable[..., tuple[Any, ...]]  # lower(a, base, cap, *plain) -> what to keep alive through the call
    lift: Callable[[int], tuple[Any, int]] | None  # lift(address) -> (plain, bytes held); None: no result
    static_size: int  # bytes the arguments take before anything variable-sized
    source: str  # the generated source (for tests and debugging)
    namespace: dict[str, Any]  # its globals (constants, helpers); they keep the name buffers alive


def generate(params: list[Plan], result: Plan | None) -> Generated:
    """Generates and compiles the converters; raises `Unsupported` for a type
    they cannot handle."""
    gen = _Gen()
    args = [f"v{i}" for i in range(len(params))]
    fn = _Func(f"def lower({', '.join(['a', 'base', 'cap', *args])}):")
    gen.funcs.append(fn)
    gen.top = fn
    slot = fn.placeholder()
    scope = _Scope("")
    block = scope.alloc(len(params) * _VAL)
    for i, (plan, arg) in enumerate(zip(params, args)):
        k, codes, exprs = gen.lower(fn, scope, plan, arg, 0)
        scope.write(block + i * _VAL, "B7x" + codes, [str(k), *exprs])
    gen.flush(fn, scope)
    fn.lines[slot[0]] = f"    t = {scope.size}" + ("; kept = []; k = kept.append" if gen.uses_k else "")
    kept = [*gen.keep, "kept"] if gen.uses_k else gen.keep
    fn.line(f"return ({', '.join(kept)}{',' if kept else ''})")
    lift_name = None
    if result is not None:
        lift_name = "lift"
        lf = _Func("def lift(p):")
        gen.funcs.append(lf)
        # The result's budget (list elements, list<u8> bytes) and the bytes of
        # strings read: what the caller learns of the C memory the result holds.
        budget = lf.placeholder()
        kind, words = gen.read_value(lf, result, "p")
        out = gen.lift(lf, result, kind, words, 0)
        if gen.uses_budget:
            lf.lines[budget[0]] = "    ci = _ITEMS_MAX; cb = _BYTES_MAX; h = 0"
            lf.line(f"return {out}, h + ((_ITEMS_MAX - ci) + (_BYTES_MAX - cb)) * 32")
        else:
            lf.lines[budget[0]] = "    h = 0"
            lf.line(f"return {out}, h")
    namespace = gen.build()
    return Generated(
        lower=namespace["lower"],
        lift=namespace[lift_name] if lift_name else None,
        static_size=scope.size,
        source=namespace["__source__"],
        namespace=namespace,
    )


def generate_args(params: list[tuple[str, Plan]]) -> Callable[[int | None], tuple[Any, ...]]:
    """The lifter of a host import's arguments: ``lift_args(p)`` reads the
    ``len(params)`` C values side by side at address ``p`` (what wasmtime passes a
    host function) into a tuple of plain values, the codec's
    (``FuncCodec.decode_params``): errors carry ``.<param>`` paths. Arguments are
    not a guest result, so no result budget applies (as in the codec: wasmtime has
    already built the whole C tree from guest memory). Raises `Unsupported` for a
    type the converters cannot handle."""
    gen = _Gen()
    fn = _Func("def lift_args(p):")
    gen.funcs.append(fn)
    fn.line("ci = cb = _UNBOUNDED; h = 0")
    outs = gen.lift_block(fn, "p", [(plan, f".{name}", 0) for name, plan in params], _VAL, 0) if params else []
    fn.line(f"return ({', '.join(outs)}{',' if outs else ''})")
    lift_args: Callable[[int | None], tuple[Any, ...]] = gen.build()["lift_args"]
    return lift_args
