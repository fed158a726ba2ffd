"""The C layout of wasmtime's component values, derived from wasmtime-py's ctypes structs.

The fast export calls (``pdk/host/_fastcall.py``), the fast host imports
(``pdk/host/_fastimport.py``) and the converters they share
(``pdk/host/_fastgen.py``) read and write ``wasmtime_component_val_t`` trees
directly. The sizes and offsets they rely on are taken from ``wasmtime._ffi``
here, once, and `LAYOUT_OK` says whether they are the ones the generated code is
written for (wasmtime-py 50.0.1 on a 64-bit machine); when they are not, every
user falls back to wasmtime-py's own conversion.
"""

from __future__ import annotations

import ctypes
from typing import Any

from wasmtime import _ffi as _ffi

__all__ = ["ENTRY", "ENTRY_VAL", "LAYOUT_OK", "NAME", "OF", "VAL", "layout_ok"]


def _offset(struct_type: Any, field: str) -> int:
    offset: int = getattr(struct_type, field).offset
    return offset


_V = _ffi.wasmtime_component_val_t
VAL = ctypes.sizeof(_V)  # one value: kind byte, padding, payload union
OF = _offset(_V, "of")
ENTRY = ctypes.sizeof(_ffi.wasmtime_component_valrecord_entry_t)  # record entry: name + value
ENTRY_VAL = _offset(_ffi.wasmtime_component_valrecord_entry_t, "val")
NAME = ctypes.sizeof(_ffi.wasm_name_t)  # (size, data)


def layout_ok() -> bool:
    """The layout the converters are written for (wasmtime-py 50.0.1, 64-bit)."""
    return (
        VAL == 32
        and OF == 8
        and ENTRY == 48
        and ENTRY_VAL == 16
        and NAME == 16
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


LAYOUT_OK = layout_ok()
