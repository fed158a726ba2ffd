"""The copier templates, end to end: real copier, real `pdk build`, the generated
projects' own test suites run in a subprocess against the reference host.

Builds are few on purpose (each ~10 s): one per kind with the default answers, one
with non-default answers (service, the kind with the most questions). Everything else
renders without building. A default project that test_install_anywhere.py already
built, in its fresh venv, from the same render starts with that build/ (`shared_builds`,
tests/e2e/project_support.py): its `pdk build` finds the build cache fresh.
Upgrades: test_upgrade.py; installing a generated project into a fresh venv:
test_install_anywhere.py."""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from project_support import (
    ANSWERS,
    KINDS,
    ROOT,
    TEMPLATES,
    SharedBuilds,
    assert_project_works,
    copy_from,
    files_of,
    manifest,
    pdk,
    pdk_new,
    run,
)

from generator.requirement import installed_requirement
from generator.scaffold import template_version

# Answer keys that say where a project came from, not what it is.
PROVENANCE = {"_src_path", "_commit", "plugin_kind"}


def assert_same_project(a: Path, b: Path) -> None:
    fa, fb = files_of(a), files_of(b)
    answers_a, answers_b = (yaml.safe_load(f.pop(ANSWERS)) for f in (fa, fb))
    assert sorted(fa) == sorted(fb)
    for name in fa:
        assert fa[name] == fb[name], f"{name} differs between {a} and {b}"
    strip = lambda answers: {k: v for k, v in answers.items() if k not in PROVENANCE}  # noqa: E731
    assert strip(answers_a) == strip(answers_b)


