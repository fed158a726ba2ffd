"""What a source needs from a runtime, and how it reads the plugin's declarations.

Sources are producers only: they call `submit` (which enqueues and never waits for
the plugin), `has_pending` (timer coalescing) and publish their state in
`runtime.sources[name]`. Anything with these members can drive a source, which
keeps the sources unit-testable with a small fake."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from pdk.host.codec import Case
from pdk.host.runtime.model import Accepted, Refused
from pdk.package.manifest import HandlerDecl, Manifest


class RuntimeLike(Protocol):
    sources: dict[str, Any]  # name -> dict or callable returning one

    def submit(
        self,
        ingress: str,
        kind: str,
        payload: Case | None = None,
        *,
        source: str = "manual",
        correlation_id: str | None = None,
    ) -> Accepted | Refused: ...

    def has_pending(self, ingress: str, kind: str) -> bool: ...


def manifest_of(rt: Any) -> Manifest:
    """The manifest of the plugin a runtime runs (`ServiceRuntime.manifest`)."""
    manifest = rt.manifest
    if not isinstance(manifest, Manifest):
        raise TypeError(f"{type(rt).__name__}.manifest is not a Manifest")
    return manifest


def plugin_id_of(rt: Any) -> str:
    return manifest_of(rt).id


def ingresses_with_source(rt: Any, source: str) -> tuple[HandlerDecl, ...]:
    return tuple(decl for decl in manifest_of(rt).ingresses if source in decl.sources)


def refusal_of(result: Accepted | Refused) -> Refused | None:
    """The refusal, or None when the event was accepted."""
    return result if isinstance(result, Refused) else None


def register(rt: Any, name: str, status: Callable[[], dict[str, Any]]) -> None:
    """Show a source's state in the runtime's status: `rt.sources[name]` holds a
    callable that the runtime calls whenever its status document is read, so counters
    are never copied on the hot path and never stale."""
    rt.sources[name] = status
