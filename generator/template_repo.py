"""The template versions, and a git repository of them for copier's update.

copier upgrades a project by rendering the template at the project's version and at
the new one (a three-way merge), and it finds versions by git tag. The installed
package's templates are a plain folder, so the released trees are shipped with it:
`templates/_versions/X.Y.Z/` holds each released version frozen, and `templates/`
itself is the current one. `build_repo` commits them, oldest first, into a new git
repository with one tag `vX.Y.Z` per version (fixed author and dates, so the same
trees give the same commits)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml  # type: ignore[import-untyped]

VERSIONS_DIR = "_versions"
TAG_PREFIX = "v"
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_IGNORE = shutil.ignore_patterns(VERSIONS_DIR, "__pycache__", "*.py[co]", ".git")
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "yoi-pdk",
    "GIT_AUTHOR_EMAIL": "templates@yoi-pdk.invalid",
    "GIT_COMMITTER_NAME": "yoi-pdk",
    "GIT_COMMITTER_EMAIL": "templates@yoi-pdk.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class TemplateRepoError(Exception):
    """The templates folder is not a consistent set of versions, or git failed."""


@dataclass(frozen=True)
class TemplateVersion:
    version: str
    tree: Path  # a folder laid out like templates/ (copier.yml, _kind.yml, one folder per kind)

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}{self.version}"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def tree_version(tree: Path) -> str:
    """`template_version` of a templates tree (the tool kind's copier.yml; a unit test
    checks that the kinds agree)."""
    config = yaml.safe_load((tree / "tool" / "copier.yml").read_text(encoding="utf-8"))
    spec = config.get("template_version") if isinstance(config, dict) else None
    version = spec.get("default") if isinstance(spec, dict) else None
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise TemplateRepoError(f"{tree}: template_version is missing or not X.Y.Z")
    return version


def versions(templates: Path) -> list[TemplateVersion]:
    """Every template version in `templates`, oldest first; the last is `templates` itself."""
    found: list[TemplateVersion] = []
    frozen = templates / VERSIONS_DIR
    if frozen.is_dir():
        for child in frozen.iterdir():
            if not child.is_dir():
                continue
            if not _VERSION.fullmatch(child.name) or tree_version(child) != child.name:
                raise TemplateRepoError(f"{child}: a frozen template tree must be named after its template_version")
            found.append(TemplateVersion(child.name, child))
    current = TemplateVersion(tree_version(templates), templates)
    if any(v.version == current.version for v in found):
        raise TemplateRepoError(f"template version {current.version} is both current and frozen in {frozen}; bump template_version")
    found.sort(key=lambda v: version_key(v.version))
    if found and version_key(found[-1].version) > version_key(current.version):
        raise TemplateRepoError(f"the frozen version {found[-1].version} is newer than the current {current.version}")
    return [*found, current]


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            env={**os.environ, **_GIT_ENV},
            check=False,
        )
    except FileNotFoundError:
        raise TemplateRepoError("git is not installed; copier's update needs it") from None
    if proc.returncode != 0:
        raise TemplateRepoError(f"git {args[0]} failed: {proc.stderr.strip()[:400]}")
    return proc.stdout


def build_repo(templates: Path, dest: Path) -> list[TemplateVersion]:
    """Create a git repository at `dest` (missing or empty) with one commit and tag per
    version of `templates`. Returns the versions, oldest first."""
    found = versions(templates)
    dest.mkdir(parents=True, exist_ok=True)
    _git(dest, "init", "-q")
    for version in found:
        for child in dest.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        shutil.copytree(version.tree, dest, ignore=_IGNORE, dirs_exist_ok=True)
        # A fresh index, so git hashes every file: copytree keeps mtimes, and two versions
        # of a file with the same size and mtime (as a fresh clone checks them out) would
        # otherwise look unchanged to git's stat check and be left out of the commit.
        (dest / ".git" / "index").unlink(missing_ok=True)
        _git(dest, "add", "-A")
        _git(dest, "commit", "-q", "--allow-empty", "-m", f"templates {version.version}")
        _git(dest, "tag", version.tag)
    return found
