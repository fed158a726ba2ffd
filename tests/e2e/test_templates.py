"""The copier templates, end to end: real copier, real `pdk build`, the generated
projects' own test suites run in a subprocess against the reference host, and
`copier update` from a git-tagged template repository.

Builds are few on purpose (each ~10 s): one per kind with the default answers, one
with non-default answers (service, the kind with the most questions), one for the
upgrade. Everything else renders without building."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
KINDS = ("tool", "service", "ingress")
ANSWERS = ".copier-answers.yml"
# Answer keys that say where a project came from, not what it is.
PROVENANCE = {"_src_path", "_commit", "plugin_kind"}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


# -- helpers ------------------------------------------------------------------------------


def run(args: list[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def pdk(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pdk.cli", *args], check=check)


def pdk_new(kind: str, dest: Path, data: dict[str, str] | None = None, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    pairs = [f"--data={k}={v}" for k, v in (data or {}).items()]
    return pdk("new", kind, str(dest), "--defaults", *pairs, *extra, check=check)


def copy_from(src: Path, dest: Path, data: dict[str, str], vcs_ref: str | None = None) -> Path:
    """Plain copier, as a user runs it (no --trust: unsafe=False)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DirtyLocalWarning when the checkout has uncommitted work
        copier.run_copy(str(src), str(dest), data=data, defaults=True, unsafe=False, quiet=True, vcs_ref=vcs_ref)
    return dest


def files_of(project: Path) -> dict[str, bytes]:
    return {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in sorted(project.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


def assert_same_project(a: Path, b: Path) -> None:
    fa, fb = files_of(a), files_of(b)
    answers_a, answers_b = (yaml.safe_load(f.pop(ANSWERS)) for f in (fa, fb))
    assert sorted(fa) == sorted(fb)
    for name in fa:
        assert fa[name] == fb[name], f"{name} differs between {a} and {b}"
    strip = lambda answers: {k: v for k, v in answers.items() if k not in PROVENANCE}  # noqa: E731
    assert strip(answers_a) == strip(answers_b)


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


# -- every kind, default answers ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_each_route_gives_one_project_that_builds_checks_and_passes_its_own_tests(kind: str, tmp_path: Path) -> None:
    via_new = tmp_path / "via-new"
    assert "created" in pdk_new(kind, via_new).stdout
    # `copier copy <repository>` (asks plugin_kind) and `copier copy templates/<kind>`.
    via_repo = copy_from(ROOT, tmp_path / "via-repo", {"plugin_kind": kind}, vcs_ref="HEAD")
    via_folder = copy_from(TEMPLATES / kind, tmp_path / "via-folder", {})
    assert_same_project(via_new, via_repo)
    assert_same_project(via_new, via_folder)

    answers = yaml.safe_load((via_repo / ANSWERS).read_text())
    assert answers["plugin_kind"] == kind and answers["_src_path"] and answers["_commit"]

    m = manifest(via_new)
    assert m["schema_version"] == 2
    assert m["runtime"]["kind"] == "wasm-component"
    assert m["runtime"]["world"] == kind
    assert {"tool": ["tools"], "service": ["services", "ingresses"], "ingress": ["ingresses"]}[kind] == m["surfaces"]
    gitignore = (via_new / ".gitignore").read_text()
    assert all(line in gitignore.splitlines() for line in ("build/", "dist/", "*.wasm", "__pycache__/"))
    pyproject = tomllib.loads((via_new / "pyproject.toml").read_text())
    assert any(dep.startswith("yoi-pdk") for dep in pyproject["project"]["dependencies"])
    readme = (via_new / "README.md").read_text()
    assert all(step in readme for step in ("pdk build", "pdk check", "pytest", "pdk pack"))

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
    from pdk.host.targets import parse_targets

    project = tmp_path / "p"
    pdk_new("service", project, NON_DEFAULT_BY_KIND["service"])
    m = manifest(project)
    assert m["host_apis"] == ["log", "websocket"]
    [connection] = m["ingresses"][0]["connections"]
    assert connection["url"] == NON_DEFAULT_BY_KIND["service"]["websocket_url"]
    assert m["websocket"] == [{"scheme": "wss", "host": "gateway.example.com", "port": 9443, "path_prefixes": ["/v1/socket"]}]
    grants = GrantSet.dev_grants(m)
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


# -- copier update from an older template version ------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _git(repo: Path, *args: str) -> str:
    return run(["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args], cwd=repo).stdout


@pytest.mark.slow
def test_copier_update_applies_a_new_template_version_and_keeps_the_authors_edits(tmp_path: Path) -> None:
    # A template repository as users would clone it, tagged v1.0.0.
    repo = tmp_path / "yoi-pdk"
    repo.mkdir()
    shutil.copy(ROOT / "copier.yml", repo / "copier.yml")
    shutil.copytree(TEMPLATES, repo / "templates", ignore=shutil.ignore_patterns("__pycache__"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "templates 1.0.0")
    _git(repo, "tag", "v1.0.0")

    project = copy_from(repo, tmp_path / "my-tool", {"plugin_kind": "tool"}, vcs_ref="v1.0.0")
    assert yaml.safe_load((project / ANSWERS).read_text())["_commit"] == "v1.0.0"
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "generated")
    # The author's own work: a helper in app.py, its test, a line in the README.
    app = project / "app.py"
    app.write_text(app.read_text() + '\n\ndef banner() -> str:\n    return "my-tool by me"\n')
    (project / "tests" / "test_mine.py").write_text("from app import banner\n\n\ndef test_banner() -> None:\n    assert banner() == 'my-tool by me'\n")
    _edit(project / "README.md", "## Next steps", "Maintained by the author.\n\n## Next steps")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "my edits")

    # Template 1.1.0: a code change, a new ignore line, the version bump.
    for kind in KINDS:
        _edit(repo / "templates" / kind / "copier.yml", 'default: "1.0.0"', 'default: "1.1.0"')
    _edit(repo / "templates" / "tool" / "app.py.jinja", "MAX_TIMES = 10\n", "MAX_TIMES = 10\nGREETING = \"Hello\"  # added in template 1.1.0\n")
    _edit(repo / "templates" / "tool" / "app.py.jinja", 'line = f"Hello, {name.strip()}!"', 'line = f"{GREETING}, {name.strip()}!"')
    _edit(repo / "templates" / "tool" / ".gitignore", ".venv/\n", ".venv/\n.coverage\n")
    _git(repo, "commit", "-q", "-am", "templates 1.1.0")
    _git(repo, "tag", "v1.1.0")

    # No --trust: the templates have no tasks, migrations or extensions.
    run([sys.executable, "-m", "copier", "update", "--defaults", "--vcs-ref", "v1.1.0"], cwd=project)

    text = app.read_text()
    assert 'GREETING = "Hello"  # added in template 1.1.0' in text and 'line = f"{GREETING}, ' in text
    assert 'def banner() -> str:\n    return "my-tool by me"' in text
    assert "Maintained by the author." in (project / "README.md").read_text()
    assert ".coverage" in (project / ".gitignore").read_text().splitlines()
    assert 'template_version = "1.1.0"' in (project / "pyproject.toml").read_text()
    assert yaml.safe_load((project / ANSWERS).read_text())["_commit"] == "v1.1.0"
    leftovers = [p for p in files_of(project) if p.endswith(".rej")] + [p for p, data in files_of(project).items() if b"<<<<<<<" in data]
    assert leftovers == []
    assert assert_project_works(project).startswith("9 passed")  # the template's 8 tests + the author's 1
