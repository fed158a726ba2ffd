"""The `yoi:host` imports as seen by one plugin.

Host import functions must never raise: a raise traps the guest (it cannot catch
it), and wasmtime-py passes host exceptions through a process-global slot that is
not thread-safe. Every function here catches everything and answers with a value
of its declared type - an `err` for functions that return `result`.

The imports are defined through wasmtime's C API with converters generated once
per component function (`pdk/host/_fastimport.py`); `YOI_PDK_CODEC=plain`, or a
function type those converters cannot handle, defines them with wasmtime-py's
`add_func` and the codec (`_guarded`). Both give the implementations the same
plain values and answer the same values and errors.

One linker per component and codec mode, shared by every plugin of that component
(`shared_linker`; building one - WASI p2 and the five host functions - took ~0.4 ms
of every load): the host functions are module-level and act on the `HostContext`
the calling store was made with (`wasmtime.Store(engine, data=context)`; read back
per call by `_fastimport.store_data`). A store's data is set when the store is made,
before any guest code runs, and is never changed or reused while the store lives, so
a plugin's imports can only ever act on its own context (tests/e2e/test_shared_linker.py).
A store without a `HostContext` (a linker used with a bare store) gets `UNROUTED`:
every request and fs call denied, logs dropped.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import wasmtime
from wasmtime.component import Component, ComponentInstanceType, FuncType, Linker

from ._fastcall import fast_path_enabled
from ._fastimport import ImportPlan, Unsupported, add_import, store_data
from .codec import Err, FuncCodec
from .diagnostics import DiagnosticLog

LOG_IFACE = "yoi:host/log@2.0.0"
REQUEST_IFACE = "yoi:host/request@2.0.0"
FS_IFACE = "yoi:host/fs@2.0.0"
TYPES_IFACE = "yoi:plugin/types@2.0.0"


class RequestBackend(Protocol):
    """Performs `request.send` for a plugin; returns `Ok(response)` or `Err(error)` values."""

    def send(self, request: dict[str, Any]) -> Any: ...


class FsBackend(Protocol):
    def read_file(self, root: str, path: str) -> Any: ...
    def write_file(self, root: str, path: str, data: bytes) -> Any: ...
    def list_dir(self, root: str, path: str) -> Any: ...


class DeniedRequests:
    """Until a plugin is granted targets, every request is denied without network I/O."""

    def send(self, request: dict[str, Any]) -> Any:
        return Err({"code": "denied", "message": "the request host API is not granted to this plugin"})


class DeniedFs:
    def _denied(self) -> Any:
        return Err({"code": "denied", "message": "the fs host API is not granted to this plugin"})

    def read_file(self, root: str, path: str) -> Any:
        return self._denied()

    def write_file(self, root: str, path: str, data: bytes) -> Any:
        return self._denied()

    def list_dir(self, root: str, path: str) -> Any:
        return self._denied()


@dataclass(eq=False)
class HostContext:
    """What the imports of one plugin act on (the data of each of its stores)."""

    diagnostics: DiagnosticLog
    request: RequestBackend = field(default_factory=DeniedRequests)
    fs: FsBackend = field(default_factory=DeniedFs)

    def __bool__(self) -> bool:  # wasmtime.Store keeps `data` only when it is truthy
        return True


class _DroppedLog(DiagnosticLog):
    def add(self, source: str, level: str, message: str) -> None:
        return None


# What the imports act on for a store made without a HostContext.
UNROUTED = HostContext(_DroppedLog(max_records=1))


def _import_func_types(imports: dict[str, Any], engine: wasmtime.Engine) -> dict[tuple[str, str], FuncType]:
    types: dict[tuple[str, str], FuncType] = {}
    for iface, ext in imports.items():
        if not iface.startswith("yoi:host/"):
            continue  # WASI comes from add_wasip2; walking its types costs milliseconds
        ty = ext.ty
        if isinstance(ty, ComponentInstanceType):
            for name, item in ty.exports(engine).items():
                if isinstance(item.ty, FuncType):
                    types[(iface, name)] = item.ty
    return types


def _context(data: Any) -> HostContext:
    return data if isinstance(data, HostContext) else UNROUTED


# The host functions: (store data, plain arguments) -> plain result.
def _log_write(data: Any, level: str, message: str) -> None:
    _context(data).diagnostics.add("log", level, message)


def _request_send(data: Any, request: dict[str, Any]) -> Any:
    return _context(data).request.send(request)


def _fs_read_file(data: Any, root: str, path: str) -> Any:
    return _context(data).fs.read_file(root, path)


def _fs_write_file(data: Any, root: str, path: str, payload: bytes) -> Any:
    return _context(data).fs.write_file(root, path, payload)


def _fs_list_dir(data: Any, root: str, path: str) -> Any:
    return _context(data).fs.list_dir(root, path)


def _no_value(exc: Exception) -> Any:
    return None


def _failed(exc: Exception) -> Any:
    return Err({"code": "failed" if not isinstance(exc, ValueError) else "invalid", "message": "host error"})


def _fs_failed(exc: Exception) -> Any:
    return Err({"code": "io", "message": "host error"})


_IMPLS: dict[tuple[str, str], tuple[Callable[..., Any], Callable[[Exception], Any]]] = {
    (LOG_IFACE, "write"): (_log_write, _no_value),
    (REQUEST_IFACE, "send"): (_request_send, _failed),
    (FS_IFACE, "read-file"): (_fs_read_file, _fs_failed),
    (FS_IFACE, "write-file"): (_fs_write_file, _fs_failed),
    (FS_IFACE, "list-dir"): (_fs_list_dir, _fs_failed),
}


def _guarded(fty: FuncType, impl: Callable[..., Any], fallback: Callable[[Exception], Any]) -> Callable[..., Any]:
    # The codec is compiled on the first call of the import, not at load: most loads
    # never call most imports, and compiling them all cost ~2 ms of every load.
    codecs: list[FuncCodec] = []

    def host_func(store: Any, *raw_args: Any) -> Any:
        try:
            if not codecs:
                codecs.append(FuncCodec(fty))
            codec = codecs[0]
        except Exception:
            return None  # cannot happen for a contract type; never raise into wasmtime
        try:
            data = store_data(ctypes.cast(store._context(), ctypes.c_void_p).value)
            result = impl(data, *codec.decode_params(*raw_args))
            return codec.encode_result(result) if codec.result is not None else None
        except Exception as exc:  # never let an exception reach wasmtime
            try:
                return codec.encode_result(fallback(exc)) if codec.result is not None else None
            except Exception:
                return None
    return host_func


def _import_plan(component: Component, key: tuple[str, str], fty: FuncType) -> ImportPlan | None:
    """The fast converters of import `key`, generated once per component (a component
    loaded again is shared by compile_cache); None when they cannot handle its type."""
    plans: dict[tuple[str, str], ImportPlan | None] | None = getattr(component, "_yoi_import_plans", None)
    if plans is None:
        plans = {}
        component._yoi_import_plans = plans  # type: ignore[attr-defined]
    if key not in plans:
        try:
            plans[key] = ImportPlan(fty)
        except Unsupported:
            plans[key] = None
    return plans[key]


def _host_imports(engine: wasmtime.Engine, component: Component) -> tuple[dict[tuple[str, str], FuncType], bool]:
    # Walked once per component (a component loaded again is shared by compile_cache).
    walked: tuple[dict[tuple[str, str], FuncType], bool] | None = getattr(component, "_yoi_host_imports", None)
    if walked is None:
        imports = component.type.imports(engine)
        walked = (_import_func_types(imports, engine), TYPES_IFACE in imports)
        component._yoi_host_imports = walked  # type: ignore[attr-defined]
    return walked


def _new_linker(engine: wasmtime.Engine, component: Component, fast: bool) -> Linker:
    linker = Linker(engine)
    linker.add_wasip2()
    types, imports_types_iface = _host_imports(engine, component)
    by_iface: dict[str, list[tuple[str, FuncType]]] = {}
    for (iface, name), fty in types.items():
        if (iface, name) in _IMPLS:  # the world check refuses unknown imports before this
            by_iface.setdefault(iface, []).append((name, fty))
    if imports_types_iface:
        by_iface.setdefault(TYPES_IFACE, [])  # type-only interface: an empty instance
    # A linker instance stays locked while a child is open, hence one `with` at a time.
    with linker.root() as root:
        for iface, funcs in by_iface.items():
            with root.add_instance(iface) as inst:
                for name, fty in funcs:
                    impl, fallback = _IMPLS[(iface, name)]
                    plan = _import_plan(component, (iface, name), fty) if fast else None
                    if plan is not None:
                        add_import(inst, name, plan, impl, fallback)
                    else:
                        inst.add_func(name, _guarded(fty, impl, fallback))
    return linker


def shared_linker(engine: wasmtime.Engine, component: Component) -> tuple[Linker, str]:
    """The linker of `component` for the codec mode in force (`YOI_PDK_CODEC`), made
    on first use and kept on the component: WASI p2 (given no authority by each
    store's empty WasiConfig) and the host imports, which act on the calling store's
    data. Returns the linker and its mode (`fast` or `plain`)."""
    mode = "fast" if fast_path_enabled() else "plain"
    linkers: dict[str, Linker] | None = getattr(component, "_yoi_linkers", None)
    if linkers is None:
        linkers = component._yoi_linkers = {}  # type: ignore[attr-defined]
    linker = linkers.get(mode)
    if linker is None:
        # Two threads racing here both build one; either is kept (both are equivalent).
        linker = linkers.setdefault(mode, _new_linker(engine, component, mode == "fast"))
    return linker, mode


@dataclass(frozen=True, eq=False)
class HostLinker:
    """A component's shared linker and the `HostContext` one plugin's imports act on:
    `PluginInstance` makes each of its stores with `store_data` as the store's data."""

    linker: Linker
    context: HostContext
    mode: str  # `fast` or `plain`: how the host functions convert values

    @property
    def store_data(self) -> HostContext:
        return self.context

    def instantiate(self, store: wasmtime.Store, component: Component) -> Any:
        return self.linker.instantiate(store, component)


def build_linker(engine: wasmtime.Engine, component: Component, ctx: HostContext) -> HostLinker:
    """The imports of one plugin: the component's shared linker, routed to `ctx`
    through the data of every store `PluginInstance` makes for it."""
    linker, mode = shared_linker(engine, component)
    return HostLinker(linker, ctx, mode)
