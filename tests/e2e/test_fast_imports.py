"""The host imports (`yoi:host/log`, `request`, `fs`) through both of the host's paths.

`pdk/host/_fastimport.py` defines the imports through wasmtime's C API with
generated converters; `YOI_PDK_CODEC=plain` keeps wasmtime-py's `add_func` and the
codec. The import-probe test plugin (tests/plugins/import-probe) calls the raw
import bindings with whatever its input asks for, so the same hostile arguments
(huge strings, thousands of headers or log records, paths that escape) reach both
paths; every answer, every error and every diagnostics record must be the same.
The plain-path plugin is loaded with the variable set, the fast one without, in the
same host, against a real loopback HTTP server and a real directory.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from loopback_http import api_server
from wasmtime import _ffi
from wasmtime.component import Linker
from wasmtime.component import _enter as wasmtime_enter

from pdk.host import Host, LoadedPlugin, open_package
from pdk.host import _fastimport
from pdk.host._fastcall import ENV_CODEC
from pdk.host._fastgen import Refused, generate
from pdk.host.codec import CodecError, Err, Ok
from pdk.host.diagnostics import DiagnosticLog
from pdk.host.fs_api import FsBackend
from pdk.host.instance import GuestFault, PluginInstance
from pdk.host.linker import FS_IFACE, HostContext, build_linker
from pdk.limits import FS_READ_MAX_BYTES, FS_WRITE_MAX_BYTES, LOG_MESSAGE_MAX_BYTES, LOG_RING_MAX_RECORDS
from pdk.testing import HttpTestServer

pytestmark = pytest.mark.slow

TOOLS = "yoi:plugin/tools@2.0.0"
SECRET = "sk-proj-" + "S" * 40


@pytest.fixture(scope="module")
def server() -> Iterator[HttpTestServer]:
    s = api_server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def probe_dir(built_plugin: Callable[[str], Path], server: HttpTestServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built probe with its `[[request]]` target on the server's port."""
    dest = tmp_path_factory.mktemp("probe") / "import-probe"
    shutil.copytree(built_plugin("import-probe"), dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    manifest = dest / "plugin.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("port = 8765", f"port = {server.port}"), encoding="utf-8")
    return dest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("hello", encoding="utf-8")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "outside.txt").write_text("outside secret", encoding="utf-8")
    return root


def _grants(probe_dir: Path, path: Path, root: Path, port: int, host_apis: tuple[str, ...]) -> Path:
    path.write_text(
        f'[[plugins]]\nid = "import-probe"\nversion = "0.1.0"\ndigest = "{open_package(probe_dir).digest}"\n'
        f'surfaces = ["tools"]\ntools = ["*"]\nhost_apis = {json.dumps(list(host_apis))}\n'
        f'[[plugins.request]]\nscheme = "http"\nhost = "127.0.0.1"\nport = {port}\nmethods = ["GET", "POST"]\npath_prefixes = ["/api"]\n'
        f'[[plugins.fs]]\nname = "data"\npath = {json.dumps(str(root))}\noperations = ["read", "list", "write"]\n',
        encoding="utf-8",
    )
    return path


Pair = Callable[..., dict[str, LoadedPlugin]]


@pytest.fixture
def pair(host: Host, probe_dir: Path, tmp_path: Path, root: Path, server: HttpTestServer, monkeypatch: pytest.MonkeyPatch) -> Pair:
    """The probe loaded twice: {"fast": ..., "plain": ...} (the plain one's imports
    defined with YOI_PDK_CODEC=plain)."""

    def _pair(host_apis: tuple[str, ...] = ("log", "request", "fs")) -> dict[str, LoadedPlugin]:
        grants = _grants(probe_dir, tmp_path / "grants.toml", root, server.port, host_apis)
        before = _fastimport.defined()
        monkeypatch.setenv(ENV_CODEC, "plain")
        plain = host.load(probe_dir, grants=grants)
        assert _fastimport.defined() == before, "the plain path defined fast imports"
        assert plain.instance._linker.mode == "plain"
        monkeypatch.delenv(ENV_CODEC)
        fast = host.load(probe_dir, grants=grants)
        # One linker per component and mode, shared by its plugins (pdk/host/linker.py):
        # the five fast imports are defined by the component's first fast load only.
        assert _fastimport.defined() in (before, before + 5), "the fast path defined other than the five imports"
        assert fast.instance._linker.mode == "fast"
        # Two plugins of the same id: the second load replaced the first in the host's
        # registry (closing its instance); the first is still callable on its own.
        return {"fast": fast, "plain": plain}

    return _pair


