"""Which connections a plugin declares, and whether each may be dialed at all.

A connection is declared by the ingress that owns it (`[[ingresses.connections]]`) and
is dialed only when every one of these holds (checked here, before any network use):

1. the `ingresses` surface is granted;
2. the owning ingress is declared with the `websocket` source;
3. the `websocket` host API is declared in `host_apis` AND granted;
4. the URL is inside a declared `[[websocket]]` target AND a granted one;
5. every secret the connection names is granted with a `header`.

After resolution, the addresses are judged again (`targets.check_resolved`: loopback and
private addresses only when named explicitly); that happens at dial time, in
`connection.py`, because DNS answers change. A connection that fails here is `denied`
in status and never dialed. Reasons never contain secrets or query strings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pdk.package.manifest import Manifest

from ..grants import GrantSet, SecretRef
from pdk.package.targets import Target, match_url

# Everything the driver can put on an ingress's queue.
EVENT_KINDS: tuple[str, ...] = ("open", "text", "binary", "close", "error", "reconnecting", "reconnected")


@dataclass(frozen=True)
class ConnectionSpec:
    """One `[[ingresses.connections]]` entry."""

    ingress: str
    name: str
    url: str
    event_kinds: tuple[str, ...]
    subprotocols: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()

    @property
    def source_name(self) -> str:
        """The key of this connection in the runtime's `sources` status."""
        return f"websocket:{self.name}"


@dataclass(frozen=True)
class ConnectionPlan:
    """A declared connection and the static verdict on it."""

    spec: ConnectionSpec
    allowed: bool
    reason: str
    declared_targets: tuple[Target, ...] = ()
    secrets: tuple[SecretRef, ...] = field(default=(), repr=False)


def declared_connections(manifest: Manifest) -> list[ConnectionSpec]:
    """Every connection of every ingress, in manifest order. A connection without
    `event_kinds` wants every kind its ingress declares."""
    out: list[ConnectionSpec] = []
    for conn in manifest.connections:
        out.append(
            ConnectionSpec(
                ingress=conn.ingress,
                name=conn.name,
                url=conn.url,
                event_kinds=conn.event_kinds,
                subprotocols=conn.subprotocols,
                secrets=conn.secrets,
            )
        )
    return out


def declared_targets(manifest: Manifest) -> tuple[Target, ...]:
    """The manifest's `[[websocket]]` targets (parsed when the manifest was validated)."""
    return manifest.websocket_targets


def check_connection(
    spec: ConnectionSpec, manifest: Manifest, grants: GrantSet, declared: tuple[Target, ...] | None = None
) -> ConnectionPlan:
    """The static verdict for one connection (see the module docstring). `declared`:
    the manifest's parsed `[[websocket]]` targets, when the caller has them."""
    if declared is None:
        declared = declared_targets(manifest)

    def deny(reason: str) -> ConnectionPlan:
        return ConnectionPlan(spec, False, reason, declared)

    if not grants.matched:
        return deny(f"no grant for this package ({grants.reason})")
    if not grants.allows_surface("ingresses"):
        return deny("the 'ingresses' surface is not granted")
    ingress = next((i for i in manifest.ingresses if i.name == spec.ingress), None)
    if ingress is None or "websocket" not in ingress.sources:
        return deny(f"ingress {spec.ingress!r} does not declare the 'websocket' source")
    if "websocket" not in manifest.host_apis:
        return deny("host api 'websocket' is not declared in host_apis")
    if not grants.allows_host_api("websocket"):
        return deny("host api 'websocket' is not granted")
    verdict = grants.check_websocket(spec.url, declared)
    if not verdict:
        return deny(verdict.reason)
    refs: list[SecretRef] = []
    for name in spec.secrets:
        ref = next((s for s in grants.secrets if s.name == name), None)
        if ref is None:
            hint = " (dev grants carry no secrets; use a grants file)" if grants.dev else ""
            return deny(f"secret {name!r} is not granted{hint}")
        if not ref.header:
            return deny(f"secret {name!r} is granted without a header to send it as")
        refs.append(ref)
    return ConnectionPlan(spec, True, verdict.reason, declared, tuple(refs))


def plan_connections(manifest: Manifest, grants: GrantSet) -> list[ConnectionPlan]:
    return [check_connection(spec, manifest, grants) for spec in declared_connections(manifest)]


def recheck(plan: ConnectionPlan, manifest: Manifest, grants: GrantSet) -> tuple[bool, str]:
    """Re-judge a connection before a send: grants are data and may have changed."""
    fresh = check_connection(plan.spec, manifest, grants, plan.declared_targets)
    return fresh.allowed, fresh.reason


def wanted_kinds(spec: ConnectionSpec, ingress_kinds: Sequence[str]) -> frozenset[str]:
    """Kinds submitted for this connection: its own list, within the ingress's."""
    return frozenset(k for k in spec.event_kinds if k in ingress_kinds)


def describe(plan: ConnectionPlan) -> dict[str, Any]:
    return {"ingress": plan.spec.ingress, "url": url_for_display(plan.spec.url)}


def url_for_display(url: str) -> str:
    """Scheme, host, port and path; never the query (tokens travel there)."""
    cut = len(url)
    for sep in ("?", "#"):
        at = url.find(sep)
        if at != -1:
            cut = min(cut, at)
    shown = url[:cut]
    return shown if cut == len(url) else shown + "?…"
