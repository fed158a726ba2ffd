"""The template folders stay consistent with each other: one version, one changelog,
the same shared files and common questions, and the combined configs point at them;
the released versions are frozen and build a git repository copier can update from."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from generator._resources import templates_dir
from generator.requirement import index_range
from generator.scaffold import KINDS, questions, template_version
from generator.template_repo import build_repo, versions

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
COMMON = ["plugin_id", "plugin_name", "description", "author", "yoi_pdk"]
SHARED_FILES = [".gitignore", "{{_copier_conf.answers_file}}.jinja"]


def kind_config(kind: str) -> dict[str, object]:
    config = yaml.safe_load((TEMPLATES / kind / "copier.yml").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def test_the_package_data_locator_finds_this_checkouts_templates() -> None:
    assert templates_dir().resolve() == TEMPLATES.resolve()


def changelog_versions() -> list[str]:
    return re.findall(r"^## (\d+\.\d+\.\d+)$", (TEMPLATES / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)


def test_every_kind_carries_the_newest_changelog_version() -> None:
    newest = changelog_versions()[0]
    for kind in KINDS:
        assert kind_config(kind)["template_version"] == {"type": "str", "default": newest, "when": False}
    assert template_version() == newest


def test_the_changelog_lists_every_version_pdk_upgrade_knows_newest_first() -> None:
    known = [v.version for v in versions(TEMPLATES)]
    assert changelog_versions() == known[::-1]
    assert known[-1] == template_version() and "1.0.0" in known


# The released trees are what `pdk upgrade` re-renders a project from: byte for byte
# what was released. Add a version here when freezing it; never change a digest.
FROZEN = {
    "1.0.0": "b34156249e207cae69b2d3d05c0a74569e09665ed74606f20304337fb7ca7ac4",
    "1.1.0": "f37257b26e751150b6f68253f7b6700bd2b92a566b5d2d0fd6530f13f090f804",
}


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def test_released_template_versions_are_frozen() -> None:
    frozen = {v.version: tree_digest(v.tree) for v in versions(TEMPLATES)[:-1]}
    assert frozen == FROZEN, "templates/_versions/ holds released trees: do not edit them (see its README.md)"


def test_the_template_repository_has_one_tagged_commit_per_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    known = build_repo(TEMPLATES, repo)
    git = lambda *args: subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout  # noqa: E731
    assert git("tag", "--list").split() == [f"v{v.version}" for v in known]
    assert len(git("rev-list", "HEAD").split()) == len(known)
    for version in known:
        config = yaml.safe_load(git("show", f"v{version.version}:tool/copier.yml"))
        assert config["template_version"]["default"] == version.version
        assert "_versions" not in git("ls-tree", "--name-only", f"v{version.version}").split()
    # The newest tag is exactly the current templates folder.
    assert git("show", "HEAD:tool/app.py.jinja") == (TEMPLATES / "tool" / "app.py.jinja").read_text(encoding="utf-8")
    # Same trees, same commits: building again gives the same hashes.
    again = tmp_path / "again"
    build_repo(TEMPLATES, again)
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=again, capture_output=True, text=True).stdout == git("rev-parse", "HEAD")


def test_the_index_range_in_the_templates_matches_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for kind in KINDS:
        default = kind_config(kind)["yoi_pdk"]["default"]  # type: ignore[index]
        assert f"{{%- else -%}}{index_range(version)}{{%- endif -%}}" in default


def test_each_kind_asks_the_common_questions_then_its_own() -> None:
    assert list(questions("tool")) == [*COMMON, "tool_name"]  # yoi_pdk: see generator/requirement.py
    assert list(questions("service")) == [*COMMON, "ingress_name", "websocket_url"]
    assert list(questions("ingress")) == [*COMMON, "ingress_name", "webhook_path"]
    for kind in KINDS:
        for name, spec in questions(kind).items():
            assert "default" in spec and "validator" in spec, f"{kind}: {name}"


def test_common_questions_and_settings_are_the_same_in_every_kind() -> None:
    # The combined configs merge the three kind files (the last definition wins), so
    # what they share must agree, apart from each file's own kind name.
    def normalized(kind: str) -> dict[str, object]:
        text = (TEMPLATES / kind / "copier.yml").read_text(encoding="utf-8")
        config = yaml.safe_load(text.replace(f"default('{kind}')", "default(KIND)"))
        assert isinstance(config, dict)
        return config

    tool, service, ingress = (normalized(kind) for kind in KINDS)
    shared = [k for k in tool if k.startswith("_") or k in COMMON or k == "template_version"]
    assert {k: tool[k] for k in shared} == {k: service[k] for k in shared} == {k: ingress[k] for k in shared}
    assert service["ingress_name"] == ingress["ingress_name"]


def test_shared_files_are_identical_in_every_kind() -> None:
    for name in SHARED_FILES:
        contents = {(TEMPLATES / kind / name).read_bytes() for kind in KINDS}
        assert len(contents) == 1, name


def test_the_combined_configs_include_every_kind() -> None:
    for config, prefix in ((ROOT / "copier.yml", "templates/"), (TEMPLATES / "copier.yml", "")):
        text = config.read_text(encoding="utf-8")
        assert f'_subdirectory: "{prefix}{{{{ plugin_kind }}}}"' in text
        includes = re.findall(r"^!include (\S+)$", text, re.M)
        assert includes == [f"{prefix}_kind.yml", *(f"{prefix}{kind}/copier.yml" for kind in KINDS)]


def test_no_template_needs_trust() -> None:
    for kind in KINDS:
        config = kind_config(kind)
        assert not {"_tasks", "_migrations", "_jinja_extensions"} & set(config)
