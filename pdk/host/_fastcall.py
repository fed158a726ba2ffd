"""Calling component exports without wasmtime-py's per-call type walk.

wasmtime-py 50's ``Func.__call__`` (``wasmtime/component/_func.py``) asks the C API
for the function type on every call and converts every value by walking
``ValType`` objects built afresh each time (``valtype_from_ptr``, ``fields``,
``cases``, ``_tagged``), with a C call per value; for a small export that costs
several times the wasm call itself. Here the converters are compiled once per
function type, from the codec's plans (``pdk/host/codec.py``): they write the
host's plain values straight into the C ``wasmtime_component_val_t`` tree that
``wasmtime_component_func_call`` takes, and read the result tree straight back into
plain values. The plain values are exactly the codec's (records as snake_case
dicts, ``Case``, ``Ok``/``Err``, ``Some``, ``frozenset`` flags, ...).

This is the ONE module of the host that reaches below wasmtime-py's public API
(``wasmtime._ffi`` / ``wasmtime._bindings``: the C value layout and
``wasmtime_component_func_call``). wasmtime is pinned (``pyproject.toml``); the
layout is checked when this module is imported, and a function type the converters
cannot handle (resources, future, stream, error-context) falls back to the plain
path, which ``YOI_PDK_CODEC=plain`` selects for every call.

Memory. The C API only *reads* the arguments of a call (wasmtime-py deletes its own
argument values after the call returns), so the whole argument tree is built in one
Python-owned buffer: values, element arrays and string bytes side by side, pointers
fixed up once the buffer's address is known. Nothing is allocated in wasmtime for
arguments, so nothing has to be freed, and a value refused half way leaves nothing
behind. Names that come from the type (record fields, enum and variant cases,
flags) live in static buffers owned by the compiled converters. The result is
written by wasmtime, owned by the caller, read and then deleted as one tree
(``wasmtime_component_val_delete``). Strings sent are always valid UTF-8 (Python
encodes them) and chars valid scalar values, which the C API relies on.

Errors. Lowering checks what the codec checks (types, integer ranges, UTF-8,
names); on any failure the codec itself re-encodes the arguments to produce its
exact ``CodecError`` (same message, same path), so both paths report alike.
A result that does not fit its type (a wrong kind, an unknown name, invalid UTF-8,
a char out of range, a missing payload) is a ``CodecError``, never a crash.

One difference from the plain path, on purpose: wasmtime-py lowers untagged
variants by trying the cases in order with ``isinstance``, so it cannot send some
values (``flag(true)`` of ``variant { small(u8), flag(bool) }`` goes out as
``small(1)``) and the codec refuses those. The fast path writes the case name
itself, so it sends them as the caller meant.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import math
import os
import struct
from collections.abc import Callable, Mapping
from typing import Any

import wasmtime
from wasmtime import _ffi as _ffi
from wasmtime.component import Component, Func
from wasmtime.component._enter import maybe_raise_last_exn

from .codec import (
    Case,
    CodecError,
    Err,
    FuncCodec,
    Ok,
    Plan,
    ResultError,
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
    charge_bytes,
    charge_items,
    end_result,
    start_result,
)

__all__ = ["ENV_CODEC", "BoundFastCall", "ExportCall", "FastCall", "PlainCall", "StoreKnobs", "Unsupported", "bind_export", "fast_path_enabled"]

ENV_CODEC = "YOI_PDK_CODEC"  # "plain": every call through wasmtime-py's own conversion

# --------------------------------------------------------------------------- C layout


def _offset(struct_type: Any, field: str) -> int:
    offset: int = getattr(struct_type, field).offset
    return offset


_V = _ffi.wasmtime_component_val_t
_VAL = ctypes.sizeof(_V)  # one value: kind byte, padding, payload union
_OF = _offset(_V, "of")
_ENTRY = ctypes.sizeof(_ffi.wasmtime_component_valrecord_entry_t)  # record entry: name + value
_ENTRY_VAL = _offset(_ffi.wasmtime_component_valrecord_entry_t, "val")
_NAME = ctypes.sizeof(_ffi.wasm_name_t)  # (size, data)


def _layout_ok() -> bool:
    """The layout the converters are written for (wasmtime-py 50.0.1, 64-bit)."""
    return (
        _VAL == 32
        and _OF == 8
        and _ENTRY == 48
        and _ENTRY_VAL == 16
        and _NAME == 16
        and ctypes.sizeof(ctypes.c_void_p) == 8
        and ctypes.alignment(_V) == 8
        and _offset(_ffi.wasm_byte_vec_t, "size") == 0
        and _offset(_ffi.wasm_byte_vec_t, "data") == 8
        and _offset(_ffi.wasmtime_component_vallist, "data") == 8
        and _offset(_ffi.wasmtime_component_valrecord, "data") == 8
        and _offset(_ffi.wasmtime_component_valtuple, "data") == 8
        and _offset(_ffi.wasmtime_component_valflags, "data") == 8
        and _offset(_ffi.wasmtime_component_valvariant, "discriminant") == 0
        and _offset(_ffi.wasmtime_component_valvariant, "val") == 16
        and _offset(_ffi.wasmtime_component_valresult, "is_ok") == 0
        and _offset(_ffi.wasmtime_component_valresult, "val") == 8
    )


_LAYOUT_OK = _layout_ok()

# Value kinds (wasmtime/_ffi.py, WASMTIME_COMPONENT_*).
_K_BOOL = _ffi.WASMTIME_COMPONENT_BOOL.value
_K_S8 = _ffi.WASMTIME_COMPONENT_S8.value
_K_U8 = _ffi.WASMTIME_COMPONENT_U8.value
_K_S16 = _ffi.WASMTIME_COMPONENT_S16.value
_K_U16 = _ffi.WASMTIME_COMPONENT_U16.value
_K_S32 = _ffi.WASMTIME_COMPONENT_S32.value
_K_U32 = _ffi.WASMTIME_COMPONENT_U32.value
_K_S64 = _ffi.WASMTIME_COMPONENT_S64.value
_K_U64 = _ffi.WASMTIME_COMPONENT_U64.value
_K_F32 = _ffi.WASMTIME_COMPONENT_F32.value
_K_F64 = _ffi.WASMTIME_COMPONENT_F64.value
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


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    # `dll[name]` makes a fresh function object, so these prototypes (addresses as
    # ints) leave the ones wasmtime-py itself uses untouched.
    fn = _ffi.dll[name]
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


_vp, _sz = ctypes.c_void_p, ctypes.c_size_t
_error_p = ctypes.POINTER(_ffi.wasmtime_error_t)  # what WasmtimeError._from_ptr takes
# Errors come back as plain addresses (an int, None for success): cheaper than a
# pointer object per call; `_raise_wasm_error` makes the pointer when there is one.
_func_call = _proto("wasmtime_component_func_call", _vp, _vp, _vp, _vp, _sz, _vp, _sz)
_post_return = _proto("wasmtime_component_func_post_return", _vp, _vp, _vp)
_val_delete = _proto("wasmtime_component_val_delete", None, _vp)
_set_epoch_deadline = _proto("wasmtime_context_set_epoch_deadline", None, _vp, ctypes.c_uint64)
_set_fuel = _proto("wasmtime_context_set_fuel", _vp, _vp, ctypes.c_uint64)

_C = ctypes.c_char
_VAL_BYTES = _C * _VAL
_addressof = ctypes.addressof
_isfinite = math.isfinite
_pack_into = struct.pack_into
_unpack_from = struct.unpack_from
_EMPTY = ctypes.create_string_buffer(_VAL)
_EMPTY_ADDRESS = ctypes.addressof(_EMPTY)
_PADS = [b"\0" * n for n in range(8)]  # _PADS[n]: n zero bytes

# The argument arena: a bytearray `a` holding the values; `fix` lists the offsets of
# the pointer words that hold arena offsets (made absolute once the address is known).
Arena = bytearray
# A lowerer writes a plain value into the zeroed value (`bool false`) at `a[at:at+32]`.
Lower = Callable[[Any, Arena, int, list[int]], None]
# A lifter reads the C value at `buf[off:off+32]` (wasmtime's memory, copied) into a plain value.
Lift = Callable[[bytes, int], Any]


class Unsupported(Exception):
    """The fast path cannot convert this function type; use the plain path."""


class _Refused(Exception):
    """A value the fast lowerer will not write; the codec words the error."""


def _read(address: int, size: int) -> bytes:
    """`size` bytes of wasmtime-owned memory."""
    data: bytes = (_C * size).from_address(address).raw
    return data


def _block(a: Arena, size: int) -> int:
    """Appends `size` zero bytes (an array of `bool false` values) to the arena."""
    at = len(a)
    a += bytes(size)
    return at


def _append_bytes(a: Arena, raw: bytes) -> int:
    """Appends raw bytes, padded so the next block stays 8-aligned; returns their offset."""
    at = len(a)
    a += raw
    pad = -len(a) & 7
    if pad:
        a += _PADS[pad]
    return at


class _Names:
    """Static, NUL-free storage for names that come from the type."""

    def __init__(self) -> None:
        self._keep: list[Any] = []

    def add(self, name: str) -> tuple[int, int]:
        raw = name.encode("utf-8")
        buf = ctypes.create_string_buffer(raw, len(raw) + 1)
        self._keep.append(buf)
        return len(raw), _addressof(buf)


def _bad_kind(buf: bytes, off: int, wit: str) -> None:
    """Raised by a lifter whose value has another kind byte (checked inline: `buf[off] != K`)."""
    raise CodecError(f"the guest returned a value of kind {buf[off]} where {wit} was expected")


def _read_name(buf: bytes, off: int) -> bytes:
    size, data = _unpack_from("<QQ", buf, off)
    return _read(data, size) if size else b""


def _plain_name(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _record_items(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise _Refused


# ------------------------------------------------------------------- scalar types

_INTS = {
    "u8": (_K_U8, "B"),
    "s8": (_K_S8, "b"),
    "u16": (_K_U16, "H"),
    "s16": (_K_S16, "h"),
    "u32": (_K_U32, "I"),
    "s32": (_K_S32, "i"),
    "u64": (_K_U64, "Q"),
    "s64": (_K_S64, "q"),
}


def _bool() -> tuple[Lower, Lift]:
    def lower_bool(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if value is True:
            a[at + 8] = 1
        elif value is not False:  # a zeroed value already is `bool false`
            raise _Refused

    def lift_bool(buf: bytes, off: int) -> Any:
        if buf[off] != _K_BOOL:
            _bad_kind(buf, off, "bool")
        return buf[off + 8] != 0

    return lower_bool, lift_bool


def _int(plan: _IntPlan) -> tuple[Lower, Lift]:
    kind, fmt = _INTS[plan.wit]
    lo, hi, wit = plan.lo, plan.hi, plan.wit
    layout, inner = "<B7x" + fmt, "<" + fmt

    def lower_int(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if value.__class__ is not int and (not isinstance(value, int) or isinstance(value, bool)):
            raise _Refused
        if not lo <= value <= hi:
            raise _Refused
        _pack_into(layout, a, at, kind, value)

    def lift_int(buf: bytes, off: int) -> Any:
        if buf[off] != kind:
            _bad_kind(buf, off, wit)
        return _unpack_from(inner, buf, off + 8)[0]

    return lower_int, lift_int


def _float(plan: _FloatPlan) -> tuple[Lower, Lift]:
    kind, fmt = (_K_F32, "f") if plan.wit == "f32" else (_K_F64, "d")
    limit, wit = plan.limit, plan.wit
    layout, inner = "<B7x" + fmt, "<" + fmt

    def lower_float(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Refused
        number = float(value)  # OverflowError for huge ints: refused
        if limit is not None and abs(number) > limit and _isfinite(number):
            raise _Refused
        _pack_into(layout, a, at, kind, number)

    def lift_float(buf: bytes, off: int) -> Any:
        if buf[off] != kind:
            _bad_kind(buf, off, wit)
        return float(_unpack_from(inner, buf, off + 8)[0])

    return lower_float, lift_float


def _char() -> tuple[Lower, Lift]:
    def lower_char(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if not isinstance(value, str) or len(value) != 1:
            raise _Refused
        point = ord(value)
        if 0xD800 <= point <= 0xDFFF:
            raise _Refused
        _pack_into("<B7xI", a, at, _K_CHAR, point)

    def lift_char(buf: bytes, off: int) -> Any:
        if buf[off] != _K_CHAR:
            _bad_kind(buf, off, "char")
        point = _unpack_from("<I", buf, off + 8)[0]
        if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
            raise CodecError(f"the guest returned {point:#x} for a char, which is not a Unicode scalar value")
        return chr(point)

    return lower_char, lift_char


def _string() -> tuple[Lower, Lift]:
    def lower_string(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if not isinstance(value, str):
            raise _Refused
        raw = value.encode("utf-8")  # UnicodeEncodeError (a lone surrogate): refused
        _pack_into("<B7xQQ", a, at, _K_STRING, len(raw), _append_bytes(a, raw) if raw else 0)
        fix.append(at + 16)

    def lift_string(buf: bytes, off: int) -> Any:
        if buf[off] != _K_STRING:
            _bad_kind(buf, off, "string")
        size, data = _unpack_from("<QQ", buf, off + 8)
        if not size:
            return ""
        try:
            return _read(data, size).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"the guest returned a string that is not valid UTF-8 (byte {exc.start})") from None

    return lower_string, lift_string


def _bytes() -> tuple[Lower, Lift]:
    """`list<u8>`: a list of u8 values in C, written and read in bulk."""
    u8 = bytes([_K_U8])

    def lower_bytes(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if not isinstance(value, bytes):
            if not isinstance(value, (bytearray, memoryview)):
                raise _Refused
            value = bytes(value)
        count = len(value)
        data = _block(a, count * _VAL)
        if count:
            end = data + count * _VAL
            a[data:end:_VAL] = u8 * count
            a[data + 8 : end : _VAL] = value
        _pack_into("<B7xQQ", a, at, _K_LIST, count, data)
        fix.append(at + 16)

    def lift_bytes(buf: bytes, off: int) -> Any:
        if buf[off] != _K_LIST:
            _bad_kind(buf, off, "list<u8>")
        size, data = _unpack_from("<QQ", buf, off + 8)
        if not size:
            return b""
        charge_bytes(size)  # before the copy: a hostile size costs nothing
        block = _read(data, size * _VAL)
        if block[0::_VAL] != u8 * size:
            raise CodecError("the guest returned a list<u8> with elements of another kind")
        return block[8::_VAL]

    return lower_bytes, lift_bytes


# -------------------------------------------------------------------- containers


def _list(plan: _ListPlan) -> tuple[Lower, Lift]:
    lower_item, lift_item = _compile(plan.element)
    wit = plan.wit

    def lower_list(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if not isinstance(value, (list, tuple)):
            raise _Refused
        data = _block(a, len(value) * _VAL)
        _pack_into("<B7xQQ", a, at, _K_LIST, len(value), data)
        fix.append(at + 16)
        for item in value:
            lower_item(item, a, data, fix)
            data += _VAL

    def lift_list(buf: bytes, off: int) -> Any:
        if buf[off] != _K_LIST:
            _bad_kind(buf, off, wit)
        size, data = _unpack_from("<QQ", buf, off + 8)
        if not size:
            return []
        charge_items(size)  # before any element is read
        block = _read(data, size * _VAL)
        out = []
        for index in range(size):
            try:
                out.append(lift_item(block, index * _VAL))
            except CodecError as error:
                error.segments.insert(0, f"[{index}]")
                raise
        return out

    return lower_list, lift_list


def _tuple(plan: _TuplePlan) -> tuple[Lower, Lift]:
    pairs = [_compile(p) for p in plan.elements]
    lowers = tuple(p[0] for p in pairs)
    lifts = tuple(p[1] for p in pairs)
    count, wit = len(pairs), plan.wit

    def lower_tuple(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != count:
            raise _Refused
        data = _block(a, count * _VAL)
        _pack_into("<B7xQQ", a, at, _K_TUPLE, count, data)
        fix.append(at + 16)
        for lower, item in zip(lowers, value):
            lower(item, a, data, fix)
            data += _VAL

    def lift_tuple(buf: bytes, off: int) -> Any:
        if buf[off] != _K_TUPLE:
            _bad_kind(buf, off, wit)
        size, data = _unpack_from("<QQ", buf, off + 8)
        if size != count:
            raise CodecError(f"the guest returned a tuple of {size} elements, expected {count}")
        block = _read(data, size * _VAL) if size else b""
        out = []
        for index, lift in enumerate(lifts):
            try:
                out.append(lift(block, index * _VAL))
            except CodecError as error:
                error.segments.insert(0, f"[{index}]")
                raise
        return tuple(out)

    return lower_tuple, lift_tuple


def _record(plan: _RecordPlan, names: _Names) -> tuple[Lower, Lift]:
    fields = []
    template = bytearray()
    for field in plan.fields:
        lower, lift = _compile(field.plan)
        fields.append((field.snake, field.kebab, field.plan.may_be_none, lower, lift))
        size, address = names.add(field.kebab)
        template += struct.pack("<QQ", size, address) + bytes(_VAL)  # the name, then `bool false`
    entries = bytes(template)
    count = len(fields)
    lowers = tuple((snake, kebab, optional, lower) for snake, kebab, optional, lower, _ in fields)
    lifts = tuple((snake, lift) for snake, _, _, _, lift in fields)

    def lower_record(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        items = value if value.__class__ is dict else _record_items(value)
        data = len(a)
        a += entries
        _pack_into("<B7xQQ", a, at, _K_RECORD, count, data)
        fix.append(at + 16)
        data += _ENTRY_VAL
        used = 0
        for snake, kebab, optional, lower in lowers:
            if snake in items:
                item = items[snake]
                used += 1
            elif kebab in items:
                item = items[kebab]
                used += 1
            elif optional:
                item = None  # an absent option field is `none`
            else:
                raise _Refused
            lower(item, a, data, fix)
            data += _ENTRY
        if used != len(items):
            raise _Refused

    def lift_record(buf: bytes, off: int) -> Any:
        if buf[off] != _K_RECORD:
            _bad_kind(buf, off, "record")
        size, data = _unpack_from("<QQ", buf, off + 8)
        if size != count:
            raise CodecError(f"the guest returned a record of {size} fields, expected {count}")
        block = _read(data, size * _ENTRY) if size else b""
        out = {}
        at = _ENTRY_VAL
        for snake, lift in lifts:
            try:
                out[snake] = lift(block, at)
            except CodecError as error:
                error.segments.insert(0, f".{snake}")
                raise
            at += _ENTRY
        return out

    return lower_record, lift_record


def _enum(plan: _EnumPlan, names: _Names) -> tuple[Lower, Lift]:
    static = {wit: names.add(wit) for wit in plan.to_plain}
    to_c = {name: static[wit] for name, wit in plan.to_wit.items()}
    to_plain = {wit.encode(): plain for wit, plain in plan.to_plain.items()}

    def lower_enum(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        size, address = to_c[_plain_name(value)]  # KeyError / TypeError: refused
        _pack_into("<B7xQQ", a, at, _K_ENUM, size, address)

    def lift_enum(buf: bytes, off: int) -> Any:
        if buf[off] != _K_ENUM:
            _bad_kind(buf, off, "enum")
        raw = _read_name(buf, off + 8)
        try:
            return to_plain[raw]
        except KeyError:
            raise CodecError(f"the guest returned an unknown enum name {raw[:60]!r}") from None

    return lower_enum, lift_enum


def _flags(plan: _FlagsPlan, names: _Names) -> tuple[Lower, Lift]:
    static = {wit: names.add(wit) for wit in plan.to_plain}
    to_c = {name: static[wit] for name, wit in plan.to_wit.items()}
    to_plain = {wit.encode(): plain for wit, plain in plan.to_plain.items()}

    def lower_flags(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if not isinstance(value, (set, frozenset, list, tuple)):
            raise _Refused
        chosen = {to_c[_plain_name(item)] for item in value}  # KeyError / TypeError: refused
        data = _block(a, len(chosen) * _NAME)
        _pack_into("<B7xQQ", a, at, _K_FLAGS, len(chosen), data)
        fix.append(at + 16)
        for size, address in chosen:
            _pack_into("<QQ", a, data, size, address)
            data += _NAME

    def lift_flags(buf: bytes, off: int) -> Any:
        if buf[off] != _K_FLAGS:
            _bad_kind(buf, off, "flags")
        size, data = _unpack_from("<QQ", buf, off + 8)
        block = _read(data, size * _NAME) if size else b""
        try:
            return frozenset(to_plain[_read_name(block, i * _NAME)] for i in range(size))
        except KeyError:
            raise CodecError("the guest returned an unknown flag name") from None

    return lower_flags, lift_flags


# ---------------------------------------------------------- variant-like types


def _payload(plan: Plan | None) -> tuple[Lower | None, Lift | None]:
    if plan is None:
        return None, None
    return _compile(plan)


def _lift_boxed(lift: Lift, pointer: int) -> Any:
    return lift(_VAL_BYTES.from_address(pointer).raw, 0)


def _option(plan: _OptionPlan) -> tuple[Lower, Lift]:
    assert plan.some.plan is not None
    lower_some, lift_some = _compile(plan.some.plan)
    wrap, wit = plan.wrap, plan.wit

    def lower_option(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if value is None:
            a[at] = _K_OPTION  # a null pointer: none
            return
        if isinstance(value, Some):
            value = value.value
        box = _block(a, _VAL)
        _pack_into("<B7xQ", a, at, _K_OPTION, box)
        fix.append(at + 8)
        lower_some(value, a, box, fix)

    def lift_option(buf: bytes, off: int) -> Any:
        if buf[off] != _K_OPTION:
            _bad_kind(buf, off, wit)
        pointer = _unpack_from("<Q", buf, off + 8)[0]
        if not pointer:
            return None
        payload = _lift_boxed(lift_some, pointer)
        return Some(payload) if wrap else payload

    return lower_option, lift_option


def _result(plan: _ResultPlan) -> tuple[Lower, Lift]:
    lower_ok, lift_ok = _payload(plan.ok.plan)
    lower_err, lift_err = _payload(plan.err.plan)
    wit = plan.wit

    def lower_result(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if isinstance(value, Ok):
            lower, is_ok = lower_ok, True
        elif isinstance(value, Err):
            lower, is_ok = lower_err, False
        else:
            raise _Refused
        payload = value.value
        if lower is None:
            if payload is not None:
                raise _Refused
            _pack_into("<B7x?", a, at, _K_RESULT, is_ok)  # a null pointer: no payload
            return
        box = _block(a, _VAL)
        _pack_into("<B7x?7xQ", a, at, _K_RESULT, is_ok, box)
        fix.append(at + 16)
        lower(payload, a, box, fix)

    def lift_result(buf: bytes, off: int) -> Any:
        if buf[off] != _K_RESULT:
            _bad_kind(buf, off, wit)
        is_ok = buf[off + 8] != 0
        lift, tag = (lift_ok, "ok") if is_ok else (lift_err, "err")
        payload = None
        if lift is not None:
            pointer = _unpack_from("<Q", buf, off + 16)[0]
            if not pointer:
                raise CodecError(f"the guest returned {tag} without its payload")
            try:
                payload = _lift_boxed(lift, pointer)
            except CodecError as error:
                error.segments.insert(0, f".{tag}")
                raise
        return Ok(payload) if is_ok else Err(payload)

    return lower_result, lift_result


def _variant(plan: _VariantPlan, names: _Names) -> tuple[Lower, Lift]:
    by_name: dict[str, tuple[int, int, Lower | None]] = {}
    by_wit: dict[bytes, tuple[str, Lift | None]] = {}
    for spec in plan.cases:
        lower, lift = _payload(spec.plan)
        size, address = names.add(spec.wit)
        by_wit[spec.wit.encode()] = (spec.plain, lift)
        by_name[spec.plain] = by_name[spec.wit] = (size, address, lower)

    def lower_variant(value: Any, a: Arena, at: int, fix: list[int]) -> None:
        if not isinstance(value, Case):
            raise _Refused
        size, address, lower = by_name[value.tag]  # KeyError / TypeError: refused
        payload = value.value
        if lower is None:
            if payload is not None:
                raise _Refused
            _pack_into("<B7xQQ", a, at, _K_VARIANT, size, address)  # a null payload pointer
            return
        box = _block(a, _VAL)
        _pack_into("<B7xQQQ", a, at, _K_VARIANT, size, address, box)
        fix.append(at + 24)
        lower(payload, a, box, fix)

    def lift_variant(buf: bytes, off: int) -> Any:
        if buf[off] != _K_VARIANT:
            _bad_kind(buf, off, "variant")
        wit = _read_name(buf, off + 8)
        found = by_wit.get(wit)
        if found is None:
            raise CodecError(f"the guest returned an unknown variant case {wit[:60]!r}")
        plain, lift = found
        if lift is None:
            return Case(plain)
        pointer = _unpack_from("<Q", buf, off + 24)[0]
        if not pointer:
            raise CodecError(f"the guest returned case {plain!r} without its payload")
        try:
            return Case(plain, _lift_boxed(lift, pointer))
        except CodecError as error:
            error.segments.insert(0, f".{plain}")
            raise

    return lower_variant, lift_variant


# ---------------------------------------------------------------------- compiling

_FAST_ATTR = "_yoi_fast"  # the compiled pair, cached on the codec plan


def _compile(plan: Plan) -> tuple[Lower, Lift]:
    cached = getattr(plan, _FAST_ATTR, None)
    if cached is not None:
        found: tuple[Lower, Lift] = cached
        return found
    names = _Names()  # kept alive by the closures that use it
    if isinstance(plan, _BoolPlan):
        pair = _bool()
    elif isinstance(plan, _IntPlan):
        pair = _int(plan)
    elif isinstance(plan, _FloatPlan):
        pair = _float(plan)
    elif isinstance(plan, _CharPlan):
        pair = _char()
    elif isinstance(plan, _StringPlan):
        pair = _string()
    elif isinstance(plan, _BytesPlan):
        pair = _bytes()
    elif isinstance(plan, _ListPlan):
        pair = _list(plan)
    elif isinstance(plan, _TuplePlan):
        pair = _tuple(plan)
    elif isinstance(plan, _RecordPlan):
        pair = _record(plan, names)
    elif isinstance(plan, _EnumPlan):
        pair = _enum(plan, names)
    elif isinstance(plan, _FlagsPlan):
        pair = _flags(plan, names)
    elif isinstance(plan, _VariantPlan):
        pair = _variant(plan, names)
    elif isinstance(plan, _OptionPlan):
        pair = _option(plan)
    elif isinstance(plan, _ResultPlan):
        pair = _result(plan)
    else:
        raise Unsupported(type(plan).__name__)  # resources, future, stream, error-context
    # The static name buffers must live as long as the converters that point at them.
    pair[0]._yoi_names = names  # type: ignore[attr-defined]
    setattr(plan, _FAST_ATTR, pair)
    return pair


# ----------------------------------------------------------------------- calling


def _raise_wasm_error(pointer: Any) -> None:
    """What wasmtime-py's `enter_wasm` does with an error from the C API."""
    error = wasmtime.WasmtimeError._from_ptr(ctypes.cast(pointer, _error_p))
    maybe_raise_last_exn()  # an exception a host import raised during the call
    raise error


