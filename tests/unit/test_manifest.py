"""`plugin.toml` validation: every problem located by its TOML path, unknown fields
rejected, the retired core-Wasm runtime refused with a clear message."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml  # type: ignore[import-untyped]

from pdk._contract import PLUGIN_ID_PATTERN, PLUGIN_ID_RULE
from pdk.limits import DESCRIPTION_MAX_BYTES, MANIFEST_KEY_MAX_BYTES, MANIFEST_MAX_BYTES, MANIFEST_NESTING_MAX, MANIFEST_STRING_MAX_BYTES
from pdk.package.manifest import (
    BuildDecl,
    ConnectionDecl,
    FsDecl,
    HandlerDecl,
    Manifest,
    ManifestError,
    Problem,
    TimerDecl,
    load_manifest,
    parse_manifest,
    parse_manifest_text,
)

ROOT = Path(__file__).resolve().parents[2]

VALID = """
schema_version = 2
id = "text-tools"
name = "Text tools"
version = "0.1.0"
description = "Counts words."
surfaces = ["tools"]
host_apis = ["log"]

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/plugin.wasm"

[build]
module = "app"
sources = ["app.py"]

[[tools]]
name = "word_count"
description = "Count the words in a text."

[tools.input_schema]
type = "object"
required = ["text"]
additionalProperties = false

