"""A clean checkout stays clean, and the release artifacts carry what a user needs.

A fresh clone of this repository plus `pip install -e .` (in a venv of its own) and
`python -m build` leave `git status` empty; `copier copy` from that clone records a
commit that exists in it; the sdist and the wheel carry the WIT contract, the templates
(with their released versions) and every module of the guest PDK, host and toolchain.
(.ci/run installs the wheel into a fresh venv and runs the README's first command and a
generated project's tests with it.)"""

from __future__ import annotations

import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from project_support import ANSWERS, ROOT, copy_from, git, run


def tracked(clone: Path, folder: str) -> list[str]:
    return [p for p in git(clone, "ls-files", "-z", "--", folder).split("\0") if p]


@pytest.mark.slow
def test_a_fresh_clone_stays_clean_and_builds_artifacts_with_the_wit_templates_and_pdk(tmp_path: Path) -> None:
    clone = tmp_path / "yoi-pdk"
    git(tmp_path, "clone", "-q", str(ROOT), str(clone))
    assert git(clone, "status", "--porcelain") == ""

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    # --no-deps: what pip writes into the checkout is the point here, not the dependencies.
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "-e", str(clone)])
    assert git(clone, "status", "--porcelain") == "", "pip install -e . wrote files .gitignore does not cover"

    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(clone)])
    assert git(clone, "status", "--porcelain") == "", "python -m build wrote files .gitignore does not cover"

    version = tomllib.loads((clone / "pyproject.toml").read_text())["project"]["version"]
    [wheel] = dist.glob(f"yoi_pdk-{version}-py3-none-any.whl")
    [sdist] = dist.glob(f"yoi_pdk-{version}.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}

    wit, templates = tracked(clone, "wit"), tracked(clone, "templates")
    modules = [p for p in tracked(clone, "pdk") + tracked(clone, "generator") if p.endswith(".py")]
    assert "wit/plugin.wit" in wit and "templates/tool/app.py.jinja" in templates and "pdk/_plugin.py" in modules
    assert any(p.startswith("templates/_versions/") for p in templates)
    expected_wheel = (
        {"pdk/_wit/" + p.removeprefix("wit/") for p in wit}
        | {"generator/_templates/" + p.removeprefix("templates/") for p in templates}
        | set(modules)
        | {"pdk/py.typed"}
    )
    assert sorted(expected_wheel - in_wheel) == []
    assert sorted({*wit, *templates, *modules, "README.md", "pyproject.toml"} - in_sdist) == []
    entry_points = zipfile.ZipFile(wheel).read(f"yoi_pdk-{version}.dist-info/entry_points.txt").decode()
    assert "pdk = pdk.cli:run" in entry_points and "yoi_pdk = pdk.testing.plugin" in entry_points

    # copier copy from the clean clone records a commit that exists there.
    project = copy_from(clone, tmp_path / "my-tool", {"plugin_kind": "tool"})
    commit = yaml.safe_load((project / ANSWERS).read_text())["_commit"]
    git(clone, "cat-file", "-e", f"{commit}^{{commit}}")
    assert yaml.safe_load((project / ANSWERS).read_text())["yoi_pdk"] == f"yoi-pdk @ {clone.as_uri()}"
