"""`pdk pack`: write a deterministic `.yoi-plugin` archive from a plugin directory.

The archive holds only what the host needs: `plugin.toml`, the component the
manifest names, and top-level README*/LICENSE* files. Files are picked by this
allow-list, never by walking the tree, so `.git/`, caches, virtualenvs and
sources cannot leak in (v1 weak spot 11).

Determinism: entries in byte-sorted order, stored (no compression-level drift),
fixed timestamp 1980-01-01 00:00:00, fixed mode 0644 recorded as Unix, no extra
fields, no comment. Two packs of the same files are byte-identical, and the
package digest of the directory view equals that of the written archive.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdk.package.archive import MANIFEST_NAME, PackageFiles, validate_path
from pdk.package.errors import PackageError, show

PACKAGE_SUFFIX = ".yoi-plugin"
DIST_DIR = "dist"
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP can record
_FILE_MODE = stat.S_IFREG | 0o644
_UNIX = 3  # ZIP "version made by" host: makes external_attr a Unix mode on every OS
_TOP_LEVEL_DOCS = ("README", "LICENSE", "LICENCE")
# Loose on purpose (the manifest validator owns the real rules); strict enough that
# `<id>-<version>` is a safe single file name.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]{0,63}")


@dataclass(frozen=True)
class PackResult:
    """What `pack` wrote."""

    path: Path
    digest: str
    files: list[str]
    size: int


@dataclass(frozen=True)
class _ManifestFacts:
    id: str
    version: str
    component: str


def pack(plugin_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None) -> PackResult:
    """Pack `plugin_dir` into `out_path` (default `<plugin_dir>/dist/<id>-<version>.yoi-plugin`)."""
    root = Path(plugin_dir)
    facts = _read_manifest(root)
    files = PackageFiles.from_directory(root, package_file_list(root, facts.component))
    out = Path(out_path) if out_path is not None else root / DIST_DIR / f"{facts.id}-{facts.version}{PACKAGE_SUFFIX}"
    _refuse_overwriting_sources(root, files.paths(), out)
    _write_archive(files, out)
    # Re-read what was written with the same reader the host uses: the archive must
    # pass every check and hash exactly like the directory it came from.
    written = PackageFiles.from_archive(out)
    if written.digest() != files.digest():
        raise PackageError(f"{show(str(out))} does not hash like its sources", code="changed_on_disk")
    return PackResult(path=out, digest=files.digest(), files=files.paths(), size=out.stat().st_size)


def package_file_list(plugin_dir: str | os.PathLike[str], component: str | None = None) -> list[str]:
    """The relative paths a package of `plugin_dir` holds (what `pack` and `pdk check <dir>` use).

    `component` defaults to the manifest's `[runtime] component`."""
    root = Path(plugin_dir)
    if component is None:
        component = _read_manifest(root).component
    validate_path(component)
    if not (root / component).exists() and not (root / component).is_symlink():
        raise PackageError(
            f"component {show(component)} does not exist; run `pdk build` first",
            code="missing_file",
            entry=component,
        )
    names = {MANIFEST_NAME, component, *_top_level_docs(root)}
    return sorted(names, key=lambda p: p.encode("utf-8"))


def _top_level_docs(root: Path) -> list[str]:
    docs = []
    with os.scandir(root) as listing:
        for item in listing:
            # Symlinks are kept so that the reader refuses them loudly, instead of a
            # README silently going missing from the package.
            if item.is_dir(follow_symlinks=False):
                continue
            if item.name.upper().startswith(_TOP_LEVEL_DOCS):
                docs.append(item.name)
    return docs


def _read_manifest(root: Path) -> _ManifestFacts:
    # Read through the safe directory view: plugin.toml must not be a symlink either.
    try:
        raw = PackageFiles.from_directory(root, [MANIFEST_NAME]).read(MANIFEST_NAME)
    except PackageError as exc:
        if exc.code != "missing_file" or not root.is_dir():
            raise
        raise PackageError(f"no {MANIFEST_NAME} in {show(str(root))}", code="missing_manifest") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PackageError(f"{MANIFEST_NAME} is not valid TOML: {exc}", code="bad_manifest", entry=MANIFEST_NAME) from None
    runtime = data.get("runtime")
    return _ManifestFacts(
        id=_manifest_string(data, "id", _ID_RE),
        version=_manifest_string(data, "version", _VERSION_RE),
        component=_manifest_string(runtime if isinstance(runtime, dict) else {}, "component", None, "runtime."),
    )


def _manifest_string(table: dict[str, Any], key: str, pattern: re.Pattern[str] | None, prefix: str = "") -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise PackageError(f"{MANIFEST_NAME}: {prefix}{key} must be a non-empty string", code="bad_manifest", entry=MANIFEST_NAME)
    if pattern is not None and not pattern.fullmatch(value):
        raise PackageError(f"{MANIFEST_NAME}: {prefix}{key} {show(value)} is not valid", code="bad_manifest", entry=MANIFEST_NAME)
    return value


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
