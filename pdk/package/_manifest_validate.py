"""Validation of a decoded `plugin.toml` (schema_version 2) into the typed model.

Every problem is reported with its TOML path; unknown fields are rejected so a typo
never silently disables a declaration. Before any rule runs, the whole document is
walked once (without recursion) for its nesting depth and the size of every string,
so that no later step can recurse without bound or copy a huge value."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from pdk._contract import (
    FS_OPERATIONS,
    HOST_APIS,
    INGRESS_SOURCES,
    NAME_RE,
    NAME_RULE,
    PLUGIN_ID_RE,
    PLUGIN_ID_RULE,
    ROOT_NAME_RE,
    ROOT_NAME_RULE,
    SECRET_NAME_RE,
    SURFACES,
    WORLD_SURFACES,
    WORLDS,
    token_re,
)
from pdk.limits import (
    DESCRIPTION_MAX_BYTES,
    MANIFEST_KEY_MAX_BYTES,
    MANIFEST_NESTING_MAX,
    MANIFEST_STRING_MAX_BYTES,
    MAX_ATTEMPTS_MAX,
    NAME_MAX_LEN,
    QUEUE_CAPACITY_MAX,
    RETRY_BACKOFF_MAX_MS,
    TIMER_MAX_INTERVAL_MS,
    TIMER_MIN_INTERVAL_MS,
    WEBSOCKET_CONNECTIONS_MAX,
    WEBSOCKET_SUBPROTOCOLS_MAX,
)
from pdk.package._manifest_model import (
    BuildDecl,
    ConnectionDecl,
    FsDecl,
    HandlerDecl,
    Manifest,
    ManifestError,
    Problem,
    Runtime,
    TimerDecl,
    ToolDecl,
)
from pdk.package.archive import validate_path
from pdk.package.errors import PackageError
from pdk.package.schema_pattern import pattern_problem
from pdk.package.targets import Target, TargetError, match_url, parse_targets

SCHEMA_VERSION = 2
RUNTIME_KIND = "wasm-component"

SCHEMA_KEYWORDS = frozenset(
    {
        "type", "title", "description", "properties", "required", "additionalProperties",
        "items", "enum", "const", "default", "anyOf", "minimum", "maximum", "minLength",
        "maxLength", "minItems", "maxItems", "pattern", "format", "examples",
    }
)
SCHEMA_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})

_SEMVER_RE_TEXT = r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"

_TOP_KEYS = {
    "schema_version", "id", "name", "version", "description", "surfaces", "host_apis",
    "runtime", "build", "tools", "services", "ingresses", "request", "fs", "websocket",
}
_RUNTIME_KEYS = {"kind", "world", "component"}
_BUILD_KEYS = {"module", "sources", "plugin", "preload", "dependencies"}
_TOOL_KEYS = {"name", "description", "input_schema"}
_FS_KEYS = {"name", "operations"}
_SERVICE_KEYS = {"name", "description"}
_INGRESS_KEYS = {
    "name", "description", "sources", "event_kinds", "payload_schema", "http_path", "timer",
    "queue_capacity", "max_attempts", "retry_backoff_ms", "connections",
}
_CONNECTION_KEYS = {"name", "url", "event_kinds", "subprotocols", "secrets"}

_SEMVER_RE = re.compile(_SEMVER_RE_TEXT)
_PATH_RE = re.compile(r"/[A-Za-z0-9._~/-]*")
_SUBPROTOCOL_RE = token_re(64)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, code: str = "") -> None:
        self.problems.append(Problem(path, message, code))

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

    def description(self, table: Mapping[str, Any], path: str, *, required: bool) -> str:
        value = self.string(table, "description", path, required=required)
        if len(value.encode("utf-8", "surrogatepass")) > DESCRIPTION_MAX_BYTES:
            self.add(f"{path}.description" if path else "description", f"is longer than {DESCRIPTION_MAX_BYTES} bytes")
        return value

    def name(self, table: Mapping[str, Any], path: str) -> str:
        """The required `name` of a tool, service, ingress or connection."""
        value = self.string(table, "name", path)
        if value and not NAME_RE.fullmatch(value):
            self.add(f"{path}.name", f"must be {NAME_RULE}")
        return value

    def string_list(self, table: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        where = f"{path}.{key}" if path else key
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(where, "must be a list of strings")
            return ()
        for v in value:
            if v not in allowed:
                close = difflib.get_close_matches(v, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.add(where, f"unknown value {v!r} (allowed: {', '.join(allowed)}){hint}")
        if len(set(value)) != len(value):
            self.add(where, "has duplicates")
        return tuple(v for v in value if v in allowed)

    def pattern_list(self, table: Mapping[str, Any], key: str, path: str, ok: Callable[[str], bool], what: str) -> tuple[str, ...] | None:
        """An optional list of strings that each pass `ok`; None when absent or invalid."""
        if key not in table:
            return None
        values = table[key]
        if not isinstance(values, list) or not all(isinstance(v, str) and ok(v) for v in values):
            self.add(f"{path}.{key}", f"must be a list of {what}")
            return None
        if len(set(values)) != len(values):
            self.add(f"{path}.{key}", "has duplicates")
        return tuple(values)

    def int_in(self, table: Mapping[str, Any], key: str, path: str, lo: int, hi: int) -> int | None:
        if key not in table:
            return None
        v = table[key]
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            self.add(f"{path}.{key}", f"must be an integer from {lo} to {hi}")
            return None
        return v


def _toml_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


# -- the whole document: depth and string sizes -------------------------------------------------


def _check_shape(data: Mapping[str, Any], c: _Checker) -> bool:
    """Walk every value once, iteratively: nesting deeper than `MANIFEST_NESTING_MAX`,
    keys longer than `MANIFEST_KEY_MAX_BYTES` and strings longer than
    `MANIFEST_STRING_MAX_BYTES` are problems. False when the document is too deep for
    the other checks to walk."""
    too_deep = False
    stack: list[tuple[str, Any, int]] = [("", data, 1)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > MANIFEST_STRING_MAX_BYTES or len(value.encode("utf-8", "surrogatepass")) > MANIFEST_STRING_MAX_BYTES:
                c.add(path, f"is a string longer than {MANIFEST_STRING_MAX_BYTES} bytes")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MANIFEST_NESTING_MAX:
            c.add(path, f"is nested more than {MANIFEST_NESTING_MAX} tables or arrays deep")
            too_deep = True
            continue
        if isinstance(value, dict):
            children: list[tuple[str, Any]] = []
            for key, child in value.items():
                if len(key) > MANIFEST_KEY_MAX_BYTES or len(key.encode("utf-8", "surrogatepass")) > MANIFEST_KEY_MAX_BYTES:
                    c.add(path, f"has a key longer than {MANIFEST_KEY_MAX_BYTES} bytes")
                    continue
                children.append((f"{path}.{key}" if path else key, child))
        else:
            children = [(f"{path}[{i}]", child) for i, child in enumerate(value)]
        stack.extend((p, v, depth + 1) for p, v in reversed(children))
    return not too_deep


# -- input and payload schemas ------------------------------------------------------------------


def check_schema_subset(schema: Any, path: str, out: list[Problem], *, root: bool = True) -> None:
    """Accept only the JSON Schema subset the host validates and models understand.
    Recursive; the document's depth is bounded before this runs."""
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
    if "pattern" in schema and (problem := pattern_problem(schema["pattern"])) is not None:
        out.append(Problem(f"{path}.pattern", problem))  # the host runs patterns with RE2


