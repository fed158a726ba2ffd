"""A plugin's declared dependencies, resolved from the build environment.

What goes into a component is what the plugin declares: `[build] dependencies` in
plugin.toml or, without it, `[project] dependencies` in its pyproject.toml. Each
requirement is resolved with `importlib.metadata` to an installed distribution and,
recursively, its own requirements (markers evaluated for this interpreter). The PDK
itself is never resolved here: `pdk build` stages the guest half of `pdk` separately.

A distribution that is not installed, has no RECORD, or ships native code built for
this machine (a `.so`/`.pyd`, or a wheel tag that is not pure Python and not wasm32-wasi)
is refused before componentize-py starts: such code cannot be loaded by the CPython
inside a component."""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .diagnose import BuildError

# The PDK's own distribution: bundled by `pdk build` from `pdk/` (its host-side
# requirements, wasmtime and friends, never belong in a component).
PDK_DISTRIBUTIONS = frozenset({"yoi-pdk"})
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")
_ALTERNATIVES = "Use a pure-Python package instead, or install a wasm32-wasi wheel of it into the build environment."


@dataclass(frozen=True)
class ResolvedDistribution:
    """One installed distribution to bundle: its files relative to `root`."""

    name: str
    version: str
    record_sha256: str
    root: Path
    files: tuple[str, ...]

    def key(self) -> bytes:
        return f"{self.name}=={self.version} record:{self.record_sha256}".encode()


def declared(plugin_dir: Path, build_dependencies: tuple[str, ...] | None) -> tuple[tuple[str, ...], str]:
    """The declared requirement strings and where they were declared."""
    if build_dependencies is not None:
        return build_dependencies, "plugin.toml [build] dependencies"
    pyproject = plugin_dir / "pyproject.toml"
    if not pyproject.is_file():
        return (), "nowhere"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BuildError("bad_manifest", f"{pyproject}: not valid TOML: {exc}") from None
    deps = data.get("project", {}).get("dependencies", []) if isinstance(data.get("project"), dict) else []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise BuildError("bad_manifest", f"{pyproject}: [project] dependencies must be a list of strings.")
    return tuple(deps), "pyproject.toml [project] dependencies"


def _parse(text: str, where: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise BuildError("bad_dependency", f"{where}: {text!r} is not a valid requirement: {exc}") from None


def _is_native(dist: metadata.Distribution, files: list[str]) -> str | None:
    """Why `dist` is native code for this machine, or None."""
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines() if line.startswith("Tag:")]
    if any("wasi" in t for t in tags):
        return None
    native = sorted(f for f in files if f.endswith(_NATIVE_SUFFIXES))
    if native:
        return f"it contains compiled extension modules ({', '.join(native[:3])}{', ...' if len(native) > 3 else ''})"
    impure = [t for t in tags if not t.endswith("-none-any")]
    if impure:
        return f"its wheel is built for this platform (tag {impure[0]})"
    return None


def _load(dist: metadata.Distribution, name: str) -> ResolvedDistribution:
    record = dist.read_text("RECORD")
    if dist.files is None or record is None:
        raise BuildError("bad_dependency", f"dependency {name!r} has no RECORD file; reinstall it with `pip install --force-reinstall {name}`.")
    root = Path(str(dist.locate_file(""))).resolve()
    files: list[str] = []
    for f in dist.files:
        rel = f.as_posix()
        if rel.startswith("../") or rel.startswith("/") or "__pycache__" in f.parts or f.parts[0].endswith((".dist-info", ".egg-info")):
            continue  # scripts, caches and the metadata directory stay out
        if f.suffix in (".pyc", ".pth"):
            continue
        files.append(rel)
    native = _is_native(dist, files)
    if native:
        raise BuildError(
            "native_dependency",
            f"dependency {name!r} ({dist.version}) cannot run inside a component: {native}; "
            f"native code built for this machine cannot be loaded by the CPython in a WebAssembly component. {_ALTERNATIVES}",
        )
    return ResolvedDistribution(name, dist.version, hashlib.sha256(record.encode()).hexdigest(), root, tuple(sorted(files)))


def resolve(requirements: tuple[str, ...], where: str) -> list[ResolvedDistribution]:
    """The installed distributions `requirements` need, sorted by name; raises `BuildError`."""
    env = default_environment()
    seen: dict[str, ResolvedDistribution] = {}
    todo: list[tuple[Requirement, str]] = [(_parse(r, where), where) for r in requirements]
    while todo:
        req, origin = todo.pop()
        name = canonicalize_name(req.name)
        if name in PDK_DISTRIBUTIONS or name in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise BuildError(
                "missing_dependency",
                f"dependency {req.name!r} (declared in {origin}) is not installed in the build environment. "
                f"Install it with `pip install '{req}'` and build again.",
            ) from None
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            raise BuildError(
                "missing_dependency",
                f"dependency {str(req)!r} (declared in {origin}) is not satisfied: {dist.version} is installed. "
                f"Install a matching version with `pip install '{req}'`.",
            )
        seen[name] = _load(dist, req.name)
        for sub in dist.requires or []:
            child = _parse(sub, f"{req.name}'s requirements")
            extras = [{**env, "extra": e} for e in (req.extras or {""})]
            if child.marker is None or any(child.marker.evaluate(e) for e in extras):  # type: ignore[arg-type]
                todo.append((child, f"{req.name}'s requirements"))
    return [seen[n] for n in sorted(seen)]


def stage(dists: list[ResolvedDistribution], dest: Path) -> None:
    """Copy the distributions' files into `dest` (a site-packages-like directory)."""
    dest.mkdir(parents=True, exist_ok=True)
    for d in dists:
        for rel in d.files:
            src = d.root / rel
            if not src.is_file():
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
