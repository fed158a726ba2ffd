"""`pdk check --grants FILE`: how a grants file covers what a manifest declares.

Static: nothing runs, nothing connects. A plugin's authority is the intersection of
what it declares and what it is granted, so each side is judged against the other:

* per **declared** item: `covered` (the grant allows all of it), `partial` (some of
  it: fewer methods, narrower path prefixes, a host instead of a wildcard, fewer fs
  operations), or `missing` (none of it);
* per **granted** item: `matches` (within what is declared), `broad` (overlaps the
  declaration but reaches beyond it; harmless, since the declaration still limits the
  plugin, but wider than needed), or `grant_only` (overlaps nothing declared: it grants
  nothing usable).

Target coverage is judged per (method, path prefix) pair, so two grants that split the
methods of one declared target between them still cover it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdk.host.grants import ALWAYS_ALLOWED_HOST_APIS, GrantsFile, PluginGrant
from pdk.package.manifest import Manifest
from pdk.package.targets import DEFAULT_PORTS, Target, path_within


@dataclass(frozen=True)
class Finding:
    """One line of the view: which side, what, its status and why."""

    side: str  # "declared" | "granted"
    kind: str  # "surface" | "tool" | "host_api" | "request" | "fs"
    item: str
    status: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"side": self.side, "kind": self.kind, "item": self.item, "status": self.status, "detail": self.detail}


@dataclass
class GrantsView:
    file: str
    matched: bool
    reason: str
    entry_found: bool
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "matched": self.matched,
            "reason": self.reason,
            "entry_found": self.entry_found,
            "findings": [f.to_json() for f in self.findings],
        }


def grants_view(manifest: Manifest, digest: str, grants_file: GrantsFile, source: str | Path) -> GrantsView:
    """Judge `grants_file` against `manifest`. The entry judged is the one for this
    plugin id (same version preferred) even when its digest is stale, because "the
    digest is out of date, otherwise all covered" is the most useful thing to say."""
    effective = grants_file.for_package(manifest.id, manifest.version, digest)
    same_id = [g for g in grants_file.plugins if g.id == manifest.id]
    entry = next((g for g in same_id if g.version == manifest.version), same_id[0] if same_id else None)
    view = GrantsView(str(source), effective.matched, effective.reason, entry is not None)
    grant = entry or PluginGrant(id=manifest.id, version=manifest.version, digest="")
    view.findings.extend(_names("surface", manifest.surfaces, grant.surfaces))
    view.findings.extend(_tools(manifest, grant))
    declared_apis = tuple(a for a in manifest.host_apis if a not in ALWAYS_ALLOWED_HOST_APIS)
    view.findings.extend(_names("host_api", declared_apis, tuple(a for a in grant.host_apis if a not in ALWAYS_ALLOWED_HOST_APIS)))
    view.findings.extend(_request(manifest, grant))
    view.findings.extend(_fs(manifest, grant))
    return view


# --- names: surfaces, host APIs, tools ----------------------------------------------------------


def _names(kind: str, declared: Sequence[str], granted: Sequence[str]) -> list[Finding]:
    out = [Finding("declared", kind, name, "covered" if name in granted else "missing") for name in declared]
    out += [Finding("granted", kind, name, "matches" if name in declared else "grant_only") for name in granted]
    return out


def _tools(manifest: Manifest, grant: PluginGrant) -> list[Finding]:
    names = [t.name for t in manifest.tools]
    surface = "tools" in grant.surfaces
    out: list[Finding] = []
    for name in names:
        granted = "*" in grant.tools or name in grant.tools
        if granted and not surface:
            out.append(Finding("declared", "tool", name, "missing", "granted by name, but the tools surface is not"))
        else:
            out.append(Finding("declared", "tool", name, "covered" if granted else "missing"))
    for name in grant.tools:
        if name == "*":
            out.append(Finding("granted", "tool", "*", "matches", "every declared tool"))
        else:
            out.append(Finding("granted", "tool", name, "matches" if name in names else "grant_only"))
    return out


# --- request targets ---------------------------------------------------------------------------


def describe_target(t: Target) -> str:
    methods = ",".join(t.effective_methods)
    host = f"[{t.host}]" if ":" in t.host else t.host
    return f"{methods} {t.scheme}://{host}:{_port(t)} {' '.join(t.path_prefixes)}"


def _port(t: Target) -> int:
    return t.port if t.port is not None else DEFAULT_PORTS[t.scheme]


def _host_covers(outer: Target, inner: Target) -> bool:
    """Every host `inner` names is named by `outer`."""
    if not outer.wildcard:
        return not inner.wildcard and inner.host == outer.host
    if inner.wildcard:
        base, inner_base = outer.host[2:], inner.host[2:]
        return inner_base == base or inner_base.endswith("." + base)
    return outer.matches_host(inner.host)


