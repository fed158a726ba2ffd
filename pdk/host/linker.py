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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import wasmtime
from wasmtime.component import Component, ComponentInstanceType, FuncType, Linker

from ._fastcall import fast_path_enabled
from ._fastimport import ImportPlan, Unsupported, add_import
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


@dataclass
class HostContext:
    """What the imports of one plugin act on."""

    diagnostics: DiagnosticLog
    request: RequestBackend = field(default_factory=DeniedRequests)
    fs: FsBackend = field(default_factory=DeniedFs)


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


def _guarded(fty: FuncType, impl: Callable[..., Any], fallback: Callable[[Exception], Any]) -> Callable[..., Any]:
    # The codec is compiled on the first call of the import, not at load: most loads
    # never call most imports, and compiling them all cost ~2 ms of every load.
    codecs: list[FuncCodec] = []

    def host_func(_store: Any, *raw_args: Any) -> Any:
        try:
            if not codecs:
                codecs.append(FuncCodec(fty))
            codec = codecs[0]
        except Exception:
            return None  # cannot happen for a contract type; never raise into wasmtime
        try:
            result = impl(*codec.decode_params(*raw_args))
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


def build_linker(engine: wasmtime.Engine, component: Component, ctx: HostContext) -> Linker:
    """A linker with WASI p2 (given no authority by the store's empty WasiConfig) and
    the host imports bound to `ctx`."""
    linker = Linker(engine)
    linker.add_wasip2()
    # Walked once per component (a component loaded again is shared by compile_cache).
    walked: tuple[dict[tuple[str, str], FuncType], bool] | None = getattr(component, "_yoi_host_imports", None)
    if walked is None:
        imports = component.type.imports(engine)
        walked = (_import_func_types(imports, engine), TYPES_IFACE in imports)
        component._yoi_host_imports = walked  # type: ignore[attr-defined]
    types, imports_types_iface = walked

    def log_write(level: str, message: str) -> None:
        ctx.diagnostics.add("log", level, message)

    def failed(exc: Exception) -> Any:
        return Err({"code": "failed" if not isinstance(exc, ValueError) else "invalid", "message": "host error"})

    def fs_failed(exc: Exception) -> Any:
        return Err({"code": "io", "message": "host error"})

    impls: dict[tuple[str, str], tuple[Callable[..., Any], Callable[[Exception], Any]]] = {
        (LOG_IFACE, "write"): (log_write, lambda exc: None),
        (REQUEST_IFACE, "send"): (lambda req: ctx.request.send(req), failed),
        (FS_IFACE, "read-file"): (lambda root, path: ctx.fs.read_file(root, path), fs_failed),
        (FS_IFACE, "write-file"): (lambda root, path, data: ctx.fs.write_file(root, path, data), fs_failed),
        (FS_IFACE, "list-dir"): (lambda root, path: ctx.fs.list_dir(root, path), fs_failed),
    }
    by_iface: dict[str, list[tuple[str, FuncType]]] = {}
    for (iface, name), fty in types.items():
        if (iface, name) in impls:  # the world check refuses unknown imports before this
            by_iface.setdefault(iface, []).append((name, fty))
    if imports_types_iface:
        by_iface.setdefault(TYPES_IFACE, [])  # type-only interface: an empty instance
    fast = fast_path_enabled()
    # A linker instance stays locked while a child is open, hence one `with` at a time.
    with linker.root() as root:
        for iface, funcs in by_iface.items():
            with root.add_instance(iface) as inst:
                for name, fty in funcs:
                    impl, fallback = impls[(iface, name)]
                    plan = _import_plan(component, (iface, name), fty) if fast else None
                    if plan is not None:
                        add_import(inst, name, plan, impl, fallback)
                    else:
                        inst.add_func(name, _guarded(fty, impl, fallback))
    return linker
