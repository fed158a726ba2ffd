"""Round trips of every contract type through `pdk.host.codec` and a real component.

The echo component (tests/fixtures/codec_echo) is built once per session with
componentize-py (tests/_prebuild.py's `build_codec_echo`, in the background) and run
in real wasmtime: each test encodes a plain value, calls the echo export, decodes the
result and compares it with the input. The WIT of
the fixture `use`s the real contract; componentize-py resolves it from a second
`-d` (the repository's `wit/` directory, loaded first), so nothing is copied.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _prebuild import CODEC_ECHO, Prebuilder, build_codec_echo
from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Func, FuncType, Instance, Linker, Record, ValType, Variant

from pdk.host._fastcall import ENV_CODEC, BoundFastCall, FastCall, PlainCall, Unsupported, bind_export
from pdk.host._fastgen import generate
from pdk.host.codec import Case, CodecError, Err, FuncCodec, Ok, Plan, ResultError, Some, decode, encode, end_result, plan_for, start_result
from pdk.limits import RESULT_BYTES_MAX, RESULT_LIST_ITEMS_MAX

pytestmark = pytest.mark.slow

ECHO = "yoi:codec-test/echo@0.1.0"


# --------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def echo_wasm(prebuilder: Prebuilder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The echo component: built (and compiled) in the background (tests/_prebuild.py),
    else built here."""
    built = prebuilder.wait(CODEC_ECHO)
    return built if built is not None else build_codec_echo(tmp_path_factory.mktemp("codec_echo"))


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="session")
def component(engine: Engine, echo_wasm: Path) -> Component:
    compiled = echo_wasm.with_suffix(".cwasm")  # by the background build, with a default Engine()
    if compiled.is_file():
        return Component.deserialize_file(engine, str(compiled))
    return Component.from_file(engine, str(echo_wasm))


@pytest.fixture(scope="session")
def linker(engine: Engine, component: Component) -> Linker:
    linker = Linker(engine)
    linker.add_wasip2()
    # The fixture's WIT `use`s types from yoi:host interfaces, so the world imports
    # them, functions included; the echo never calls them. (Not
    # `define_unknown_imports_as_traps`: it also shadows the WASI @0.2.9 imports
    # that add_wasip2 serves by semver match, and the guest then traps.)
    with linker.root() as root:
        for name, funcs in HOST_IMPORTS.items():
            with root.add_instance(name) as instance:
                for func in funcs:
                    instance.add_func(func, _never_called)
    return linker


HOST_IMPORTS = {
    "yoi:host/log@2.0.0": ["write"],
    "yoi:host/request@2.0.0": ["send"],
    "yoi:host/fs@2.0.0": ["read-file", "write-file", "list-dir"],
}


def _never_called(store: Any, *args: Any) -> None:
    return None


@dataclasses.dataclass
class Echo:
    """One instance of the echo component in a fresh store."""

    store: Store
    instance: Instance
    component: Component

    def func(self, name: str) -> Func:
        iface = self.instance.get_export_index(self.store, ECHO)
        assert iface is not None
        index = self.instance.get_export_index(self.store, name, iface)
        assert index is not None, name
        func = self.instance.get_func(self.store, index)
        assert func is not None
        return func

    def plain_call(self, name: str, *plain: Any) -> Any:
        """encode -> call the export with wasmtime-py -> post_return -> decode."""
        func = self.func(name)
        codec = FuncCodec(func, self.store)
        raw = func(self.store, *codec.encode_params(*plain))
        func.post_return(self.store)
        return codec.decode_result(raw)

    def fast_call(self, name: str, *plain: Any) -> Any:
        """The same call through pdk.host._fastcall (C values, converters built once)."""
        call = bind_export(self.component, (ECHO, name), self.func(name), self.store, mode="fast")
        assert isinstance(call, BoundFastCall)
        return call(*plain)

    def call(self, name: str, *plain: Any) -> Any:
        """Both paths: they must return the same plain value (same types, NaN == NaN)
        or raise the same CodecError; returns the value / raises the error."""
        try:
            expected = self.plain_call(name, *plain)
        except CodecError as error:
            with pytest.raises(CodecError) as fast_error:
                self.fast_call(name, *plain)
            assert str(fast_error.value) == str(error)
            raise
        assert same(self.fast_call(name, *plain), expected)
        return expected


@pytest.fixture
def echo(linker: Linker, component: Component, engine: Engine) -> Iterator[Echo]:
    store = Store(engine)
    store.set_wasi(WasiConfig())  # without it a WASI component aborts the process
    yield Echo(store, linker.instantiate(store, component), component)


def interface_items(engine: Engine, component: Component, name: str, imported: bool = False) -> dict[str, Any]:
    """The named types and function types of an interface a component imports or
    exports, read from `Component.type` without instantiating."""
    externs = component.type.imports(engine) if imported else component.type.exports(engine)
    iface: Any = externs[name].ty  # a ComponentInstanceType
    return {item_name: item.ty for item_name, item in iface.exports(engine).items()}


@pytest.fixture(scope="session")
def types(engine: Engine, component: Component) -> dict[str, Any]:
    return interface_items(engine, component, ECHO)


