"""`Host`: the reference host's public API.

    from pdk.host import Host

    with Host() as host:
        plugin = host.load("examples/text-tools", dev_grants=True)
        result = plugin.call_tool("text_stats", {"text": "a b a"})
        print(result.summary, result.content)
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import wasmtime

from pdk.errors import ErrorCode
from pdk.package.errors import PdkError
from pdk.package.manifest import Manifest, Problem

from .codec import CodecError, ResultError
from .compile_cache import CompiledComponentCache, default_cache_dir
from .compiler import CompileMode, Compiler, ComponentSource, Upgrade
from .diagnostics import DiagnosticLog
from .engine import Engines, Tier
from .progress import ProgressEvent
from .fs_api import FsBackend
from .grants import GrantsFile, GrantSet
from .http_api import HttpRequestBackend
from .linker import HostContext, build_linker
from .instance import GuestFault, InstanceLimits, PluginInstance
from .loader import PluginPackage, open_package
from .schema_check import Validator, schema_validator
from .tool_gate import ToolGate
from .tools import TOOLS_IFACE, ToolResult, codec_result, error_result, fault_result, new_call_id, result_error_result, result_from_guest, validate_input
from .world import ComponentShape, check_world, component_shape


# What `json.dumps(input, separators=(",", ":"), allow_nan=False, ensure_ascii=False)` uses,
# built once (`json.dumps` with arguments builds an encoder on every call).
_INPUT_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


class PluginRefused(PdkError):
    """A package the host will not run: world mismatch, bad imports, no grant.

    `problems` lists every finding; `code` is a stable snake_case reason."""

    def __init__(self, code: str, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message, code=code)
        self.code: str = code
        self.problems = problems or []

    def json_fields(self) -> dict[str, Any]:
        return {"problems": [p.to_json() for p in self.problems]} if self.problems else {}


@dataclass
class LoadedPlugin:
    """One loaded plugin: its package, authority, and sandboxed instance."""

    package: PluginPackage
    grants: GrantSet
    shape: ComponentShape
    instance: PluginInstance
    diagnostics: DiagnosticLog
    load_seconds: float = 0.0
    tier: Tier = Tier.OPTIMIZED  # which compiler's code the instance runs
    tool_calls: int = 0
    tool_errors: dict[str, int] = field(default_factory=dict)
    # Asked before every tool call; a `ServiceRuntime` governs it, so that a combined
    # plugin's tools respect its service's lifecycle (tool_gate.py).
    tool_gate: ToolGate = field(default_factory=ToolGate, repr=False)
    # Per declared tool, looked up once: its declaration and compiled input schema.
    _tools: dict[str, tuple[Any, Validator]] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.package.manifest.id

    @property
    def digest(self) -> str:
        return self.package.digest

    @property
    def manifest(self) -> Manifest:
        return self.package.manifest

    def call_tool(self, tool: str, input: Any = None, *, call_id: str | None = None) -> ToolResult:
        """Call a tool. `input` is a JSON string or a JSON-able value (default `{}`).

        Never raises for plugin or input problems: every failure is a typed result."""
        call_id = call_id or new_call_id()
        result = self._call_tool(tool, input, call_id)
        self.tool_calls += 1
        if result.error is not None:
            self.tool_errors[result.error.code.value] = self.tool_errors.get(result.error.code.value, 0) + 1
        return result

    def _call_tool(self, tool: str, input: Any, call_id: str) -> ToolResult:
        entry = self._tools.get(tool)
        if entry is None:
            manifest = self.package.manifest
            decl = manifest.tool(tool)
            if decl is None:  # not remembered: unknown names cannot grow the table
                known = ", ".join(t.name for t in manifest.tools) or "none"
                return error_result(tool, call_id, ErrorCode.UNSUPPORTED, f"unknown tool {tool!r} (this plugin has: {known})")
            entry = self._tools[tool] = (decl, schema_validator(decl.input_schema))
        validator = entry[1]
        # Authorization is re-checked on every call: grants are data that may change.
        if not self.grants.allows_surface("tools"):
            return error_result(tool, call_id, ErrorCode.DENIED, f"the tools surface is not granted to {self.id} ({self.grants.reason})")
        if not self.grants.allows_tool(tool):
            return error_result(tool, call_id, ErrorCode.DENIED, f"tool {tool!r} is not granted to {self.id}")
        # `denied`, not a new code: the host refuses to run the call now, as for a
        # missing grant; the contract's error codes stay as they are.
        refusal = self.tool_gate.refusal()
        if refusal is not None:
            return error_result(tool, call_id, ErrorCode.DENIED, refusal)
        if input is None:
            raw = "{}"
        elif isinstance(input, (str, bytes)):
            raw = input.decode("utf-8", "replace") if isinstance(input, bytes) else input
        else:
            try:
                # ensure_ascii=False: the input bound counts UTF-8 bytes, and `\uXXXX` escapes
                # would make non-ASCII text count up to 6 bytes per character.
                raw = _INPUT_ENCODER.encode(input)
            except (TypeError, ValueError) as exc:
                return error_result(tool, call_id, ErrorCode.INVALID_INPUT, f"input is not JSON-serializable: {exc}")
        _, refused = validate_input(tool, call_id, validator, raw)
        if refused is not None:
            return refused
        try:
            value = self.instance.call(TOOLS_IFACE, "call", {"tool": tool, "input_json": raw, "call_id": call_id})
        except GuestFault as fault:
            self.diagnostics.add("host", "error", f"tool {tool}: {fault.kind}: {fault.message}")
            return fault_result(tool, call_id, fault)
        except ResultError as exc:  # what the guest returned does not fit (or is too large)
            return result_error_result(tool, call_id, exc)
        except CodecError as exc:
            return codec_result(tool, call_id, exc)
        return result_from_guest(tool, call_id, value)

    def status(self) -> dict[str, Any]:
        """The plugin's status document (snake_case; no plugin code runs). A
        `ServiceRuntime`'s status document carries it as `plugin`."""
        m = self.package.manifest
        return {
            "id": m.id,
            "version": m.version,
            "digest": self.digest,
            "world": m.runtime.world,
            "source": str(self.package.source),
            "grants": {"matched": self.grants.matched, "dev": self.grants.dev, "reason": self.grants.reason},
            "instance": {
                "instantiations": self.instance.instantiations,
                "recycles": self.instance.recycles,
                "calls": self.instance.calls,
            },
            "tools": {"calls": self.tool_calls, "errors": dict(self.tool_errors)},
            "diagnostics": [r.to_json() for r in self.diagnostics.records()[-20:]],
        }

    def close(self) -> None:
        self.instance.close()