# -- sections -----------------------------------------------------------------------------------


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
        # The package reader's own path rule, so that a manifest it accepts names a file
        # a package can hold; its code (e.g. `path_traversal`) travels with the problem.
        try:
            validate_path(component)
            bad_code = "" if component.endswith(".wasm") else "bad_manifest"
        except PackageError as exc:
            bad_code = exc.code
        if bad_code:
            c.add("runtime.component", "must be a relative path inside the package ending in .wasm", bad_code)
    return Runtime(kind, world, component)


def _parse_build(raw: Any, c: _Checker) -> BuildDecl:
    if raw is None:
        return BuildDecl()
    if not isinstance(raw, dict):
        c.add("build", "must be a table")
        return BuildDecl()
    c.unknown_keys(raw, _BUILD_KEYS, "build")
    module = c.string(raw, "module", "build", required=False) or None
    plugin = c.string(raw, "plugin", "build", required=False) or None
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("sources", "preload", "dependencies"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            c.add(f"build.{key}", "must be a list of non-empty strings")
            value = []
        lists[key] = tuple(value)
    dependencies = lists["dependencies"] if "dependencies" in raw else None
    return BuildDecl(module=module, sources=lists["sources"], plugin=plugin, preload=lists["preload"], dependencies=dependencies)


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
        description = c.description(entry, path, required=True)
        schema = entry.get("input_schema", {"type": "object"})
        found: list[Problem] = []
        check_schema_subset(schema, f"{path}.input_schema", found)
        c.problems.extend(found)
        tools.append(ToolDecl(name, description, schema if isinstance(schema, dict) else {}))
    return tuple(tools)


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
        description = c.description(entry, path, required=False)
        if key == "ingresses":
            out.append(_parse_ingress(entry, path, name, description, c))
        else:
            out.append(HandlerDecl(name, description))
    if key == "services" and len(out) > 1:
        c.add(key, "a plugin has at most one service (one lifecycle per instance)")
    return tuple(out)


def _parse_ingress(entry: Mapping[str, Any], path: str, name: str, description: str, c: _Checker) -> HandlerDecl:
    sources = c.string_list(entry, "sources", path, INGRESS_SOURCES) if "sources" in entry else ("manual",)
    kinds = entry.get("event_kinds")
    event_kinds: tuple[str, ...] = ()
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) and NAME_RE.fullmatch(k) for k in kinds):
        c.add(f"{path}.event_kinds", "must be a non-empty list of kind names ([a-z0-9_.-])")
    else:
        event_kinds = tuple(kinds)
    payload_schema: dict[str, Any] | None = None
    if "payload_schema" in entry:
        found: list[Problem] = []
        check_schema_subset(entry["payload_schema"], f"{path}.payload_schema", found, root=False)
        c.problems.extend(found)
        if isinstance(entry["payload_schema"], dict):
            payload_schema = entry["payload_schema"]
    http_path: str | None = None
    if "http" in sources:
        value = entry.get("http_path")
        if not isinstance(value, str) or not _PATH_RE.fullmatch(value) or "//" in value or "/../" in value + "/":
            c.add(f"{path}.http_path", 'is required for the "http" source: an absolute path such as "/hooks/github"')
        else:
            http_path = value
    elif "http_path" in entry:
        c.add(f"{path}.http_path", 'is only used with the "http" source')
    timer: TimerDecl | None = None
    if "timer" in sources:
        table = entry.get("timer")
        if not isinstance(table, dict) or set(table) - {"interval_ms"}:
            c.add(f"{path}.timer", 'is required for the "timer" source: {interval_ms = N}')
        elif "interval_ms" not in table:
            c.add(f"{path}.timer.interval_ms", "is required")
        else:
            interval = c.int_in(table, "interval_ms", f"{path}.timer", TIMER_MIN_INTERVAL_MS, TIMER_MAX_INTERVAL_MS)
            timer = TimerDecl(interval) if interval is not None else None
    return HandlerDecl(
        name=name,
        description=description,
        sources=sources,
        event_kinds=event_kinds,
        payload_schema=payload_schema,
        http_path=http_path,
        timer=timer,
        queue_capacity=c.int_in(entry, "queue_capacity", path, 1, QUEUE_CAPACITY_MAX),
        max_attempts=c.int_in(entry, "max_attempts", path, 1, MAX_ATTEMPTS_MAX),
        retry_backoff_ms=c.int_in(entry, "retry_backoff_ms", path, 0, RETRY_BACKOFF_MAX_MS),
        connections=_parse_connections(entry, path, name, sources, event_kinds, c),
    )


