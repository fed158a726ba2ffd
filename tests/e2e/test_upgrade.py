"""`pdk upgrade`: a project made with template version N, edited by its author, upgraded
to N+1 with copier's three-way merge: the edits stay, the template's changes arrive, a
clash is marked as copier marks it, and the project still builds and passes its tests.

The `next_templates` fixture is a templates folder at a made-up version N+1 (a code
change in the tool's app.py, a new .gitignore line, a README line) whose
`_versions/N/` is this checkout's templates; `pdk upgrade --templates` builds the git
repository of both versions from it, as it does from the installed package's."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from project_support import (
    ANSWERS,
    ROOT,
    TEMPLATES,
    assert_project_works,
    commit_all,
    copy_from,
    edit,
    files_of,
    git,
    manifest,
    pdk,
    pdk_new,
    run,
)

from generator.scaffold import template_version
from generator.template_repo import build_repo, tree_version, versions

N = template_version()
major, minor, _ = (int(p) for p in N.split("."))
NEXT = f"{major}.{minor + 1}.0"
NEW_CODE = 'GREETING = "Hello"  # added in the next template version'


@pytest.fixture(scope="module")
def next_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("next") / "templates"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(TEMPLATES, root, ignore=ignore)
    shutil.copytree(TEMPLATES, root / "_versions" / N, ignore=shutil.ignore_patterns("_versions", "__pycache__", "*.pyc"))
    for kind in ("tool", "service", "ingress"):
        edit(root / kind / "copier.yml", f'default: "{N}"', f'default: "{NEXT}"')
        edit(root / kind / ".gitignore", ".venv/\n", ".venv/\n.coverage\n")
    edit(root / "tool" / "app.py.jinja", "MAX_TIMES = 10\n", f"MAX_TIMES = 10\n{NEW_CODE}\n")
    edit(root / "tool" / "app.py.jinja", 'line = f"Hello, {name.strip()}!"', 'line = f"{GREETING}, {name.strip()}!"')
    edit(root / "tool" / "README.md.jinja", "## Upgrading the template\n", "## Upgrading the template\n\nTemplate news: greetings are a constant now.\n")
    edit(root / "CHANGELOG.md", f"## {N}\n", f"## {NEXT}\n\n- `tool`: the greeting word is the constant `GREETING`.\n\n## {N}\n")
    assert tree_version(root) == NEXT
    return root


def author_edits(project: Path) -> None:
    """The author's own work: a helper in app.py and its test, a line in the README."""
    app = project / "app.py"
    app.write_text(app.read_text() + '\n\ndef banner() -> str:\n    return "by me"\n')
    (project / "tests" / "test_mine.py").write_text("from app import banner\n\n\ndef test_banner() -> None:\n    assert banner() == 'by me'\n")
    edit(project / "README.md", "## Next steps", "Maintained by the author.\n\n## Next steps")
    commit_all(project, "my edits")


def assert_upgraded(project: Path, proc_stdout: str) -> None:
    text = (project / "app.py").read_text()
    assert NEW_CODE in text and 'line = f"{GREETING}, ' in text  # the template's change
    assert 'def banner() -> str:\n    return "by me"' in text  # the author's edit
    readme = (project / "README.md").read_text()
    assert "Maintained by the author." in readme and "Template news: greetings are a constant now." in readme
    assert ".coverage" in (project / ".gitignore").read_text().splitlines()
    assert f'template_version = "{NEXT}"' in (project / "pyproject.toml").read_text()
    answers = yaml.safe_load((project / ANSWERS).read_text())
    assert answers["_commit"] == f"v{NEXT}"
    assert [p for p, data in files_of(project).items() if p.endswith(".rej") or re.search(rb"^(<<<<<<<|>>>>>>>) ", data, re.M)] == []
    assert f"from template version {N} to {NEXT}" in proc_stdout
    assert "changed: " in proc_stdout and "app.py" in proc_stdout and "the greeting word is the constant" in proc_stdout


@pytest.mark.slow
def test_a_pdk_new_project_upgrades_keeping_the_authors_edits_and_still_builds(next_templates: Path, tmp_path: Path) -> None:
    project = tmp_path / "my-tool"
    pdk_new("tool", project)
    commit_all(project, "generated")
    author_edits(project)

    proc = pdk("upgrade", str(project), "--to", NEXT, "--templates", str(next_templates))
    assert_upgraded(project, proc.stdout)
    # The project's own git history is untouched: the upgrade is left for review.
    assert git(project, "log", "--format=%s").split("\n")[:2] == ["my edits", "generated"]
    assert git(project, "status", "--porcelain").strip()
    assert assert_project_works(project).startswith("9 passed")  # the template's 8 tests + the author's 1


