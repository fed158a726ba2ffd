"""The reference host: runs Yoi plugins in sandboxed, limited wasmtime instances.

Public API::

    from pdk.host import Host, InstanceLimits

    with Host(limits=InstanceLimits(deadline_s=1.0)) as host:
        plugin = host.load("my-plugin", grants="grants.toml")   # or dev_grants=True
        result = plugin.call_tool("word_count", {"text": "a b"})
        result.ok, result.summary, result.content, result.error

    Services and ingresses run in a `ServiceRuntime` (see `pdk.host.runtime`)::

        rt = ServiceRuntime(host.load("my-service", dev_grants=True))
        rt.start(); rt.submit("inbox", "message", Case("text", "hi")); rt.stop()
"""

from .compile_cache import CompiledComponentCache, default_cache_dir
from .error_record import ErrorRecord
from .grants import GrantsError, GrantsFile, GrantSet
from .host import Host, LoadedPlugin, PluginRefused
from .instance import GuestFault, InstanceLimits
from .loader import PluginPackage, open_package
from .runtime import Accepted, Refused, RuntimeOptions, ServiceRuntime
from .tools import ToolResult

__all__ = [
    "Accepted",
    "CompiledComponentCache",
    "ErrorRecord",
    "GrantSet",
    "GrantsError",
    "GrantsFile",
    "GuestFault",
    "Host",
    "InstanceLimits",
    "LoadedPlugin",
    "PluginPackage",
    "PluginRefused",
    "Refused",
    "RuntimeOptions",
    "ServiceRuntime",
    "ToolResult",
    "default_cache_dir",
    "open_package",
]