class _Args:
    """Lowered arguments: the arena (kept alive through the call) and its address."""

    __slots__ = ("arena", "view", "address", "count")

    def __init__(self, arena: Arena, fix: list[int], count: int) -> None:
        view = (_C * len(arena)).from_buffer(arena) if arena else None
        # No arguments: still a valid, aligned (empty) array address, never null.
        base = _addressof(view) if view is not None else _EMPTY_ADDRESS
        if fix:
            # Pointer words are 8-aligned and the arena a multiple of 8 bytes long.
            with memoryview(arena) as raw, raw.cast("Q") as words:
                for pos in fix:
                    words[pos >> 3] += base
        self.arena = arena
        self.view = view
        self.address = base
        self.count = count


class FastCall:
    """Converters for one function type, compiled once from its `FuncCodec`; `bind`
    them to a function of a live instance. Raises `Unsupported` when a type has no
    fast converter (the caller then uses `PlainCall`)."""

    def __init__(self, codec: FuncCodec) -> None:
        if not _LAYOUT_OK:
            raise Unsupported("the wasmtime C value layout is not the one this module was written for")
        self.codec = codec
        self.lowers = tuple(_compile(plan)[0] for _, plan in codec.params)
        self.lift_result = _compile(codec.result)[1] if codec.result is not None else None

    def lower(self, *plain: Any) -> _Args:
        """The C arguments for a call. Raises the codec's `CodecError` when a value
        does not fit (the same message and path as `FuncCodec.encode_params`)."""
        count = len(self.lowers)
        if len(plain) != count:
            self._refuse(plain)
        arena = bytearray(count * _VAL)
        fix: list[int] = []
        try:
            at = 0
            for lower, value in zip(self.lowers, plain):
                lower(value, arena, at, fix)
                at += _VAL
        except Exception as exc:
            self._refuse(plain, exc)
        return _Args(arena, fix, count)

    def _refuse(self, plain: tuple[Any, ...], exc: Exception | None = None) -> None:
        self.codec.encode_params(*plain)  # raises the codec's own CodecError
        raise CodecError(f"cannot encode the arguments: {exc!r}")

    def lift(self, result: Any) -> Any:
        """The plain result from a C result (which is deleted). A result that does
        not fit its type, or holds more list elements or bytes than the host reads
        (`RESULT_LIST_ITEMS_MAX`, `RESULT_BYTES_MAX` in pdk/limits.py), raises
        `ResultError` - with the codec's words, so both paths refuse alike."""
        lift = self.lift_result
        if lift is None:
            return None
        address = _addressof(result)
        start_result()
        try:
            return lift(result.raw, 0)
        except CodecError as error:
            raise ResultError(error.reason, error.segments) from None
        except Exception as exc:  # a bug or malformed C data must stay a typed error
            raise ResultError(f"cannot decode the result: {exc!r}") from exc
        finally:
            end_result()
            _val_delete(address)

    def bind(self, func: Func, store: wasmtime.Store) -> BoundFastCall:
        return BoundFastCall(self, func, store)