[tools.input_schema.properties]
text = {type = "string", description = "The text."}
unique = {type = "boolean", default = false}
"""


def valid() -> dict[str, Any]:
    return tomllib.loads(VALID)


def problems_of(data: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data)
    return info.value.problems


def paths_of(data: dict[str, Any]) -> list[str]:
    return [p.path for p in problems_of(data)]


def test_valid_manifest_parses_into_the_model() -> None:
    m = parse_manifest_text(VALID)
    assert isinstance(m, Manifest)
    assert (m.id, m.name, m.version, m.surfaces, m.host_apis) == ("text-tools", "Text tools", "0.1.0", ("tools",), ("log",))
    assert (m.runtime.kind, m.runtime.world, m.runtime.component) == ("wasm-component", "tool", "build/plugin.wasm")
    assert m.build == BuildDecl(module="app", sources=("app.py",))
    tool = m.tool("word_count")
    assert tool is not None and tool.input_schema["required"] == ["text"]
    assert m.tool("missing") is None
    assert m.referenced_files == ("build/plugin.wasm",)


def test_the_example_manifest_is_valid() -> None:
    m = load_manifest(ROOT / "examples" / "text-tools")
    assert m.id == "text-tools" and [t.name for t in m.tools] == ["text_stats", "reshape"]


def test_parse_manifest_text_accepts_bytes_and_reports_bad_toml() -> None:
    assert parse_manifest_text(VALID.encode()).id == "text-tools"
    with pytest.raises(ManifestError) as info:
        parse_manifest_text("id = ", source="x/plugin.toml")
    assert info.value.problems[0].message.startswith("not valid TOML")
    assert str(info.value).startswith("x/plugin.toml: not valid TOML")
    with pytest.raises(ManifestError):
        parse_manifest_text(b"\xff\xfe")


def test_a_text_parsed_again_gives_the_same_model_and_a_refused_one_is_refused_again() -> None:
    # Warm loads parse the same plugin.toml again; the model of a text is remembered.
    first = parse_manifest_text(VALID, source="a/plugin.toml")
    assert parse_manifest_text(VALID, source="a/plugin.toml") is first
    changed = parse_manifest_text(VALID.replace('version = "0.1.0"', 'version = "0.2.0"'), source="a/plugin.toml")
    assert (first.version, changed.version) == ("0.1.0", "0.2.0")
    # The source names the file in messages, so it is part of what is remembered.
    for source in ("a/plugin.toml", "b/plugin.toml", "a/plugin.toml"):
        with pytest.raises(ManifestError) as info:
            parse_manifest_text("id = 1", source=source)
        assert str(info.value).startswith(f"{source}: ")


# -- unknown fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d.update(nmae="typo"), "nmae"),
        (lambda d: d["runtime"].update(wrld="tool"), "runtime.wrld"),
        (lambda d: d["build"].update(modules=["app"]), "build.modules"),
        (lambda d: d["tools"][0].update(inputs={}), "tools[0].inputs"),
        (lambda d: d.update(permissions={"net": True}), "permissions"),
    ],
)
def test_unknown_fields_are_rejected_with_their_path(edit: Any, path: str) -> None:
    data = valid()
    edit(data)
    problems = problems_of(data)
    assert [p.path for p in problems] == [path]
    assert problems[0].message.startswith("unknown field (allowed: ")


def test_every_problem_is_reported_at_once() -> None:
    data = valid()
    data.update(nmae="x", version="1.0", id="-x")
    data["runtime"]["world"] = "tools"
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, "dir/plugin.toml")
    assert {p.path for p in info.value.problems} == {"nmae", "id", "version", "runtime.world"}
    assert str(info.value).startswith("dir/plugin.toml: ")
    assert str(info.value).endswith("(and 3 more)")


# -- runtime ----------------------------------------------------------------------------------


def test_the_retired_wasm_runtime_is_refused_with_a_clear_message() -> None:
    data = valid()
    data["runtime"]["kind"] = "wasm"
    (problem,) = problems_of(data)
    assert problem.path == "runtime.kind"
    assert "retired" in problem.message
    assert '"wasm-component" is the only runtime' in problem.message
    assert "pdk build" in problem.message


@pytest.mark.parametrize(
    ("field", "value", "path", "fragment"),
    [
        ("kind", "docker", "runtime.kind", "unknown runtime 'docker'"),
        ("world", "tools", "runtime.world", "unknown world 'tools'"),
        ("component", "../plugin.wasm", "runtime.component", "relative path inside the package"),
        ("component", "/abs/plugin.wasm", "runtime.component", "relative path inside the package"),
        ("component", "build\\plugin.wasm", "runtime.component", "relative path inside the package"),
        ("component", "build/plugin.bin", "runtime.component", "ending in .wasm"),
        ("component", 7, "runtime.component", "must be a string, got integer"),
    ],
)
def test_bad_runtime_values(field: str, value: Any, path: str, fragment: str) -> None:
    data = valid()
    data["runtime"][field] = value
    found = [p for p in problems_of(data) if p.path == path]
    assert found and fragment in found[0].message


def test_missing_runtime_table_and_fields() -> None:
    data = valid()
    del data["runtime"]
    assert paths_of(data) == ["runtime"]
    data = valid()
    data["runtime"] = {}
    assert sorted(paths_of(data)) == ["runtime.component", "runtime.kind", "runtime.world"]


# -- identity ---------------------------------------------------------------------------------


# One id rule everywhere (`pdk._contract.PLUGIN_ID_PATTERN`): the templates' validators,
# the manifest and grants files; test_import_rules.py checks the templates use it.
@pytest.mark.parametrize(
    "plugin_id",
    ["-lead", ".hidden", "has space", "slash/id", "ünïcode", "a" * 64, "Bad_ID", "9lives", "a.b", "a_b", "trailing-", "x\n"],
)
def test_bad_ids(plugin_id: str) -> None:
    data = valid()
    data["id"] = plugin_id
    (problem,) = problems_of(data)
    assert problem.path == "id" and problem.message.startswith(f"must be {PLUGIN_ID_RULE} (got ")


@pytest.mark.parametrize("plugin_id", ["a", "a-b-c-1", "lives9", "x" * 63])
def test_good_ids(plugin_id: str) -> None:
    data = valid()
    data["id"] = plugin_id
    assert parse_manifest(data).id == plugin_id


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0.0", "1.0.0-", "latest"])
def test_bad_versions(version: str) -> None:
    data = valid()
    data["version"] = version
    (problem,) = problems_of(data)
    assert problem.path == "version" and "is not a semantic version" in problem.message


@pytest.mark.parametrize("version", ["0.0.0", "1.2.3-rc.1", "1.2.3+build.5", "10.20.30-alpha.1+meta"])
def test_good_versions(version: str) -> None:
    data = valid()
    data["version"] = version
    assert parse_manifest(data).version == version


@pytest.mark.parametrize(("value", "fragment"), [(None, "is required"), (1, "is 1; this toolkit reads schema_version = 2")])
def test_schema_version(value: Any, fragment: str) -> None:
    data = valid()
    if value is None:
        del data["schema_version"]
    else:
        data["schema_version"] = value
    (problem,) = problems_of(data)
    assert problem.path == "schema_version" and fragment in problem.message


def test_required_strings_and_types() -> None:
    data = valid()
    del data["id"]
    data["name"] = 5
    problems = {p.path: p.message for p in problems_of(data)}
    assert problems == {"id": "is required", "name": "must be a string, got integer"}


# -- surfaces vs world ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("world", "surfaces", "message"),
    [
        ("tool", ["services"], "'services' cannot be served by world 'tool'"),
        ("service", ["tools"], "'tools' cannot be served by world 'service'"),
        ("ingress", ["services"], "'services' cannot be served by world 'ingress'"),
    ],
)
def test_surfaces_must_be_served_by_the_world(world: str, surfaces: list[str], message: str) -> None:
    data = valid()
    del data["tools"]
    data["runtime"]["world"] = world
    data["surfaces"] = surfaces
    assert Problem("surfaces", message) in problems_of(data)


@pytest.mark.parametrize(
    ("world", "surfaces"),
    [("plugin", ["tools", "services", "ingresses"]), ("service", ["services", "ingresses"]), ("ingress", ["ingresses"])],
)
def test_surfaces_a_world_can_serve(world: str, surfaces: list[str]) -> None:
    data = valid()
    del data["tools"]
    data["runtime"]["world"] = world
    data["surfaces"] = surfaces
    # Event-handling surfaces need their declarations (a service needs its [[services]]).
    if "services" in surfaces:
        data["services"] = [{"name": "svc"}]
    if "ingresses" in surfaces:
        data["ingresses"] = [{"name": "inbox", "event_kinds": ["message"]}]
    assert parse_manifest(data).surfaces == tuple(surfaces)


def test_surface_lists_are_checked() -> None:
    data = valid()
    data["surfaces"] = []
    assert [p for p in problems_of(data) if p.path == "surfaces"][0].message.startswith("must declare at least one surface")
    data = valid()
    data["surfaces"] = ["tools", "widgets", "tools"]
    messages = [p.message for p in problems_of(data) if p.path == "surfaces"]
    assert any("unknown value 'widgets'" in m for m in messages) and "has duplicates" in messages
    data = valid()
    data["host_apis"] = ["net"]
    assert [p.path for p in problems_of(data)] == ["host_apis"]


def test_tools_declared_without_the_tools_surface() -> None:
    data = valid()
    data["runtime"]["world"] = "plugin"
    data["surfaces"] = ["services"]
    assert Problem("tools", "are declared but the surface 'tools' is not in surfaces") in problems_of(data)


# -- tools and input schemas ------------------------------------------------------------------


def with_schema(schema: Any) -> dict[str, Any]:
    data = valid()
    data["tools"][0]["input_schema"] = schema
    return data


SCHEMA = "tools[0].input_schema"


@pytest.mark.parametrize(
    ("schema", "path", "fragment"),
    [
        ({"type": "object", "oneOf": []}, f"{SCHEMA}.oneOf", "unsupported JSON Schema keyword"),
        ({"type": "object", "$ref": "#/x"}, f"{SCHEMA}.$ref", "unsupported JSON Schema keyword"),
        (
            {"type": "object", "properties": {"a": {"type": "string", "if": {}}}},
            f"{SCHEMA}.properties.a.if",
            "unsupported JSON Schema keyword",
        ),
        ({"type": "array", "items": {"type": "string"}}, f"{SCHEMA}.type", 'the root of an input schema must be "object"'),
        ({"properties": {}}, f"{SCHEMA}.type", 'the root of an input schema must be "object"'),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]}, f"{SCHEMA}.required", "names 'b', which is not a property"),
        ({"type": "object", "required": "a"}, f"{SCHEMA}.required", "must be a list of property names"),
        ({"type": "object", "properties": {"a": {"type": "text"}}}, f"{SCHEMA}.properties.a.type", "unknown type 'text'"),
        ({"type": "object", "properties": {"a": {"type": "array", "items": 3}}}, f"{SCHEMA}.properties.a.items", "must be a schema or a boolean"),
        ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"not": {}}]}}}, f"{SCHEMA}.properties.a.anyOf[1].not", "unsupported"),
        ({"type": "object", "properties": {"a": {"enum": "x"}}}, f"{SCHEMA}.properties.a.enum", "must be a list"),
        ({"type": "object", "properties": []}, f"{SCHEMA}.properties", "must be a table"),
        ("object", SCHEMA, "a schema must be a table"),
    ],
)
def test_bad_input_schemas(schema: Any, path: str, fragment: str) -> None:
    problems = problems_of(with_schema(schema))
    assert any(p.path == path and fragment in p.message for p in problems), problems


def test_the_supported_subset_is_accepted() -> None:
    schema = {
        "type": "object",
        "title": "Input",
        "description": "All keywords.",
        "additionalProperties": False,
        "required": ["a"],
        "properties": {
            "a": {"type": "string", "minLength": 1, "maxLength": 9, "pattern": "^x", "format": "date", "examples": ["x"]},
            "b": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 5}, "minItems": 1, "maxItems": 3},
            "c": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": "d"},
            "d": {"enum": ["x", "y"]},
            "e": {"const": 1},
            "f": {"type": "object", "additionalProperties": {"type": "number"}},
            "g": {"type": ["string", "null"]},
        },
    }
    assert parse_manifest(with_schema(schema)).tools[0].input_schema == schema


def test_a_missing_input_schema_means_an_empty_object() -> None:
    data = valid()
    del data["tools"][0]["input_schema"]
    assert parse_manifest(data).tools[0].input_schema == {"type": "object"}


def test_tool_entries_are_checked() -> None:
    data = valid()
    data["tools"].append(copy.deepcopy(data["tools"][0]))
    data["tools"].append({"name": "Bad Name", "description": "x" * 5000})
    data["tools"].append({"description": "nameless"})
    problems = {(p.path, p.message) for p in problems_of(data)}
    assert ("tools[1].name", "duplicate tool 'word_count'") in problems
    assert ("tools[2].name", "must be 1-64 of [a-z0-9_.-], starting with a letter") in problems
    assert ("tools[2].description", "is longer than 4096 bytes") in problems
    assert ("tools[3].name", "is required") in problems


def test_tools_must_be_an_array_of_tables() -> None:
    data = valid()
    data["tools"] = {"name": "x"}
    assert paths_of(data) == ["tools"]


# -- the typed model: everything a manifest declares ------------------------------------------

INGRESS_MANIFEST = """
schema_version = 2
id = "inbox"
name = "Inbox"
version = "0.1.0"
surfaces = ["services", "ingresses"]
host_apis = ["log", "request", "fs", "websocket"]

