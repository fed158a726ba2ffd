"""pytest plugin of yoi-pdk, registered through the `pytest11` entry point: installing
yoi-pdk makes these fixtures available to every test suite, with no conftest needed.

Unit tests (plain CPython, no component):

- `fake_host` — a `FakeHost` installed for the test: `fake_host.logs` captures what the
  code logged; script `fake_host.http_responses[url] = HttpResponse(...)` and
  `fake_host.files[(root, path)] = b"..."` for `pdk.http` / `pdk.fs`.

End-to-end tests (real componentize-py build, real wasmtime):

- `pdk_host` (session) — one reference `pdk.host.Host` (compile cache on), closed at the end.
  It loads fast-tier (Winch) code when the cache has nothing better, so a fresh build is
  ready in seconds; builds and first compiles are reported on pytest's terminal.
- `build_plugin(path) -> Path` (session) — builds the plugin at `path` once per session
  with `pdk build` (its build cache makes an unchanged rebuild a no-op) and returns the
  directory.
- `load_plugin(path, grants=None) -> LoadedPlugin` (session) — builds, then loads the
  plugin into `pdk_host` with dev grants (exactly what its plugin.toml declares), or with
  the grants file / `GrantsFile` given. Loading a plugin id again replaces (and closes)
  the previously loaded copy.
- `service_runtime(path, config=None, grants=None, options=None) -> ServiceRuntime` —
  builds and loads the plugin and starts the Service/Ingress runtime on it (lifecycle,
  event queue, output commands); every runtime started in a test is stopped when the
  test ends. Send events with `runtime.submit(ingress, kind, payload)`, then
  `runtime.wait_idle(...)` and read `runtime.outcomes()`, `runtime.emitted()`,
  `runtime.status()`.
- `http_server` — an `HttpTestServer` on 127.0.0.1 that records requests
  (`.requests`, `.wait_for(n)`) and answers scripted responses (`.respond(path, ...)`).
- `websocket_server` — a `WebSocketTestServer` on 127.0.0.1 (`.url`) that records
  handshakes and messages, echoes messages back, and can `.send(...)` to or
  `.close_clients()` every client.

The fast loop, `pytest --pdk-dev`: `load_plugin` and `service_runtime` run each
plugin on `pdk dev`'s runner instead of a real build. The runner (one component per
PDK, componentize-py and dependency set, built once and cached beside the compile
cache) runs the plugin's sources handed to it at load time, so an edit costs what
`pdk build` checks without componentize-py (syntax, imports, introspection, handler
checks, plugin.toml's [[tools]] synced; ~0.3 s) plus a fresh instance, instead of a
componentize-py build and a compile. Per plugin directory, the checks run once per
session; every load is a fresh instance under the plugin's manifest, grants and limits
that imports the sources before the host adopts it: if that import fails the test
fails with the error (file:line), and if only a real build can run the plugin (a
module the runner did not preload) the terminal says so once and those loads use a
real build. `build_plugin` still runs `pdk build` (a test that asks for it wants the
component on disk). The digest of a plugin loaded this way hashes plugin.toml and the
sources, not a component (grants pinned to a built component's digest do not match),
and the runner preloads the whole standard library (docs/dev.md lists where it and a
real build can differ): plain `pytest` stays the truth before `pdk pack`. Without
`--pdk-dev`, nothing changes.

Example:

    PLUGIN = Path(__file__).resolve().parents[1]

    def test_tool(load_plugin):
        plugin = load_plugin(PLUGIN)
        assert plugin.call_tool("greet", {"name": "Ada"}).ok

    def test_service(service_runtime):
        runtime = service_runtime(PLUGIN, config={"greeting": "hi"})
        runtime.submit("chat", "text", Case("text", "hello"))
        runtime.wait_idle(10)
        assert runtime.status()["lifecycle"]["state"] == "running"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from ._dev_mode import OPTION, DevLoads
from .fake_host import FakeHost

if TYPE_CHECKING:
    from pdk.host import GrantsFile, Host, LoadedPlugin

    from .http_server import HttpTestServer
    from .websocket_server import WebSocketTestServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("yoi-pdk")
    group.addoption(
        OPTION,
        action="store_true",
        dest="pdk_dev",
        help="load plugins on pdk dev's runner instead of a real build (the fast loop; "
        "plain pytest stays the truth before pdk pack)",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption("pdk_dev", False):
        return f"yoi-pdk: {OPTION}: plugins run on the dev runner, not a real build (run plain pytest before pdk pack)"
    return None


@pytest.fixture(scope="session")
def pdk_host(pytestconfig: pytest.Config) -> Iterator[Host]:
    from pdk.host import Host

    from ._progress import pytest_progress

    # Fast-tier code (Winch) at once, or better code the cache already holds; no
    # background optimizing compile competing with the tests for the CPU.
    host = Host(compile="tiered", upgrade="none", progress=pytest_progress(pytestconfig))
    yield host
    host.close()


@pytest.fixture(scope="session")
def build_plugin(pytestconfig: pytest.Config) -> Callable[[str | Path], Path]:
    from generator.build import build

    from ._progress import pytest_progress

    built: dict[Path, Path] = {}
    progress = pytest_progress(pytestconfig)

    def _build(path: str | Path) -> Path:
        key = Path(path).resolve()
        if key not in built:
            build(key, progress=progress)
            built[key] = key
        return built[key]

    return _build


@pytest.fixture(scope="session")
def load_plugin(pytestconfig: pytest.Config, pdk_host: Host, build_plugin: Callable[[str | Path], Path]) -> Callable[..., LoadedPlugin]:
    from ._progress import pytest_note, pytest_progress

    dev = DevLoads(pdk_host, pytest_progress(pytestconfig), pytest_note(pytestconfig)) if pytestconfig.getoption("pdk_dev", False) else None

    def _load(path: str | Path, grants: GrantsFile | str | Path | None = None) -> LoadedPlugin:
        if dev is not None:
            plugin = dev.load(Path(path).resolve(), grants)
            if plugin is not None:
                return plugin
        directory = build_plugin(path)
        if grants is None:
            return pdk_host.load(directory, dev_grants=True)
        return pdk_host.load(directory, grants=grants)

    return _load


@pytest.fixture
def service_runtime(load_plugin: Callable[..., LoadedPlugin]) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []

    def _start(path: str | Path, config: Any = None, grants: GrantsFile | str | Path | None = None, options: Any = None) -> Any:
        try:
            from pdk.host.runtime import ServiceRuntime
        except ImportError as exc:  # an older yoi-pdk without the Service/Ingress runtime
            pytest.fail(f"service_runtime needs pdk.host.runtime, which this yoi-pdk lacks ({exc})", pytrace=False)
        runtime = ServiceRuntime(load_plugin(path, grants), config=config, options=options)
        started.append(runtime)
        runtime.start()
        return runtime

    yield _start
    for runtime in reversed(started):
        runtime.stop()


@pytest.fixture
def fake_host() -> Iterator[FakeHost]:
    with FakeHost() as host:
        yield host


@pytest.fixture
def http_server() -> Iterator[HttpTestServer]:
    from .http_server import HttpTestServer

    with HttpTestServer() as server:
        yield server


@pytest.fixture
def websocket_server() -> Iterator[WebSocketTestServer]:
    from .websocket_server import WebSocketTestServer

    with WebSocketTestServer() as server:
        yield server