def _same_place(a: Target, b: Target) -> bool:
    return a.scheme == b.scheme and _port(a) == _port(b) and (_host_covers(a, b) or _host_covers(b, a))


def _pairs(t: Target) -> list[tuple[str, str]]:
    return [(m, p) for m in t.effective_methods for p in t.path_prefixes]


def _pair_covered(pair: tuple[str, str], inner: Target, outers: Sequence[Target], *, any_host: bool = False) -> bool:
    method, prefix = pair
    return any(
        o.scheme == inner.scheme
        and _port(o) == _port(inner)
        and (_same_place(o, inner) if any_host else _host_covers(o, inner))
        and method in o.effective_methods
        and any(path_within(prefix, op) for op in o.path_prefixes)
        for o in outers
    )


def _overlaps(a: Target, b: Target) -> bool:
    return (
        _same_place(a, b)
        and bool(set(a.effective_methods) & set(b.effective_methods))
        and any(path_within(x, y) or path_within(y, x) for x in a.path_prefixes for y in b.path_prefixes)
    )


def _judge(inner: Target, outers: Sequence[Target]) -> tuple[bool, bool, str]:
    """(fully covered, overlapping at all, what is not covered)."""
    uncovered = [pair for pair in _pairs(inner) if not _pair_covered(pair, inner, outers)]
    overlapping = any(_overlaps(inner, o) for o in outers)
    if not uncovered:
        return True, True, ""
    if all(_pair_covered(pair, inner, outers, any_host=True) for pair in uncovered):
        return False, True, f"every method and path, but for a narrower set of hosts than {inner.host}"
    shown = ", ".join(f"{m} {p}" for m, p in uncovered[:6]) + (" …" if len(uncovered) > 6 else "")
    return False, overlapping, shown


def _request(manifest: Manifest, grant: PluginGrant) -> list[Finding]:
    declared = manifest.request_targets
    granted = grant.request_targets
    api_granted = "request" in grant.host_apis
    out: list[Finding] = []
    for t in declared:
        covered, overlapping, gap = _judge(t, granted)
        if not api_granted:
            out.append(Finding("declared", "request", describe_target(t), "missing", "host api 'request' is not granted"))
        elif covered:
            out.append(Finding("declared", "request", describe_target(t), "covered"))
        elif overlapping:
            out.append(Finding("declared", "request", describe_target(t), "partial", f"not granted: {gap}"))
        else:
            out.append(Finding("declared", "request", describe_target(t), "missing"))
    for g in granted:
        within, overlapping, beyond = _judge(g, declared)
        if within:
            out.append(Finding("granted", "request", describe_target(g), "matches"))
        elif overlapping:
            out.append(Finding("granted", "request", describe_target(g), "broad", f"beyond the declaration: {beyond}"))
        else:
            out.append(Finding("granted", "request", describe_target(g), "grant_only", "overlaps no declared target"))
    return out


# --- fs roots ----------------------------------------------------------------------------------


def _fs(manifest: Manifest, grant: PluginGrant) -> list[Finding]:
    declared = {root.name: root.operations for root in manifest.fs_roots}
    granted = {root.name: root.operations for root in grant.fs_roots}
    api_granted = "fs" in grant.host_apis
    out: list[Finding] = []
    for name, ops in declared.items():
        item = f"{name} [{', '.join(ops)}]"
        have = granted.get(name)
        if not api_granted:
            out.append(Finding("declared", "fs", item, "missing", "host api 'fs' is not granted"))
        elif have is None:
            out.append(Finding("declared", "fs", item, "missing"))
        elif set(ops) <= set(have):
            out.append(Finding("declared", "fs", item, "covered"))
        else:
            lacking = [op for op in ops if op not in have]
            out.append(Finding("declared", "fs", item, "partial" if set(ops) & set(have) else "missing", f"not granted: {', '.join(lacking)}"))
    for name, ops in granted.items():
        item = f"{name} [{', '.join(ops)}]"
        want = declared.get(name)
        if want is None:
            out.append(Finding("granted", "fs", item, "grant_only", "no declared root of this name"))
        elif set(ops) <= set(want):
            out.append(Finding("granted", "fs", item, "matches"))
        else:
            extra = [op for op in ops if op not in want]
            out.append(Finding("granted", "fs", item, "broad", f"beyond the declaration: {', '.join(extra)}"))
    return out


def render_view(view: GrantsView) -> list[str]:
    state = "matched" if view.matched else "NOT MATCHED"
    lines = [f"  grants:    {view.file}: {state} ({view.reason})"]
    if not view.entry_found:
        lines.append("             no [[plugins]] entry for this plugin id; everything declared is missing")
    for f in view.findings:
        detail = f" - {f.detail}" if f.detail else ""
        lines.append(f"    {f.side:<8} {f.kind:<8} {f.item}: {f.status}{detail}")
    return lines