[runtime]
kind = "wasm-component"
world = "service"
component = "build/inbox.wasm"

[build]
module = "inbox.app"
sources = ["inbox"]
plugin = "bot"
preload = ["json"]

[[services]]
name = "bot"

[[ingresses]]
name = "hooks"
description = "Webhooks and ticks."
sources = ["http", "timer", "websocket"]
event_kinds = ["push", "tick", "text"]
http_path = "/hooks/inbox"
timer = {interval_ms = 1500}
queue_capacity = 32
max_attempts = 4
retry_backoff_ms = 250
payload_schema = {type = "object", required = ["ref"], properties = {ref = {type = "string"}}}

[[ingresses.connections]]
name = "chat"
url = "wss://chat.example.com/v1/socket"
event_kinds = ["text"]
subprotocols = ["chat.v1"]
secrets = ["bot_token"]

[[ingresses.connections]]
name = "all"
url = "wss://chat.example.com/v1/all"

[[ingresses]]
name = "manual"
event_kinds = ["note"]

[[request]]
scheme = "https"
host = "api.example.com"
methods = ["POST"]
path_prefixes = ["/v2"]

[[websocket]]
scheme = "wss"
host = "chat.example.com"
path_prefixes = ["/v1"]

[[fs]]
name = "data"
operations = ["read", "write"]
"""


def test_every_declaration_is_typed() -> None:
    m = parse_manifest_text(INGRESS_MANIFEST)
    assert m.build == BuildDecl(module="inbox.app", sources=("inbox",), plugin="bot", preload=("json",))
    assert m.services == (HandlerDecl("bot", ""),)
    hooks = m.ingress("hooks")
    assert hooks is not None and m.ingress("nope") is None
    assert (hooks.sources, hooks.event_kinds, hooks.http_path) == (("http", "timer", "websocket"), ("push", "tick", "text"), "/hooks/inbox")
    assert (hooks.timer, hooks.queue_capacity, hooks.max_attempts, hooks.retry_backoff_ms) == (TimerDecl(1500), 32, 4, 250)
    assert hooks.payload_schema == {"type": "object", "required": ["ref"], "properties": {"ref": {"type": "string"}}}
    assert hooks.connections == (
        ConnectionDecl("hooks", "chat", "wss://chat.example.com/v1/socket", ("text",), ("chat.v1",), ("bot_token",)),
        # No event_kinds of its own: every kind of its ingress.
        ConnectionDecl("hooks", "all", "wss://chat.example.com/v1/all", ("push", "tick", "text")),
    )
    assert m.connections == hooks.connections
    manual = m.ingress("manual")
    assert manual == HandlerDecl("manual", "", ("manual",), ("note",))
    assert (manual.timer, manual.http_path, manual.queue_capacity, manual.connections) == (None, None, None, ())
    assert [(t.scheme, t.host, t.methods, t.path_prefixes) for t in m.request_targets] == [("https", "api.example.com", ("POST",), ("/v2",))]
    assert [(t.scheme, t.host, t.path_prefixes) for t in m.websocket_targets] == [("wss", "chat.example.com", ("/v1",))]
    assert m.fs_roots == (FsDecl("data", ("read", "write")),)


def test_the_model_is_frozen() -> None:
    m = parse_manifest_text(INGRESS_MANIFEST)
    with pytest.raises(AttributeError):
        m.id = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m.ingresses[0].timer = None  # type: ignore[misc]


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({"module": 3}, "build.module"),
        ({"sources": "app.py"}, "build.sources"),
        ({"preload": [1]}, "build.preload"),
        ({"plugin": ["x"]}, "build.plugin"),
    ],
)
def test_build_values_are_typed(table: dict[str, Any], path: str) -> None:
    data = valid()
    data["build"] = table
    assert paths_of(data) == [path]


# -- rough edges: what the author is told ------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "line", "column"),
    [("broken = [", 2, 11), ("broken = [\n", 3, 1), ('broken = "open', 2, 15), ("broken = {a = 1,", 2, 17)],
)
def test_a_syntax_error_at_the_end_names_its_line_and_column(tail: str, line: int, column: int) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest_text('id = "x"\n' + tail)
    (problem,) = info.value.problems
    assert f"(at line {line}, column {column}: the end of the file)" in problem.message
    assert "\\x00" not in problem.message


def test_a_syntax_error_elsewhere_keeps_tomllib_location() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest_text('id = "x"\n[runtime\nkind = 1\n')
    assert "(at line 2, column 9)" in info.value.problems[0].message


@pytest.mark.parametrize(("value", "suggestion"), [("tool", "tools"), ("service", "services"), ("ingres", "ingresses")])
def test_an_unknown_surface_names_the_valid_ones(value: str, suggestion: str) -> None:
    data = valid()
    data["surfaces"] = [value]
    messages = [p.message for p in problems_of(data) if p.path == "surfaces"]
    assert messages == [f"unknown value {value!r} (allowed: tools, services, ingresses); did you mean {suggestion!r}?"]


def test_no_surfaces_names_the_valid_ones() -> None:
    data = valid()
    data["surfaces"] = []
    (message,) = [p.message for p in problems_of(data) if p.path == "surfaces"]
    assert message == "must declare at least one surface (one or more of: tools, services, ingresses)"


def copier_validator(kind: str) -> str:
    config = yaml.safe_load((ROOT / "templates" / kind / "copier.yml").read_text(encoding="utf-8"))
    return str(config["plugin_id"]["validator"])


@pytest.mark.parametrize("kind", ["tool", "service", "ingress"])
def test_the_templates_validate_ids_with_the_manifests_rule(kind: str) -> None:
    validator = copier_validator(kind)
    assert f"regex_search('^{PLUGIN_ID_PATTERN}$')" in validator
    # Rendered as copier renders it: the template refuses exactly what the manifest refuses.
    env = jinja2.Environment(extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"])
    for plugin_id in ["Bad_ID", "a.b", "trailing-", "9lives", "x" * 64, "ok", "word-tools", "a1", "x" * 63]:
        refused_by_template = bool(env.from_string(validator).render(plugin_id=plugin_id).strip())
        data = valid()
        data["id"] = plugin_id
        try:
            parse_manifest(data)
            refused_by_manifest = False
        except ManifestError:
            refused_by_manifest = True
        assert refused_by_template == refused_by_manifest, plugin_id


# -- bounds: nesting, sizes --------------------------------------------------------------------


@pytest.mark.parametrize("opener", ["[", "{a = "])
def test_toml_nested_thousands_deep_is_a_manifest_error(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    with pytest.raises(ManifestError) as info:
        parse_manifest_text(VALID + "\n[deep]\nx = " + opener * 3000 + "1" + closer * 3000 + "\n")
    assert "nested too deeply" in str(info.value)


def test_an_input_schema_nested_1500_deep_is_a_manifest_error() -> None:
    header = "[tools.input_schema" + ".properties.a" * 1500 + "]"
    with pytest.raises(ManifestError) as info:
        parse_manifest_text(VALID + "\n" + header + '\ntype = "string"\n')
    problems = info.value.problems
    assert len(problems) == 1 and f"is nested more than {MANIFEST_NESTING_MAX} tables or arrays deep" in problems[0].message
    assert problems[0].path.startswith("tools[0].input_schema.properties.a.properties.a")
    # The same schema as a decoded mapping, and in an ingress's payload schema.
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(1500):
        schema = {"type": "object", "properties": {"a": schema}}
    assert any("is nested more than" in p.message for p in problems_of(with_schema(schema)))


def test_nesting_within_the_bound_is_fine() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(25):  # 25 levels of properties: 50 tables, under the bound with the tool around them
        schema = {"type": "object", "properties": {"a": schema}}
    assert parse_manifest(with_schema(schema)).tools[0].input_schema == schema


def test_a_manifest_larger_than_the_bound_is_refused_before_parsing() -> None:
    text = VALID.replace('description = "Counts words."', 'description = "' + "x" * 10_000_000 + '"')
    with pytest.raises(ManifestError) as info:
        parse_manifest_text(text)
    assert info.value.problems == [Problem("", f"is {len(text)} bytes; a manifest is at most {MANIFEST_MAX_BYTES} bytes")]


@pytest.mark.parametrize(
    ("edit", "path", "fragment"),
    [
        (lambda d: d.update(description="x" * 5000), "description", f"is longer than {DESCRIPTION_MAX_BYTES} bytes"),
        (lambda d: d["tools"][0]["input_schema"]["properties"]["text"].update(description="é" * 3000), "tools[0].input_schema.properties.text.description", f"longer than {MANIFEST_STRING_MAX_BYTES} bytes"),
        (lambda d: d["build"].update(module="m" * 5000), "build.module", f"longer than {MANIFEST_STRING_MAX_BYTES} bytes"),
        (lambda d: d["tools"][0]["input_schema"]["properties"].update({"k" * 300: {"type": "string"}}), "tools[0].input_schema.properties", f"has a key longer than {MANIFEST_KEY_MAX_BYTES} bytes"),
        (lambda d: d.update(services=[{"name": "svc", "description": "x" * 5000}]), "services[0].description", f"is longer than {DESCRIPTION_MAX_BYTES} bytes"),
    ],
)
def test_every_string_is_bounded(edit: Any, path: str, fragment: str) -> None:
    data = valid()
    edit(data)
    assert any(p.path == path and fragment in p.message for p in problems_of(data)), problems_of(data)


def test_pdk_check_reports_a_deep_manifest_as_a_manifest_error(tmp_path: Path) -> None:
    (tmp_path / "plugin.toml").write_text(VALID + "\n[deep]\nx = " + "[" * 3000 + "]" * 3000 + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pdk.cli", "check", str(tmp_path), "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and "nested too deeply" in doc["problems"][0]["message"]
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