_open_hosts: "weakref.WeakSet[Host]" = weakref.WeakSet()


@atexit.register
def _close_open_hosts() -> None:
    # Stores with custom stdio must be freed before the interpreter exits, or
    # wasmtime prints a panic message on the way out.
    for host in list(_open_hosts):
        host.close()


class Host:
    """Loads plugins and runs them in sandboxed, limited wasmtime instances."""

    def __init__(
        self,
        *,
        cache_dir: str | Path | None | bool = True,
        limits: InstanceLimits | None = None,
        fuel: bool = False,
        stderr: TextIO | None = None,
        compile: CompileMode | str = CompileMode.OPTIMIZED,
        upgrade: Upgrade | str = Upgrade.THREAD,
        progress: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        """`cache_dir=True` uses the default compile cache (env `YOI_PDK_CACHE_DIR`
        moves it, `YOI_PDK_NO_CACHE=1` disables it); a path moves it; `None`/`False`
        disables it. `fuel=True` turns on fuel metering (then set `limits.fuel`).
        `compile`: `optimized` (Cranelift; the default), `fast` (Winch) or `tiered`
        (fast code now, optimized code compiled in the background per `upgrade`:
        `thread`, `process` or `none`) - see `pdk.host.compiler`. `progress` receives
        events for slow steps (a first compile); nothing is printed without it."""
        directory = default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
        self.engines = Engines(consume_fuel=fuel)
        self.compiler = Compiler(directory, self.engines, compile, upgrade=upgrade, progress=progress)
        self.settings = self.engines.settings(self.compiler.foreground_tier)
        self.engine = self.engines.engine(self.compiler.foreground_tier)
        self.ticker = self.engines.ticker(self.compiler.foreground_tier)
        self.limits = limits or InstanceLimits()
        self.stderr = stderr if stderr is not None else sys.stderr
        self.plugins: dict[str, LoadedPlugin] = {}
        self._lock = threading.Lock()
        _open_hosts.add(self)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for plugin in list(self.plugins.values()):
            plugin.close()
        self.plugins.clear()
        self.engines.close()

    @property
    def cache(self) -> CompiledComponentCache:
        """The compile cache of the tier this host compiles with in the foreground."""
        return self.compiler.cache()

    def inspect(self, package: PluginPackage) -> ComponentShape:
        """The component's real imports/exports (compiling or loading from cache)."""
        compiled = self.compiler.load(_source(package))
        return component_shape(compiled.component, compiled.engine)

    def load(
        self,
        path: str | Path,
        *,
        grants: GrantsFile | str | Path | None = None,
        dev_grants: bool = False,
        limits: InstanceLimits | None = None,
    ) -> LoadedPlugin:
        """Load a plugin directory or `.yoi-plugin` archive.

        Steps: package + manifest + digest → grants → compiled component (cache) →
        world check → instance. Raises `PackageError`, `ManifestError`, `GrantsError`
        or `PluginRefused`; no plugin code runs before the first call."""
        import time as _time

        started = _time.perf_counter()
        package = open_package(path)
        grant_set = self._grants_for(package, grants, dev_grants)
        return self._install(package, _source(package), grant_set, limits, started=started)

    def _install(
        self,
        package: PluginPackage,
        source: ComponentSource,
        grant_set: GrantSet,
        limits: InstanceLimits | None,
        *,
        started: float,
        component_world: str | None = None,
        fs: Callable[[FsBackend], FsBackend] | None = None,
        register: bool = True,
    ) -> LoadedPlugin:
        """Compile (or load from cache) `source`, check its world, instantiate and
        register it as `package`'s plugin. `component_world`: the world the component
        must have when it is not the manifest's (the dev runner's union world); `fs`
        wraps the plugin's fs backend (the dev runner's source bundle); without
        `register`, the caller registers it later (`_register`), e.g. after a probe."""
        import time as _time

        manifest = package.manifest
        try:
            # Bytes are read (and re-verified against the sha256) only on a cache miss.
            compiled = self.compiler.load(source)
        except wasmtime.WasmtimeError as exc:
            raise PluginRefused("not_a_component", f"{manifest.runtime.component} is not a valid component: {str(exc).splitlines()[0]}") from None
        component, engine = compiled.component, compiled.engine
        shape = component_shape(component, engine)
        problems = _world_problems(component, shape, component_world or manifest.runtime.world)
        if problems:
            raise PluginRefused("world_mismatch", f"{manifest.id}: {problems[0]}", problems)
        diagnostics = DiagnosticLog()
        instance: PluginInstance | None = None  # bound below; the request import reads its deadline per call
        fs_backend = FsBackend.for_manifest(grant_set, manifest)
        context = HostContext(
            diagnostics,
            request=HttpRequestBackend.for_manifest(grant_set, manifest, diagnostics, lambda: instance.remaining_s() if instance else None),
            fs=fs(fs_backend) if fs is not None else fs_backend,
        )
        linker = build_linker(engine, component, context)
        instance = PluginInstance(engine, component, linker, compiled.ticker, limits or self.limits, diagnostics, self.engines.consume_fuel)
        plugin = LoadedPlugin(package, grant_set, shape, instance, diagnostics, _time.perf_counter() - started, tier=compiled.tier)
        if register:
            self._register(plugin)
        return plugin

    def _register(self, plugin: LoadedPlugin) -> None:
        """Make `plugin` the host's plugin of its id, closing the one it replaces."""
        with self._lock:
            old = self.plugins.pop(plugin.id, None)
            if old is not None and old is not plugin:
                old.close()
            self.plugins[plugin.id] = plugin

    def _grants_for(self, package: PluginPackage, grants: GrantsFile | str | Path | None, dev_grants: bool) -> GrantSet:
        m = package.manifest
        if dev_grants:
            print(
                f"pdk: DEV GRANTS: {m.id} {m.version} gets exactly what its plugin.toml declares "
                f"(surfaces: {', '.join(m.surfaces) or 'none'}; tools: {', '.join(t.name for t in m.tools) or 'none'}; "
                f"host APIs: {', '.join(m.host_apis) or 'none'}). Do not use dev grants in production.",
                file=self.stderr,
            )
            return GrantSet.dev_grants(m)
        if grants is None:
            return GrantSet.empty("no grants file given: pass --grants FILE (grants=PATH in Python), or --dev-grants (dev_grants=True) during development")
        grants_file = grants if isinstance(grants, GrantsFile) else GrantsFile.load(grants)
        return grants_file.for_package(m.id, m.version, package.digest)


def _world_problems(component: Any, shape: ComponentShape, world: str) -> list[Problem]:
    """`check_world`, once per component and world (kept on the compiled component,
    which compile_cache shares between loads of the same bytes)."""
    checked: dict[str, tuple[Problem, ...]] | None = getattr(component, "_yoi_world_checks", None)
    if checked is None:
        checked = component._yoi_world_checks = {}
    found = checked.get(world)
    if found is None:
        found = checked[world] = tuple(check_world(shape, world))
    return list(found)


def _source(package: PluginPackage) -> ComponentSource:
    name = package.manifest.runtime.component
    return ComponentSource(package.files.entry(name).sha256.hex(), package.component_bytes, Path(name).name, package.source)
