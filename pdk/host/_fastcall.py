"""Calling component exports without wasmtime-py's per-call type walk.

wasmtime-py 50's ``Func.__call__`` (``wasmtime/component/_func.py``) asks the C API
for the function type on every call and converts every value by walking
``ValType`` objects built afresh each time (``valtype_from_ptr``, ``fields``,
``cases``, ``_tagged``); for a small export that walk costs several times the wasm
call itself. Here the converters are compiled once per function type, from the
codec's plans (``pdk/host/codec.py``), and they write the host's plain values
straight into the C ``wasmtime_component_val_t`` tree that
``wasmtime_component_func_call`` takes, and read the result tree straight back into
plain values. The plain values are exactly the codec's (records as snake_case
dicts, ``Case``, ``Ok``/``Err``, ``Some``, ``frozenset`` flags, ...).

This is the ONE module of the host that reaches below wasmtime-py's public API
(``wasmtime._ffi`` / ``wasmtime._bindings``: the C value layout, the allocation
functions and ``wasmtime_component_func_call``). wasmtime is pinned
(``pyproject.toml``); the layout is checked when this module is imported, and any
function type the converters cannot handle (resources, future, stream,
error-context) falls back to the plain path, which is also selected for every call
with ``YOI_PDK_CODEC=plain``.

Memory rules. Every C value written here is, at every moment, a valid value that
``wasmtime_component_val_delete`` can free: containers get their kind only after
their element array is zeroed (zero bytes are the value ``bool false``), and
payloads are allocated into fields that already belong to a kinded parent. So a
lowering that fails half way frees what it built by deleting the top value.
Arguments are borrowed by ``wasmtime_component_func_call`` and deleted after it;
the result is owned by the caller, read, then deleted as one tree.

Errors. Lowering is checked like the codec checks (types, integer ranges, UTF-8,
names); on any failure the codec itself re-encodes the arguments to produce its
exact ``CodecError`` (same message, same path), so both paths report alike.
A result that does not fit its type (a wrong kind, an unknown name, invalid UTF-8,
a char out of range) is a ``CodecError``, never a crash.

One difference from the plain path, on purpose: wasmtime-py lowers untagged
variants by trying the cases in order with ``isinstance``, so it cannot send some
values (``flag(true)`` of ``variant { small(u8), flag(bool) }`` goes out as
``small(1)``); the codec refuses those. The fast path writes the case index
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
from wasmtime import _bindings as _b
from wasmtime import _ffi as _ffi
from wasmtime.component import Component, Func
from wasmtime.component._enter import maybe_raise_last_exn

from .codec import (
    CodecError,
    Err,
    FuncCodec,
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
    Case,
)

__all__ = ["ENV_CODEC", "ExportCall", "FastCall", "PlainCall", "Unsupported", "bind_export", "fast_path_enabled"]

ENV_CODEC = "YOI_PDK_CODEC"  # "plain": every call through wasmtime-py's own conversion

# --------------------------------------------------------------------------- C layout



def _offset(struct_type: Any, field: str) -> int:
    offset: int = getattr(struct_type, field).offset
    return offset


_V = _ffi.wasmtime_component_val_t
_VAL = ctypes.sizeof(_V)  # one value
_OF = _offset(_V, "of")  # the payload union
_ENTRY = ctypes.sizeof(_ffi.wasmtime_component_valrecord_entry_t)  # record entry: name + value
_ENTRY_VAL = _offset(_ffi.wasmtime_component_valrecord_entry_t, "val")
_NAME = ctypes.sizeof(_ffi.wasm_name_t)  # (size, data)
_VARIANT_VAL = _OF + _offset(_ffi.wasmtime_component_valvariant, "val")
_RESULT_VAL = _OF + _offset(_ffi.wasmtime_component_valresult, "val")


def _layout_ok() -> bool:
    """The layout the converters assume (wasmtime-py 50.0.1 on a 64-bit host)."""
    return (
        _VAL == 32
        and _OF == 8
        and _ENTRY == 48
        and _ENTRY_VAL == 16
        and _NAME == 16
        and _VARIANT_VAL == 24
        and _RESULT_VAL == 16
        and ctypes.sizeof(ctypes.c_void_p) == 8
        and _offset(_ffi.wasm_byte_vec_t, "size") == 0
        and _offset(_ffi.wasm_byte_vec_t, "data") == 8
        and _offset(_ffi.wasmtime_component_vallist, "data") == 8
        and _offset(_ffi.wasmtime_component_valrecord, "data") == 8
        and _offset(_ffi.wasmtime_component_valflags, "data") == 8
        and _offset(_ffi.wasmtime_component_valresult, "is_ok") == 0
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
    # ints, bytes as char*) do not change the ones wasmtime-py itself uses.
    fn = _ffi.dll[name]
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


_vp, _sz = ctypes.c_void_p, ctypes.c_size_t
_byte_vec_new = _proto("wasm_byte_vec_new", None, _vp, _sz, ctypes.c_char_p)
_list_new = _proto("wasmtime_component_vallist_new_uninit", None, _vp, _sz)
_record_new = _proto("wasmtime_component_valrecord_new_uninit", None, _vp, _sz)
_tuple_new = _proto("wasmtime_component_valtuple_new_uninit", None, _vp, _sz)
_flags_new = _proto("wasmtime_component_valflags_new_uninit", None, _vp, _sz)
_val_new = _proto("wasmtime_component_val_new", _vp, _vp)
_val_delete = _proto("wasmtime_component_val_delete", None, _vp)
# wasmtime-py's own function objects: their error pointers feed WasmtimeError._from_ptr.
_func_call = _b._wasmtime_component_func_call
_post_return = _b._wasmtime_component_func_post_return

_memset = ctypes.memset
_memmove = ctypes.memmove
_string_at = ctypes.string_at
_byref = ctypes.byref
_isfinite = math.isfinite
_pack = struct.pack
_unpack_from = struct.unpack_from
_ZERO_VAL = ctypes.create_string_buffer(_VAL)  # a `bool false` value to box
_ZERO_ADDR = ctypes.addressof(_ZERO_VAL)

# A lowerer writes a plain value into the (valid, zeroed) C value at an address.
Lower = Callable[[Any, int], None]
# A lifter reads the C value at `buf[off:off + 32]` into a plain value.
Lift = Callable[[bytes, int], Any]


class Unsupported(Exception):
    """The fast path cannot convert this function type; use the plain path."""


class _Refused(Exception):
    """A value the fast lowerer will not write; the codec words the error."""


def _ptr_at(address: int) -> int:
    value: int = _unpack_from("<Q", _string_at(address, 8))[0]
    return value


def _container(new: Callable[[int, int], None], address: int, kind: int, count: int, item: int) -> int:
    """Allocates a container of `count` items of `item` bytes at `address`, zeroed,
    and kinds it; returns the item array's address."""
    new(address + _OF, count)
    data = _ptr_at(address + _OF + 8)
    if count:
        _memset(data, 0, count * item)
    _memset(address, kind, 1)
    return data


