"""One linker per component, shared by its plugins: each plugin's imports still act
on its own grants, fs root, secrets and diagnostics only.

`pdk/host/linker.py` keeps one linker per component and codec mode; the host
functions find the plugin they serve through the data of the calling store (the
plugin's `HostContext`, set when `PluginInstance` makes the store). Here the same
import-probe component is loaded under two ids with different grants - A: an fs
root holding a secret file, the loopback API with a secret header, and B: another
fs root, the API without a secret - and their calls are interleaved, recycled, made
from two threads at once, and made through both import paths (fast and
`YOI_PDK_CODEC=plain`). A store made without a context (the shared linker used
directly) is denied everything.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loopback_http import api_server

from pdk.host import Host, LoadedPlugin, open_package
from pdk.host._fastcall import ENV_CODEC
from pdk.host.diagnostics import DiagnosticLog
from pdk.host.instance import PluginInstance
from pdk.host.linker import HostLinker, shared_linker
from pdk.testing import HttpTestServer

pytestmark = pytest.mark.slow

TOOLS = "yoi:plugin/tools@2.0.0"
SECRET_A = "sk-a-" + "A" * 32
SECRET_ENV = "YOI_TEST_SHARED_LINKER_SECRET_A"


@pytest.fixture(scope="module")
def server() -> Iterator[HttpTestServer]:
    s = api_server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def probes(built_plugin: Callable[[str], Path], server: HttpTestServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The built import-probe under two ids (the same component bytes)."""
    base = tmp_path_factory.mktemp("shared")
    dirs = {}
    for name in ("probe-a", "probe-b"):
        dest = base / name
        shutil.copytree(built_plugin("import-probe"), dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
        manifest = dest / "plugin.toml"
        text = manifest.read_text(encoding="utf-8").replace("port = 8765", f"port = {server.port}")
        manifest.write_text(text.replace('id = "import-probe"', f'id = "{name}"'), encoding="utf-8")
        dirs[name] = dest
    return dirs


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    roots = {}
    for name, content in (("probe-a", "A's own data"), ("probe-b", "B's own data")):
        root = tmp_path / name
        root.mkdir()
        (root / "mine.txt").write_text(content, encoding="utf-8")
        roots[name] = root
    (roots["probe-a"] / "secret.txt").write_text(SECRET_A, encoding="utf-8")
    return roots


@pytest.fixture
def grants(probes: dict[str, Path], roots: dict[str, Path], server: HttpTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(SECRET_ENV, SECRET_A)
    text = ""
    for name, directory in probes.items():
        text += (
            f'[[plugins]]\nid = "{name}"\nversion = "0.1.0"\ndigest = "{open_package(directory).digest}"\n'
            'surfaces = ["tools"]\ntools = ["*"]\nhost_apis = ["log", "request", "fs"]\n'
            f'[[plugins.request]]\nscheme = "http"\nhost = "127.0.0.1"\nport = {server.port}\nmethods = ["GET"]\npath_prefixes = ["/api"]\n'
            f'[[plugins.fs]]\nname = "data"\npath = {json.dumps(str(roots[name]))}\noperations = ["read", "list", "write"]\n'
        )
        if name == "probe-a":
            text += f'[[plugins.secrets]]\nname = "token"\nenv = "{SECRET_ENV}"\nheader = "X-Token"\n'
    path = tmp_path / "grants.toml"
    path.write_text(text, encoding="utf-8")
    return path


def tool(plugin: LoadedPlugin, name: str, **args: Any) -> Any:
    result = plugin.call_tool(name, args)
    assert result.ok, result.to_json()
    return result.content


def logs(plugin: LoadedPlugin) -> list[str]:
    return plugin.diagnostics.messages("log")


def check_round(plugins: dict[str, LoadedPlugin], server: HttpTestServer, tag: str) -> None:
    """One call of every import by each plugin, interleaved; each sees only its own."""
    a, b = plugins["probe-a"], plugins["probe-b"]
    assert tool(a, "log_many", count=2, text=f"from a {tag}") == 2
    assert tool(b, "log_many", count=3, text=f"from b {tag}") == 3
    assert tool(a, "read", root="data", path="mine.txt")["ok"]["head"] == "A's own data"
    assert tool(b, "read", root="data", path="mine.txt")["ok"]["head"] == "B's own data"
    assert tool(a, "read", root="data", path="secret.txt")["ok"]["head"] == SECRET_A
    missing = tool(b, "read", root="data", path="secret.txt")
    assert "err" in missing and SECRET_A not in json.dumps(missing), missing
    names_b = [e["name"] for e in tool(b, "listing", root="data")["ok"]]
    assert names_b == ["mine.txt"] or sorted(names_b) == ["b-wrote.txt", "mine.txt"], names_b
    assert tool(b, "write", root="data", path="b-wrote.txt", text=tag) == {"ok": None}
    before = server.count
    assert tool(a, "send", method="GET", url=f"http://127.0.0.1:{server.port}/api/json")["ok"]["status"] == 200
    assert tool(b, "send", method="GET", url=f"http://127.0.0.1:{server.port}/api/json")["ok"]["status"] == 200
    sent = server.wait_for(before + 2)[before:]
    assert [r.headers.get("x-token") for r in sent] == [SECRET_A, None], "a secret header went with the wrong plugin's request"


def assert_own_logs(plugins: dict[str, LoadedPlugin]) -> None:
    for name, plugin in plugins.items():
        own = "from a" if name == "probe-a" else "from b"
        messages = logs(plugin)
        assert messages and all(m.startswith(own) for m in messages), (name, messages[:4])
        assert SECRET_A not in json.dumps(plugin.status()), name


@pytest.mark.parametrize("mode", ["fast", "plain"])
def test_two_plugins_of_one_component_share_a_linker_and_nothing_else(
    host: Host, probes: dict[str, Path], grants: Path, roots: dict[str, Path], server: HttpTestServer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mode == "plain":
        monkeypatch.setenv(ENV_CODEC, "plain")
    plugins = {name: host.load(directory, grants=grants) for name, directory in probes.items()}
    a, b = plugins["probe-a"], plugins["probe-b"]
    linker_a, linker_b = a.instance._linker, b.instance._linker
    assert isinstance(linker_a, HostLinker) and isinstance(linker_b, HostLinker)
    assert a.instance._component is b.instance._component, "the same bytes did not share one compiled component"
    assert linker_a.linker is linker_b.linker and linker_a.mode == linker_b.mode == mode
    assert linker_a.context is not linker_b.context

    check_round(plugins, server, "one")
    # A recycled instance (a new store, instantiated again) keeps its own context.
    a.instance.discard()
    check_round(plugins, server, "two")
    b.instance.discard()
    a.instance.discard()
    check_round(plugins, server, "three")
    assert a.instance.instantiations == 3 and b.instance.instantiations == 2
    assert_own_logs(plugins)
    assert (roots["probe-b"] / "b-wrote.txt").read_text(encoding="utf-8") == "three"
    assert not (roots["probe-a"] / "b-wrote.txt").exists()

    # A third load of the same component while A is closed: its own context again.
    a.close()
    again = host.load(probes["probe-a"], grants=grants)
    linker_again = again.instance._linker
    assert isinstance(linker_again, HostLinker) and linker_again.linker is linker_b.linker
    assert logs(again) == []
    check_round({"probe-a": again, "probe-b": b}, server, "four")
    assert_own_logs({"probe-a": again, "probe-b": b})
    again.close()
    b.close()


def test_plugins_of_one_component_on_two_threads_stay_apart(
    host: Host, probes: dict[str, Path], grants: Path, roots: dict[str, Path]
) -> None:
    plugins = {name: host.load(directory, grants=grants) for name, directory in probes.items()}
    errors: list[BaseException] = []
    rounds = 30

    def work(name: str, plugin: LoadedPlugin) -> None:
        own = "A's own data" if name == "probe-a" else "B's own data"
        try:
            for i in range(rounds):
                assert tool(plugin, "log_many", count=5, text=f"{name} {i}") == 5
                assert tool(plugin, "read", root="data", path="mine.txt")["ok"]["head"] == own
                assert tool(plugin, "write", root="data", path="t.txt", text=f"{name}:{i}") == {"ok": None}
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=item) for item in plugins.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    for name, plugin in plugins.items():
        messages = logs(plugin)
        assert len(messages) == rounds * 5 and all(m.startswith(f"{name} ") for m in messages), "a record reached another plugin's log"
        assert (roots[name] / "t.txt").read_text(encoding="utf-8") == f"{name}:{rounds - 1}"
        plugin.close()


def test_a_store_without_a_context_is_denied_everything(host: Host, probes: dict[str, Path], grants: Path) -> None:
    """The shared linker used with a bare store (no HostContext as its data): requests
    and fs calls are denied, logs go nowhere - never to a plugin's context."""
    plugin = host.load(probes["probe-a"], grants=grants)
    inst = plugin.instance
    linker, _mode = shared_linker(inst._engine, inst._component)
    bare = PluginInstance(inst._engine, inst._component, linker, inst._ticker, inst.limits, DiagnosticLog(), inst._fuel_enabled)

    def bare_tool(name: str, **args: Any) -> Any:
        out = bare.call(TOOLS, "call", {"tool": name, "input_json": json.dumps(args), "call_id": "c"})
        return json.loads(out.value["content_json"])

    assert bare_tool("log_many", count=3, text="nowhere") == 3
    assert bare_tool("read", root="data", path="secret.txt") == {"err": {"code": "denied", "message": "the fs host API is not granted to this plugin"}}
    assert bare_tool("send", method="GET", url="http://127.0.0.1:1/api/json")["err"]["code"] == "denied"
    assert logs(plugin) == [] and bare._diagnostics.messages("log") == []
    assert bare.recycles == 0
    bare.close()
    plugin.close()
