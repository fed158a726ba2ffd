"""What a `ServiceRuntime` needs from a loaded plugin, as two small protocols.

`pdk.host.LoadedPlugin` satisfies `RuntimePlugin`; unit tests pass a fake with
these members. The runtime reads the manifest and grants, writes diagnostics,
governs the tool gate, calls the lifecycle and events exports of the instance
(through `guest.WasmGuest`) and carries the plugin's status document in its own.
"""

from __future__ import annotations

from typing import Any, Protocol

from pdk.package.manifest import Manifest

from ..grants import GrantSet
from ..tool_gate import ToolGate


class PluginExports(Protocol):
    """The instance, as far as the runtime calls it (`PluginInstance`)."""

    @property
    def recycles(self) -> int:
        """How many times the instance was discarded after a fault (any caller's)."""
        ...

    def call(self, iface: str, name: str, *args: Any, deadline_s: float | None = None) -> Any: ...

    def warm(self) -> float: ...

    def close(self) -> None: ...


class Diagnostics(Protocol):
    def add(self, source: str, level: str, message: str) -> None: ...


class RuntimePlugin(Protocol):
    @property
    def manifest(self) -> Manifest: ...

    @property
    def digest(self) -> str: ...

    @property
    def grants(self) -> GrantSet: ...

    @property
    def diagnostics(self) -> Diagnostics: ...

    @property
    def tool_gate(self) -> ToolGate: ...

    @property
    def instance(self) -> PluginExports: ...

    def status(self) -> dict[str, Any]:
        """The plugin's status document (`LoadedPlugin.status()`); never runs plugin code."""
        ...
