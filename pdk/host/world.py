"""What a component really exports and imports, checked against its world.

Two readings that give the same `ComponentShape`: `component_shape` asks a compiled
component (`Component.type`, ~1 ms once compiled), `binary_shape` reads the binary's
outer sections (`pdk.host.component_binary`, a few ms, no compile - what `pdk check`
uses). No plugin code runs in either. componentize-py adds an internal `exports`
instance (its pre-init hook); it is ignored here and never called."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import wasmtime
from wasmtime.component import Component, ComponentInstanceType, FuncType

from pdk import _contract
from pdk.package.manifest import Problem

from .component_binary import SORT_FUNC, read_outline

PLUGIN_PACKAGE = _contract.PLUGIN_PACKAGE
HOST_PACKAGE = _contract.HOST_PACKAGE
CONTRACT_VERSION = _contract.CONTRACT_VERSION
INTERNAL_EXPORTS = frozenset({"exports"})

# Exported interface → the functions it must have; world → the interfaces it exports.
INTERFACE_FUNCS: dict[str, frozenset[str]] = dict(_contract.INTERFACE_FUNCS)
WORLD_EXPORTS: dict[str, frozenset[str]] = {world: frozenset(ifaces) for world, ifaces in _contract.WORLD_EXPORTS.items()}
HOST_INTERFACES = frozenset(_contract.HOST_INTERFACES)
# The WASI p2 interfaces a componentize-py guest imports. The sandbox gives them no
# authority (no preopens, env, args or sockets), so importing them is harmless.
ALLOWED_WASI = re.compile(
    r"^wasi:(cli/(environment|exit|stdin|stdout|stderr|terminal-input|terminal-output|terminal-stdin|terminal-stdout|terminal-stderr)"
    r"|clocks/(monotonic-clock|wall-clock)|filesystem/(types|preopens)|io/(error|poll|streams)"
    r"|random/(random|insecure|insecure-seed)|sockets/(network|instance-network|tcp|tcp-create-socket|udp|udp-create-socket|ip-name-lookup))"
    r"@0\.2\.\d+$"
)
_IFACE_RE = re.compile(r"^(?P<pkg>[a-z][a-z0-9-]*:[a-z][a-z0-9-]*)/(?P<name>[a-z][a-z0-9-]*)@(?P<version>[0-9][0-9A-Za-z.+-]*)$")


@dataclass(frozen=True)
class ComponentShape:
    """The names a component imports and exports (with exported functions)."""

    imports: tuple[str, ...]
    exports: dict[str, frozenset[str]] = field(default_factory=dict)

    def exported_interfaces(self) -> set[str]:
        found = set()
        for name in self.exports:
            m = _IFACE_RE.fullmatch(name)
            if m and m["pkg"] == PLUGIN_PACKAGE and m["version"] == CONTRACT_VERSION:
                found.add(m["name"])
        return found

    def to_json(self) -> dict[str, object]:
        return {"imports": list(self.imports), "exports": {k: sorted(v) for k, v in sorted(self.exports.items())}}


def component_shape(component: Component, engine: wasmtime.Engine) -> ComponentShape:
    cached = getattr(component, "_yoi_shape", None)  # a component loaded again (compile_cache shares it)
    if isinstance(cached, ComponentShape):
        return cached
    ctype = component.type
    imports = tuple(sorted(ctype.imports(engine)))
    exports: dict[str, frozenset[str]] = {}
    for name, ext in ctype.exports(engine).items():
        if name in INTERNAL_EXPORTS:
            continue
        ty = ext.ty if hasattr(ext, "ty") else None
        funcs: frozenset[str] = frozenset()
        if isinstance(ty, ComponentInstanceType):
            funcs = frozenset(n for n, t in ty.exports(engine).items() if isinstance(getattr(t, "ty", t), FuncType))
        exports[name] = funcs
    shape = ComponentShape(imports=imports, exports=exports)
    component._yoi_shape = shape  # type: ignore[attr-defined]
    return shape


def binary_shape(data: bytes | bytearray | memoryview) -> ComponentShape:
    """The shape read from the component binary without compiling it.

    Raises `pdk.host.component_binary.ComponentFormatError` for bytes that are not a
    well-framed component. An exported instance whose functions cannot be known
    statically lists none (and so fails `check_world`, never passes it wrongly)."""
    outline = read_outline(data)
    imports = tuple(sorted(name for name, _ in outline.imports))
    exports: dict[str, frozenset[str]] = {}
    for name, _, items in outline.exports:
        if name in INTERNAL_EXPORTS:
            continue
        exports[name] = frozenset(n for n, sort in items or () if sort == SORT_FUNC)
    return ComponentShape(imports=imports, exports=exports)


def check_world(shape: ComponentShape, world: str) -> list[Problem]:
    """Problems with a component serving `world` (empty when it fits)."""
    problems: list[Problem] = []
    wanted = WORLD_EXPORTS.get(world, frozenset())
    present = shape.exported_interfaces()
    for iface in sorted(wanted):
        qualified = f"{PLUGIN_PACKAGE}/{iface}@{CONTRACT_VERSION}"
        if iface not in present:
            problems.append(Problem("component.exports", f"world {world!r} needs export {qualified}, which the component lacks"))
            continue
        missing = INTERFACE_FUNCS[iface] - shape.exports[qualified]
        if missing:
            problems.append(Problem("component.exports", f"{qualified} lacks functions: {', '.join(sorted(missing))}"))
    for name in sorted(shape.exports):
        m = _IFACE_RE.fullmatch(name)
        if not m or m["pkg"] != PLUGIN_PACKAGE or m["version"] != CONTRACT_VERSION or m["name"] not in wanted:
            problems.append(Problem("component.exports", f"unexpected export {name!r} for world {world!r}"))
    for name in shape.imports:
        if ALLOWED_WASI.match(name):
            continue
        m = _IFACE_RE.fullmatch(name)
        if m and m["pkg"] == HOST_PACKAGE and m["version"] == CONTRACT_VERSION and m["name"] in HOST_INTERFACES:
            continue
        if m and m["pkg"] == PLUGIN_PACKAGE and m["version"] == CONTRACT_VERSION and m["name"] == "types":
            continue  # type-only interface; carries no functions
        problems.append(Problem("component.imports", f"import {name!r} is not an allowed host or WASI interface"))
    return problems
