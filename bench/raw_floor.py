"""The raw floor shared by the benchmarks: a component instantiated with plain
wasmtime-py (no-op host imports, no codec, grants, schema, bounds or queue)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import wasmtime
from wasmtime.component import Component, Func, Linker


def raw_engine() -> wasmtime.Engine:
    """Plain wasmtime-py: the default compiler (Cranelift), epoch interruption on."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    return wasmtime.Engine(config)


def noop_linker(engine: wasmtime.Engine) -> Linker:
    """WASI p2 and every `yoi:host` import as a no-op through wasmtime-py's `add_func`."""
    linker = Linker(engine)
    linker.add_wasip2()
    with linker.root() as root:
        with root.add_instance("yoi:host/log@2.0.0") as log:
            log.add_func("write", lambda store, level, msg: None)
        with root.add_instance("yoi:host/request@2.0.0") as req:
            req.add_func("send", lambda store, r: None)
        with root.add_instance("yoi:host/fs@2.0.0") as fs:
            for name in ("read-file", "write-file", "list-dir"):
                fs.add_func(name, lambda store, *a: None)
        with root.add_instance("yoi:plugin/types@2.0.0"):
            pass
    return linker


def raw_instance(
    component_path: Path, compiled: tuple[wasmtime.Engine, Component] | None = None
) -> tuple[wasmtime.Store, Callable[[str, str], Func]]:
    """A store and a lookup `func(interface, name)` for the component's exports
    (`compiled`: an engine and the component already compiled on it)."""
    if compiled is None:
        engine = raw_engine()
        compiled = (engine, Component(engine, component_path.read_bytes()))
    engine, component = compiled
    linker = noop_linker(engine)
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_epoch_deadline(1 << 30)
    instance = linker.instantiate(store, component)

    def func(iface: str, name: str) -> Func:
        idx = instance.get_export_index(store, name, instance.get_export_index(store, iface))
        found = instance.get_func(store, idx) if idx is not None else None
        assert found is not None, f"{iface}#{name} not exported"
        return found

    return store, func


class LoadFloor:
    """The floors of a warm load of one component with plain wasmtime-py (the same
    engine settings as `raw_engine`), each returning the seconds one step took:

      instantiate  a store (empty WasiConfig, as the host's) + instantiate, with the
                   component in memory and a linker built once - what any load of
                   an already compiled component must pay
      full         deserialize the serialized component from a file (mmap) + build
                   a no-op linker + store + instantiate - a load from a compile cache
                   with nothing kept in memory

    Every instance is dropped outside the timed part."""

    def __init__(self, component_path: Path, tmp: Path) -> None:
        self.engine = raw_engine()
        self.artifact = tmp / f"{component_path.stem}.floor.cwasm"
        self.artifact.write_bytes(bytes(Component(self.engine, component_path.read_bytes()).serialize()))
        self.component = Component.deserialize_file(self.engine, str(self.artifact))
        self.linker = noop_linker(self.engine)

    def _store(self) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 30)
        return store

    def instantiate(self) -> float:
        started = time.perf_counter()
        store = self._store()
        instance = self.linker.instantiate(store, self.component)
        elapsed = time.perf_counter() - started
        del instance, store
        return elapsed

    def full(self) -> float:
        started = time.perf_counter()
        component = Component.deserialize_file(self.engine, str(self.artifact))
        linker = noop_linker(self.engine)
        store = self._store()
        instance = linker.instantiate(store, component)
        elapsed = time.perf_counter() - started
        del instance, store, linker, component
        return elapsed


def timed_bare_call(call: object, token: object) -> float:
    """Seconds of the wasm call itself: `wasmtime_component_func_call` + post_return
    with arguments already lowered by `call` (a `pdk.host._fastcall.BoundFastCall`;
    `token` from its `lower`), through the same prebuilt ctypes arguments its
    `invoke` uses, into a fresh result slot: no conversion at all. The result is
    freed outside the timed part."""
    import ctypes

    from pdk.host import _fastcall

    assert isinstance(call, _fastcall.BoundFastCall) and token == call._token
    result = _fastcall._VAL_BYTES()
    func, context, args, count, _, results = call._call_args
    result_address = ctypes.c_void_p(ctypes.addressof(result))
    started = time.perf_counter()
    error = _fastcall._func_call_c(func, context, args, count, result_address, results)
    if not error:
        error = _fastcall._post_return_c(func, context)
    elapsed = time.perf_counter() - started
    assert not error, "the bare call failed"
    _fastcall._val_delete(ctypes.addressof(result))
    return elapsed
