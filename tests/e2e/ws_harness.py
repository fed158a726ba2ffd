"""Running the `ws-echo` test plugin against a `WebSocketTestServer`: copy the built plugin,
point its connections at the test's servers, load it, start the runtime and driver."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdk.host import Host, LoadedPlugin
from pdk.host.grants import GrantsFile
from pdk.host.loader import open_package
from pdk.host.runtime import ServiceRuntime
from pdk.host.websocket import DriverOptions, WebSocketDriver

ECHO_PORT, AUX_PORT = "59999", "59998"
# Short times so that reconnects and heartbeats happen within a test; no test asserts
# on how long anything took.
FAST = DriverOptions(
    open_timeout_s=5.0,
    close_timeout_s=1.0,
    ping_interval_s=None,
    reconnect_initial_s=0.05,
    reconnect_max_s=0.4,
    stable_after_s=60.0,
)


def plugin_copy(built: Path, dest: Path, echo_port: int, aux_port: int | None = None, *, secrets: list[str] | None = None) -> Path:
    """A copy of the built plugin whose connections go to the given ports."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(built, dest)
    manifest = dest / "plugin.toml"
    text = manifest.read_text().replace(ECHO_PORT, str(echo_port))
    if aux_port is not None:
        text = text.replace(AUX_PORT, str(aux_port))
    if secrets:
        listed = ", ".join(json.dumps(s) for s in secrets)
        text = text.replace(f'/echo"\n', f'/echo"\nsecrets = [{listed}]\n', 1)
    manifest.write_text(text)
    return dest


def grants_for(path: Path, body: str) -> GrantsFile:
    """A grants file pinned to the package at `path`; `body` adds keys and tables."""
    package = open_package(path)
    m = package.manifest
    text = f'[[plugins]]\nid = "{m.id}"\nversion = "{m.version}"\ndigest = "{package.digest}"\n' + body
    return GrantsFile.parse(text, source="test-grants.toml")


def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy (a failure guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class Running:
    plugin: LoadedPlugin
    rt: ServiceRuntime
    driver: WebSocketDriver

    def seen(self, source: str | None = None) -> list[dict[str, Any]]:
        """What the guest saw, as it recorded it (emit topic "seen")."""
        return [r["data"] for r in self.rt.emitted("seen") if source is None or r["data"]["source"] == source]

    def kinds(self, source: str = "echo") -> list[str]:
        return [s["kind"] for s in self.seen(source)]

    def conn(self, name: str = "echo") -> dict[str, Any]:
        return self.driver.status()[name]

    def wait_state(self, state: str, name: str = "echo", timeout_s: float = 30.0) -> dict[str, Any]:
        found: dict[str, Any] = wait_until(lambda: self.conn(name) if self.conn(name)["state"] == state else None, timeout_s, f"{name} {state}")
        return found

    def wait_kinds(self, predicate: Callable[[list[str]], bool], source: str = "echo", timeout_s: float = 30.0) -> list[str]:
        def check() -> list[str] | None:
            self.rt.wait_idle(0.05)
            kinds = self.kinds(source)
            return kinds if predicate(kinds) else None

        kinds: list[str] = wait_until(check, timeout_s, "events seen by the plugin")
        return kinds

    def command_results(self) -> list[dict[str, Any]]:
        return [r for o in self.rt.outcomes() for r in o.get("command_results", [])]

    def stop(self) -> None:
        self.driver.stop()
        self.rt.stop()


def start(
    host: Host,
    path: Path,
    *,
    config: dict[str, Any] | None = None,
    grants: GrantsFile | None = None,
    options: DriverOptions = FAST,
) -> Running:
    plugin = host.load(path, grants=grants, dev_grants=grants is None)
    rt = ServiceRuntime(plugin, config or {})
    rt.start()
    driver = WebSocketDriver(rt, plugin, plugin.grants, options=options)
    driver.start()
    return Running(plugin, rt, driver)
