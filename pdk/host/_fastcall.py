"""Calling component exports without wasmtime-py's per-call type walk.

wasmtime-py 50's ``Func.__call__`` (``wasmtime/component/_func.py``) asks the C API
for the function type on every call and converts every value by walking
``ValType`` objects built afresh each time (``valtype_from_ptr``, ``fields``,
``cases``, ``_tagged``), with a C call per value; for a small export that costs
several times the wasm call itself. Here the converters of a function type are
Python source generated once from the codec's plans (``pdk/host/_fastgen.py``):
the lowerer writes the host's plain values straight into the C
``wasmtime_component_val_t`` tree that ``wasmtime_component_func_call`` takes,
the lifter reads the result tree straight back into plain values. The plain
values are exactly the codec's (records as snake_case dicts, ``Case``,
``Ok``/``Err``, ``Some``, ``frozenset`` flags, ...).

This module and ``_fastgen.py`` are the ONLY part of the host that reaches below
wasmtime-py's public API (``wasmtime._ffi``: the C value layout and
``wasmtime_component_func_call``). wasmtime is pinned (``pyproject.toml``); the
layout is checked when this module is imported, and a function type the converters
cannot handle (resources, future, stream, error-context) falls back to the plain
path, which ``YOI_PDK_CODEC=plain`` selects for every call.

Memory. The C API only *reads* the arguments of a call, so each bound function
keeps one Python-owned arena (a ctypes buffer, which never moves) and lowers
every call's arguments into it: values, record entries, boxes and list elements
side by side, pointers written as absolute addresses; a string's value points
at the bytes object ``str.encode`` made for it, kept alive by the bound function
until the next ``lower``. Nothing is allocated in wasmtime for arguments, and a
value refused half way leaves nothing behind (its token is never valid). An
arena too small for a call is replaced by a bigger one (and a big one by the
default size on the next call). Names that come from the type (record fields,
cases, flags) live in static buffers owned by the generated converters. The
result is written by wasmtime into a slot owned by the bound function and read
from there. ``wasmtime_component_func_call`` drops whatever the slot holds
before it writes the new result (a slot reused after
``wasmtime_component_val_delete`` would be freed twice), so a result is left
in its slot and freed by the next call, or when the bound function is
collected; one holding more than ``_HELD_MAX`` bytes of C memory (list
elements, strings), or one that could not be read, is deleted at once and the
slot reset to ``bool false``. Strings sent are always valid UTF-8 (Python
encodes them) and chars valid scalar values, which the C API relies on (it
aborts the process on invalid UTF-8).

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
import os
import weakref
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as _ffi
from wasmtime.component import Component, Func
from wasmtime.component._enter import maybe_raise_last_exn

from ._clayout import LAYOUT_OK, VAL
from ._fastgen import Full, Generated, Unsupported, generate
from .codec import CodecError, FuncCodec, ResultError

__all__ = ["ENV_CODEC", "BoundFastCall", "ExportCall", "FastCall", "PlainCall", "StoreKnobs", "Unsupported", "bind_export", "fast_path_enabled"]

ENV_CODEC = "YOI_PDK_CODEC"  # "plain": every call through wasmtime-py's own conversion

# --------------------------------------------------------------------------- C layout


# The layout (sizes, offsets, the check) lives in pdk/host/_clayout.py, shared with
# _fastgen.py and _fastimport.py.
_VAL = VAL
_LAYOUT_OK = LAYOUT_OK


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

# The same library (the same handle) seen as a `PyDLL`: its calls keep the GIL.
# Only for C calls that run no guest code and do not block (a store field written,
# memory freed). A `CDLL` call gives up the GIL before and takes it back after, and
# taking it back waits for whichever thread grabbed it meanwhile (a submitter, the
# dispatcher of another plugin), up to the switch interval. The guest call and
# `post_return` (which runs the guest's `cabi_post_return`) keep releasing it:
# another plugin's wasm runs in parallel then, and the epoch ticker
# (pdk/host/engine.py), a Python thread, needs the GIL to make a deadline fire.
_HOLDING_GIL = ctypes.PyDLL(_ffi.dll._name, handle=_ffi.dll._handle)


def _proto_holding_gil(name: str, restype: Any, *argtypes: Any) -> Any:
    fn = _HOLDING_GIL[name]
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


_val_delete = _proto_holding_gil("wasmtime_component_val_delete", None, _vp)
_set_epoch_deadline = _proto_holding_gil("wasmtime_context_set_epoch_deadline", None, _vp, ctypes.c_uint64)
_set_fuel = _proto_holding_gil("wasmtime_context_set_fuel", _vp, _vp, ctypes.c_uint64)


def _bare(name: str) -> Any:
    """A prototype without `argtypes`, for calls whose arguments are prebuilt ctypes
    objects (`c_void_p`, `c_size_t`): half the per-call cost of converting each."""
    fn = _ffi.dll[name]
    fn.restype = _vp
    return fn


_func_call_c = _bare("wasmtime_component_func_call")
_post_return_c = _bare("wasmtime_component_func_post_return")

_VAL_BYTES = ctypes.c_char * _VAL
_addressof = ctypes.addressof
_ARENA_MIN = 4096  # bytes of a new arena (at least twice what a type's arguments take without variable parts)
_ARENA_KEEP = 1 << 20  # an arena grown past this is replaced by a fresh small one on the next call
_HELD_MAX = 64 << 10  # a result holding more C memory than this is freed once read, not on the next call


# ----------------------------------------------------------------------- calling


def _raise_wasm_error(pointer: Any) -> None:
    """What wasmtime-py's `enter_wasm` does with an error from the C API."""
    error = wasmtime.WasmtimeError._from_ptr(ctypes.cast(pointer, _error_p))
    maybe_raise_last_exn()  # an exception a host import raised during the call
    raise error


