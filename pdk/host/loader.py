"""Opening a plugin package: directory or `.yoi-plugin` archive → checked files,
validated manifest, digest. No plugin code runs here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pdk.package import PackageError, PackageFiles
from pdk.package.contents import package_file_list
from pdk.package.manifest import Manifest, ManifestError, Problem, parse_manifest_text


@dataclass(frozen=True)
class PluginPackage:
    """A package whose files, manifest and digest have been checked."""

    source: Path
    files: PackageFiles
    manifest: Manifest
    digest: str

    @property
    def is_archive(self) -> bool:
        return self.source.is_file()

    def component_bytes(self) -> bytes:
        return self.files.read(self.manifest.runtime.component)


def open_package(path: str | Path) -> PluginPackage:
    """Read and check a package. Raises `PackageError` or `ManifestError`."""
    source = Path(path)
    if source.is_dir():
        manifest_path = source / "plugin.toml"
        if not manifest_path.is_file():
            raise ManifestError([Problem("", f"no plugin.toml in {source}")], str(manifest_path))
        # Validate first so a bad manifest is reported as such, not as a missing file.
        first_read = manifest_path.read_bytes()
        manifest = parse_manifest_text(first_read, str(manifest_path))
        files = PackageFiles.from_directory(source, package_file_list(source, manifest.runtime.component))
        checked = files.read("plugin.toml")
        if checked != first_read:  # changed while loading: trust only the hashed copy
            manifest = parse_manifest_text(checked, str(manifest_path))
    elif source.is_file():
        files = PackageFiles.from_archive(source)
        manifest = parse_manifest_text(files.read("plugin.toml"), f"{source}:plugin.toml")
    else:
        raise PackageError(f"{source} does not exist", code="missing_file")
    if manifest.runtime.component not in files:
        hint = " Run `pdk build` first." if source.is_dir() else ""
        raise PackageError(f"the component {manifest.runtime.component!r} named in plugin.toml is missing.{hint}", code="missing_file")
    return PluginPackage(source=source, files=files, manifest=manifest, digest=files.digest())
