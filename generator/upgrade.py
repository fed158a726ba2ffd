"""`pdk upgrade`: apply a newer template version to a project with copier's update.

copier's update is a three-way merge: it renders the template at the project's version
and at the new one, and applies the difference to the project, so the author's edits
stay and a clash is marked in the file (`<<<<<<< before updating` ... `>>>>>>> after
updating`). It needs the template as a git repository with the versions as tags, and
the project's answers file naming that repository and the project's version.

The versions come from the installed yoi-pdk (generator/template_repo.py builds the
repository). The project may have been made by `pdk new` (`_commit: vX.Y.Z`) or by
`copier copy` of a checkout or folder (`_commit` is then a commit of that checkout, or
missing; the version is read from `[tool.yoi-pdk] template_version`). So that
copier's own safety checks stay in force and the project's git repository is not
touched, the update runs on a copy: the project's tracked files are committed into a
scratch repository, its answers file is pointed at the template repository there, copier
updates it, and the files copier changed are copied back. The answers file then records
the templates folder used and `_commit: vX.Y.Z` of the new version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

from pdk._contract import PLUGIN_KINDS

from ._resources import templates_dir
from .answers import ANSWERS_FILE, AnswersError, read_answers, write_answers
from .requirement import installed_requirement
from .template_repo import TAG_PREFIX, TemplateRepoError, build_repo, version_key, versions

KINDS = PLUGIN_KINDS
# copier marks a clash with git-style lines: <<<<<<< before updating / ======= / >>>>>>> after updating.
CONFLICT_MARKER = re.compile(rb"^<<<<<<< before updating\r?$", re.M)
_TAG = re.compile(rf"^{TAG_PREFIX}(\d+\.\d+\.\d+)$")
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "pdk upgrade",
    "GIT_AUTHOR_EMAIL": "pdk-upgrade@yoi-pdk.invalid",
    "GIT_COMMITTER_NAME": "pdk upgrade",
    "GIT_COMMITTER_EMAIL": "pdk-upgrade@yoi-pdk.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class UpgradeError(Exception):
    """An upgrade `pdk upgrade` refuses or cannot do (one line, the user's to fix)."""


@dataclass(frozen=True)
class Upgrade:
    project: Path
    kind: str
    from_version: str
    to_version: str
    changed: list[str] = field(default_factory=list)  # paths relative to the project
    conflicts: list[str] = field(default_factory=list)  # files with conflict markers, or .rej files
    changelog: str = ""  # the CHANGELOG.md sections of the versions applied

    @property
    def up_to_date(self) -> bool:
        return self.from_version == self.to_version


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**os.environ, **_GIT_ENV},
            check=False,
        )
    except FileNotFoundError:
        raise UpgradeError("git is not installed; the upgrade's three-way merge needs it") from None
    if check and proc.returncode != 0:
        raise UpgradeError(f"git {args[0]} failed in {cwd}: {proc.stderr.strip()[:400]}")
    return proc


def _check_clean(project: Path) -> None:
    if _git(project, "rev-parse", "--show-toplevel", check=False).returncode != 0:
        raise UpgradeError(
            f"{project} is not in a git repository; the upgrade is a three-way merge against your last commit: "
            "git init && git add -A && git commit -m 'my plugin', then pdk upgrade"
        )
    dirty = _git(project, "status", "--porcelain", "--untracked-files=all", "--", ".").stdout.splitlines()
    if dirty:
        raise UpgradeError(f"{project} has uncommitted changes ({len(dirty)} paths, e.g. {dirty[0][3:]}); commit them first, so the upgrade's changes are yours to review")


def _pyproject_marker(project: Path) -> dict[str, object]:
    try:
        data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    tool = data.get("tool", {})
    marker = tool.get("yoi-pdk", {}) if isinstance(tool, dict) else {}
    return marker if isinstance(marker, dict) else {}


def _kind_and_version(project: Path, answers: dict[str, object]) -> tuple[str, str]:
    marker = _pyproject_marker(project)
    kind = answers.get("plugin_kind") or marker.get("template")
    if kind not in KINDS:
        raise UpgradeError(f"{project}: cannot tell the plugin kind (no plugin_kind in {ANSWERS_FILE}, no [tool.yoi-pdk] template in pyproject.toml)")
    commit = answers.get("_commit")
    tagged = _TAG.match(commit) if isinstance(commit, str) else None
    version = tagged.group(1) if tagged else marker.get("template_version")
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+$", version):
        raise UpgradeError(f"{project}: cannot tell its template version (no _commit: vX.Y.Z in {ANSWERS_FILE}, no [tool.yoi-pdk] template_version in pyproject.toml)")
    return str(kind), version