def test_a_project_copied_from_a_checkout_upgrades_too(next_templates: Path, tmp_path: Path) -> None:
    # `copier copy <checkout>` records a commit of the checkout, not a template version:
    # pdk upgrade reads the version from [tool.yoi-pdk] in pyproject.toml.
    checkout = tmp_path / "checkout"
    shutil.copytree(TEMPLATES, checkout / "templates", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "copier.yml", checkout / "copier.yml")
    commit_all(checkout, "a checkout")
    project = copy_from(checkout, tmp_path / "copied", {"plugin_kind": "tool"}, vcs_ref="HEAD")
    assert not yaml.safe_load((project / ANSWERS).read_text())["_commit"].startswith("v")
    commit_all(project, "generated")
    author_edits(project)

    proc = pdk("upgrade", str(project), "--templates", str(next_templates))  # --to: the newest
    assert_upgraded(project, proc.stdout)
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_unit.py", "tests/test_mine.py"], cwd=project)


def test_a_project_copied_from_one_kinds_folder_keeps_its_kind(next_templates: Path, tmp_path: Path) -> None:
    # `copier copy templates/service` records neither a commit nor plugin_kind.
    project = copy_from(TEMPLATES / "service", tmp_path / "bot", {"ingress_name": "gateway"})
    assert "plugin_kind" not in yaml.safe_load((project / ANSWERS).read_text())
    commit_all(project, "generated")
    pdk("upgrade", str(project), "--templates", str(next_templates))
    assert manifest(project)["runtime"]["world"] == "service"
    assert manifest(project)["ingresses"][0]["name"] == "gateway"
    assert ".coverage" in (project / ".gitignore").read_text().splitlines()
    answers = yaml.safe_load((project / ANSWERS).read_text())
    assert (answers["plugin_kind"], answers["ingress_name"], answers["_commit"]) == ("service", "gateway", f"v{NEXT}")


def test_a_clash_is_marked_as_copier_marks_it_and_reported(next_templates: Path, tmp_path: Path) -> None:
    project = tmp_path / "clash"
    pdk_new("tool", project)
    commit_all(project, "generated")
    # The author rewrites the very line the next version changes.
    edit(project / "app.py", 'line = f"Hello, {name.strip()}!"', 'line = f"Hi there, {name.strip()}!"')
    commit_all(project, "my greeting")

    proc = pdk("upgrade", str(project), "--templates", str(next_templates), check=False)
    assert proc.returncode == 1
    assert "conflicts in: app.py" in proc.stderr and "<<<<<<< before updating" in proc.stderr
    text = (project / "app.py").read_text()
    assert "<<<<<<< before updating\n" in text and ">>>>>>> after updating\n" in text
    assert 'line = f"Hi there, {name.strip()}!"' in text and 'line = f"{GREETING}, {name.strip()}!"' in text
    assert NEW_CODE in text  # the rest of the change is applied


def test_the_installed_templates_upgrade_a_project_of_every_shipped_version(tmp_path: Path) -> None:
    # The real history: a project made with the oldest shipped version (from the
    # repository pdk builds), upgraded with the installed templates to the current one.
    repo = tmp_path / "repo"
    oldest = build_repo(TEMPLATES, repo)[0].version
    assert oldest != N
    project = copy_from(repo, tmp_path / "old-ingress", {"plugin_kind": "ingress"}, vcs_ref=f"v{oldest}")
    commit_all(project, "generated")
    edit(project / "app.py", "plugin = Plugin()\n", "plugin = Plugin()  # mine\n")
    commit_all(project, "mine")
    proc = pdk("upgrade", str(project))
    assert f"from template version {oldest} to {N}" in proc.stdout
    assert "plugin = Plugin()  # mine" in (project / "app.py").read_text()
    assert "def json_body(event: Event)" in (project / "app.py").read_text()
    assert yaml.safe_load((project / ANSWERS).read_text())["_src_path"] == str(TEMPLATES.resolve())
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_unit.py"], cwd=project)
    # Upgrading again: nothing to do.
    commit_all(project, "upgraded")
    assert "already at template version" in pdk("upgrade", str(project)).stdout


def test_refusals_say_what_to_do(next_templates: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    pdk_new("tool", project)
    proc = pdk("upgrade", str(project), "--templates", str(next_templates), check=False)
    assert proc.returncode == 1 and "not in a git repository" in proc.stderr and "git init" in proc.stderr
    commit_all(project, "generated")
    (project / "app.py").write_text((project / "app.py").read_text() + "# wip\n")
    proc = pdk("upgrade", str(project), "--templates", str(next_templates), check=False)
    assert proc.returncode == 1 and "uncommitted changes" in proc.stderr and "app.py" in proc.stderr
    git(project, "checkout", "--", "app.py")
    proc = pdk("upgrade", str(project), "--to", "9.9.9", "--templates", str(next_templates), check=False)
    known = ", ".join(v.version for v in versions(next_templates))
    assert known.endswith(f"{N}, {NEXT}")
    assert proc.returncode == 1 and f"--to 9.9.9 is not a known template version (known: {known};" in proc.stderr
    proc = pdk("upgrade", str(tmp_path), check=False)
    assert proc.returncode == 1 and "has no .copier-answers.yml" in proc.stderr
    proc = pdk("upgrade", str(project), "--to", "1.0.0", check=False)
    assert proc.returncode == 1 and "downgrades are not supported" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert git(project, "status", "--porcelain") == ""  # nothing was touched