class BoundFastCall:
    """`FastCall` converters with one exported function of one live store.

    Three steps, so a caller can arm deadlines between them: `lower` (may raise
    `CodecError`; nothing runs), `invoke` (the call and `post_return`; raises what
    wasmtime-py raises), `lift` (may raise `CodecError`)."""

    mode = "fast"

    def __init__(self, fast: FastCall, func: Func, store: wasmtime.Store) -> None:
        self.fast = fast
        self.lower = fast.lower
        self.lift = fast.lift
        self._func = func  # keeps the function struct alive
        self._store = store  # keeps the store (and its context) alive
        self._func_address = _addressof(func._func)
        self._context = ctypes.cast(store._context(), ctypes.c_void_p).value
        self._has_result = fast.lift_result is not None

    def invoke(self, args: Any) -> Any:
        """Calls the function with lowered arguments and runs `post_return`; returns
        the C result for `lift` (None for a function without result). Raises what
        wasmtime-py raises (`Trap`, `WasmtimeError`, or an exception a host import raised)."""
        result = _VAL_BYTES() if self._has_result else None
        error = _func_call(
            self._func_address,
            self._context,
            args.address,
            args.count,
            _addressof(result) if result is not None else None,
            1 if result is not None else 0,
        )
        if error:
            _raise_wasm_error(error)
        error = _post_return(self._func_address, self._context)
        if error:
            if result is not None:
                _val_delete(_addressof(result))
            _raise_wasm_error(error)
        return result

    def __call__(self, *plain: Any) -> Any:
        """lower → call → post_return → lift in one go."""
        return self.lift(self.invoke(self.lower(*plain)))


