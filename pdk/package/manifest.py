"""`plugin.toml` (schema_version 2): the typed model and its validation.

Every problem is reported with its TOML path; unknown fields are rejected so a typo
never silently disables a declaration."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from pdk.limits import (
    DESCRIPTION_MAX_BYTES,
    MAX_ATTEMPTS_MAX,
    NAME_MAX_LEN,
    PLUGIN_ID_MAX_LEN,
    QUEUE_CAPACITY_MAX,
    RETRY_BACKOFF_MAX_MS,
    TIMER_MIN_INTERVAL_MS,
    WEBSOCKET_CONNECTIONS_MAX,
    WEBSOCKET_SUBPROTOCOLS_MAX,
)
from pdk.package.errors import PdkError

SCHEMA_VERSION = 2
RUNTIME_KIND = "wasm-component"
WORLDS = ("tool", "service", "ingress", "plugin")
SURFACES = ("tools", "services", "ingresses")
HOST_APIS = ("log", "request", "fs", "websocket")

# What each world exports, hence which surfaces it can serve.
WORLD_SURFACES: dict[str, frozenset[str]] = {
    "tool": frozenset({"tools"}),
    "service": frozenset({"services", "ingresses"}),
    "ingress": frozenset({"ingresses"}),
    "plugin": frozenset(SURFACES),
}

SCHEMA_KEYWORDS = frozenset(
    {
        "type", "title", "description", "properties", "required", "additionalProperties",
        "items", "enum", "const", "default", "anyOf", "minimum", "maximum", "minLength",
        "maxLength", "minItems", "maxItems", "pattern", "format", "examples",
    }
)
SCHEMA_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)


@dataclass(frozen=True)
class Problem:
    """One validation finding, located by its TOML path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_json(self) -> dict[str, str]:
        """`{"path", "message"}` of the finding."""
        return {"path": self.path, "message": self.message}


class ManifestError(PdkError):
    """A manifest that cannot be used. `problems` lists every finding."""

    default_code = "invalid_manifest"

    def __init__(self, problems: list[Problem], source: str = "plugin.toml") -> None:
        self.problems = problems
        self.source = source
        first = str(problems[0]) if problems else "invalid manifest"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: {first}{more}")

    def json_fields(self) -> dict[str, Any]:
        return {"problems": [p.to_json() for p in self.problems]}


@dataclass(frozen=True)
class ToolDecl:
    name: str
    description: str
    input_schema: dict[str, Any]


INGRESS_SOURCES = ("manual", "http", "timer", "websocket")


@dataclass(frozen=True)
class HandlerDecl:
    """A `[[services]]` or `[[ingresses]]` entry. `raw` keeps the validated table."""

    name: str
    description: str
    raw: dict[str, Any]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.raw.get("sources", ("manual",)))

    @property
    def event_kinds(self) -> tuple[str, ...]:
        return tuple(self.raw.get("event_kinds", ()))


@dataclass(frozen=True)
class Runtime:
    kind: str
    world: str
    component: str


@dataclass(frozen=True)
class Manifest:
    id: str
    name: str
    version: str
    description: str
    surfaces: tuple[str, ...]
    host_apis: tuple[str, ...]
    runtime: Runtime
    tools: tuple[ToolDecl, ...] = ()
    services: tuple[HandlerDecl, ...] = ()
    ingresses: tuple[HandlerDecl, ...] = ()
    build: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def tool(self, name: str) -> ToolDecl | None:
        return next((t for t in self.tools if t.name == name), None)

    @property
    def referenced_files(self) -> tuple[str, ...]:
        """The package files the manifest needs besides itself."""
        return (self.runtime.component,)


# -- validation ------------------------------------------------------------------------------

