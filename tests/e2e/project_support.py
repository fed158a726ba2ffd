"""Helpers for the tests of generated projects (test_templates, test_upgrade,
test_install_anywhere): run commands, generate projects the ways a user does, check
that a project builds, checks and passes its own tests, and share the build of a
project with a later test whose project is rendered byte for byte the same
(`SharedBuilds`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from typing import Any

import copier

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
KINDS = ("tool", "service", "ingress")
ANSWERS = ".copier-answers.yml"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def run(args: list[str], cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env or {**os.environ, **GIT_ENV})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


def pdk(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pdk.cli", *args], check=check, cwd=cwd)


def pdk_new(kind: str, dest: Path, data: dict[str, str] | None = None, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    pairs = [f"--data={k}={v}" for k, v in (data or {}).items()]
    return pdk("new", kind, str(dest), "--defaults", *pairs, *extra, check=check)


def copy_from(src: Path, dest: Path, data: dict[str, str], vcs_ref: str | None = None) -> Path:
    """Plain copier, as a user runs it (no --trust: unsafe=False)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DirtyLocalWarning when the checkout has uncommitted work
        copier.run_copy(str(src), str(dest), data=data, defaults=True, unsafe=False, quiet=True, vcs_ref=vcs_ref)
    return dest


def git(repo: Path, *args: str) -> str:
    return run(["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main", *args], cwd=repo).stdout


def commit_all(repo: Path, message: str) -> None:
    if not (repo / ".git").exists():
        git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def files_of(project: Path) -> dict[str, bytes]:
    return {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in sorted(project.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


def pytest_summary(output: str) -> str:
    return output.strip().splitlines()[-1]


def assert_project_works(project: Path) -> str:
    """`pdk build` -> `pdk build --check` -> `pdk check` -> the project's own tests."""
    manifest_before = (project / "plugin.toml").read_bytes()
    pdk("build", str(project))
    assert (project / "plugin.toml").read_bytes() == manifest_before, "the template's plugin.toml is not what `pdk build` writes"
    pdk("build", "--check", str(project))
    pdk("check", str(project))
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, check=False)
    summary = pytest_summary(proc.stdout)
    assert proc.returncode == 0, f"the generated project's tests failed: {summary}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    assert "passed" in summary and "skipped" not in summary and "deselected" not in summary, summary
    return summary


def manifest(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "plugin.toml").read_text(encoding="utf-8"))


class SharedBuilds:
    """The build/ folders of generated projects whose own tests passed earlier in this
    session, by the project as rendered (tests/e2e/conftest.py's `shared_builds`).

    `render_key` is taken right after rendering (every file, the answers included).
    A later project with the same key is the same project in another folder: `seed`
    gives it a copy of that build/ folder, and its `pdk build` finds the build cache
    fresh, because the cache key (generator/build.py: the sources, the contract, the
    guest PDK, the componentize-py version) is the same. `pdk build` still checks the
    manifest against the recorded introspection, and `pdk check` and the project's
    tests still run on the component; only componentize-py is not run again on the
    same inputs. If anything that goes into the key differs, `pdk build` builds."""

    def __init__(self, store: Path) -> None:
        self._store = store
        self._builds: dict[str, Path] = {}

    @staticmethod
    def render_key(project: Path) -> str:
        h = hashlib.sha256()
        for name, data in files_of(project).items():
            h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
        return h.hexdigest()

    def offer(self, key: str, project: Path) -> None:
        """Keep a copy of `project`'s build/ (call once its own tests passed)."""
        if key not in self._builds and (project / "build").is_dir():
            kept = self._store / key[:16]
            shutil.copytree(project / "build", kept)
            self._builds[key] = kept

    def seed(self, key: str, project: Path) -> bool:
        """Give `project` (rendered with this key, not built yet) the build kept for it."""
        kept = self._builds.get(key)
        if kept is None or (project / "build").exists():
            return False
        shutil.copytree(kept, project / "build")
        return True