def _write_name(address: int, name: bytes) -> None:
    _byte_vec_new(address, len(name), name)


def _read_name(buf: bytes, off: int) -> bytes:
    size, data = _unpack_from("<QQ", buf, off)
    return _string_at(data, size) if size else b""


def _decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"the guest returned a string that is not valid UTF-8 (byte {exc.start})") from None


def _check_kind(buf: bytes, off: int, kind: int, wit: str) -> None:
    if buf[off] != kind:
        raise CodecError(f"the guest returned a value of kind {buf[off]} where {wit} was expected")


def _plain_name(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _record_items(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise _Refused


# ---------------------------------------------------------------------- compiling


def _scalar(plan: Plan) -> tuple[Lower, Lift]:
    if isinstance(plan, _BoolPlan):

        def lower_bool(value: Any, address: int) -> None:
            if value is True:
                _memmove(address, b"\x00" * 8 + b"\x01", 9)
            elif value is False:
                pass  # a zeroed value already is `bool false`
            else:
                raise _Refused

        def lift_bool(buf: bytes, off: int) -> Any:
            _check_kind(buf, off, _K_BOOL, "bool")
            return buf[off + 8] != 0

        return lower_bool, lift_bool
    if isinstance(plan, _IntPlan):
        kind, fmt = _INTS[plan.wit]
        lo, hi, wit = plan.lo, plan.hi, plan.wit
        layout = "<B7x" + fmt
        inner = "<" + fmt

        def lower_int(value: Any, address: int) -> None:
            if value.__class__ is not int and (not isinstance(value, int) or isinstance(value, bool)):
                raise _Refused
            if not lo <= value <= hi:
                raise _Refused
            _memmove(address, _pack(layout, kind, value), 16)

        def lift_int(buf: bytes, off: int) -> Any:
            _check_kind(buf, off, kind, wit)
            return _unpack_from(inner, buf, off + 8)[0]

        return lower_int, lift_int
    if isinstance(plan, _FloatPlan):
        is_f32 = plan.wit == "f32"
        kind, fmt = (_K_F32, "f") if is_f32 else (_K_F64, "d")
        limit, wit = plan.limit, plan.wit
        layout = "<B7x" + fmt
        inner = "<" + fmt

        def lower_float(value: Any, address: int) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _Refused
            number = float(value)  # OverflowError for huge ints: refused
            if limit is not None and abs(number) > limit and _isfinite(number):
                raise _Refused
            _memmove(address, _pack(layout, kind, number), 16)

        def lift_float(buf: bytes, off: int) -> Any:
            _check_kind(buf, off, kind, wit)
            return float(_unpack_from(inner, buf, off + 8)[0])

        return lower_float, lift_float
    if isinstance(plan, _CharPlan):

        def lower_char(value: Any, address: int) -> None:
            if not isinstance(value, str) or len(value) != 1:
                raise _Refused
            point = ord(value)
            if 0xD800 <= point <= 0xDFFF:
                raise _Refused
            _memmove(address, _pack("<B7xI", _K_CHAR, point), 12)

        def lift_char(buf: bytes, off: int) -> Any:
            _check_kind(buf, off, _K_CHAR, "char")
            point = _unpack_from("<I", buf, off + 8)[0]
            if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
                raise CodecError(f"the guest returned {point:#x}, which is not a Unicode scalar value")
            return chr(point)

        return lower_char, lift_char
    if isinstance(plan, _StringPlan):

        def lower_string(value: Any, address: int) -> None:
            if not isinstance(value, str):
                raise _Refused
            raw = value.encode("utf-8")  # UnicodeEncodeError (a lone surrogate): refused
            _byte_vec_new(address + _OF, len(raw), raw)
            _memset(address, _K_STRING, 1)

        def lift_string(buf: bytes, off: int) -> Any:
            _check_kind(buf, off, _K_STRING, "string")
            size, data = _unpack_from("<QQ", buf, off + 8)
            return _decode_utf8(_string_at(data, size)) if size else ""

        return lower_string, lift_string
    if isinstance(plan, _BytesPlan):
        return _bytes()
    raise Unsupported(type(plan).__name__)


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


def _bytes() -> tuple[Lower, Lift]:
    """`list<u8>`: a list of u8 values in C, filled and read in bulk."""
    u8 = bytes([_K_U8])

    def lower_bytes(value: Any, address: int) -> None:
        if not isinstance(value, bytes):
            if not isinstance(value, (bytearray, memoryview)):
                raise _Refused
            value = bytes(value)
        count = len(value)
        data = _container(_list_new, address, _K_LIST, count, _VAL)
        if count:
            block = bytearray(count * _VAL)
            block[0::_VAL] = u8 * count
            block[8::_VAL] = value
            _memmove(data, bytes(block), len(block))

    def lift_bytes(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_LIST, "list<u8>")
        size, data = _unpack_from("<QQ", buf, off + 8)
        if not size:
            return b""
        block = _string_at(data, size * _VAL)
        if block[0::_VAL] != u8 * size:
            raise CodecError("the guest returned a list<u8> with elements of another kind")
        return block[8::_VAL]

    return lower_bytes, lift_bytes


def _list(plan: _ListPlan) -> tuple[Lower, Lift]:
    lower_item, lift_item = _compile(plan.element)

    def lower_list(value: Any, address: int) -> None:
        if not isinstance(value, (list, tuple)):
            raise _Refused
        data = _container(_list_new, address, _K_LIST, len(value), _VAL)
        for index, item in enumerate(value):
            lower_item(item, data + index * _VAL)

    def lift_list(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_LIST, plan.wit)
        size, data = _unpack_from("<QQ", buf, off + 8)
        if not size:
            return []
        block = _string_at(data, size * _VAL)
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
    count = len(pairs)

    def lower_tuple(value: Any, address: int) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != count:
            raise _Refused
        data = _container(_tuple_new, address, _K_TUPLE, count, _VAL)
        for index, (lower, item) in enumerate(zip(lowers, value)):
            lower(item, data + index * _VAL)

    def lift_tuple(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_TUPLE, plan.wit)
        size, data = _unpack_from("<QQ", buf, off + 8)
        if size != count:
            raise CodecError(f"the guest returned a tuple of {size} elements, expected {count}")
        block = _string_at(data, size * _VAL) if size else b""
        out = []
        for index, lift in enumerate(lifts):
            try:
                out.append(lift(block, index * _VAL))
            except CodecError as error:
                error.segments.insert(0, f"[{index}]")
                raise
        return tuple(out)

    return lower_tuple, lift_tuple


def _record(plan: _RecordPlan) -> tuple[Lower, Lift]:
    fields = []
    for field in plan.fields:
        lower, lift = _compile(field.plan)
        fields.append((field.snake, field.kebab, field.kebab.encode(), field.plan.may_be_none, lower, lift))
    count = len(fields)
    lifts = tuple((snake, lift) for snake, _, _, _, _, lift in fields)
    lowers = tuple(fields)

    def lower_record(value: Any, address: int) -> None:
        items = value if value.__class__ is dict else _record_items(value)
        data = _container(_record_new, address, _K_RECORD, count, _ENTRY)
        used = 0
        for snake, kebab, name, optional, lower, _ in lowers:
            if snake in items:
                item = items[snake]
                used += 1
            elif kebab in items:
                item = items[kebab]
                used += 1
            elif optional:
                item = None
            else:
                raise _Refused
            _byte_vec_new(data, len(name), name)
            lower(item, data + _ENTRY_VAL)
            data += _ENTRY
        if used != len(items):
            raise _Refused

    def lift_record(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_RECORD, "record")
        size, data = _unpack_from("<QQ", buf, off + 8)
        if size != count:
            raise CodecError(f"the guest returned a record of {size} fields, expected {count}")
        block = _string_at(data, size * _ENTRY) if size else b""
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


def _enum(plan: _EnumPlan) -> tuple[Lower, Lift]:
    to_wit = {name: wit.encode() for name, wit in plan.to_wit.items()}
    to_plain = {wit.encode(): plain for wit, plain in plan.to_plain.items()}

    def lower_enum(value: Any, address: int) -> None:
        name = to_wit[_plain_name(value)]  # KeyError / TypeError: refused
        _byte_vec_new(address + _OF, len(name), name)
        _memset(address, _K_ENUM, 1)

    def lift_enum(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_ENUM, "enum")
        raw = _read_name(buf, off + 8)
        try:
            return to_plain[raw]
        except KeyError:
            raise CodecError(f"the guest returned an unknown enum name {raw[:60]!r}") from None

    return lower_enum, lift_enum


def _flags(plan: _FlagsPlan) -> tuple[Lower, Lift]:
    to_wit = {name: wit.encode() for name, wit in plan.to_wit.items()}
    to_plain = {wit.encode(): plain for wit, plain in plan.to_plain.items()}

    def lower_flags(value: Any, address: int) -> None:
        if not isinstance(value, (set, frozenset, list, tuple)):
            raise _Refused
        names = {to_wit[_plain_name(item)] for item in value}  # KeyError / TypeError: refused
        data = _container(_flags_new, address, _K_FLAGS, len(names), _NAME)
        for name in names:
            _byte_vec_new(data, len(name), name)
            data += _NAME

    def lift_flags(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_FLAGS, "flags")
        size, data = _unpack_from("<QQ", buf, off + 8)
        block = _string_at(data, size * _NAME) if size else b""
        try:
            return frozenset(to_plain[_read_name(block, i * _NAME)] for i in range(size))
        except KeyError:
            raise CodecError("the guest returned an unknown flag name") from None

    return lower_flags, lift_flags


def _boxed(lower: Lower, value: Any, slot: int) -> None:
    """Boxes a `bool false` value, stores its pointer at `slot` (the parent owns it
    from then on) and lowers `value` into it."""
    box = _val_new(_ZERO_ADDR)
    _memmove(slot, _pack("<Q", box), 8)
    lower(value, box)


def _lift_boxed(lift: Lift, pointer: int) -> Any:
    return lift(_string_at(pointer, _VAL), 0)


def _option(plan: _OptionPlan) -> tuple[Lower, Lift]:
    assert plan.some.plan is not None
    lower_some, lift_some = _compile(plan.some.plan)
    wrap = plan.wrap
    slot_at = _OF

    def lower_option(value: Any, address: int) -> None:
        _memset(address, _K_OPTION, 1)  # a null pointer: none
        if value is None:
            return
        if isinstance(value, Some):
            value = value.value
        _boxed(lower_some, value, address + slot_at)

    def lift_option(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_OPTION, plan.wit)
        pointer = _unpack_from("<Q", buf, off + 8)[0]
        if not pointer:
            return None
        payload = _lift_boxed(lift_some, pointer)
        return Some(payload) if wrap else payload

    return lower_option, lift_option


def _payload(plan: Plan | None) -> tuple[Lower | None, Lift | None]:
    if plan is None:
        return None, None
    return _compile(plan)


def _result(plan: _ResultPlan) -> tuple[Lower, Lift]:
    lower_ok, lift_ok = _payload(plan.ok.plan)
    lower_err, lift_err = _payload(plan.err.plan)

    def lower_result(value: Any, address: int) -> None:
        cls = value.__class__
        if cls is Ok or isinstance(value, Ok):
            lower, flag = lower_ok, b"\x01"
        elif cls is Err or isinstance(value, Err):
            lower, flag = lower_err, b"\x00"
        else:
            raise _Refused
        payload = value.value
        if lower is None and payload is not None:
            raise _Refused
        _memmove(address + _OF, flag, 1)
        _memset(address, _K_RESULT, 1)
        if lower is not None:
            _boxed(lower, payload, address + _RESULT_VAL)

    def lift_result(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_RESULT, plan.wit)
        is_ok = buf[off + _OF] != 0
        pointer = _unpack_from("<Q", buf, off + _RESULT_VAL)[0]
        lift, tag = (lift_ok, "ok") if is_ok else (lift_err, "err")
        payload = None
        if lift is not None:
            if not pointer:
                raise CodecError(f"the guest returned {tag} without its payload")
            try:
                payload = _lift_boxed(lift, pointer)
            except CodecError as error:
                error.segments.insert(0, f".{tag}")
                raise
        return Ok(payload) if is_ok else Err(payload)

    return lower_result, lift_result


def _variant(plan: _VariantPlan) -> tuple[Lower, Lift]:
    by_name: dict[str, tuple[bytes, Lower | None]] = {}
    by_wit: dict[bytes, tuple[str, Lift | None]] = {}
    for spec in plan.cases:
        lower, lift = _payload(spec.plan)
        wit = spec.wit.encode()
        by_wit[wit] = (spec.plain, lift)
        by_name[spec.plain] = by_name[spec.wit] = (wit, lower)

    def lower_variant(value: Any, address: int) -> None:
        if value.__class__ is not Case and not isinstance(value, Case):
            raise _Refused
        wit, lower = by_name[value.tag]  # KeyError / TypeError: refused
        payload = value.value
        if lower is None and payload is not None:
            raise _Refused
        _memset(address, _K_VARIANT, 1)  # an empty discriminant, no payload: still valid
        _byte_vec_new(address + _OF, len(wit), wit)
        if lower is not None:
            _boxed(lower, payload, address + _VARIANT_VAL)

    def lift_variant(buf: bytes, off: int) -> Any:
        _check_kind(buf, off, _K_VARIANT, "variant")
        wit = _read_name(buf, off + _OF)
        found = by_wit.get(wit)
        if found is None:
            raise CodecError(f"the guest returned an unknown variant case {wit[:60]!r}")
        plain, lift = found
        if lift is None:
            return Case(plain)
        pointer = _unpack_from("<Q", buf, off + _VARIANT_VAL)[0]
        if not pointer:
            raise CodecError(f"the guest returned case {plain!r} without its payload")
        try:
            return Case(plain, _lift_boxed(lift, pointer))
        except CodecError as error:
            error.segments.insert(0, f".{plain}")
            raise

    return lower_variant, lift_variant


def _compile(plan: Plan) -> tuple[Lower, Lift]:
    cached = getattr(plan, "_yoi_fast", None)
    if cached is not None:
        found: tuple[Lower, Lift] = cached
        return found
    if isinstance(plan, _ListPlan):
        pair = _list(plan)
    elif isinstance(plan, _RecordPlan):
        pair = _record(plan)
    elif isinstance(plan, _TuplePlan):
        pair = _tuple(plan)
    elif isinstance(plan, _VariantPlan):
        pair = _variant(plan)
    elif isinstance(plan, _OptionPlan):
        pair = _option(plan)
    elif isinstance(plan, _ResultPlan):
        pair = _result(plan)
    elif isinstance(plan, _EnumPlan):
        pair = _enum(plan)
    elif isinstance(plan, _FlagsPlan):
        pair = _flags(plan)
    else:
        pair = _scalar(plan)  # raises Unsupported for resources and the rest
    plan._yoi_fast = pair  # type: ignore[attr-defined]
    return pair


# ----------------------------------------------------------------------- calling


def _raise_wasm_error(pointer: Any) -> None:
    """What wasmtime-py's `enter_wasm` does with an error from the C API."""
    error = wasmtime.WasmtimeError._from_ptr(pointer)
    maybe_raise_last_exn()  # an exception a host import raised during the call
    raise error


class FastCall:
    """Converters for one function type, compiled once; `bind` them to a function of
    a live instance. Raises `Unsupported` when a type has no fast converter."""

    def __init__(self, codec: FuncCodec) -> None:
        if not _LAYOUT_OK:
            raise Unsupported("the wasmtime C value layout is not the one this module was written for")
        self.codec = codec
        self.lowers = tuple(_compile(plan)[0] for _, plan in codec.params)
        self.lift = _compile(codec.result)[1] if codec.result is not None else None

    def lower(self, *plain: Any) -> Any:
        """The C arguments for a call (owned by the caller until `invoke` frees them).
        Raises the codec's `CodecError` when a value does not fit."""
        count = len(self.lowers)
        params = (_V * count)()
        if len(plain) != count:
            self._refuse(plain)
        base = ctypes.addressof(params)
        try:
            for index, (lower, value) in enumerate(zip(self.lowers, plain)):
                lower(value, base + index * _VAL)
        except Exception as exc:
            _free_values(base, count)
            self._refuse(plain, exc)
        return params

    def _refuse(self, plain: tuple[Any, ...], exc: Exception | None = None) -> None:
        self.codec.encode_params(*plain)  # raises the codec's own CodecError
        raise CodecError(f"cannot encode the arguments: {exc!r}")

    def bind(self, func: Func, store: wasmtime.Store) -> BoundFastCall:
        return BoundFastCall(self, func, store)


def _free_values(base: int, count: int) -> None:
    for index in range(count):
        _val_delete(base + index * _VAL)


class BoundFastCall:
    """`FastCall` converters with one exported function of one live store."""

    mode = "fast"

    def __init__(self, fast: FastCall, func: Func, store: wasmtime.Store) -> None:
        self.fast = fast
        self.lower = fast.lower
        self._lift = fast.lift
        self._func = func  # keeps the function (and its struct) alive
        self._store = store
        self._func_ref = _byref(func._func)
        self._context = store._context()

    def invoke(self, params: Any) -> Any:
        """Calls the function with lowered arguments and runs `post_return`; frees the
        arguments. Returns the C result for `lift`. Raises what wasmtime-py raises
        (`Trap`, `WasmtimeError`, or an exception a host import raised)."""
        count = len(params)
        result = _V() if self._lift is not None else None
        try:
            error = _func_call(self._func_ref, self._context, params, count, _byref(result) if result is not None else None, 1 if result is not None else 0)
            if error:
                _raise_wasm_error(error)
            error = _post_return(self._func_ref, self._context)
            if error:
                if result is not None:
                    _val_delete(ctypes.addressof(result))
                _raise_wasm_error(error)
        finally:
            _free_values(ctypes.addressof(params), count)
        return result

    def lift(self, result: Any) -> Any:
        """The plain result (frees the C result). A result that does not fit its
        type raises `CodecError`."""
        lift = self._lift
        if lift is None:
            return None
        address = ctypes.addressof(result)
        try:
            return lift(_string_at(address, _VAL), 0)
        except CodecError:
            raise
        except Exception as exc:  # a bug or malformed C data must stay a typed error
            raise CodecError(f"cannot decode the result: {exc!r}") from exc
        finally:
            _val_delete(address)

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

_PLANS_ATTR = "_yoi_call_plans"


def fast_path_enabled() -> bool:
    """False when `YOI_PDK_CODEC=plain` asks for wasmtime-py's own conversion."""
    return os.environ.get(ENV_CODEC, "").strip().lower() != "plain" and _LAYOUT_OK


def bind_export(component: Component, key: tuple[str, str], func: Func, store: wasmtime.Store, *, mode: str | None = None) -> ExportCall:
    """The caller for export `key` = (interface, function) of a live instance.

    Converters are compiled once per (component, function) and cached on the
    component object, so a recycled instance reuses them. `mode` is "fast",
    "plain" or None (the environment decides: fast unless `YOI_PDK_CODEC=plain`).
    A function type the fast path cannot convert falls back to the plain path."""
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
