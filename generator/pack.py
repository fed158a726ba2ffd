"""`pdk pack`: write a deterministic `.yoi-plugin` archive from a plugin directory.

The archive holds only what the host needs, picked by the allow-list of
`pdk.package.contents` (the same list the host uses to open a directory).

Determinism: entries in byte-sorted order, stored (no compression-level drift),
fixed timestamp 1980-01-01 00:00:00, fixed mode 0644 recorded as Unix, no extra
fields, no comment. Two packs of the same files are byte-identical, and the
package digest of the directory view equals that of the written archive.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pdk.package.archive import PackageFiles
from pdk.package.contents import package_file_list, read_directory_manifest
from pdk.package.errors import PackageError, show

PACKAGE_SUFFIX = ".yoi-plugin"
DIST_DIR = "dist"
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP can record
_FILE_MODE = stat.S_IFREG | 0o644
_UNIX = 3  # ZIP "version made by" host: makes external_attr a Unix mode on every OS


@dataclass(frozen=True)
class PackResult:
    """What `pack` wrote."""

    path: Path
    digest: str
    files: list[str]
    size: int


def pack(plugin_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None) -> PackResult:
    """Pack `plugin_dir` into `out_path` (default `<plugin_dir>/dist/<id>-<version>.yoi-plugin`)."""
    root = Path(plugin_dir)
    # The validated id and version make `<id>-<version>` a safe single file name.
    manifest = read_directory_manifest(root)
    files = PackageFiles.from_directory(root, package_file_list(root, manifest.runtime.component))
    out = Path(out_path) if out_path is not None else root / DIST_DIR / f"{manifest.id}-{manifest.version}{PACKAGE_SUFFIX}"
    _refuse_overwriting_sources(root, files.paths(), out)
    _write_archive(files, out)
    # Re-read what was written with the same reader the host uses: the archive must
    # pass every check and hash exactly like the directory it came from.
    written = PackageFiles.from_archive(out)
    if written.digest() != files.digest():
        raise PackageError(f"{show(str(out))} does not hash like its sources", code="changed_on_disk")
    return PackResult(path=out, digest=files.digest(), files=files.paths(), size=out.stat().st_size)


def _refuse_overwriting_sources(root: Path, paths: list[str], out: Path) -> None:
    target = out.resolve()
    for path in paths:
        if (root / path).resolve() == target:
            raise PackageError(f"refusing to write the package over {show(path)}", code="bad_output", entry=path)


def _write_archive(files: PackageFiles, out: Path) -> None:
    """Write atomically: a failed pack never leaves a half-written package behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fp, zipfile.ZipFile(fp, "w", zipfile.ZIP_STORED) as archive:
            for path in files.paths():
                archive.writestr(_zip_info(path), files.read(path))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a package is meant to be shared
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _zip_info(path: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=_FIXED_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = _UNIX
    info.external_attr = _FILE_MODE << 16
    return info
