"""The template folders stay consistent with each other: one version, one changelog,
the same shared files and common questions, and the combined configs point at them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from generator._resources import templates_dir
from generator.scaffold import KINDS, questions

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
COMMON = ["plugin_id", "plugin_name", "description", "author"]
SHARED_FILES = [".gitignore", "{{_copier_conf.answers_file}}.jinja"]


def kind_config(kind: str) -> dict[str, object]:
    config = yaml.safe_load((TEMPLATES / kind / "copier.yml").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def test_the_package_data_locator_finds_this_checkouts_templates() -> None:
    assert templates_dir().resolve() == TEMPLATES.resolve()


def test_every_kind_carries_the_newest_changelog_version() -> None:
    newest = re.search(r"^## (\d+\.\d+\.\d+)", (TEMPLATES / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert newest is not None
    for kind in KINDS:
        assert kind_config(kind)["template_version"] == {"type": "str", "default": newest.group(1), "when": False}


def test_each_kind_asks_the_common_questions_then_its_own() -> None:
    assert list(questions("tool")) == [*COMMON, "tool_name"]
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