class PlainCall:
    """The same three steps through wasmtime-py's own conversion and the codec."""

    mode = "plain"

    def __init__(self, codec: FuncCodec, func: Func, store: wasmtime.Store) -> None:
        self.codec = codec
        self.lower = codec.encode_params
        self.lift = codec.decode_result
        self._func = func
        self._store = store

    def invoke(self, params: Any) -> Any:
        raw = self._func(self._store, *params)
        self._func.post_return(self._store)
        return raw

    def __call__(self, *plain: Any) -> Any:
        return self.lift(self.invoke(self.lower(*plain)))


ExportCall = BoundFastCall | PlainCall


class StoreKnobs:
    """What is set on a store before every call (epoch deadline, fuel), without
    wasmtime-py's per-call wrappers (`Store._context()` makes a pointer object
    each time). The same C functions `Store.set_epoch_deadline` and `Store.set_fuel`
    call."""

    __slots__ = ("_store", "_context")

    def __init__(self, store: wasmtime.Store) -> None:
        self._store = store  # keeps the store (and its context) alive
        self._context = ctypes.cast(store._context(), ctypes.c_void_p).value

    def set_epoch_deadline(self, ticks: int) -> None:
        _set_epoch_deadline(self._context, ticks)

    def set_fuel(self, fuel: int) -> None:
        error = _set_fuel(self._context, fuel)
        if error:
            _raise_wasm_error(error)