_TOP_KEYS = {
    "schema_version", "id", "name", "version", "description", "surfaces", "host_apis",
    "runtime", "build", "tools", "services", "ingresses", "request", "fs", "websocket",
}
_RUNTIME_KEYS = {"kind", "world", "component"}
_BUILD_KEYS = {"module", "sources", "plugin", "preload"}
_TOOL_KEYS = {"name", "description", "input_schema"}
_FS_KEYS = {"name", "operations"}
FS_OPERATIONS = ("read", "list", "write")
_ROOT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as in grants files


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def unknown_keys(self, table: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                self.add(where, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def string(self, table: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
        where = f"{path}.{key}" if path else key
        value = table.get(key)
        if value is None:
            if required:
                self.add(where, "is required")
            return ""
        if not isinstance(value, str):
            self.add(where, f"must be a string, got {_toml_type(value)}")
            return ""
        return value

    def name(self, table: Mapping[str, Any], path: str) -> str:
        """The required `name` of a tool, service, ingress or connection."""
        value = self.string(table, "name", path)
        if value and not _NAME_RE.match(value):
            self.add(f"{path}.name", "must be 1-64 of [a-z0-9_.-], starting with a letter")
        return value

    def string_list(self, table: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        where = f"{path}.{key}" if path else key
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(where, "must be a list of strings")
            return ()
        for v in value:
            if v not in allowed:
                self.add(where, f"unknown value {v!r} (allowed: {', '.join(allowed)})")
        if len(set(value)) != len(value):
            self.add(where, "has duplicates")
        return tuple(v for v in value if v in allowed)


def _toml_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def check_schema_subset(schema: Any, path: str, out: list[Problem], *, root: bool = True) -> None:
    """Accept only the JSON Schema subset the host validates and models understand."""
    if not isinstance(schema, dict):
        out.append(Problem(path, "a schema must be a table"))
        return
    for key in schema:
        if key not in SCHEMA_KEYWORDS:
            out.append(Problem(f"{path}.{key}", "unsupported JSON Schema keyword"))
    types = schema.get("type")
    type_list = types if isinstance(types, list) else [types] if types is not None else []
    for t in type_list:
        if t not in SCHEMA_TYPES:
            out.append(Problem(f"{path}.type", f"unknown type {t!r}"))
    if root and schema.get("type") != "object":
        out.append(Problem(f"{path}.type", 'the root of an input schema must be "object"'))
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        out.append(Problem(f"{path}.properties", "must be a table"))
    else:
        for name, sub in props.items():
            check_schema_subset(sub, f"{path}.properties.{name}", out, root=False)
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        out.append(Problem(f"{path}.required", "must be a list of property names"))
    elif isinstance(props, dict):
        for r in required:
            if r not in props:
                out.append(Problem(f"{path}.required", f"names {r!r}, which is not a property"))
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, dict):
            check_schema_subset(sub, f"{path}.{key}", out, root=False)
        elif sub is not None and not isinstance(sub, bool):
            out.append(Problem(f"{path}.{key}", "must be a schema or a boolean"))
    any_of = schema.get("anyOf")
    if any_of is not None:
        if not isinstance(any_of, list):
            out.append(Problem(f"{path}.anyOf", "must be a list of schemas"))
        else:
            for i, sub in enumerate(any_of):
                check_schema_subset(sub, f"{path}.anyOf[{i}]", out, root=False)
    if "enum" in schema and not isinstance(schema["enum"], list):
        out.append(Problem(f"{path}.enum", "must be a list"))


def _parse_runtime(raw: Any, c: _Checker) -> Runtime:
    if not isinstance(raw, dict):
        c.add("runtime", "is required: a [runtime] table with kind, world and component")
        return Runtime("", "", "")
    c.unknown_keys(raw, _RUNTIME_KEYS, "runtime")
    kind = c.string(raw, "kind", "runtime")
    if kind == "wasm":
        c.add(
            "runtime.kind",
            'the raw core-Wasm runtime ("wasm") is retired; "wasm-component" is the only runtime. '
            "Rebuild the plugin as a component with `pdk build` and set kind = \"wasm-component\"",
        )
    elif kind and kind != RUNTIME_KIND:
        c.add("runtime.kind", f'unknown runtime {kind!r}; the only runtime is "{RUNTIME_KIND}"')
    world = c.string(raw, "world", "runtime")
    if world and world not in WORLDS:
        c.add("runtime.world", f"unknown world {world!r} (one of: {', '.join(WORLDS)})")
    component = c.string(raw, "component", "runtime")
    if component:
        p = PurePosixPath(component)
        if p.is_absolute() or ".." in p.parts or "\\" in component or not component.endswith(".wasm"):
            c.add("runtime.component", "must be a relative path inside the package ending in .wasm")
    return Runtime(kind, world, component)


def _parse_tools(raw: Any, c: _Checker) -> tuple[ToolDecl, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add("tools", "must be an array of tables ([[tools]])")
        return ()
    tools: list[ToolDecl] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        path = f"tools[{i}]"
        if not isinstance(entry, dict):
            c.add(path, "must be a table")
            continue
        c.unknown_keys(entry, _TOOL_KEYS, path)
        name = c.name(entry, path)
        if name in seen:
            c.add(f"{path}.name", f"duplicate tool {name!r}")
        seen.add(name)
        description = c.string(entry, "description", path)
        if len(description.encode()) > DESCRIPTION_MAX_BYTES:
            c.add(f"{path}.description", f"is longer than {DESCRIPTION_MAX_BYTES} bytes")
        schema = entry.get("input_schema", {"type": "object"})
        found: list[Problem] = []
        check_schema_subset(schema, f"{path}.input_schema", found)
        c.problems.extend(found)
        tools.append(ToolDecl(name, description, schema if isinstance(schema, dict) else {}))
    return tuple(tools)


_SERVICE_KEYS = {"name", "description"}
_INGRESS_KEYS = {
    "name", "description", "sources", "event_kinds", "payload_schema", "http_path", "timer",
    "queue_capacity", "max_attempts", "retry_backoff_ms", "connections",
}
_CONNECTION_KEYS = {"name", "url", "event_kinds", "subprotocols", "secrets"}
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")


def _int_in(table: Mapping[str, Any], key: str, path: str, lo: int, hi: int, c: _Checker) -> None:
    if key in table:
        v = table[key]
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            c.add(f"{path}.{key}", f"must be an integer from {lo} to {hi}")


def _check_ingress(entry: Mapping[str, Any], path: str, c: _Checker) -> None:
    sources = c.string_list(entry, "sources", path, INGRESS_SOURCES) if "sources" in entry else ("manual",)
    kinds = entry.get("event_kinds")
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) and _NAME_RE.match(k) for k in kinds):
        c.add(f"{path}.event_kinds", "must be a non-empty list of kind names ([a-z0-9_.-])")
    if "payload_schema" in entry:
        found: list[Problem] = []
        check_schema_subset(entry["payload_schema"], f"{path}.payload_schema", found, root=False)
        c.problems.extend(found)
    if "http" in sources:
        http_path = entry.get("http_path")
        if not isinstance(http_path, str) or not _PATH_RE.match(http_path) or "//" in http_path or "/../" in http_path + "/":
            c.add(f"{path}.http_path", 'is required for the "http" source: an absolute path such as "/hooks/github"')
    elif "http_path" in entry:
        c.add(f"{path}.http_path", 'is only used with the "http" source')
    if "timer" in sources:
        timer = entry.get("timer")
        if not isinstance(timer, dict) or set(timer) - {"interval_ms"}:
            c.add(f"{path}.timer", 'is required for the "timer" source: {interval_ms = N}')
        else:
            _int_in(timer, "interval_ms", f"{path}.timer", TIMER_MIN_INTERVAL_MS, 86_400_000, c)
            if "interval_ms" not in timer:
                c.add(f"{path}.timer.interval_ms", "is required")
    _int_in(entry, "queue_capacity", path, 1, QUEUE_CAPACITY_MAX, c)
    _int_in(entry, "max_attempts", path, 1, MAX_ATTEMPTS_MAX, c)
    _int_in(entry, "retry_backoff_ms", path, 0, RETRY_BACKOFF_MAX_MS, c)
    connections = entry.get("connections", [])
    if not isinstance(connections, list):
        c.add(f"{path}.connections", "must be an array of tables")
        return
    if connections and "websocket" not in sources:
        c.add(f"{path}.connections", 'need the "websocket" source')
    for j, conn in enumerate(connections):
        cpath = f"{path}.connections[{j}]"
        if not isinstance(conn, dict):
            c.add(cpath, "must be a table")
            continue
        c.unknown_keys(conn, _CONNECTION_KEYS, cpath)
        name = c.name(conn, cpath)
        url = c.string(conn, "url", cpath)
        if url and not url.startswith(("ws://", "wss://")):
            c.add(f"{cpath}.url", "must be a ws:// or wss:// URL")
        _check_connection_lists(conn, cpath, kinds if isinstance(kinds, list) else [], c)


_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")  # as in grants files


def _check_connection_lists(conn: Mapping[str, Any], cpath: str, ingress_kinds: list[Any], c: _Checker) -> None:
    """A connection's optional `event_kinds` (a subset of its ingress's),
    `subprotocols` (HTTP tokens) and `secrets` (names of grant secrets sent as
    handshake headers)."""
    for key, pattern, what in (
        ("event_kinds", _NAME_RE, "kind names ([a-z0-9_.-])"),
        ("subprotocols", _TOKEN_RE, "subprotocol names (HTTP tokens)"),
        ("secrets", _SECRET_NAME_RE, "secret names as in the grants file"),
    ):
        if key not in conn:
            continue
        values = conn[key]
        if not isinstance(values, list) or not all(isinstance(v, str) and pattern.match(v) for v in values):
            c.add(f"{cpath}.{key}", f"must be a list of {what}")
            continue
        if len(set(values)) != len(values):
            c.add(f"{cpath}.{key}", "has duplicates")
        if key == "event_kinds":
            for kind in values:
                if kind not in ingress_kinds:
                    c.add(f"{cpath}.event_kinds", f"{kind!r} is not among the ingress's event_kinds")
        if key == "subprotocols" and len(values) > WEBSOCKET_SUBPROTOCOLS_MAX:
            c.add(f"{cpath}.subprotocols", f"at most {WEBSOCKET_SUBPROTOCOLS_MAX}")


def _check_websocket(data: Mapping[str, Any], ingresses: tuple[HandlerDecl, ...], host_apis: tuple[str, ...], c: _Checker) -> None:
    """`[[websocket]]` targets, and connections: unique names across ingresses (v1
    let two sources collide), bounded in number, each URL inside a declared target."""
    raw = data.get("websocket")
    conns = [
        (f"ingresses[{i}].connections[{j}]", conn)
        for i, decl in enumerate(ingresses)
        for j, conn in enumerate(decl.raw.get("connections", []) if isinstance(decl.raw.get("connections"), list) else [])
        if isinstance(conn, dict)
    ]
    seen: set[str] = set()
    for where, conn in conns:
        name = conn.get("name")
        if isinstance(name, str) and name:
            if name in seen:
                c.add(f"{where}.name", f"duplicate connection {name!r} (names are unique across ingresses)")
            seen.add(name)
    if len(conns) > WEBSOCKET_CONNECTIONS_MAX:
        c.add("ingresses", f"{len(conns)} connections; at most {WEBSOCKET_CONNECTIONS_MAX} per plugin")
    if conns and "websocket" not in host_apis:
        c.add("host_apis", 'connections are declared but "websocket" is not in host_apis')
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        c.add("websocket", "must be an array of tables ([[websocket]])")
        return
    if raw or conns:
        # Imported lazily for the same reason as in `_check_request_targets`.
        from pdk.host.targets import TargetError, match_url, parse_targets

        try:
            targets = parse_targets(raw, websocket=True)
        except TargetError as exc:
            c.add(f"websocket{exc.key}" if exc.key.startswith("[") else "websocket", exc.message)
            return
        if raw and "websocket" not in host_apis:
            c.add("websocket", "[[websocket]] is declared but 'websocket' is not in host_apis")
        for where, conn in conns:
            url = conn.get("url")
            if isinstance(url, str) and url.startswith(("ws://", "wss://")):
                verdict = match_url(url, "GET", targets, targets)
                if not verdict:
                    c.add(f"{where}.url", f"is not inside any [[websocket]] target: {verdict.reason}")


def _parse_handlers(raw: Any, key: str, c: _Checker) -> tuple[HandlerDecl, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add(key, f"must be an array of tables ([[{key}]])")
        return ()
    out: list[HandlerDecl] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        path = f"{key}[{i}]"
        if not isinstance(entry, dict):
            c.add(path, "must be a table")
            continue
        c.unknown_keys(entry, _INGRESS_KEYS if key == "ingresses" else _SERVICE_KEYS, path)
        name = c.name(entry, path)
        if name in seen:
            c.add(f"{path}.name", f"duplicate name {name!r}")
        seen.add(name)
        if key == "ingresses":
            _check_ingress(entry, path, c)
        out.append(HandlerDecl(name, c.string(entry, "description", path, required=False), dict(entry)))
    if key == "services" and len(out) > 1:
        c.add(key, "a plugin has at most one service (one lifecycle per instance)")
    return tuple(out)


def _check_request_targets(raw: Any, c: _Checker) -> None:
    """`[[request]]`: the same target shape (and parser) as grants files use."""
    if raw is None:
        return
    if not isinstance(raw, list):
        c.add("request", "must be an array of tables ([[request]])")
        return
    if not raw:
        return
    targets = _targets_module()
    for i, entry in enumerate(raw):
        try:
            targets.Target.from_mapping(entry)
        except targets.TargetError as exc:
            c.add(f"request[{i}].{exc.key}" if exc.key else f"request[{i}]", exc.message)


def _targets_module() -> Any:
    """`pdk/host/targets.py`, the one target parser. Importing it as `pdk.host.targets`
    would run `pdk.host`'s `__init__`, which loads wasmtime (~0.3 s on every no-op
    `pdk build`); the module is standard library only, so it is loaded from its file
    under a private name instead, unless the host has already imported it. Only its
    verdicts are used here, so the two module objects never meet."""
    loaded = sys.modules.get("pdk.host.targets") or sys.modules.get(_TARGETS_PRIVATE)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(_TARGETS_PRIVATE, Path(__file__).resolve().parent.parent / "host" / "targets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_TARGETS_PRIVATE] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


_TARGETS_PRIVATE = "pdk.package._manifest_targets"


def _check_fs_roots(raw: Any, c: _Checker) -> None:
    """`[[fs]]`: a root name (the grant supplies its host path) and operations."""
    if raw is None:
        return
    if not isinstance(raw, list):
        c.add("fs", "must be an array of tables ([[fs]])")
        return
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        path = f"fs[{i}]"
        if not isinstance(entry, dict):
            c.add(path, "must be a table")
            continue
        c.unknown_keys(entry, _FS_KEYS, path)
        if "path" in entry:
            c.add(f"{path}.path", "host paths belong in the grants file; a manifest names the root only")
        name = c.string(entry, "name", path)
        if name and not _ROOT_NAME_RE.match(name):
            c.add(f"{path}.name", "must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit")
        if name in seen:
            c.add(f"{path}.name", f"duplicate root {name!r}")
        seen.add(name)
        if "operations" not in entry:
            c.add(f"{path}.operations", f"is required (a subset of {', '.join(FS_OPERATIONS)})")
        elif not c.string_list(entry, "operations", path, FS_OPERATIONS) and entry.get("operations") == []:
            c.add(f"{path}.operations", "must name at least one operation")


def parse_manifest(data: Mapping[str, Any], source: str = "plugin.toml") -> Manifest:
    """Validate a decoded `plugin.toml` and return its model, or raise `ManifestError`
    listing every problem."""
    c = _Checker()
    c.unknown_keys(data, _TOP_KEYS, "")
    version_field = data.get("schema_version")
    if version_field is None:
        c.add("schema_version", f"is required (this toolkit reads schema_version = {SCHEMA_VERSION})")
    elif version_field != SCHEMA_VERSION:
        c.add("schema_version", f"is {version_field!r}; this toolkit reads schema_version = {SCHEMA_VERSION}")
    plugin_id = c.string(data, "id", "")
    if plugin_id and (len(plugin_id) > PLUGIN_ID_MAX_LEN or not _ID_RE.match(plugin_id)):
        c.add("id", "must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit")
    name = c.string(data, "name", "")
    if len(name) > NAME_MAX_LEN:
        c.add("name", f"is longer than {NAME_MAX_LEN} characters")
    version = c.string(data, "version", "")
    if version and not _SEMVER_RE.match(version):
        c.add("version", f"{version!r} is not a semantic version (e.g. 0.1.0)")
    description = c.string(data, "description", "", required=False)
    surfaces = c.string_list(data, "surfaces", "", SURFACES)
    host_apis = c.string_list(data, "host_apis", "", HOST_APIS)
    runtime = _parse_runtime(data.get("runtime"), c)
    build = data.get("build", {})
    if not isinstance(build, dict):
        c.add("build", "must be a table")
        build = {}
    else:
        c.unknown_keys(build, _BUILD_KEYS, "build")
    tools = _parse_tools(data.get("tools"), c)
    services = _parse_handlers(data.get("services"), "services", c)
    ingresses = _parse_handlers(data.get("ingresses"), "ingresses", c)
    _check_request_targets(data.get("request"), c)
    _check_websocket(data, ingresses, host_apis, c)
    _check_fs_roots(data.get("fs"), c)

    if not surfaces:
        c.add("surfaces", f"must declare at least one surface ({', '.join(SURFACES)})")
    if runtime.world in WORLD_SURFACES:
        for s in surfaces:
            if s not in WORLD_SURFACES[runtime.world]:
                c.add("surfaces", f"{s!r} cannot be served by world {runtime.world!r}")
    if "services" in surfaces and not services:
        c.add("services", 'the "services" surface needs one [[services]] entry')
    if runtime.world in ("service", "ingress") and not ingresses:
        c.add("ingresses", f"world {runtime.world!r} handles events: declare at least one [[ingresses]] entry")
    for key, decls in (("tools", tools), ("services", services), ("ingresses", ingresses)):
        if decls and key not in surfaces:
            c.add(key, f"are declared but the surface {key!r} is not in surfaces")
    for key in ("request", "fs"):
        # Declarations the plugin could never use are a mistake, not a harmless extra.
        if data.get(key) and key not in host_apis and isinstance(data.get("host_apis", []), list):
            c.add(key, f"[[{key}]] is declared but {key!r} is not in host_apis")
    if c.problems:
        raise ManifestError(c.problems, source)
    return Manifest(
        id=plugin_id, name=name, version=version, description=description,
        surfaces=surfaces, host_apis=host_apis, runtime=runtime, tools=tools,
        services=services, ingresses=ingresses, build=dict(build), raw=dict(data),
    )


def parse_manifest_text(text: str | bytes, source: str = "plugin.toml") -> Manifest:
    try:
        data = tomllib.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError([Problem("", f"not valid TOML: {exc}")], source) from None
    return parse_manifest(data, source)


def load_manifest(plugin_dir: str | Path) -> Manifest:
    path = Path(plugin_dir) / "plugin.toml"
    if not path.is_file():
        raise ManifestError([Problem("", f"no plugin.toml in {Path(plugin_dir)}")], str(path))
    return parse_manifest_text(path.read_bytes(), str(path))
