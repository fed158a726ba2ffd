"""The host half of `pdk dev`'s runner: load the dev runner component (built by
generator/dev_runner.py; guest half pdk/_dev_runner.py) as one plugin, under that
plugin's manifest, grants and limits, and hand it the plugin's sources.

The runner exports the union world; the host checks that, then treats it exactly as
the plugin's own component (the manifest's world decides which exports are called,
the grants and limits are the plugin's). The sources reach each fresh instance
through the `fs` import from a root name no manifest can declare; everything else
in `fs` is the plugin's own, granted as usual."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdk._dev_runner import DEV_BUNDLE_PATH, DEV_BUNDLE_ROOT, DEV_PROBE_TOOL
from pdk.package import PackageFiles
from pdk.package.digest import sha256_file
from pdk.package.manifest import parse_manifest_text

from .codec import Err, Ok
from .compiler import ComponentSource
from .fs_api import FsBackend
from .grants import GrantSet, GrantsFile
from .host import Host, LoadedPlugin
from .instance import GuestFault, InstanceLimits
from .loader import PluginPackage
from .tools import TOOLS_IFACE, new_call_id

RUNNER_WORLD = "plugin"


class DevSourcesFs(FsBackend):
    """The plugin's fs backend, plus the read-only dev root that serves the bundle."""

    def __init__(self, inner: FsBackend, bundle: bytes) -> None:
        super().__init__(inner.grants, inner.declared_roots, api_declared=inner.api_declared)
        self._bundle = bundle

    def read_file(self, root: str, path: str) -> Any:
        if root == DEV_BUNDLE_ROOT:
            if path == DEV_BUNDLE_PATH:
                return Ok(self._bundle)
            return Err({"code": "not_found", "message": f"{path!r} is not in the dev root"})
        return super().read_file(root, path)

    def write_file(self, root: str, path: str, data: bytes) -> Any:
        if root == DEV_BUNDLE_ROOT:
            return Err({"code": "denied", "message": "the dev root is read-only"})
        return super().write_file(root, path, data)

    def list_dir(self, root: str, path: str) -> Any:
        if root == DEV_BUNDLE_ROOT:
            return Err({"code": "denied", "message": "the dev root cannot be listed"})
        return super().list_dir(root, path)


@dataclass(frozen=True)
class Probe:
    """Whether a runner instance could import the plugin's sources."""

    loaded: bool
    error: str | None = None
    needs_build: bool = False  # a real build could run it (a module the runner lacks)


def dev_package(plugin_dir: str | Path, bundle: bytes) -> PluginPackage:
    """The plugin's package as `pdk dev` serves it: its manifest, and a digest of the
    manifest and the sources (there is no built component to hash)."""
    source = Path(plugin_dir)
    files = PackageFiles.from_directory(source, ["plugin.toml"])
    raw = files.read("plugin.toml")
    manifest = parse_manifest_text(raw, str(source / "plugin.toml"))
    digest = hashlib.sha256(b"pdk-dev\0" + raw + b"\0" + bundle).hexdigest()
    return PluginPackage(source=source, files=files, manifest=manifest, digest=digest)


def load_with_runner(
    host: Host,
    plugin_dir: str | Path,
    runner: Path,
    bundle: bytes,
    *,
    grants: GrantsFile | str | Path | None = None,
    dev_grants: bool = False,
    limits: InstanceLimits | None = None,
    register: bool = True,
    announce: bool = True,
) -> LoadedPlugin:
    """Load the plugin in `plugin_dir` running on the `runner` component with the
    source `bundle`. Raises what `Host.load` raises. Without `register` the host does
    not adopt it yet (`Host._register`): `pdk dev` probes a new version first.
    `announce=False` leaves out the dev-grants banner (printed once per session)."""
    started = time.perf_counter()
    package = dev_package(plugin_dir, bundle)
    grant_set = GrantSet.dev_grants(package.manifest) if dev_grants and not announce else host._grants_for(package, grants, dev_grants)
    data: list[bytes] = []

    def read() -> bytes:
        if not data:
            data.append(runner.read_bytes())
        return data[0]

    sha = _file_sha256(runner)
    source = ComponentSource(sha, read, "dev runner", None)
    return host._install(
        package, source, grant_set, limits, started=started,
        component_world=RUNNER_WORLD, fs=lambda inner: DevSourcesFs(inner, bundle), register=register,
    )


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """The runner's sha256, hashed once per (path, size, mtime): a reload does not
    read its 37 MiB again."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def probe(plugin: LoadedPlugin) -> Probe:
    """Make the plugin's instance import its sources now (the runner's reserved probe
    tool; no plugin code runs beyond its import) and say whether that worked."""
    try:
        value = plugin.instance.call(TOOLS_IFACE, "call", {"tool": DEV_PROBE_TOOL, "input_json": "{}", "call_id": new_call_id()})
    except GuestFault as fault:
        if fault.kind == "instantiate" and "memory minimum size" in fault.message:
            # The runner's snapshot holds the whole standard library; the plugin's own
            # component starts smaller and may fit its memory limit.
            limit = plugin.instance.limits.memory_bytes // (1024 * 1024)
            return Probe(False, f"the dev runner does not fit this plugin's memory limit ({limit} MiB): {fault.message}", needs_build=True)
        return Probe(False, f"{fault.kind}: {fault.message}")
    if isinstance(value, Err):
        return Probe(False, f"the runner refused the probe: {value!r}")
    ok = getattr(value, "value", value)
    content = ok.get("content_json") if isinstance(ok, dict) else getattr(ok, "content_json", None)
    try:
        doc = json.loads(content or "{}")
    except ValueError:
        return Probe(False, "the runner's probe answer is not JSON")
    if doc.get("loaded") is True:
        return Probe(True)
    return Probe(False, str(doc.get("error") or "the sources did not load"), bool(doc.get("needs_build")))