_PLANS_ATTR = "_yoi_call_plans"


def fast_path_enabled() -> bool:
    """False when `YOI_PDK_CODEC=plain` asks for wasmtime-py's own conversion."""
    return _LAYOUT_OK and os.environ.get(ENV_CODEC, "").strip().lower() != "plain"


def bind_export(component: Component, key: tuple[str, str], func: Func, store: wasmtime.Store, *, mode: str | None = None) -> ExportCall:
    """The caller for export `key` = (interface, function) of a live instance.

    Converters are compiled once per (component, function) and cached on the
    component object, so a recycled instance reuses them. `mode` is "fast",
    "plain" or None (fast unless `YOI_PDK_CODEC=plain`). A function type the fast
    path cannot convert falls back to the plain path."""
    plans: dict[tuple[str, str], tuple[FuncCodec, FastCall | None]] | None = getattr(component, _PLANS_ATTR, None)
    if plans is None:
        plans = {}
        setattr(component, _PLANS_ATTR, plans)
    found = plans.get(key)
    if found is None:
        codec = FuncCodec(func, store)
        try:
            fast: FastCall | None = FastCall(codec)
        except Unsupported:
            fast = None
        found = plans[key] = (codec, fast)
    codec, fast = found
    want_fast = fast_path_enabled() if mode is None else mode == "fast"
    if want_fast and fast is not None:
        return fast.bind(func, store)
    return PlainCall(codec, func, store)