def call(plugin: LoadedPlugin, tool: str, **args: Any) -> Any:
    result = plugin.call_tool(tool, args)
    assert result.ok, result.to_json()
    return result.content


def both(plugins: dict[str, LoadedPlugin], tool: str, **args: Any) -> Any:
    """The tool's answer through both paths; they must be equal (but for a response's
    `Date` header: the two requests may straddle a second)."""
    answers = {mode: call(plugin, tool, **args) for mode, plugin in plugins.items()}
    assert _undated(answers["fast"]) == _undated(answers["plain"]), answers
    return answers["fast"]


def _undated(answer: Any) -> Any:
    response = answer.get("ok") if isinstance(answer, dict) else None
    if not isinstance(response, dict) or not isinstance(response.get("headers"), list):
        return answer
    headers = [h for h in response["headers"] if not (isinstance(h, list) and h and str(h[0]).lower() == "date")]
    return {**answer, "ok": {**response, "headers": headers}}


def records(plugin: LoadedPlugin) -> list[tuple[str, str, str]]:
    return [(r.source, r.level, r.message) for r in plugin.diagnostics.records("log")]


# --------------------------------------------------------------------------------- log


def test_log_records_are_the_same(pair: Pair) -> None:
    plugins = pair()
    for level in ("debug", "info", "warn", "error"):
        assert both(plugins, "log_many", count=2, level=level, text=f"{level}: héllo ✓ {SECRET}") == 2
    both(plugins, "log_many", count=1, text="")
    fast, plain = records(plugins["fast"]), records(plugins["plain"])
    assert fast == plain
    assert [level for _, level, _ in fast] == ["debug", "debug", "info", "info", "warn", "warn", "error", "error", "info"]
    assert all(SECRET not in message for _, _, message in fast), "a secret reached the diagnostics"
    assert fast[0][2].startswith("debug: héllo ✓ ")


def test_a_huge_message_is_bounded_alike(pair: Pair) -> None:
    plugins = pair()
    both(plugins, "log_many", count=3, text="x" * 1000 + f" {SECRET} ", repeat=2000)  # 2 MB per record
    fast, plain = records(plugins["fast"]), records(plugins["plain"])
    assert fast == plain and len(fast) == 3
    assert all(len(message.encode("utf-8")) <= LOG_MESSAGE_MAX_BYTES for _, _, message in fast)
    assert all(SECRET not in message for _, _, message in fast)


def test_a_log_flood_stays_in_the_ring(pair: Pair) -> None:
    plugins = pair()
    count = LOG_RING_MAX_RECORDS + 500
    assert both(plugins, "log_many", count=count, text="flood") == count
    for plugin in plugins.values():
        assert len(plugin.diagnostics.records()) == LOG_RING_MAX_RECORDS
        assert plugin.diagnostics.dropped >= 500
    assert records(plugins["fast"]) == records(plugins["plain"])


# ----------------------------------------------------------------------------- request


def test_requests_answer_alike(pair: Pair, server: HttpTestServer) -> None:
    plugins = pair()
    base = f"http://127.0.0.1:{server.port}"
    sent = server.count
    ok = both(plugins, "send", method="POST", url=f"{base}/api/echo", headers_json='[["x-one", "1"], ["x-two", "2"]]', body="body ✓", body_repeat=3, timeout_ms=5000)
    assert ok["ok"]["status"] == 200
    assert server.count == sent + 2
    big = both(plugins, "send", method="GET", url=f"{base}/api/big?bytes=200000")
    assert big["ok"]["body"]["length"] == 200000 and big["ok"]["truncated"] is False
    assert both(plugins, "send", method="GET", url=f"{base}/api/status?code=503")["ok"]["status"] == 503
    sent = server.count
    denied = both(plugins, "send", method="GET", url="http://example.com/api/json")
    assert denied["err"]["code"] == "denied"
    invalid = both(plugins, "send", method="GET", url="not a url")
    assert "err" in invalid
    assert server.count == sent, "a refused request reached the network"


def test_hostile_request_arguments_are_bounded_alike(pair: Pair, server: HttpTestServer) -> None:
    plugins = pair()
    base = f"http://127.0.0.1:{server.port}"
    sent = server.count
    many = both(plugins, "send", method="GET", url=f"{base}/api/json", headers_json='[["x-h", "v"]]', header_repeat=20000)
    assert "err" in many
    huge_url = both(plugins, "send", method="GET", url=f"{base}/api/json?q=", url_pad=300000)
    assert "err" in huge_url
    huge_header = both(plugins, "send", method="GET", url=f"{base}/api/json", headers_json='[["x-big", "v"]]', value_repeat=200000)
    assert "err" in huge_header
    assert server.count == sent, "an oversized request reached the network"
    assert "err" in both(plugins, "send", method="get\r\nx", url=f"{base}/api/json")