def _parse_connections(
    entry: Mapping[str, Any], path: str, ingress: str, sources: tuple[str, ...], ingress_kinds: tuple[str, ...], c: _Checker
) -> tuple[ConnectionDecl, ...]:
    connections = entry.get("connections", [])
    if not isinstance(connections, list):
        c.add(f"{path}.connections", "must be an array of tables")
        return ()
    if connections and "websocket" not in sources:
        c.add(f"{path}.connections", 'need the "websocket" source')
    out: list[ConnectionDecl] = []
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
        # `event_kinds` narrows the ingress's kinds; `subprotocols` are HTTP tokens;
        # `secrets` name grant secrets sent as handshake headers.
        kinds = c.pattern_list(conn, "event_kinds", cpath, lambda v: NAME_RE.fullmatch(v) is not None, "kind names ([a-z0-9_.-])")
        for kind in kinds or ():
            if kind not in ingress_kinds:
                c.add(f"{cpath}.event_kinds", f"{kind!r} is not among the ingress's event_kinds")
        subprotocols = c.pattern_list(conn, "subprotocols", cpath, lambda v: _SUBPROTOCOL_RE.fullmatch(v) is not None, "subprotocol names (HTTP tokens)")
        if subprotocols is not None and len(subprotocols) > WEBSOCKET_SUBPROTOCOLS_MAX:
            c.add(f"{cpath}.subprotocols", f"at most {WEBSOCKET_SUBPROTOCOLS_MAX}")
        secrets = c.pattern_list(conn, "secrets", cpath, lambda v: SECRET_NAME_RE.fullmatch(v) is not None, "secret names as in the grants file")
        out.append(
            ConnectionDecl(
                ingress=ingress,
                name=name,
                url=url,
                event_kinds=kinds if kinds is not None else ingress_kinds,
                subprotocols=subprotocols or (),
                secrets=secrets or (),
            )
        )
    return tuple(out)