def same(a: Any, b: Any) -> bool:
    """Equal plain values of the same types all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (Case, Ok, Err, Some)):
        return getattr(a, "tag", None) == getattr(b, "tag", None) and same(a.value, b.value)
    return bool(a == b)


def roundtrip(echo: Echo, name: str, value: Any) -> None:
    assert same(echo.call(name, value), value)


# ------------------------------------------------------------ contract values


def event(payload: Case, correlation_id: str | None = None) -> dict[str, Any]:
    return {
        "id": "evt-1",
        "ingress": "market",
        "source": "feed",
        "kind": "text",
        "payload": payload,
        "created_at_ms": 1_700_000_000_000,
        "attempt": 1,
        "correlation_id": correlation_id,
    }


PAYLOADS = [
    Case("text", "héllo"),
    Case("binary", b"\x00\x01\xff"),
    Case("json", '{"a": [1, 2]}'),
    Case("closed", {"code": 1000, "reason": "bye"}),
    Case("failure", "connection reset"),
    Case("empty"),
]

COMMAND_KINDS = [
    Case("websocket_send", {"connection": "feed", "message": Case("text", "ping")}),
    Case("websocket_send", {"connection": "feed", "message": Case("binary", b"\x89\x00")}),
    Case("websocket_send", {"connection": "feed", "message": Case("text", "")}),
    Case("http_request", {"method": "GET", "url": "https://x.test/a", "headers": [], "body": None}),
    Case(
        "http_request",
        {"method": "POST", "url": "https://x.test/b", "headers": [("a", "1"), ("b", "2")], "body": b"{}"},
    ),
    Case("emit", {"topic": "prices", "data_json": '{"p": 1}'}),
    *[Case("log", {"level": level, "message": f"at {level}"}) for level in ("debug", "info", "warn", "error")],
    Case("status_update", {"healthy": True, "data_json": None}),
    Case("status_update", {"healthy": False, "data_json": '{"lag": 3}'}),
]

ERROR_CODES = ["invalid_input", "invalid_output", "denied", "unsupported", "timeout", "failed"]
LOG_LEVELS = ["debug", "info", "warn", "error"]
ENTRY_KINDS = ["file", "directory", "other"]
REQUEST_ERROR_CODES = ["denied", "invalid", "timeout", "too_large", "connection_failed", "failed"]
FS_ERROR_CODES = ["denied", "not_found", "invalid_path", "too_large", "io"]


def plugin_error(code: str = "failed", details: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": "it broke", "details_json": details, "retryable": code == "timeout"}


def entries() -> list[dict[str, Any]]:
    return [
        {"name": "a.txt", "kind": "file", "size": 12},
        {"name": "sub", "kind": "directory", "size": 0},
        {"name": "fifo", "kind": "other", "size": 2**64 - 1},
    ]


def http_response(body: bytes = b"ok") -> dict[str, Any]:
    return {"status": 200, "headers": [("content-type", "text/plain")], "body": body, "truncated": False}


# -------------------------------------------------------------- round trips


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda c: c.tag)
def test_event_payload_cases(echo: Echo, payload: Case) -> None:
    roundtrip(echo, "echo-event", event(payload))
    roundtrip(echo, "echo-payload", payload)


def test_event_with_correlation_id(echo: Echo) -> None:
    roundtrip(echo, "echo-event", event(Case("json", "{}"), correlation_id="cmd-7"))


@pytest.mark.parametrize("kind", COMMAND_KINDS, ids=lambda c: c.tag)
def test_command_kinds(echo: Echo, kind: Case) -> None:
    roundtrip(echo, "echo-command", {"id": "cmd-1", "kind": kind})


def test_service_output(echo: Echo) -> None:
    commands = [{"id": f"c{i}", "kind": kind} for i, kind in enumerate(COMMAND_KINDS)]
    roundtrip(echo, "echo-output", {"data_json": '{"n": 1}', "commands": commands})
    roundtrip(echo, "echo-output", {"data_json": None, "commands": []})


def test_tool_call(echo: Echo) -> None:
    roundtrip(echo, "echo-tool-call", {"tool": "search", "input_json": '{"q": "x"}', "call_id": "call-1"})


@pytest.mark.parametrize(
    "value",
    [
        Ok({"summary": "done", "content_json": '{"hits": 3}'}),
        Ok({"summary": "done", "content_json": None}),
        *[Err(plugin_error(code)) for code in ERROR_CODES],
        Err(plugin_error("invalid_input", details='{"field": "q"}')),
    ],
    ids=repr,
)
def test_tool_result(echo: Echo, value: Any) -> None:
    roundtrip(echo, "echo-tool-result", value)


def test_status_and_status_result(echo: Echo) -> None:
    roundtrip(echo, "echo-status", {"healthy": True, "data_json": None})
    roundtrip(echo, "echo-status", {"healthy": False, "data_json": '{"x": 1}'})
    roundtrip(echo, "echo-status-result", Ok({"healthy": True, "data_json": "{}"}))
    roundtrip(echo, "echo-status-result", Err(plugin_error("denied")))


@pytest.mark.parametrize("i", range(6))
def test_every_enum_name(echo: Echo, i: int) -> None:
    names = [ERROR_CODES, LOG_LEVELS, LOG_LEVELS, ENTRY_KINDS, REQUEST_ERROR_CODES, FS_ERROR_CODES]
    roundtrip(echo, "echo-enums", tuple(group[i % len(group)] for group in names))


def test_http_request_and_response(echo: Echo) -> None:
    request = {
        "method": "POST",
        "url": "https://api.test/v1",
        "headers": [("accept", "application/json")],
        "body": b"\x00body",
        "timeout_ms": 5000,
    }
    roundtrip(echo, "echo-http-request", request)
    roundtrip(echo, "echo-http-request", {**request, "body": None, "timeout_ms": None})
    expected = {"status": 200, "headers": request["headers"], "body": b"\x00body", "truncated": False}
    assert echo.call("echo-http", request) == Ok(expected)
    bodiless = echo.call("echo-http", {**request, "body": None, "timeout_ms": None})
    assert bodiless == Ok({**expected, "body": b"", "truncated": True})


@pytest.mark.parametrize("code", REQUEST_ERROR_CODES)
def test_http_errors(echo: Echo, code: str) -> None:
    request = {"method": "ERR", "url": "https://x.test/", "headers": [("code", code)], "body": None}
    assert echo.call("echo-http", request) == Err({"code": code, "message": "https://x.test/"})
    roundtrip(echo, "echo-http-result", Err({"code": code, "message": "nope"}))


def test_http_result_ok(echo: Echo) -> None:
    roundtrip(echo, "echo-http-result", Ok(http_response()))
    roundtrip(echo, "echo-http-result", Ok(http_response(b"")))


def test_dir_entries(echo: Echo) -> None:
    roundtrip(echo, "echo-entries", entries())
    roundtrip(echo, "echo-entries", [])


@pytest.mark.parametrize("code", FS_ERROR_CODES)
def test_fs_results(echo: Echo, code: str) -> None:
    error = {"code": code, "message": "no"}
    for name in ("echo-read-result", "echo-write-result", "echo-list-result"):
        roundtrip(echo, name, Err(error))


def test_fs_results_ok(echo: Echo) -> None:
    roundtrip(echo, "echo-read-result", Ok(b"file\x00data"))
    roundtrip(echo, "echo-read-result", Ok(b""))
    roundtrip(echo, "echo-write-result", Ok(None))
    roundtrip(echo, "echo-list-result", Ok(entries()))
    roundtrip(echo, "echo-list-result", Ok([]))


@pytest.mark.parametrize("value", [None, Some(None), Some("x"), Some("")], ids=repr)
def test_nested_option(echo: Echo, value: Any) -> None:
    roundtrip(echo, "echo-nested", value)


@pytest.mark.parametrize("value", [None, 0, 2**32 - 1])
def test_option(echo: Echo, value: Any) -> None:
    roundtrip(echo, "echo-opt-u32", value)


@pytest.mark.parametrize("value", [frozenset(), frozenset({"read"}), frozenset({"read", "write", "exec_code"})])
def test_flags(echo: Echo, value: frozenset[str]) -> None:
    roundtrip(echo, "echo-flags", value)


def test_scalars_and_lists(echo: Echo) -> None:
    roundtrip(echo, "echo-tuple", ("a", 7, True))
    for number in (1.5, -0.0, 1e308, math.inf, -math.inf):
        roundtrip(echo, "echo-f64", number)
    assert echo.call("echo-f64", 3) == 3.0  # ints are accepted for floats
    assert math.isnan(echo.call("echo-f64", math.nan))
    for number in (0.25, -2.0, 3.0e38):
        assert echo.call("echo-f32", number) == pytest.approx(number, rel=1e-7)
    for data in (b"", bytes(range(256))):
        roundtrip(echo, "echo-u8list", data)
    assert echo.call("echo-u8list", bytearray(b"ab")) == b"ab"
    roundtrip(echo, "echo-strings", [])
    roundtrip(echo, "echo-strings", ["", "é", "😀", "a\x00b"])


@pytest.mark.parametrize(
    "value",
    [
        (0, 0, 0, 0, 0, 0, 0, 0, "a"),
        (255, -128, 65535, -32768, 2**32 - 1, -(2**31), 2**64 - 1, -(2**63), "😀"),
        (1, 127, 1, 32767, 1, 2**31 - 1, 1, 2**63 - 1, "é"),
    ],
)
def test_integer_ranges(echo: Echo, value: tuple[Any, ...]) -> None:
    roundtrip(echo, "echo-ints", value)


def test_unit_result(echo: Echo) -> None:
    roundtrip(echo, "echo-unit-result", Ok())
    roundtrip(echo, "echo-unit-result", Err())


def test_untagged_variant_with_bool_and_int(echo: Echo) -> None:
    roundtrip(echo, "echo-num", Case("small", 3))
    # wasmtime-py lowers `flag(true)` as `small(1)` (bool is an int) ...
    func = echo.func("echo-num")
    raw = func(echo.store, True)
    func.post_return(echo.store)
    assert FuncCodec(func, echo.store).decode_result(raw) == Case("small", 1)
    # ... so the codec refuses to send it on the plain path ...
    with pytest.raises(CodecError, match=r"^\$\.n: wasmtime-py cannot send case 'flag'"):
        echo.plain_call("echo-num", Case("flag", True))
    # ... while the fast path writes the case itself and sends what was meant.
    assert same(echo.fast_call("echo-num", Case("flag", True)), Case("flag", True))
    assert same(echo.fast_call("echo-num", Case("small", 1)), Case("small", 1))
    roundtrip(echo, "echo-num-rev", Case("flag", True))
    roundtrip(echo, "echo-num-rev", Case("small", 1))


def test_result_with_catch_all_ok(echo: Echo) -> None:
    roundtrip(echo, "echo-opt-result", Ok(None))
    roundtrip(echo, "echo-opt-result", Ok("x"))
    # The ok case (an untagged option) claims every value in wasmtime-py's lowering,
    # so wasmtime-py itself cannot send an err ...
    func = echo.func("echo-opt-result")
    err_type: Any = func.type(echo.store).params[0][1]
    err_type = err_type.err
    with pytest.raises(ValueError, match="value not valid for this variant"):
        func(echo.store, encode(err_type, plugin_error()))
    # ... and the codec says so before anything reaches wasmtime; the fast path sends it.
    with pytest.raises(CodecError, match=r"^\$\.r: .* would treat the value as case 'ok'"):
        echo.plain_call("echo-opt-result", Err(plugin_error()))
    assert same(echo.fast_call("echo-opt-result", Err(plugin_error())), Err(plugin_error()))
    roundtrip(echo, "echo-opt-result", Ok("still healthy"))


def test_dataclass_and_enum_inputs(echo: Echo) -> None:
    @dataclasses.dataclass
    class ToolOutput:
        summary: str
        content_json: str | None = None

    from pdk.errors import ErrorCode

    assert echo.call("echo-tool-result", Ok(ToolOutput("hi"))) == Ok({"summary": "hi", "content_json": None})
    value = Err({"code": ErrorCode.INVALID_INPUT, "message": "m", "details_json": None, "retryable": False})
    assert echo.call("echo-tool-result", value) == Err({**value.value, "code": "invalid_input"})


def test_kebab_spellings_are_accepted(echo: Echo) -> None:
    sent = {"tool": "t", "input-json": "{}", "call-id": "c"}
    assert echo.call("echo-tool-call", sent) == {"tool": "t", "input_json": "{}", "call_id": "c"}
    assert echo.call("echo-command", {"id": "1", "kind": Case("status-update", {"healthy": True})}) == {
        "id": "1",
        "kind": Case("status_update", {"healthy": True, "data_json": None}),
    }


def test_codec_from_component_type_and_many_calls(echo: Echo, types: dict[str, Any]) -> None:
    """A FuncCodec built from `Component.type` (no instance) drives calls on any store."""
    fty = types["echo-event"]
    assert isinstance(fty, FuncType)
    codec = FuncCodec(fty)
    assert codec.param_names == ("e",)
    func = echo.func("echo-event")
    for payload in PAYLOADS * 20:
        raw = func(echo.store, *codec.encode_params(event(payload)))
        func.post_return(echo.store)
        assert codec.decode_result(raw) == event(payload)


# ----------------------------------------------- wasmtime-py representation


def test_wasmtime_representation(types: dict[str, Any]) -> None:
    """Pins the wasmtime-py 50 shapes the codec relies on (see the module docstring)."""
    payload: Any = types["payload"]
    assert payload._tagged()  # text/json/failure share str, empty counts as object
    assert encode(payload, Case("text", "x")) == Variant("text", "x")
    assert encode(payload, Case("empty")) == Variant("empty", None)

    message = types["command"].fields[1][1].cases[0][1].fields[1][1]  # websocket-send.message
    assert not message._tagged()  # str vs bytes: untagged
    assert encode(message, Case("binary", b"x")) == b"x"
    assert decode(message, "t") == Case("text", "t")

    command: Any = encode(types["command"], {"id": "1", "kind": Case("emit", {"topic": "t", "data_json": "{}"})})
    assert isinstance(command, Record) and getattr(command, "id") == "1"
    kind = getattr(command, "kind")
    assert isinstance(kind, Variant) and kind.tag == "emit"  # command-kind is tagged
    assert getattr(kind.payload, "data-json") == "{}"  # kebab-case attributes

    tool_result = types["echo-tool-result"].params[0][1]
    assert tool_result._tagged()  # two records
    read_result = types["echo-read-result"].params[0][1]
    assert not read_result._tagged()  # bytes vs record: bare payloads
    assert encode(read_result, Ok(b"x")) == b"x"
    write_result = types["echo-write-result"].params[0][1]
    assert encode(write_result, Ok()) is None
    assert decode(write_result, None) == Ok(None)

    nested = types["echo-nested"].params[0][1]
    assert nested._tagged()  # option<option<T>>: `none` and the inner option overlap
    assert encode(nested, Some(None)) == Variant("some", None)
    assert encode(nested, None) == Variant("none", None)
    assert encode(types["echo-opt-u32"].params[0][1], None) is None
    assert encode(types["perms"], frozenset({"exec_code"})) == {"exec-code"}
    assert decode(types["error-code"], "invalid-input") == "invalid_input"


# ------------------------------------------------------------- encode errors


def error_of(ty: ValType, value: Any) -> str:
    with pytest.raises(CodecError) as caught:
        encode(ty, value)
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def ws_command(connection: Any) -> dict[str, Any]:
    return {"id": "1", "kind": Case("websocket_send", {"connection": connection, "message": Case("text", "x")})}


@pytest.mark.parametrize(
    ("type_name", "value", "message"),
    [
        ("command", ws_command(5), "$.kind.websocket_send.connection: expected string, got int"),
        ("command", {"id": "1"}, "$: missing field 'kind'"),
        ("command", {"id": "1", "kind": Case("nope")}, "$.kind: unknown case 'nope'"),
        ("command", {"id": "1", "kind": "emit"}, "$.kind: expected Case(tag, value)"),
        ("command", {**ws_command("c"), "extra": 1}, "$: unexpected field(s) 'extra'"),
        ("command", {**ws_command("c"), "id": "1", "ID": 2}, "$: unexpected field(s) 'ID'"),
        ("command", ["not", "a", "record"], "$: expected record (dict or dataclass), got list"),
        ("event", {**event(Case("empty")), "correlation_id": 3}, "$.correlation_id: expected string, got int"),
        ("event", {**event(Case("empty")), "attempt": -1}, "$.attempt: -1 out of range for u32"),
        ("event", {**event(Case("empty")), "attempt": True}, "$.attempt: expected u32, got bool"),
        ("event", {**event(Case("empty")), "created_at_ms": 2**64}, "$.created_at_ms: 18446744073709551616 out of"),
        ("event", event(Case("empty", "x")), "$.payload: case 'empty' has no payload, got str"),
        ("event", event(Case("binary", "text")), "$.payload.binary: expected list<u8> (bytes), got str"),
        ("event", event(Case("closed", {"code": 70000, "reason": ""})), "$.payload.closed.code: 70000 out of range"),
        ("event", event(Case("text", "\ud800")), "$.payload.text: string is not valid UTF-8"),
        ("plugin-error", {**plugin_error(), "code": "nope"}, "$.code: unknown enum name 'nope'"),
        ("plugin-error", {**plugin_error(), "code": 1}, "$.code: expected enum name"),
        ("plugin-error", {**plugin_error(), "retryable": 1}, "$.retryable: expected bool, got int"),
        ("perms", {"read", "fly"}, "$: unknown flag 'fly'"),
        ("perms", "read", "$: expected flags (a set of names), got str"),
        ("dir-entry", {"name": "a", "kind": "file", "size": 1.5}, "$.size: expected u64, got float"),
        ("num", Case("small", 256), "$.small: 256 out of range for u8"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_encode_error_paths(types: dict[str, Any], type_name: str, value: Any, message: str) -> None:
    assert error_of(types[type_name], value).startswith(message)


def test_encode_error_paths_in_containers(types: dict[str, Any]) -> None:
    output = types["echo-output"].params[0][1]
    bad = {"data_json": None, "commands": [ws_command("ok"), ws_command(None)]}
    assert error_of(output, bad) == "$.commands[1].kind.websocket_send.connection: expected string, got None"
    tool_result = types["echo-tool-result"].params[0][1]
    assert error_of(tool_result, Ok({"summary": 1})) == "$.ok.summary: expected string, got int"
    assert error_of(tool_result, {"summary": "x"}).startswith("$: expected Ok(value) or Err(value), got dict")
    assert error_of(tool_result, Err({**plugin_error(), "code": "x"})).startswith("$.err.code: unknown enum")
    ints = types["echo-ints"].params[0][1]
    assert error_of(ints, (0,) * 9) == "$[8]: expected char (a one-character string), got int"
    assert error_of(ints, (0, 0)) == "$: expected 9 elements, got 2"
    assert error_of(ints, (0,) * 8 + ("ab",)).startswith("$[8]: expected char")
    assert error_of(types["echo-f32"].params[0][1], 1e39) == "$: 1e+39 out of range for f32"
    assert error_of(types["echo-f64"].params[0][1], "1.0") == "$: expected f64, got str"
    assert error_of(types["echo-f64"].params[0][1], 10**400).endswith("out of range for f64")
    entries_ty = types["echo-entries"].params[0][1]
    assert error_of(entries_ty, [{"name": "a", "kind": "pipe", "size": 0}]).startswith("$[0].kind: unknown enum")
    nested = types["echo-nested"].params[0][1]
    assert error_of(nested, Some(Some(3))) == "$: expected string, got int"


def test_func_codec_errors(echo: Echo) -> None:
    func = echo.func("echo-command")
    codec = FuncCodec(func, echo.store)
    with pytest.raises(CodecError, match=r"^\$\.c\.kind\.websocket_send\.connection: expected string, got int$"):
        codec.encode_params(ws_command(1))
    with pytest.raises(CodecError, match=r"expected 1 argument\(s\) \(c\), got 2"):
        codec.encode_params(ws_command("a"), ws_command("b"))
    with pytest.raises(TypeError):
        FuncCodec(func)
    # The instance is still healthy: nothing reached wasmtime.
    roundtrip(echo, "echo-command", ws_command("a"))


def test_host_import_direction(engine: Engine, component: Component) -> None:
    """decode_params / encode_result on a real host import type (yoi:host/fs.read-file)."""
    fs = interface_items(engine, component, "yoi:host/fs@2.0.0", imported=True)
    codec = FuncCodec(fs["read-file"])
    assert codec.decode_params("data", "a/b.txt") == ["data", "a/b.txt"]
    assert codec.encode_result(Ok(b"x")) == b"x"
    raw_error: Any = codec.encode_result(Err({"code": "not_found", "message": "m"}))
    assert isinstance(raw_error, Record) and getattr(raw_error, "code") == "not-found"
    with pytest.raises(CodecError, match=r"^\$\.err\.code: unknown enum name 'gone'"):
        codec.encode_result(Err({"code": "gone", "message": "m"}))
    write = FuncCodec(fs["write-file"])
    assert write.encode_result(Ok()) is None
    log = interface_items(engine, component, "yoi:host/log@2.0.0", imported=True)
    assert FuncCodec(log["write"]).encode_result(None) is None


# ------------------------------------------- fast path (pdk/host/_fastcall.py)


UNICODE = ["", "é", "😀", "a\x00b", "e\u0301", "שלום", "\U0010ffff", "x" * 70_000]


@pytest.mark.parametrize("text", UNICODE, ids=lambda t: f"len{len(t)}")
def test_edge_strings_both_paths(echo: Echo, text: str) -> None:
    roundtrip(echo, "echo-strings", [text, text])
    roundtrip(echo, "echo-tool-call", {"tool": text, "input_json": text, "call_id": text})
    roundtrip(echo, "echo-event", event(Case("text", text), correlation_id=text))
    roundtrip(echo, "echo-nested", Some(text))


def test_edge_numbers_both_paths(echo: Echo) -> None:
    for number in (math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308):
        roundtrip(echo, "echo-f64", number)
    for number in (math.nan, math.inf, -math.inf, -0.0, 0.5, 3.4028234663852886e38):
        roundtrip(echo, "echo-f32", number)
    assert same(echo.call("echo-f32", 1e-50), 0.0)  # below f32's range: rounds to zero on both paths
    assert same(echo.call("echo-f64", 2**53), float(2**53))
    for value in (0, 1, 2**32 - 1):
        roundtrip(echo, "echo-opt-u32", value)
    roundtrip(echo, "echo-entries", [{"name": "big", "kind": "other", "size": 2**64 - 1}])
    roundtrip(echo, "echo-event", {**event(Case("empty")), "created_at_ms": 2**64 - 1, "attempt": 2**32 - 1})


@pytest.mark.parametrize("size", [0, 1, 255, 65_536, 1 << 20])
def test_binary_payloads_both_paths(echo: Echo, size: int) -> None:
    data = bytes(i % 256 for i in range(size))
    roundtrip(echo, "echo-u8list", data)
    roundtrip(echo, "echo-payload", Case("binary", data))
    roundtrip(echo, "echo-read-result", Ok(data))
    assert same(echo.call("echo-u8list", memoryview(data)), data)


def test_many_commands_and_nesting_both_paths(echo: Echo) -> None:
    commands = [{"id": f"c{i}", "kind": COMMAND_KINDS[i % len(COMMAND_KINDS)]} for i in range(200)]
    roundtrip(echo, "echo-output", {"data_json": "", "commands": commands})
    for value in (Ok(None), Ok(""), Ok("x")):
        roundtrip(echo, "echo-opt-result", value)
    err = Err(plugin_error("timeout", details=""))  # only the fast path can send it (see above)
    assert same(echo.fast_call("echo-opt-result", err), err)
    for flags in (frozenset({"read", "write"}), frozenset({"write", "exec_code"})):
        roundtrip(echo, "echo-flags", flags)
    assert same(echo.call("echo-flags", ["read", "read", "exec-code"]), frozenset({"read", "exec_code"}))
    assert same(echo.call("echo-tuple", ["a", 1, False]), ("a", 1, False))  # a list for a tuple
    assert same(echo.call("echo-strings", ("a", "b")), ["a", "b"])  # a tuple for a list


def test_fast_path_encode_errors_match_the_codec(echo: Echo) -> None:
    """Every refused value raises the codec's own CodecError on both paths (`Echo.call`
    compares the messages), and the instance stays healthy."""
    bad = [
        ("echo-command", ws_command(5), "$.c.kind.websocket_send.connection: expected string, got int"),
        ("echo-command", {"id": "1"}, "$.c: missing field 'kind'"),
        ("echo-command", {**ws_command("c"), "extra": 1}, "$.c: unexpected field(s) 'extra'"),
        ("echo-event", {**event(Case("empty")), "attempt": -1}, "$.e.attempt: -1 out of range for u32"),
        ("echo-event", {**event(Case("empty")), "attempt": True}, "$.e.attempt: expected u32, got bool"),
        ("echo-event", event(Case("text", "\ud800")), "$.e.payload.text: string is not valid UTF-8"),
        ("echo-event", event(Case("empty", "x")), "$.e.payload: case 'empty' has no payload"),
        ("echo-ints", (0,) * 8 + ("\ud800",), "$.t[8]: char must be a Unicode scalar value"),
        ("echo-f32", 1e39, "$.x: 1e+39 out of range for f32"),
        ("echo-f64", 10**400, "$.x: "),
        ("echo-flags", {"read", "fly"}, "$.f: unknown flag 'fly'"),
        ("echo-enums", ("nope",) * 6, "$.t[0]: unknown enum name 'nope'"),
        ("echo-unit-result", Ok(1), "$.r: case 'ok' has no payload"),
        ("echo-tool-result", {"summary": "x"}, "$.r: expected Ok(value) or Err(value)"),
        ("echo-u8list", [1, 2], "$.b: expected list<u8> (bytes), got list"),
        ("echo-nested", Some(Some(3)), "$.o: expected string, got int"),
    ]
    for name, value, message in bad:
        with pytest.raises(CodecError) as caught:
            echo.call(name, value)
        assert str(caught.value).startswith(message), (name, str(caught.value))
    with pytest.raises(CodecError, match=r"expected 1 argument"):
        echo.call("echo-f64", 1.0, 2.0)
    roundtrip(echo, "echo-command", ws_command("still fine"))


def test_fast_and_plain_callers(echo: Echo, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bind_export` picks the fast path by default, the plain one for
    `YOI_PDK_CODEC=plain`, and reuses the converters compiled for the component."""
    key, func = (ECHO, "echo-event"), echo.func("echo-event")
    fast = bind_export(echo.component, key, func, echo.store)
    assert isinstance(fast, BoundFastCall) and fast.mode == "fast"
    again = bind_export(echo.component, key, func, echo.store)
    assert isinstance(again, BoundFastCall) and again.fast is fast.fast  # compiled once
    monkeypatch.setenv(ENV_CODEC, "plain")
    plain = bind_export(echo.component, key, func, echo.store)
    assert isinstance(plain, PlainCall) and plain.mode == "plain"
    assert same(plain(event(Case("json", "{}"))), fast(event(Case("json", "{}"))))