# -- every kind, default answers ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_each_route_gives_one_project_that_builds_checks_and_passes_its_own_tests(kind: str, tmp_path: Path, shared_builds: SharedBuilds) -> None:
    # The same folder name on every route: the plugin id defaults from it.
    via_new = tmp_path / "new" / "my-plugin"
    assert "created" in pdk_new(kind, via_new).stdout
    rendered = SharedBuilds.render_key(via_new)
    # `copier copy <repository>` (asks plugin_kind) and `copier copy templates/<kind>`.
    via_repo = copy_from(ROOT, tmp_path / "repo" / "my-plugin", {"plugin_kind": kind}, vcs_ref="HEAD")
    via_folder = copy_from(TEMPLATES / kind, tmp_path / "folder" / "my-plugin", {})
    assert_same_project(via_new, via_repo)
    assert_same_project(via_new, via_folder)

    answers = yaml.safe_load((via_repo / ANSWERS).read_text())
    assert answers["plugin_kind"] == kind and answers["_src_path"] and answers["_commit"]
    # (With uncommitted work in this checkout, copier commits it in its clone: that
    # commit exists only there. test_release.py checks a clean clone's `_commit`.)
    new_answers = yaml.safe_load((via_new / ANSWERS).read_text())
    assert new_answers["_commit"] == f"v{template_version()}"  # what `pdk upgrade` merges from
    # Every route depends on yoi-pdk where it is: this checkout.
    assert new_answers["yoi_pdk"] == installed_requirement() == f"yoi-pdk @ {ROOT.as_uri()}"

    m = manifest(via_new)
    assert m["schema_version"] == 2
    assert m["runtime"]["kind"] == "wasm-component"
    assert m["runtime"]["world"] == kind
    assert {"tool": ["tools"], "service": ["services", "ingresses"], "ingress": ["ingresses"]}[kind] == m["surfaces"]
    gitignore = (via_new / ".gitignore").read_text()
    assert all(line in gitignore.splitlines() for line in ("build/", "dist/", "*.wasm", "__pycache__/"))
    pyproject = tomllib.loads((via_new / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"] == [f"yoi-pdk @ {ROOT.as_uri()}"]
    assert pyproject["tool"]["yoi-pdk"] == {"template": kind, "template_version": template_version()}
    assert m["id"] == "my-plugin"
    readme = (via_new / "README.md").read_text()
    assert all(step in readme for step in ("pdk build", "pdk check", "pytest", "pdk pack"))

    shared_builds.seed(rendered, via_new)
    assert_project_works(via_new)


# -- non-default answers ------------------------------------------------------------------------

NON_DEFAULT = {
    "plugin_id": "ada-bot",
    "plugin_name": "Ada's bot",
    "description": "Answers politely — in any language",
    "author": "Zoë O'Brien",
}
NON_DEFAULT_BY_KIND = {
    "tool": {"tool_name": "word_count"},
    "service": {"ingress_name": "gateway_events", "websocket_url": "wss://gateway.example.com:9443/v1/socket/?encoding=json"},
    "ingress": {"ingress_name": "orders", "webhook_path": "/hooks/shop/orders"},
}


@pytest.mark.parametrize("kind", KINDS)
def test_non_default_answers_reach_every_file_and_the_unit_tests_pass(kind: str, tmp_path: Path) -> None:
    project = tmp_path / "p"
    pdk_new(kind, project, {**NON_DEFAULT, **NON_DEFAULT_BY_KIND[kind]})
    m = manifest(project)
    assert (m["id"], m["name"], m["description"]) == ("ada-bot", "Ada's bot", NON_DEFAULT["description"])
    assert m["runtime"]["component"] == "build/ada_bot.wasm"
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["authors"] == [{"name": "Zoë O'Brien"}]
    if kind == "tool":
        assert [t["name"] for t in m["tools"]] == ["word_count"]
        assert "def word_count(" in (project / "app.py").read_text()
    else:
        [ingress] = m["ingresses"]
        assert ingress["name"] == NON_DEFAULT_BY_KIND[kind]["ingress_name"]
    if kind == "ingress":
        assert ingress["http_path"] == "/hooks/shop/orders"
    # The unit tests need no build: run them for every kind.
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_unit.py"], cwd=project, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_the_service_declares_exactly_the_websocket_target_it_connects_to(tmp_path: Path) -> None:
    from pdk.host.grants import GrantSet
    from pdk.package.manifest import parse_manifest
    from pdk.package.targets import parse_targets

    project = tmp_path / "p"
    pdk_new("service", project, NON_DEFAULT_BY_KIND["service"])
    m = manifest(project)
    assert m["host_apis"] == ["log", "websocket"]
    [connection] = m["ingresses"][0]["connections"]
    assert connection["url"] == NON_DEFAULT_BY_KIND["service"]["websocket_url"]
    assert m["websocket"] == [{"scheme": "wss", "host": "gateway.example.com", "port": 9443, "path_prefixes": ["/v1/socket"]}]
    grants = GrantSet.dev_grants(parse_manifest(m))
    declared = parse_targets(m["websocket"], websocket=True)
    assert grants.check_websocket(connection["url"], declared).allowed
    assert not grants.check_websocket("wss://gateway.example.com:9443/v2", declared).allowed


@pytest.mark.slow
def test_a_project_with_non_default_answers_builds_and_passes_its_own_tests(tmp_path: Path) -> None:
    project = tmp_path / "ada-bot"
    pdk_new("service", project, {**NON_DEFAULT, **NON_DEFAULT_BY_KIND["service"]})
    assert_project_works(project)


# -- refusals ------------------------------------------------------------------------------


INVALID = [
    ("tool", "plugin_id", "Bad_ID", "plugin_id must be 1-63 lower-case letters"),
    ("service", "plugin_id", "9lives", "plugin_id must be 1-63 lower-case letters"),
    ("tool", "plugin_name", 'say "hi"', "plugin_name must be 1-128 characters on one line, without double quotes"),
    ("ingress", "description", "back\\slash", "description must be 1-400 characters"),
    ("tool", "tool_name", "WordCount", "tool_name must be 1-63 lower-case letters"),
    ("tool", "tool_name", "class", "tool_name 'class' is a Python keyword"),
    ("service", "ingress_name", "chat-room", "ingress_name must be 1-63 lower-case letters"),
    ("service", "websocket_url", "https://example.com/ws", "websocket_url must be a ws:// or wss:// URL"),
    ("ingress", "webhook_path", "hooks/orders", "webhook_path must be an absolute path"),
    ("ingress", "webhook_path", "/hooks/../admin", "webhook_path must be an absolute path"),
]


@pytest.mark.parametrize(("kind", "key", "value", "message"), INVALID)
def test_invalid_answers_are_refused_with_the_validators_message(kind: str, key: str, value: str, message: str, tmp_path: Path) -> None:
    dest = tmp_path / "p"
    proc = pdk_new(kind, dest, {key: value}, check=False)
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()  # one line, no traceback
    assert message in line and "Traceback" not in proc.stderr
    assert not dest.exists()
    # Plain copier refuses the same answer with the same message.
    with pytest.raises(ValueError, match=re.escape(message)):
        copy_from(TEMPLATES / kind, tmp_path / "plain", {key: value})


def test_pdk_new_refuses_a_non_empty_destination_unless_forced(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    proc = pdk_new("tool", dest, check=False)
    assert proc.returncode == 1
    assert "is not empty" in proc.stderr and "--force" in proc.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]
    pdk_new("tool", dest, {}, "--force")
    assert (dest / "app.py").is_file() and (dest / "notes.txt").read_text() == "mine"


def test_pdk_new_refuses_questions_the_template_does_not_ask(tmp_path: Path) -> None:
    proc = pdk_new("ingress", tmp_path / "p", {"websocket_url": "wss://x.example.com/"}, check=False)
    assert proc.returncode == 1
    assert "has no question 'websocket_url'" in proc.stderr
    assert pdk("new", "plugin", str(tmp_path / "q"), check=False).returncode == 2  # argparse: not a kind


# -- defaults from the destination, and the README's example ------------------------------


@pytest.mark.parametrize(
    ("folder", "plugin_id"),
    [("word-tools", "word-tools"), ("Word_Tools 2", "word-tools-2"), ("42 things!", "things"), ("__", "my-tool"), ("x" * 70, "x" * 63)],
)
def test_the_plugin_id_defaults_from_the_destination_folder(folder: str, plugin_id: str, tmp_path: Path) -> None:
    pdk_new("tool", tmp_path / "new" / folder)
    assert manifest(tmp_path / "new" / folder)["id"] == plugin_id
    copy_from(TEMPLATES / "tool", tmp_path / "copier" / folder, {})
    assert manifest(tmp_path / "copier" / folder)["id"] == plugin_id


def test_the_readmes_pdk_new_example_gives_the_plugin_it_describes(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [line] = [line for line in readme.splitlines() if line.startswith("pdk new tool ")]
    args = shlex.split(line.split("#")[0])
    assert args[:2] == ["pdk", "new"]
    dest = args[3]
    proc = run([sys.executable, "-m", "pdk.cli", *args[1:]], cwd=tmp_path)
    assert f"tool plugin {dest!r}" in proc.stdout
    project = tmp_path / dest
    m = manifest(project)
    assert m["id"] == dest  # from the folder's name
    [tool] = m["tools"]
    tool_name = dict(a.split("=", 1) for a in args if "=" in a)["tool_name"]
    # The template's tool greets; the example names it for what it does.
    assert "greet" in tool["description"].lower() and any(word in tool_name for word in ("greet", "hello"))
    assert f"def {tool_name}(" in (project / "app.py").read_text()
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_unit.py"], cwd=project, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_pdk_version_names_the_package_and_the_templates() -> None:
    import importlib.metadata

    out = pdk("--version").stdout.strip()
    assert out == f"pdk (yoi-pdk) {importlib.metadata.version('yoi-pdk')}, templates {template_version()}"