def _request_targets(raw: Any, c: _Checker) -> tuple[Target, ...]:
    """`[[request]]`: the same target shape (and parser) as grants files use. Every
    bad target is reported."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add("request", "must be an array of tables ([[request]])")
        return ()
    targets: list[Target] = []
    for i, entry in enumerate(raw):
        try:
            targets.append(Target.from_mapping(entry))
        except TargetError as exc:
            c.add(f"request[{i}].{exc.key}" if exc.key else f"request[{i}]", exc.message)
    return tuple(targets)


def _websocket_targets(data: Mapping[str, Any], ingresses: tuple[HandlerDecl, ...], host_apis: tuple[str, ...], c: _Checker) -> tuple[Target, ...]:
    """`[[websocket]]` targets, and connections: unique names across ingresses (v1
    let two sources collide), bounded in number, each URL inside a declared target."""
    conns = [
        (f"ingresses[{i}].connections[{j}]", conn)
        for i, decl in enumerate(ingresses)
        for j, conn in enumerate(decl.connections)
    ]
    seen: set[str] = set()
    for where, conn in conns:
        if conn.name:
            if conn.name in seen:
                c.add(f"{where}.name", f"duplicate connection {conn.name!r} (names are unique across ingresses)")
            seen.add(conn.name)
    if len(conns) > WEBSOCKET_CONNECTIONS_MAX:
        c.add("ingresses", f"{len(conns)} connections; at most {WEBSOCKET_CONNECTIONS_MAX} per plugin")
    if conns and "websocket" not in host_apis:
        c.add("host_apis", 'connections are declared but "websocket" is not in host_apis')
    raw = data.get("websocket", [])
    if not isinstance(raw, list):
        c.add("websocket", "must be an array of tables ([[websocket]])")
        return ()
    if not raw and not conns:
        return ()
    try:
        targets = parse_targets(raw, websocket=True)
    except TargetError as exc:
        c.add(f"websocket{exc.key}" if exc.key.startswith("[") else "websocket", exc.message)
        return ()
    if raw and "websocket" not in host_apis:
        c.add("websocket", "[[websocket]] is declared but 'websocket' is not in host_apis")
    for where, conn in conns:
        if conn.url.startswith(("ws://", "wss://")):
            verdict = match_url(conn.url, "GET", targets, targets)
            if not verdict:
                c.add(f"{where}.url", f"is not inside any [[websocket]] target: {verdict.reason}")
    return targets


def _fs_roots(raw: Any, c: _Checker) -> tuple[FsDecl, ...]:
    """`[[fs]]`: a root name (the grant supplies its host path) and operations."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add("fs", "must be an array of tables ([[fs]])")
        return ()
    roots: list[FsDecl] = []
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
        if name and not ROOT_NAME_RE.fullmatch(name):
            c.add(f"{path}.name", f"must be {ROOT_NAME_RULE}")
        if name in seen:
            c.add(f"{path}.name", f"duplicate root {name!r}")
        seen.add(name)
        operations: tuple[str, ...] = ()
        if "operations" not in entry:
            c.add(f"{path}.operations", f"is required (a subset of {', '.join(FS_OPERATIONS)})")
        else:
            operations = c.string_list(entry, "operations", path, FS_OPERATIONS)
            if not operations and entry.get("operations") == []:
                c.add(f"{path}.operations", "must name at least one operation")
        roots.append(FsDecl(name, operations))
    return tuple(roots)