def test_request_not_granted_is_denied_alike(pair: Pair, server: HttpTestServer) -> None:
    plugins = pair(host_apis=("log", "fs"))
    sent = server.count
    answer = both(plugins, "send", method="GET", url=f"http://127.0.0.1:{server.port}/api/json")
    assert answer["err"]["code"] == "denied"
    assert server.count == sent


# ---------------------------------------------------------------------------------- fs


def test_fs_answers_alike(pair: Pair, root: Path) -> None:
    plugins = pair()
    assert both(plugins, "read", root="data", path="a.txt") == {"ok": {"length": 5, "head": "hello", "sum": 532}}
    binary = both(plugins, "read", root="data", path="sub/b.bin")
    assert binary["ok"]["length"] == 1024 and binary["ok"]["sum"] == sum(range(256)) * 4 % 65521
    for mode, plugin in plugins.items():
        assert call(plugin, "write", root="data", path=f"new/{mode}.txt", text="ünï", repeat=3) == {"ok": None}
        assert (root / "new" / f"{mode}.txt").read_text(encoding="utf-8") == "ünï" * 3
    listing = both(plugins, "listing", root="data")
    assert listing == {"ok": [{"name": "a.txt", "kind": "file", "size": 5}, {"name": "new", "kind": "directory", "size": 0}, {"name": "sub", "kind": "directory", "size": 0}]}
    for path in ("../outside.txt", "/etc/passwd", "sub/../../outside.txt", ""):
        answer = both(plugins, "read", root="data", path=path)
        assert answer["err"]["code"] in ("invalid_path", "not_found", "io"), answer
        assert "outside secret" not in json.dumps(answer)
    assert both(plugins, "read", root="data", path="missing.txt")["err"]["code"] == "not_found"
    assert both(plugins, "read", root="nope", path="a.txt")["err"]["code"] == "denied"
    assert both(plugins, "listing", root="data", path="a.txt")["err"]["code"] in ("invalid_path", "not_found", "io")