def _changelog(templates: Path, after: str, upto: str) -> str:
    """The CHANGELOG.md sections of the versions in (after, upto]."""
    try:
        text = (templates / "CHANGELOG.md").read_text(encoding="utf-8")
    except OSError:
        return ""
    sections = re.split(r"^(?=## \d+\.\d+\.\d+)", text, flags=re.M)
    keep = []
    for section in sections:
        head = re.match(r"## (\d+\.\d+\.\d+)", section)
        if head and version_key(after) < version_key(head.group(1)) <= version_key(upto):
            keep.append(section.strip())
    return "\n\n".join(keep)


def _tracked_files(project: Path) -> list[str]:
    out = _git(project, "ls-files", "-z", "--", ".").stdout
    return [p for p in out.split("\0") if p]


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        dst.unlink()
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst)


def _run_copier_update(work: Path, tag: str, data: dict[str, str]) -> None:
    import copier
    from copier.errors import CopierError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_update(
                str(work),
                vcs_ref=tag,
                data=data,
                defaults=True,  # keep every recorded answer; new questions take their defaults
                overwrite=True,
                unsafe=False,  # the templates need no tasks, migrations or extensions
                quiet=True,
                conflict="inline",
            )
    except (CopierError, ValueError) as exc:
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise UpgradeError(f"copier's update failed: {text}") from None


def upgrade_project(project: str | Path, to: str | None = None, templates: Path | None = None) -> Upgrade:
    """Upgrade the project in `project` to template version `to` (default: the newest
    of `templates`, default: the installed yoi-pdk's). Raises `UpgradeError`."""
    project = Path(project).resolve()
    templates = (templates or templates_dir()).resolve()
    if not project.is_dir():
        raise UpgradeError(f"{project} is not a directory")
    try:
        answers = read_answers(project)
        known = versions(templates)
    except (AnswersError, TemplateRepoError) as exc:
        raise UpgradeError(str(exc)) from None
    kind, from_version = _kind_and_version(project, answers)
    names = [v.version for v in known]
    target = to or names[-1]
    if target.startswith(TAG_PREFIX):
        target = target[len(TAG_PREFIX):]
    for version, what in ((from_version, "the project's template version"), (target, "--to")):
        if version not in names:
            raise UpgradeError(f"{what} {version} is not a known template version (known: {', '.join(names)}; `pdk --version` names the newest)")
    if version_key(target) < version_key(from_version):
        raise UpgradeError(f"the project is at template version {from_version}, newer than {target}; downgrades are not supported")
    if target == from_version:
        return Upgrade(project, kind, from_version, target)
    _check_clean(project)

    with TemporaryDirectory(prefix="pdk-upgrade-") as tmp:
        repo, work = Path(tmp, "templates"), Path(tmp, "project")
        try:
            build_repo(templates, repo)
        except TemplateRepoError as exc:
            raise UpgradeError(str(exc)) from None
        # The project as committed (it is clean), in a scratch repository whose answers
        # name the template repository and the project's version.
        work.mkdir()
        base = _tracked_files(project)
        for rel in base:
            if (project / rel).exists() or (project / rel).is_symlink():
                _copy(project / rel, work / rel)
        write_answers(work, {"_src_path": str(repo), "_commit": f"{TAG_PREFIX}{from_version}", "plugin_kind": kind})
        _git(work, "init", "-q")
        _git(work, "add", "-A", "--force")
        _git(work, "commit", "-q", "-m", "the project, as committed")
        _run_copier_update(work, f"{TAG_PREFIX}{target}", {"plugin_kind": kind, "yoi_pdk": installed_requirement()})
        write_answers(work, {"_src_path": str(templates), "_commit": f"{TAG_PREFIX}{target}"})

        # Copy back what copier changed (ignored files too: copier does not consult .gitignore).
        _git(work, "add", "-A", "--force")
        status = _git(work, "diff", "--cached", "--name-status", "--no-renames", "-z", "HEAD").stdout.split("\0")
        changed: list[str] = []
        conflicts: list[str] = []
        for code, rel in zip(status[0::2], status[1::2]):
            if not rel:
                continue
            if code == "D":
                (project / rel).unlink(missing_ok=True)
            else:
                _copy(work / rel, project / rel)
                if rel.endswith(".rej") or (not (work / rel).is_symlink() and CONFLICT_MARKER.search((work / rel).read_bytes())):
                    conflicts.append(rel)
            changed.append(rel)
    return Upgrade(project, kind, from_version, target, sorted(changed), sorted(conflicts), _changelog(templates, from_version, target))