def test_a_type_without_fast_converter_falls_back(types: dict[str, Any]) -> None:
    class Opaque(Plan):
        wit = "resource"

    codec = FuncCodec(types["echo-f64"])
    codec.params = (("x", Opaque()),)
    with pytest.raises(Unsupported):
        FastCall(codec)


# A C value written by hand, as wasmtime would return it: kind byte, 7 bytes padding,
# payload. The lifters only read it, so Python-owned memory stands in for wasmtime's.
_KEEP: list[Any] = []


def c_bytes(raw: bytes) -> tuple[int, int]:
    buf = ctypes.create_string_buffer(raw, max(len(raw), 1))
    _KEEP.append(buf)
    return len(raw), ctypes.addressof(buf)


def c_val(kind: int, *words: int) -> bytes:
    return struct.pack("<B7x" + "Q" * len(words), kind, *words).ljust(32, b"\0")


def lift_of(types: dict[str, Any], name: str) -> Any:
    """The generated lifter of a function's result, run on C value bytes."""
    lift = generate([], plan_for(types[name].result)).lift
    assert lift is not None

    def run(raw: bytes, offset: int = 0) -> Any:
        buf = ctypes.create_string_buffer(raw[offset:], len(raw) - offset)
        _KEEP.append(buf)
        return lift(ctypes.addressof(buf))[0]

    return run


