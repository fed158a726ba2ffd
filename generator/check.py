"""`pdk check`: static validation of a plugin directory or `.yoi-plugin` archive.

Never executes plugin code and never compiles: the manifest is parsed, the package
files are checked and hashed, and the component's real imports and exports are read
from its binary (`pdk.host.world.binary_shape`: the outer sections only, the nested
core modules skipped by length - milliseconds for an 18.7 MiB component, where even
the fast compiler takes seconds). That reading checks the binary's framing, not
every function body: wasmtime validates those when the host first compiles it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdk.host.component_binary import ComponentFormatError
from pdk.host.grants import GrantsError, GrantsFile
from pdk.host.loader import open_package
from pdk.host.world import binary_shape, check_world
from pdk.package import PackageError
from pdk.package.manifest import ManifestError, Problem

from .grants_view import GrantsView, grants_view, render_view


@dataclass
class CheckReport:
    path: str
    ok: bool = False
    id: str | None = None
    version: str | None = None
    world: str | None = None
    digest: str | None = None
    package_bytes: int | None = None
    component: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    grants: GrantsView | None = None

    def to_json(self) -> dict[str, Any]:
        """The stable, snake_case document printed by `pdk check --json`."""
        return {
            "ok": self.ok,
            "path": self.path,
            "id": self.id,
            "version": self.version,
            "world": self.world,
            "digest": self.digest,
            "package_bytes": self.package_bytes,
            "component": self.component,
            "problems": [{"path": p.path, "message": p.message} for p in self.problems],
            **({"grants": self.grants.to_json()} if self.grants is not None else {}),
        }


def check(path: str | Path, *, cache_dir: Path | None | bool = True, grants: str | Path | None = None) -> CheckReport:
    """`cache_dir` is accepted for older callers and unused (nothing is compiled).
    `grants`: a grants file to judge against the manifest (`generator.grants_view`);
    a malformed one is a problem, a grant that covers too little is a finding."""
    report = CheckReport(path=str(path))
    try:
        package = open_package(path)
    except ManifestError as exc:
        report.problems.extend(exc.problems)
        return report
    except PackageError as exc:
        report.problems.append(Problem("package", str(exc)))
        return report
    m = package.manifest
    report.id, report.version, report.world, report.digest = m.id, m.version, m.runtime.world, package.digest
    report.package_bytes = sum(e.size for e in package.files.entries())
    if grants is not None:
        try:
            report.grants = grants_view(m, package.digest, GrantsFile.load(grants), grants)
        except GrantsError as exc:
            report.problems.append(Problem("grants", str(exc)))
    data = package.component_bytes()
    sha = package.files.entry(m.runtime.component).sha256.hex()  # `read` checked the bytes against it
    try:
        shape = binary_shape(data)
    except ComponentFormatError as exc:
        report.problems.append(Problem("runtime.component", f"not a valid WebAssembly component: {exc}"))
        return report
    report.component = {"path": m.runtime.component, "sha256": sha, "bytes": len(data), **shape.to_json()}
    report.problems.extend(check_world(shape, m.runtime.world))
    report.ok = not report.problems
    return report


def render_human(report: CheckReport) -> str:
    lines = [f"{'ok' if report.ok else 'INVALID'}: {report.path}"]
    if report.id:
        lines.append(f"  plugin:    {report.id} {report.version} (world {report.world})")
        lines.append(f"  digest:    {report.digest}")
    if report.component:
        c = report.component
        lines.append(f"  component: {c['path']} ({c['bytes'] / 1048576:.1f} MiB, sha256 {c['sha256'][:16]}…)")
        lines.append(f"  exports:   {', '.join(sorted(c['exports'])) or 'none'}")
        host_imports = [i for i in c["imports"] if not i.startswith("wasi:")]
        lines.append(f"  imports:   {', '.join(host_imports) or 'none'} (+{len(c['imports']) - len(host_imports)} WASI, sandboxed)")
    if report.grants is not None:
        lines.extend(render_view(report.grants))
    for p in report.problems:
        lines.append(f"  problem:   {p}")
    return "\n".join(lines)