# -- the document -------------------------------------------------------------------------------


def validate(data: Mapping[str, Any], source: str = "plugin.toml") -> Manifest:
    """Validate a decoded `plugin.toml` and return its model, or raise `ManifestError`
    listing every problem."""
    c = _Checker()
    if not isinstance(data, Mapping):
        raise ManifestError([Problem("", "a manifest must be a table")], source)
    if not _check_shape(data, c):
        raise ManifestError(c.problems, source)
    c.unknown_keys(data, _TOP_KEYS, "")
    version_field = data.get("schema_version")
    if version_field is None:
        c.add("schema_version", f"is required (this toolkit reads schema_version = {SCHEMA_VERSION})")
    elif version_field != SCHEMA_VERSION:
        c.add("schema_version", f"is {version_field!r}; this toolkit reads schema_version = {SCHEMA_VERSION}")
    plugin_id = c.string(data, "id", "")
    if plugin_id and not PLUGIN_ID_RE.fullmatch(plugin_id):
        c.add("id", f"must be {PLUGIN_ID_RULE} (got {plugin_id[:80]!r})")
    name = c.string(data, "name", "")
    if len(name) > NAME_MAX_LEN:
        c.add("name", f"is longer than {NAME_MAX_LEN} characters")
    version = c.string(data, "version", "")
    if version and not _SEMVER_RE.fullmatch(version):
        c.add("version", f"{version!r} is not a semantic version (e.g. 0.1.0)")
    description = c.description(data, "", required=False)
    surfaces = c.string_list(data, "surfaces", "", SURFACES)
    host_apis = c.string_list(data, "host_apis", "", HOST_APIS)
    runtime = _parse_runtime(data.get("runtime"), c)
    build = _parse_build(data.get("build"), c)
    tools = _parse_tools(data.get("tools"), c)
    services = _parse_handlers(data.get("services"), "services", c)
    ingresses = _parse_handlers(data.get("ingresses"), "ingresses", c)
    request_targets = _request_targets(data.get("request"), c)
    websocket_targets = _websocket_targets(data, ingresses, host_apis, c)
    fs_roots = _fs_roots(data.get("fs"), c)

    if not surfaces and not any(p.path == "surfaces" for p in c.problems):
        c.add("surfaces", f"must declare at least one surface (one or more of: {', '.join(SURFACES)})")
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
        services=services, ingresses=ingresses, build=build,
        request_targets=request_targets, websocket_targets=websocket_targets, fs_roots=fs_roots,
    )
