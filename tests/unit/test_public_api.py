"""The curated public API: `__all__` of `pdk`, `pdk.host` and `pdk.testing` is pinned
here, so adding or removing a public name is a deliberate change to this file; and
every name listed resolves (nothing in `__all__` is stale)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC: dict[str, list[str]] = {
    "pdk": [
        "CloseInfo",
        "Command",
        "DecodeError",
        "DirEntry",
        "Emit",
        "ErrorCode",
        "Event",
        "Files",
        "HostApiError",
        "Http",
        "HttpRequest",
        "HttpResponse",
        "LogCommand",
        "Logger",
        "Output",
        "Plugin",
        "PluginError",
        "RetryableError",
        "Status",
        "StatusUpdate",
        "ToolError",
        "ToolOutput",
        "ToolSpec",
        "WebSocketSend",
        "__version__",
        "commands",
        "decode",
        "emit",
        "fs",
        "http",
        "http_request",
        "log",
        "status_update",
        "websocket_send",
    ],
    "pdk.host": [
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
    ],
    "pdk.testing": [
        "Case",
        "FakeHost",
        "Handshake",
        "HttpTestServer",
        "RecordedRequest",
        "ScriptedResponse",
        "WebSocketTestServer",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned(module: str) -> None:
    names = list(importlib.import_module(module).__all__)
    assert len(names) == len(set(names)), f"{module}.__all__ lists a name twice"
    assert sorted(names) == PUBLIC[module]


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_public_name_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if getattr(mod, name, None) is None]
    assert missing == []


def test_the_host_reexports_are_the_host_types() -> None:
    import pdk.host
    import pdk.testing
    from pdk.host.codec import Case, Err, Ok
    from pdk.host.host import LoadedPlugin
    from pdk.host.runtime import ServiceRuntime

    assert (pdk.host.Case, pdk.host.Ok, pdk.host.Err) == (Case, Ok, Err)
    assert pdk.host.LoadedPlugin is LoadedPlugin and pdk.host.ServiceRuntime is ServiceRuntime
    assert pdk.testing.Case is Case  # what the templates' tests use for event payloads
