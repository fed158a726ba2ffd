"""Opening a plugin package: directory or `.yoi-plugin` archive → checked files,
validated manifest, digest. No plugin code runs here.

A package opened again unchanged is the same `PluginPackage` (`_OPENED`): checking
a directory's files, reading and hashing its manifest took ~0.3 ms of every warm
load, reading and hashing an archive milliseconds. "Unchanged" is decided the way
git decides a racily clean index entry: the `lstat` of the package (an archive: the
file; a directory: the directory and every segment of every package file: inode,
size, mode, mtime, ctime) is the same as after it was opened, and every file had
last changed at least `_SETTLED_NS` before that open began - so a change during or
after the open changes a ctime that the signature holds. A package whose files
changed within `_SETTLED_NS` before it was opened, or with a symlink where a file
is (refused by the full open anyway), is opened in full every time.
"""

from __future__ import annotations

import os
import stat
import threading
import time
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


_Entry = tuple[str, int, int, int, int, int, int]  # name, mode, dev, ino, size, mtime_ns, ctime_ns
_Signature = tuple[_Entry, ...]
_SETTLED_NS = 2_000_000_000  # files changed this recently are not trusted by their stat alone
_OPENED_MAX = 64
_OPENED: dict[tuple[str, str], tuple[_Signature, list[str] | None, PluginPackage]] = {}
_opened_lock = threading.Lock()


def _stat_entry(name: str, st: os.stat_result) -> _Entry:
    return (name, st.st_mode, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _signature(source: Path, paths: list[str] | None) -> _Signature | None:
    """What any change to the package changes (see the module docstring); `paths`:
    a directory's package files, None for an archive. None when a stat fails or a
    symlink is on the way."""
    try:
        root = str(source)
        entries = [_stat_entry("", os.lstat(root))]
        seen: set[str] = set()
        for rel in paths or ():
            parts = rel.split("/")
            for end in range(1, len(parts) + 1):
                sub = "/".join(parts[:end])
                if sub not in seen:
                    seen.add(sub)
                    entries.append(_stat_entry(sub, os.lstat(os.path.join(root, sub))))
    except (OSError, ValueError):
        return None
    if any(stat.S_ISLNK(entry[1]) for entry in entries):
        return None
    return tuple(entries)


def _settled(signature: _Signature, started_ns: int) -> bool:
    return all(max(entry[5], entry[6]) < started_ns - _SETTLED_NS for entry in signature)


def open_package(path: str | Path) -> PluginPackage:
    """Read and check a package. Raises `PackageError` or `ManifestError`.

    An unchanged package opened before is returned as it was (module docstring)."""
    source = Path(path)
    if os.name != "posix":  # the signature relies on POSIX ctime (the time of the last change)
        return _open_package(source)
    key = (str(source), "" if source.is_absolute() else os.getcwd())
    with _opened_lock:
        known = _OPENED.get(key)
    if known is not None:
        signature, paths, package = known
        if _signature(source, paths) == signature:
            return package
    started_ns = time.time_ns()
    package = _open_package(source)
    paths = None if package.is_archive else package.files.paths()
    opened = _signature(source, paths)
    with _opened_lock:
        if opened is not None and _settled(opened, started_ns):
            if len(_OPENED) >= _OPENED_MAX:
                _OPENED.clear()
            _OPENED[key] = (opened, paths, package)
        else:
            _OPENED.pop(key, None)
    return package


def _open_package(source: Path) -> PluginPackage:
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