def test_large_files_cross_alike(pair: Pair, root: Path) -> None:
    """A large read (a large result), a file over the read bound and a large write
    (the largest argument)."""
    plugins = pair()
    (root / "big.bin").write_bytes(bytes(range(251)) * (128 * 1024 // 251))
    big = both(plugins, "read", root="data", path="big.bin")
    assert big["ok"]["length"] == 128 * 1024 // 251 * 251
    assert big["ok"]["sum"] == sum(range(251)) * (128 * 1024 // 251) % 65521
    (root / "over.bin").write_bytes(b"o" * (FS_READ_MAX_BYTES + 1))
    assert both(plugins, "read", root="data", path="over.bin")["err"]["code"] == "too_large"
    for mode, plugin in plugins.items():
        assert call(plugin, "write", root="data", path=f"w-{mode}.txt", text="w" * 1000, repeat=100) == {"ok": None}
        assert (root / f"w-{mode}.txt").stat().st_size == 100000


def test_a_read_at_the_bound_fits_in_the_deadline(pair: Pair, root: Path) -> None:
    """A file of FS_READ_MAX_BYTES, the largest result the host hands a guest, through
    the fast path. (The plain path writes a list<u8> result one byte at a time through
    wasmtime-py, about 5 µs each: a read that large exceeds the default deadline.)"""
    fast = pair()["fast"]
    size = FS_READ_MAX_BYTES // 251 * 251
    (root / "bound.bin").write_bytes(bytes(range(251)) * (size // 251))
    answer = call(fast, "read", root="data", path="bound.bin")
    assert answer == {"ok": {"length": size, "head": bytes(range(64)).decode("latin-1"), "sum": sum(range(251)) * (size // 251) % 65521}}
    # And the largest argument: a write of FS_WRITE_MAX_BYTES (the plain path reads a
    # list<u8> argument one byte at a time through wasmtime-py as well).
    assert call(fast, "write", root="data", path="bound-copy.bin", text="b" * 1024, repeat=FS_WRITE_MAX_BYTES // 1024) == {"ok": None}
    assert (root / "bound-copy.bin").read_bytes() == b"b" * FS_WRITE_MAX_BYTES
    over = call(fast, "write", root="data", path="over-copy.bin", text="o" * 1024, repeat=FS_WRITE_MAX_BYTES // 1024 + 1)
    assert over["err"]["code"] == "too_large" and not (root / "over-copy.bin").exists()


# --------------------------------------------------------------- faults of the host side


class Raising:
    """A request and fs backend whose every call raises (a host bug)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def send(self, request: dict[str, Any]) -> Any:
        raise self.exc

    def read_file(self, root: str, path: str) -> Any:
        raise self.exc

    def write_file(self, root: str, path: str, data: bytes) -> Any:
        raise self.exc

    def list_dir(self, root: str, path: str) -> Any:
        raise self.exc


class Wrong:
    """A backend answering values that do not fit the declared types (a host bug)."""

    def send(self, request: dict[str, Any]) -> Any:
        return Ok({"status": 70000, "headers": [], "body": b"", "truncated": False})

    def read_file(self, root: str, path: str) -> Any:
        return "not bytes"

    def write_file(self, root: str, path: str, data: bytes) -> Any:
        return Ok("no payload here")

    def list_dir(self, root: str, path: str) -> Any:
        return Ok([{"name": "x", "kind": "sideways", "size": 1}])


def instance_with(plugin: LoadedPlugin, ctx: HostContext) -> PluginInstance:
    """The plugin's component with imports bound to `ctx` (the host's own linker builder)."""
    inst = plugin.instance
    linker = build_linker(inst._engine, inst._component, ctx)
    return PluginInstance(inst._engine, inst._component, linker, inst._ticker, inst.limits, ctx.diagnostics, inst._fuel_enabled)


def tool(instance: PluginInstance, name: str, **args: Any) -> Any:
    out = instance.call_here(TOOLS, "call", {"tool": name, "input_json": json.dumps(args), "call_id": "c1"})
    assert isinstance(out, Ok), out
    return json.loads(out.value["content_json"])


@pytest.mark.parametrize("backend", [Raising(RuntimeError("boom")), Raising(ValueError("bad")), Raising(OSError("disk")), Wrong()], ids=["runtime", "value", "os", "wrong"])
def test_backend_faults_become_the_declared_errors_alike(pair: Pair, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = pair()
    answers: dict[str, list[Any]] = {}
    for mode in ("fast", "plain"):
        if mode == "plain":
            monkeypatch.setenv(ENV_CODEC, "plain")
        instance = instance_with(plugins["fast"], HostContext(DiagnosticLog(), request=backend, fs=backend))
        monkeypatch.delenv(ENV_CODEC, raising=False)
        answers[mode] = [
            tool(instance, "send", method="GET", url="http://127.0.0.1:1/api"),
            tool(instance, "read", root="data", path="a.txt"),
            tool(instance, "write", root="data", path="a.txt", text="x"),
            tool(instance, "listing", root="data"),
            tool(instance, "log_many", count=2, text="still logging"),
        ]
        assert instance.recycles == 0, "a host fault trapped the guest"
        instance.close()
    assert answers["fast"] == answers["plain"], answers
    send, read, write, listing, logged = answers["fast"]
    invalid = isinstance(backend, Wrong) or isinstance(getattr(backend, "exc", None), ValueError)
    assert send == {"err": {"code": "invalid" if invalid else "failed", "message": "host error"}}
    for answer in (read, write, listing):
        assert answer == {"err": {"code": "io", "message": "host error"}}
    assert logged == 2


def test_a_fallback_that_cannot_be_written_traps_without_the_global_slot(pair: Pair) -> None:
    """The last resort: when even the declared fallback does not fit the type, the
    guest call traps with the host's own error; wasmtime-py's process-global
    exception slot is never used (another thread could pick the exception up)."""
    plugin = pair()["fast"]
    inst = plugin.instance
    component = inst._component
    linker = Linker(inst._engine)
    linker.add_wasip2()
    plans = {key: _fastimport.ImportPlan(fty) for key, fty in component._yoi_host_imports[0].items()}

    def broken(*_args: Any) -> Any:
        raise RuntimeError("host bug")

    with linker.root() as root:
        for iface in ("yoi:host/log@2.0.0", "yoi:host/request@2.0.0", FS_IFACE):
            with root.add_instance(iface) as added:
                for (plan_iface, name), plan in plans.items():
                    if plan_iface == iface:
                        _fastimport.add_import(added, name, plan, broken, lambda exc: "not a result")
        with root.add_instance("yoi:plugin/types@2.0.0"):
            pass
    instance = PluginInstance(inst._engine, component, linker, inst._ticker, inst.limits, DiagnosticLog(), inst._fuel_enabled)
    assert tool(instance, "log_many", count=3, text="a void import's fallback is not written") == 3
    with pytest.raises(GuestFault):
        tool(instance, "read", root="data", path="a.txt")
    assert wasmtime_enter.LAST_EXCEPTION is None
    assert instance.recycles == 1
    assert tool(instance, "log_many", count=1) == 1  # a fresh instance
    instance.close()


# ------------------------------------------------------------------------------ threads


def test_plugins_on_several_threads_call_imports_at_once(pair: Pair, root: Path) -> None:
    plugins = pair()
    fast = plugins["fast"]
    workers = [instance_with(fast, HostContext(DiagnosticLog(), fs=FsBackend.for_manifest(fast.grants, fast.package.manifest))) for _ in range(4)]
    errors: list[BaseException] = []
    rounds = 25
    expected_read = {"ok": {"length": 5, "head": "hello", "sum": 532}}

    def work(index: int, instance: PluginInstance) -> None:
        try:
            for i in range(rounds):
                assert tool(instance, "log_many", count=20, text=f"worker {index} round {i}") == 20
                assert tool(instance, "read", root="data", path="a.txt") == expected_read
                assert tool(instance, "write", root="data", path=f"t{index}.txt", text=f"{index}:{i}") == {"ok": None}
                names = [e["name"] for e in tool(instance, "listing", root="data")["ok"]]
                assert f"t{index}.txt" in names and "a.txt" in names
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    for index, instance in enumerate(workers):
        messages = instance._diagnostics.messages("log")
        assert len(messages) == min(rounds * 20, LOG_RING_MAX_RECORDS)
        assert instance._diagnostics.dropped == rounds * 20 - len(messages)
        assert all(m.startswith(f"worker {index} ") for m in messages), "a record reached another plugin's log"
        assert instance.recycles == 0
        assert (root / f"t{index}.txt").read_text(encoding="utf-8") == f"{index}:{rounds - 1}"
        instance.close()


# ------------------------------------------------------------------- the result writer


RESULTS = {
    ("yoi:host/request@2.0.0", "send"): [
        Ok({"status": 200, "headers": [("content-type", "text/plain"), ("x-ü", "✓" * 300)], "body": bytes(range(256)) * 3, "truncated": True}),
        Ok({"status": 204, "headers": [], "body": b"", "truncated": False}),
        Err({"code": "too_large", "message": "the request exceeds a host bound"}),
        Err({"code": "connection_failed", "message": ""}),
    ],
    (FS_IFACE, "read-file"): [Ok(b"\x00\xff" * 5000), Ok(b""), Err({"code": "not_found", "message": "no such file"})],
    (FS_IFACE, "write-file"): [Ok(None), Err({"code": "invalid_path", "message": "the path contains '..'"})],
    (FS_IFACE, "list-dir"): [
        Ok([{"name": "a", "kind": "directory", "size": 0}, {"name": "b.txt", "kind": "file", "size": 2**40}, {"name": "c", "kind": "other", "size": 0}]),
        Ok([]),
    ],
}


def test_results_are_wasmtimes_own_memory_and_read_back_the_same(pair: Pair) -> None:
    """Every import result shape, written by the fast writer and by its wasmtime-py
    fallback into a result slot, reads back as the same plain value and is freed by
    wasmtime itself (memory of wasmtime's own allocator, as it takes results over)."""
    fast = pair()["fast"]
    types = fast.instance._component._yoi_host_imports[0]
    slot = (ctypes.c_char * 32)()
    address = ctypes.addressof(slot)
    delete = _ffi.wasmtime_component_val_delete
    for key, plains in RESULTS.items():
        plan = _fastimport.ImportPlan(types[key]).ready()
        assert plan.codec.result is not None
        lift = generate([], plan.codec.result).lift
        assert lift is not None
        writers = {"fast": plan.write_result, "plain": lambda plain, at: plan._write_plain(plain, at, Refused())}
        for plain in plains:
            for mode, write in writers.items():
                write(plain, address)
                value, _held = lift(address)
                delete(ctypes.cast(address, ctypes.POINTER(_ffi.wasmtime_component_val_t)))
                slot[0] = b"\0"
                assert value == plain, (key, mode)
    plan = _fastimport.ImportPlan(types[("yoi:host/request@2.0.0", "send")]).ready()
    ctypes.memset(address, 0, 32)  # `bool false`, as wasmtime hands the slot over
    with pytest.raises(CodecError):
        plan.write_result(Ok({"status": 70000, "headers": [], "body": b"", "truncated": False}), address)
    assert slot.raw == bytes(32), "a refused value left something in the slot"
