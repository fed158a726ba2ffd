"""Host imports (``yoi:host``) defined through wasmtime's C API, converted by generated code.

wasmtime-py 50's ``LinkerInstance.add_func`` trampoline (``func_impl`` in
``wasmtime/component/_linker.py``) builds a ``FuncType`` from its pointer on
every call, walks its parameter and result types and converts every value with
``convert_from_c``/``convert_to_c``: ~100 µs per call of a `log.write` that does
nothing (measured with bench/host_bench.py's import lines), against ~5 µs for the
round trip itself. Here a host function is registered with
``wasmtime_component_linker_instance_add_func`` directly: one module-level ctypes
callback for every host function, and the callback's ``data`` is an index into
`_TABLE`, which maps it to the bound function (released by the finalizer when
wasmtime drops the definition). The bound function is called with the calling
store's data (`store_data`: the object the store was made with, ``wasmtime.Store(engine,
data=...)``), so that one definition serves every store of a shared linker and each
store's calls act on its own object (``pdk/host/linker.py``). Per function type the converters are generated
once (``pdk/host/_fastgen.py``) from the codec's plans (``pdk/host/codec.py``):

- the arguments, which wasmtime passes as C values side by side, are read by a
  generated lifter (``generate_args``) into exactly the codec's plain values
  (``FuncCodec.decode_params``);
- a result is handed over to wasmtime, which takes it over and frees it, so it must
  be memory of wasmtime's own allocator: it is written by the export lowerer
  (``generate``) into an arena of this call (a ctypes buffer) and deep-copied into
  the result slot with ``wasmtime_component_val_clone``. A value the generated
  lowerer refuses but the codec accepts goes through the codec and
  ``ValType.convert_to_c`` of the type resolved at link time (under `_PLAIN_LOCK`:
  wasmtime-py's untagged variant lowering uses a module-global scratch set).

The trust boundary (see pdk/host/linker.py): the callback never raises into
wasmtime and never uses wasmtime-py's process-global exception slot. Whatever the
implementation raises becomes its declared fallback value (the same `err` or
None as the plain path); only if even that cannot be written does the callback
return a wasmtime error of its own, which traps the guest (the instance is then
recycled like after any trap). Nothing here is shared between calls except
read-only converters and the table, so plugins on several threads may call
imports at once.

`ENV_CODEC`=plain (``pdk/host/_fastcall.py``) keeps wasmtime-py's `add_func` for
every import; a function type the generated converters cannot handle, or a C
layout other than the one checked in ``pdk/host/_clayout.py``, falls back to it
per function (`ImportPlan` raises `Unsupported`).
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as _ffi
from wasmtime._value import SLAB as _SLAB
from wasmtime.component import FuncType, LinkerInstance, ValType

from ._clayout import LAYOUT_OK, VAL
from ._fastgen import Full, Generated, Unsupported, check_supported, generate, generate_args
from .codec import CodecError, FuncCodec

__all__ = ["ImportPlan", "Unsupported", "add_import", "defined", "store_data"]

Impl = Callable[..., Any]  # impl(store_data, *plain_args) -> plain result
Fallback = Callable[[Exception], Any]
_Call = Callable[[int, Any, int, Any, int], int]  # (context, args, nargs, results, nresults) -> error address (0: none)

_vp, _sz = ctypes.c_void_p, ctypes.c_size_t
# wasmtime_component_func_callback_t with every pointer as a plain address: the same
# ABI as wasmtime-py's prototype, without a ctypes pointer object per argument.
_CALLBACK = ctypes.CFUNCTYPE(_sz, _vp, _vp, _vp, _vp, _sz, _vp, _sz)
_FINALIZER = ctypes.CFUNCTYPE(None, _vp)


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    fn = _ffi.dll[name]  # a fresh function object: wasmtime-py's own prototypes stay as they are
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


_add_func = _proto("wasmtime_component_linker_instance_add_func", _vp, _vp, ctypes.c_char_p, _sz, _CALLBACK, _vp, _FINALIZER)
_val_clone = _proto("wasmtime_component_val_clone", None, _vp, _vp)  # (src, dst)
_error_new = _proto("wasmtime_error_new", _vp, ctypes.c_char_p)
_context_get_data = _proto("wasmtime_context_get_data", _vp, _vp)

_ARENA_MIN = 4096  # bytes of a result's first arena (at least twice its fixed part)
_TRAP_MESSAGE = b"yoi host import: the host could not produce a value of the declared type"
_PLAIN_LOCK = threading.Lock()  # wasmtime-py's convert_to_c (module-global scratch state)

# Bound host functions by the index their definition carries as `data`. Indexes are
# never reused; every step is one dict operation (atomic under the GIL), so the
# callback and the finalizer need no lock.
_TABLE: dict[int, _Call] = {}
_NEXT = itertools.count(1)
_last_index = 0  # the index of the latest definition (`defined()`)


def defined() -> int:
    """How many host functions this module has defined so far (for tests and benches)."""
    return _last_index


def store_data(context: int | None) -> Any:
    """The object a store was made with (``wasmtime.Store(engine, data=obj)``), from the
    address of its ``wasmtime_context_t`` (a host function's `context`); None for a
    store made without one.

    wasmtime-py keeps `obj` in its handle slab (``wasmtime/_slab.py``: handles are never
    reused) under the handle it stores as the store's data, and frees it only when the
    store is deleted: a live store's data always names that store's own object."""
    if not context:
        return None
    handle = _context_get_data(context)
    if not handle:
        return None
    return _SLAB.handles.get(handle - 1)  # wasmtime/_value.py `_intern`: slab handle + 1


def _trap() -> int:
    """A fresh wasmtime error (wasmtime takes it over): the guest call traps."""
    error: int = _error_new(_TRAP_MESSAGE)
    return error


def _callback(data: int, context: int, ty: int, args: int, nargs: int, results: int, nresults: int) -> int:
    try:
        return _TABLE[data](context, args, nargs, results, nresults)
    except BaseException:  # noqa: BLE001 - nothing may escape into wasmtime
        return _trap()


def _finalize(data: int) -> None:
    try:
        _TABLE.pop(data, None)
    except BaseException:  # noqa: BLE001 - at interpreter exit the table may be gone
        pass


# The C entry points (module globals: they must live as long as any definition).
_CALLBACK_C = _CALLBACK(_callback)
_FINALIZER_C = _FINALIZER(_finalize)


class ImportPlan:
    """The converters of one host function type (per component function:
    `pdk/host/linker.py` caches plans on the component). Whether they can handle
    the type is decided here (raises `Unsupported`); they are generated on the
    function's first call (`ready`), since most loads never call most imports."""

    def __init__(self, fty: FuncType) -> None:
        if not LAYOUT_OK:
            raise Unsupported("the wasmtime C value layout is not the one the converters are written for")
        self.codec = FuncCodec(fty)
        for _name, param in self.codec.params:
            check_supported(param)
        if self.codec.result is not None:
            check_supported(self.codec.result)
        self._fty = fty  # for the result type, only if a value needs wasmtime-py's convert_to_c
        self.count = len(self.codec.params)
        self.has_result = self.codec.result is not None
        self.lift_args: Callable[[Any], tuple[Any, ...]] | None = None
        self.result: Generated | None = None
        self.arena_min = _ARENA_MIN

    def ready(self) -> ImportPlan:
        """Generates the converters (once; two threads racing here both generate the
        same code, and either's is kept)."""
        if self.lift_args is None:
            result = self.codec.result
            if result is not None:
                generated = generate([result], None)
                self.arena_min = max(_ARENA_MIN, 2 * generated.static_size)
                self.result = generated
            self.lift_args = generate_args(list(self.codec.params))
        return self

    def write_result(self, plain: Any, results: int) -> None:
        """Writes `plain` into wasmtime's result slot at address `results` as memory
        of wasmtime's own allocator. Raises the codec's `CodecError` for a value that
        does not fit the type (nothing is written then)."""
        assert self.result is not None
        lower = self.result.lower
        size = self.arena_min
        while True:
            buffer = (ctypes.c_char * size)()  # this call's own: nothing shared between threads
            base = ctypes.addressof(buffer)
            try:
                keep = lower(memoryview(buffer).cast("B"), base, size, plain)
            except Full as full:
                size = max(2 * size, size + int(full.args[0]))
                continue
            except Exception as exc:
                self._write_plain(plain, results, exc)
                return
            _val_clone(base, results)  # reads the arena (and the bytes objects in `keep`)
            del keep
            return

    def _write_plain(self, plain: Any, results: int, refused: Exception) -> None:
        """The codec's words for a value the lowerer refused; a value only the codec
        takes is written by wasmtime-py's convert_to_c."""
        raw = self.codec.encode_result(plain)  # raises the codec's CodecError
        result_type: ValType | None = self._fty.result
        assert result_type is not None
        slot = ctypes.cast(results, ctypes.POINTER(_ffi.wasmtime_component_val_t))
        with _PLAIN_LOCK:
            try:
                result_type.convert_to_c(None, raw, slot)  # type: ignore[arg-type]  # the store is only used by resources
            except Exception as exc:
                ctypes.memset(results, 0, VAL)  # `bool false`: nothing half-written is freed
                raise CodecError(f"cannot encode the result: {exc!r} (the fast lowerer said {refused!r})") from exc


def _lift(lift_args: Callable[[Any], tuple[Any, ...]], args: Any) -> tuple[Any, ...]:
    try:
        return lift_args(args)
    except CodecError:
        raise
    except Exception as exc:  # malformed C data must stay a typed (ValueError) error, as in the codec
        raise CodecError(f"cannot decode the arguments: {exc!r}") from exc


def _bind(plan: ImportPlan, impl: Impl, fallback: Fallback) -> _Call:
    """The per-call function of one host function: `impl` over the calling store's data
    and plain values; any exception becomes `fallback(exc)` (what the plain path's
    `_guarded` does)."""
    count, lift_args = plan.count, plan.lift_args
    assert lift_args is not None

    if not plan.has_result:

        def call_void(context: int, args: Any, nargs: int, results: Any, nresults: int) -> int:
            if nargs != count or nresults:
                return _trap()
            try:
                impl(store_data(context), *_lift(lift_args, args))
            except Exception as exc:
                try:
                    fallback(exc)
                except Exception:
                    pass
            return 0

        return call_void

    write = plan.write_result

    def call_result(context: int, args: Any, nargs: int, results: Any, nresults: int) -> int:
        if nargs != count or nresults != 1 or not results:
            return _trap()
        try:
            write(impl(store_data(context), *_lift(lift_args, args)), results)
        except Exception as exc:
            try:
                write(fallback(exc), results)
            except Exception:
                return _trap()
        return 0

    return call_result


def add_import(instance: LinkerInstance, name: str, plan: ImportPlan, impl: Impl, fallback: Fallback) -> None:
    """Defines host function `name` in a linker instance (open in a `with` block):
    `impl(store_data, *plain_args)` returns the plain result (`store_data`: the calling
    store's data, see `store_data`); `fallback(exc)` the value to answer when it raised
    (or its result did not fit the type)."""
    global _last_index
    index = _last_index = next(_NEXT)

    def first_call(context: int, args: Any, nargs: int, results: Any, nresults: int) -> int:
        try:
            call = _bind(plan.ready(), impl, fallback)
        except BaseException:  # noqa: BLE001 - no converters: the guest call traps
            return _trap()
        if index in _TABLE:  # (not after the finalizer)
            _TABLE[index] = call
        return call(context, args, nargs, results, nresults)

    _TABLE[index] = first_call
    raw = name.encode("utf-8")
    error = _add_func(ctypes.cast(instance.ptr(), _vp), raw, len(raw), _CALLBACK_C, index, _FINALIZER_C)
    if error:
        _TABLE.pop(index, None)
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))
