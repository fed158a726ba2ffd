"""What a package of a plugin directory holds, picked by an allow-list.

`plugin.toml`, the component the manifest names, and top-level README*/LICENSE*
files. Files are never picked by walking the tree, so `.git/`, caches, virtualenvs
and sources cannot leak into a package. Used by `pdk pack` and by the host when it
opens a directory as a package, so both see exactly the same files."""

from __future__ import annotations

import os
from pathlib import Path

from pdk.package.archive import MANIFEST_NAME, PackageFiles, validate_path
from pdk.package.errors import PackageError, show
from pdk.package.manifest import Manifest, ManifestError, parse_manifest_text

TOP_LEVEL_DOCS = ("README", "LICENSE", "LICENCE")


def package_file_list(plugin_dir: str | os.PathLike[str], component: str | None = None) -> list[str]:
    """The relative paths a package of `plugin_dir` holds, byte-sorted.

    `component` defaults to the manifest's `[runtime] component`."""
    root = Path(plugin_dir)
    if component is None:
        component = read_directory_manifest(root).runtime.component
    validate_path(component)
    if not (root / component).exists() and not (root / component).is_symlink():
        raise PackageError(
            f"component {show(component)} does not exist; run `pdk build` first",
            code="missing_file",
            entry=component,
        )
    names = {MANIFEST_NAME, component, *_top_level_docs(root)}
    return sorted(names, key=lambda p: p.encode("utf-8"))


def read_directory_manifest(root: Path) -> Manifest:
    """The validated manifest of a plugin directory, read through the safe directory
    view (`plugin.toml` must not be a symlink either). A manifest that does not
    validate is a `PackageError`: `bad_manifest`, or the package rule it breaks
    (e.g. `path_traversal` for a component outside the package)."""
    try:
        raw = PackageFiles.from_directory(root, [MANIFEST_NAME]).read(MANIFEST_NAME)
    except PackageError as exc:
        if exc.code != "missing_file" or not root.is_dir():
            raise
        raise PackageError(f"no {MANIFEST_NAME} in {show(str(root))}", code="missing_manifest") from None
    try:
        return parse_manifest_text(raw, MANIFEST_NAME)
    except ManifestError as exc:
        code = next((p.code for p in exc.problems if p.code), "bad_manifest")
        raise PackageError(str(exc), code=code, entry=MANIFEST_NAME) from None


def _top_level_docs(root: Path) -> list[str]:
    docs = []
    with os.scandir(root) as listing:
        for item in listing:
            # Symlinks are kept so that the reader refuses them loudly, instead of a
            # README silently going missing from the package.
            if item.is_dir(follow_symlinks=False):
                continue
            if item.name.upper().startswith(TOP_LEVEL_DOCS):
                docs.append(item.name)
    return docs