STRING, LIST, RECORD, VARIANT, ENUM, CHAR, U8, BOOL = 12, 13, 14, 16, 17, 11, 2, 0


@pytest.mark.parametrize(
    ("func_name", "value", "message"),
    [
        ("echo-strings", c_val(LIST, 1, c_bytes(c_val(STRING, *c_bytes(b"\xff\xfe")))[1]), r"^\$\[0\]: the guest returned a string that is not valid UTF-8"),
        ("echo-strings", c_val(STRING, *c_bytes(b"x")), r"kind 12 where list<string> was expected"),
        ("echo-f64", c_val(BOOL), r"kind 0 where f64 was expected"),
        ("echo-ints", c_val(15, 9, c_bytes(b"".join([c_val(U8)] * 8 + [c_val(CHAR, 0xD800)]))[1]), r"^\$\[1\]: the guest returned a value of kind 2 where s8"),
        ("echo-entries", c_val(LIST, 1, c_bytes(c_val(RECORD, 2, 0))[1]), r"^\$\[0\]: the guest returned a record of 2 fields, expected 3"),
        ("echo-u8list", c_val(LIST, 2, c_bytes(c_val(U8, 1) + c_val(BOOL, 1))[1]), r"list<u8> with elements of another kind"),
        ("echo-payload", c_val(VARIANT, *c_bytes(b"nope"), 0), r"unknown variant case b'nope'"),
        ("echo-payload", c_val(VARIANT, *c_bytes(b"text"), 0), r"case 'text' without its payload"),
        ("echo-enums", c_val(15, 6, c_bytes(c_val(ENUM, *c_bytes(b"gone")) * 6)[1]), r"^\$\[0\]: the guest returned an unknown enum name b'gone'"),
        ("echo-flags", c_val(20, 1, c_bytes(struct.pack("<QQ", *c_bytes(b"fly")))[1]), r"unknown flag name"),
        ("echo-unit-result", c_val(BOOL), r"kind 0 where result<_, _> was expected"),
    ],
    ids=lambda x: x if isinstance(x, str) and x.startswith("echo") else "",
)
def test_malformed_guest_results_are_typed_errors(types: dict[str, Any], func_name: str, value: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        lift_of(types, func_name)(value, 0)


def test_char_out_of_range_is_a_typed_error(types: dict[str, Any]) -> None:
    ints = [c_val(U8), c_val(1), c_val(4), c_val(3), c_val(6), c_val(5), c_val(8), c_val(7), c_val(CHAR, 0x110000)]
    with pytest.raises(CodecError, match=r"^\$\[8\]: the guest returned 0x110000 for a char"):
        lift_of(types, "echo-ints")(c_val(15, 9, c_bytes(b"".join(ints))[1]), 0)


# ----------------------------------- result bounds (RESULT_LIST_ITEMS_MAX, RESULT_BYTES_MAX)


def test_a_result_at_the_list_bound_is_read_on_both_paths(echo: Echo) -> None:
    commands = [{"id": f"c{i}", "kind": Case("emit", {"topic": "t", "data_json": "{}"})} for i in range(RESULT_LIST_ITEMS_MAX)]
    roundtrip(echo, "echo-output", {"data_json": None, "commands": commands})


def test_a_result_past_the_list_bound_is_refused_alike_on_both_paths(echo: Echo) -> None:
    commands = [{"id": f"c{i}", "kind": Case("log", {"level": "info", "message": ""})} for i in range(RESULT_LIST_ITEMS_MAX + 1)]
    with pytest.raises(ResultError) as caught:  # Echo.call: both paths, the same message
        echo.call("echo-output", {"data_json": None, "commands": commands})
    assert str(caught.value) == (
        f"$.commands: the result holds more than {RESULT_LIST_ITEMS_MAX} list elements in all (this list has {RESULT_LIST_ITEMS_MAX + 1})"
    )
    roundtrip(echo, "echo-output", {"data_json": None, "commands": commands[:3]})  # the instance is fine


def test_nested_lists_count_against_one_bound(echo: Echo) -> None:
    """Commands and their headers share the bound: 14 commands of 300 headers each are
    4,214 list elements; the 14th headers list is the one that runs past 4,160."""
    headers = [(f"h{i}", "v") for i in range(300)]
    request = Case("http_request", {"method": "GET", "url": "https://x.test/", "headers": headers, "body": None})
    commands = [{"id": f"c{i}", "kind": request} for i in range(14)]
    with pytest.raises(ResultError) as caught:
        echo.call("echo-output", {"data_json": None, "commands": commands})
    assert str(caught.value) == f"$.commands[13].kind.http_request.headers: the result holds more than {RESULT_LIST_ITEMS_MAX} list elements in all (this list has 300)"
    roundtrip(echo, "echo-output", {"data_json": None, "commands": commands[:13]})  # 14 + 13 * 300 = 3,914


def test_a_hostile_list_size_is_refused_before_it_is_read(types: dict[str, Any]) -> None:
    """A C list claiming more elements than the bound (at address 0: nothing is read)
    is refused by the fast lifter with the plain path's words."""
    cases = [
        ("echo-strings", c_val(LIST, 10**9, 0), ["x"] * (RESULT_LIST_ITEMS_MAX + 1), f"more than {RESULT_LIST_ITEMS_MAX} list elements in all"),
        ("echo-u8list", c_val(LIST, RESULT_BYTES_MAX + 1, 0), b"\0" * (RESULT_BYTES_MAX + 1), f"more than {RESULT_BYTES_MAX} bytes of list<u8> in all"),
    ]
    for name, c_value, raw, words in cases:
        with pytest.raises(ResultError) as plain:
            FuncCodec(types[name]).decode_result(raw)
        assert words in str(plain.value)
        start_result()
        try:
            with pytest.raises(CodecError) as fast:
                lift_of(types, name)(c_value, 0)
        finally:
            end_result()
        assert str(fast.value).split(" (this list has")[0] == str(plain.value).split(" (this list has")[0]
    # Outside a result (host-import arguments, single values) nothing is counted.
    assert len(FuncCodec(types["echo-strings"]).decode_params(["x"] * (RESULT_LIST_ITEMS_MAX + 1))[0]) == RESULT_LIST_ITEMS_MAX + 1


# ------------------------------------- generated code (pdk/host/_fastgen.py)


def keywords_value(case: Case = Case("class", "x")) -> dict[str, Any]:
    return {
        "class": "c",
        "def": 7,
        "lambda": None,
        "is_not": True,
        "from": "f",
        "return": case,
        "if": "while",
        "yield": frozenset({"and", "not"}),
    }


@pytest.mark.parametrize("case", [Case("none"), Case("class", "é"), Case("return", 255), Case("true")], ids=lambda c: c.tag)
def test_python_keywords_as_wit_names(echo: Echo, case: Case) -> None:
    """Record fields, cases, enum names and flags named like Python keywords."""
    roundtrip(echo, "echo-keywords", keywords_value(case))
    roundtrip(echo, "echo-keywords", {**keywords_value(case), "lambda": "λ", "if": "import", "yield": frozenset()})
    with pytest.raises(CodecError) as caught:
        echo.call("echo-keywords", {**keywords_value(case), "return": Case("def")})
    assert str(caught.value).startswith("$.k.return: unknown case 'def'")


def deep_value(depth: int) -> Any:
    """A value of `deep`: 7 lists with an option inside each, `depth` levels filled."""
    value: Any = ["leaf", ""]
    for level in range(7):
        value = [value, None] if level < depth else [value]
    return value


@pytest.mark.parametrize("depth", [0, 3, 7])
def test_deep_nesting_is_split_into_helpers(echo: Echo, depth: int) -> None:
    roundtrip(echo, "echo-deep", deep_value(depth))
    roundtrip(echo, "echo-deep", [])
    source = FastCall(FuncCodec(echo.func("echo-deep"), echo.store)).generated.source
    assert "def _L" in source and "def _F" in source  # deeper than one function inlines
    bad = deep_value(7)
    bad[0][0][0][0][0][0][0][1] = 5
    with pytest.raises(CodecError) as caught:
        echo.call("echo-deep", bad)
    assert str(caught.value) == "$.d[0][0][0][0][0][0][0][1]: expected string, got int"


def wide_value(i: int) -> dict[str, Any]:
    """A `wide` record: fields x0..x39 of 8 kinds in turn (see the fixture's WIT)."""

    def field(n: int) -> Any:
        kind, m = n % 8, n + i
        return [m % 256, f"s{m}", None if m % 2 else "o", m % 3 == 0, -(2**62) + m, float(m) / 4, list(range(m % 5)), chr(0x41 + m % 26)][kind]

    return {f"x{n}": field(n) for n in range(40)}


def test_many_fields_and_parameters(echo: Echo) -> None:
    for i in range(3):
        roundtrip(echo, "echo-wide", wide_value(i))
    with pytest.raises(CodecError) as caught:
        echo.call("echo-wide", {**wide_value(0), "x39": "two"})
    assert str(caught.value) == "$.w.x39: expected char (a one-character string), got str"
    args = (1, "b", None, ["d", "e"], False, -2.5, Case("return", 3), (4, "h"))
    assert same(echo.call("echo-many", *args), args)
    assert same(echo.call("echo-many", 255, "", 0, [], True, math.inf, Case("none"), [0, ""]), (255, "", 0, [], True, math.inf, Case("none"), (0, "")))
    with pytest.raises(CodecError, match=r"expected 8 argument"):
        echo.call("echo-many", *args[:7])


@pytest.mark.parametrize("depth_max", [0, 1, 2])
def test_every_shape_through_helper_functions(echo: Echo, monkeypatch: pytest.MonkeyPatch, depth_max: int) -> None:
    """With the inlining limit lowered, every nested value goes through the helper
    functions (`_L`/`_F`) and still gives the plain path's values and errors."""
    import pdk.host._fastgen as fastgen

    monkeypatch.setattr(fastgen, "_DEPTH_MAX", depth_max)

    def fresh(name: str, *plain: Any) -> Any:
        call = FastCall(FuncCodec(echo.func(name), echo.store)).bind(echo.func(name), echo.store)
        return call(*plain)

    values = [
        ("echo-output", {"data_json": "{}", "commands": [{"id": f"c{i}", "kind": kind} for i, kind in enumerate(COMMAND_KINDS)]}),
        ("echo-event", event(Case("closed", {"code": 1000, "reason": "bye"}), correlation_id="c")),
        ("echo-http-result", Ok(http_response(b"\x00\x01"))),
        ("echo-list-result", Ok(entries())),
        ("echo-nested", Some(None)),
        ("echo-keywords", keywords_value()),
        ("echo-deep", deep_value(7)),
        ("echo-wide", wide_value(1)),
        ("echo-tool-result", Err(plugin_error("timeout", details="{}"))),
    ]
    for name, value in values:
        assert same(fresh(name, value), echo.plain_call(name, value)), name
    with pytest.raises(CodecError) as caught:
        fresh("echo-command", ws_command(5))
    assert str(caught.value) == "$.c.kind.websocket_send.connection: expected string, got int"
    commands = [{"id": f"c{i}", "kind": Case("log", {"level": "info", "message": ""})} for i in range(RESULT_LIST_ITEMS_MAX + 1)]
    with pytest.raises(ResultError, match=rf"^\$\.commands: the result holds more than {RESULT_LIST_ITEMS_MAX} list elements"):
        fresh("echo-output", {"data_json": None, "commands": commands})


def test_bound_call_reuses_its_arena_and_result_slot(echo: Echo) -> None:
    """Thousands of calls through one bound function: arguments of every size (the
    arena grows for big ones and shrinks back), results kept for the next call to
    free or freed at once when large, and a token from an overwritten lower refused."""
    call = bind_export(echo.component, (ECHO, "echo-payload"), echo.func("echo-payload"), echo.store, mode="fast")
    assert isinstance(call, BoundFastCall)
    small = call._cap
    for i in range(2000):
        payload = [Case("text", f"t{i}"), Case("binary", bytes([i % 256]) * (i % 7)), Case("empty"), Case("closed", {"code": i % 65536, "reason": "r"})][i % 4]
        assert same(call(payload), payload)
    big = Case("binary", bytes(range(256)) * 1024)  # 256 KiB: 8 MiB of C values
    assert same(call(big), big)
    assert call._cap > small
    assert call._result[0] == b"\0"  # a result that large is freed as soon as it is read
    assert same(call(Case("json", "{}")), Case("json", "{}"))
    assert call._cap == small  # the big arena is dropped again
    first = call.lower(Case("text", "a"))
    second = call.lower(Case("text", "b"))
    with pytest.raises(RuntimeError, match="overwritten"):
        call.invoke(first)
    assert same(call.lift(call.invoke(second)), Case("text", "b"))
    assert same(call.lift(call.invoke(second)), Case("text", "b"))  # arguments are only read
    with pytest.raises(CodecError):
        call.lower(Case("text", 5))
    with pytest.raises(RuntimeError, match="overwritten"):
        call.invoke(second)  # a refused lower may have written half its arguments


def test_generated_source_is_flat(echo: Echo) -> None:
    """The event record (8 fields) is lowered with one struct call for its block,
    plus one per payload box; names only appear as string literals."""
    source = FastCall(FuncCodec(echo.func("echo-event"), echo.store)).generated.source
    lower = source.split("def lift")[0]
    assert "def _L" not in lower
    assert lower.count("(a, 0, ") == 1  # the parameter and the record's entries: one write
    keywords = FastCall(FuncCodec(echo.func("echo-keywords"), echo.store)).generated.source
    assert "'class'" in keywords and "'from'" in keywords