def _drop_result(slot: Any) -> None:
    """Frees what a result slot holds (a bound function is collected)."""
    _val_delete(_addressof(slot))
    slot[0] = b"\0"


class FastCall:
    """Converters for one function type, generated once from its `FuncCodec`;
    `bind` them to a function of a live instance. Raises `Unsupported` when a type
    has no fast converter (the caller then uses `PlainCall`)."""

    def __init__(self, codec: FuncCodec) -> None:
        if not _LAYOUT_OK:
            raise Unsupported("the wasmtime C value layout is not the one this module was written for")
        self.codec = codec
        self.generated: Generated = generate([plan for _, plan in codec.params], codec.result)
        self.count = len(codec.params)
        self.has_result = codec.result is not None
        self.arena_min = max(_ARENA_MIN, 2 * self.generated.static_size)

    def refuse(self, plain: tuple[Any, ...], exc: Exception | None = None) -> None:
        """Raises the codec's own `CodecError` for arguments the lowerer refused."""
        self.codec.encode_params(*plain)
        raise CodecError(f"cannot encode the arguments: {exc!r}")

    def bind(self, func: Func, store: wasmtime.Store) -> BoundFastCall:
        return BoundFastCall(self, func, store)


class BoundFastCall:
    """`FastCall` converters with one exported function of one live store.

    Three steps, so a caller can arm deadlines between them: `lower` (may raise
    `CodecError`; nothing runs) returns a token for `invoke` (the call and
    `post_return`; raises what wasmtime-py raises), whose answer goes to `lift`
    (may raise `ResultError`). One call at a time: a bound function belongs to one
    store, which is never used from two threads at once; the token of an earlier
    `lower` is refused once another `lower` has run."""

    mode = "fast"

    def __init__(self, fast: FastCall, func: Func, store: wasmtime.Store) -> None:
        self.fast = fast
        self._func = func  # keeps the function struct alive
        self._store = store  # keeps the store (and its context) alive
        self._lower: Callable[..., tuple[Any, ...]] = fast.generated.lower
        self._lift = fast.generated.lift
        self._func_address = ctypes.c_void_p(_addressof(func._func))
        self._context = ctypes.c_void_p(ctypes.cast(store._context(), ctypes.c_void_p).value)
        self._result = _VAL_BYTES()  # `bool false`: nothing to drop yet
        self._result_address = _addressof(self._result)
        self._finalizer = weakref.finalize(self, _drop_result, self._result)
        self._token = 0
        self._keep: tuple[Any, ...] = ()
        self._new_arena(fast.arena_min)

    def _new_arena(self, size: int) -> None:
        buffer = (ctypes.c_char * size)()  # zeroed, never moves
        self._buffer, self._arena, self._cap = buffer, memoryview(buffer).cast("B"), size
        self._base = _addressof(buffer)
        fast = self.fast
        self._call_args = (
            self._func_address,
            self._context,
            ctypes.c_void_p(self._base),
            ctypes.c_size_t(fast.count),
            ctypes.c_void_p(self._result_address),
            ctypes.c_size_t(1 if fast.has_result else 0),
        )

    def lower(self, *plain: Any) -> int:
        """Writes the C arguments for a call; returns the token for `invoke`. Raises
        the codec's `CodecError` when a value does not fit (the same message and path
        as `FuncCodec.encode_params`)."""
        self._token = token = self._token + 1  # what an earlier token pointed at is overwritten now
        try:
            # What the arguments point into stays alive until the next lower.
            self._keep = self._lower(self._arena, self._base, self._cap, *plain)
        except Full as full:
            self._lower_grown(plain, int(full.args[0]))
        except Exception as exc:
            self.fast.refuse(plain, exc)
        return token

    def _lower_grown(self, plain: tuple[Any, ...], needed: int) -> None:
        """Lowers into bigger arenas until the arguments fit; the next call goes back
        to a small one (`_shrink_then_lower` stands in for the lowerer until then)."""
        while True:
            self._new_arena(max(2 * self._cap, 2 * needed))
            try:
                self._keep = self.fast.generated.lower(self._arena, self._base, self._cap, *plain)
            except Full as full:
                needed = int(full.args[0])
                continue
            except Exception as exc:
                self.fast.refuse(plain, exc)
            if self._cap > _ARENA_KEEP:
                self._lower = self._shrink_then_lower
            return

    def _shrink_then_lower(self, _arena: Any, _base: int, _cap: int, *plain: Any) -> tuple[Any, ...]:
        self._lower = lower = self.fast.generated.lower
        self._new_arena(self.fast.arena_min)
        return lower(self._arena, self._base, self._cap, *plain)

    def invoke(self, token: int) -> Any:
        """Calls the function with the arguments `lower` wrote and runs `post_return`;
        returns what `lift` takes. Raises what wasmtime-py raises (`Trap`,
        `WasmtimeError`, or an exception a host import raised)."""
        if token != self._token:
            raise RuntimeError("these arguments were overwritten by a later lower() of the same function")
        error = _func_call_c(*self._call_args)
        if error:
            _raise_wasm_error(error)
        error = _post_return_c(self._func_address, self._context)
        if error:
            _raise_wasm_error(error)  # the result stays in its slot: the next call frees it
        return token

    def lift(self, token: Any) -> Any:
        """The plain result of the last call. A result that does not fit its type,
        or holds more list elements or bytes than the host reads
        (`RESULT_LIST_ITEMS_MAX`, `RESULT_BYTES_MAX` in pdk/limits.py), raises
        `ResultError` - with the codec's words, so both paths refuse alike."""
        lift = self._lift
        if lift is None:
            return None
        try:
            value, held = lift(self._result_address)
        except CodecError as error:
            self._free_result()
            raise ResultError(error.reason, error.segments) from None
        except Exception as exc:  # a bug or malformed C data must stay a typed error
            self._free_result()
            raise ResultError(f"cannot decode the result: {exc!r}") from exc
        if held > _HELD_MAX:
            self._free_result()
        return value

    def _free_result(self) -> None:
        _val_delete(self._result_address)
        self._result[0] = b"\0"  # `bool false`: the next call has nothing to drop

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
