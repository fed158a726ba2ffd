"""The reference host: runs Yoi plugins in sandboxed, limited wasmtime instances.

Public API::

    from pdk.host import Host, InstanceLimits

    with Host(limits=InstanceLimits(deadline_s=1.0)) as host:
        plugin = host.load("my-plugin", grants="grants.toml")   # or dev_grants=True
        result = plugin.call_tool("word_count", {"text": "a b"})
        result.ok, result.summary, result.content, result.error

    Services and ingresses run in a `ServiceRuntime` (see `pdk.host.runtime`)::

        from pdk.host import Case, ServiceRuntime

        rt = ServiceRuntime(host.load("my-service", dev_grants=True))
        rt.start(); rt.submit("inbox", "message", Case("text", "hi")); rt.stop()

Everything in `__all__` is the curated public API (tests/unit/test_public_api.py pins
it); the submodules are the host's internals.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .codec import Case, CodecError, Err, Ok
    from .compile_cache import CompiledComponentCache, default_cache_dir
    from .error_record import ErrorRecord
    from .grants import GrantsError, GrantsFile, GrantSet
    from .host import Host, LoadedPlugin, PluginRefused
    from .instance import GuestFault, InstanceLimits
    from .loader import PluginPackage, open_package
    from .runtime import Accepted, CommandContext, Execution, Refused, RuntimeOptions, ServiceRuntime
    from .tool_gate import ToolGate
    from .tools import ToolResult

# Where each public name lives. They are imported on first use (PEP 562), so importing
# a light submodule (`pdk.host.progress`, which `pdk build` uses) does not load
# wasmtime, jsonschema and the whole runtime first.
_HOME = {
    "Case": "codec", "CodecError": "codec", "Err": "codec", "Ok": "codec",
    "CompiledComponentCache": "compile_cache", "default_cache_dir": "compile_cache",
    "ErrorRecord": "error_record",
    "GrantsError": "grants", "GrantsFile": "grants", "GrantSet": "grants",
    "Host": "host", "LoadedPlugin": "host", "PluginRefused": "host",
    "GuestFault": "instance", "InstanceLimits": "instance",
    "PluginPackage": "loader", "open_package": "loader",
    "Accepted": "runtime", "CommandContext": "runtime", "Execution": "runtime", "Refused": "runtime",
    "RuntimeOptions": "runtime", "ServiceRuntime": "runtime",
    "ToolGate": "tool_gate",
    "ToolResult": "tools",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Accepted",
    "Case",
    "CodecError",
    "CommandContext",
    "CompiledComponentCache",
    "Err",
    "ErrorRecord",
    "Execution",
    "GrantSet",
    "GrantsError",
    "GrantsFile",
    "GuestFault",
    "Host",
    "InstanceLimits",
    "LoadedPlugin",
    "Ok",
    "PluginPackage",
    "PluginRefused",
    "Refused",
    "RuntimeOptions",
    "ServiceRuntime",
    "ToolGate",
    "ToolResult",
    "default_cache_dir",
    "open_package",
]
