"""`pdk build` end to end: the build cache, `--check`, manifest sync through a real
build, and the friendly errors of the build pipeline.

Real componentize-py builds are few (each takes seconds): the session-shared
text-tools build (`built_plugin`), one build of a plugin whose `Plugin` object is
not called `plugin`, and one failing build with a C-extension dependency. Every
other test works on a copy of the built text-tools (its cache record travels with
it, so the copy is fresh) or fails before componentize-py would run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Callable

import pytest

from generator.build import BuildResult, build
from generator.diagnose import BuildError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PDK = Path(sys.executable).with_name("pdk")
EXAMPLE = ROOT / "examples" / "text-tools"
TEXT_STATS_DOC = '"""Count the words, unique words and lines of a text, and list the most common words."""'


def run_pdk(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PDK), *map(str, args)], capture_output=True, text=True, timeout=900,
        env={**os.environ, **(env or {})},
    )


def assert_friendly_failure(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 1, one paragraph on stderr prefixed `pdk build:`, never a traceback."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    message = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("pdk: ")).strip()  # progress lines
    assert message.startswith("pdk build: "), message
    assert "\n\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture
def text_tools(built_plugin: Callable[[str], Path], tmp_path: Path) -> Path:
    """A private copy of the built text-tools, component and build record included."""
    dest = tmp_path / "text-tools"
    shutil.copytree(built_plugin("text-tools"), dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def file_state(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime_ns


# -- the build cache --------------------------------------------------------------------------


def test_a_noop_rebuild_does_not_run_componentize(text_tools: Path) -> None:
    component = text_tools / "build" / "text_tools.wasm"
    before = file_state(component)
    manifest_before = file_state(text_tools / "plugin.toml")
    calls: list[None] = []
    result = build(text_tools, on_componentize=lambda: calls.append(None))
    assert calls == []
    assert isinstance(result, BuildResult)
    assert result.cached and not result.manifest_updated
    assert result.component == text_tools / "build" / "text_tools.wasm"
    assert result.world == "tool" and result.tools == ["text_stats", "reshape"]
    assert result.sha256 == hashlib.sha256(component.read_bytes()).hexdigest()
    assert result.size == component.stat().st_size
    assert file_state(component) == before  # not rewritten
    assert file_state(text_tools / "plugin.toml") == manifest_before


def test_cli_build_reports_the_cached_build_as_json(text_tools: Path) -> None:
    proc = run_pdk("build", text_tools, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["cached"] is True and doc["manifest_updated"] is False
    assert doc["tools"] == ["text_stats", "reshape"]
    assert set(doc) == {"ok", "component", "world", "cached", "manifest_updated", "seconds", "sha256", "size", "tools", "warnings"}
    assert doc["warnings"] == []  # every text-tools parameter has a type hint


# -- --check ----------------------------------------------------------------------------------


def test_check_passes_when_code_manifest_and_component_agree(text_tools: Path) -> None:
    before = file_state(text_tools / "plugin.toml")
    proc = run_pdk("build", text_tools, "--check")
    assert proc.returncode == 0, proc.stderr
    assert "up to date; plugin.toml agrees with the code" in proc.stdout
    assert file_state(text_tools / "plugin.toml") == before


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TEXT_STATS_DOC, '"""Count words."""'),  # the description changes
        ("top: int = 3,", "top: float = 3.0,"),  # a parameter type changes
        ("case_sensitive: bool = False", "case_sensitive: bool = True"),  # a default changes
    ],
    ids=["docstring", "parameter-type", "default"],
)
def test_check_detects_drift_and_changes_nothing(text_tools: Path, old: str, new: str) -> None:
    edit(text_tools / "app.py", old, new)
    manifest = file_state(text_tools / "plugin.toml")
    component = file_state(text_tools / "build" / "text_tools.wasm")
    message = assert_friendly_failure(
        run_pdk("build", text_tools, "--check"),
        "plugin.toml disagrees with the code",
        "description or input_schema differ: text_stats",
        "Run `pdk build`",
    )
    assert "reshape" not in message
    assert file_state(text_tools / "plugin.toml") == manifest
    assert file_state(text_tools / "build" / "text_tools.wasm") == component
    proc = run_pdk("build", text_tools, "--check", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["kind"] == "manifest_drift"


def test_check_names_added_and_removed_tools(text_tools: Path) -> None:
    app = text_tools / "app.py"
    edit(app, '@plugin.tool(name="reshape")', '@plugin.tool(name="reorder")')
    app.write_text(app.read_text() + '\n\n@plugin.tool\ndef shout(text: str) -> str:\n    """Upper-case a text."""\n    return text.upper()\n')
    assert_friendly_failure(
        run_pdk("build", text_tools, "--check"),
        "tools in the code but not in plugin.toml: reorder, shout",
        "tools in plugin.toml but not in the code: reshape",
    )


def test_check_detects_a_stale_component(text_tools: Path) -> None:
    # The hints and docstrings are unchanged, only the body: no drift, but the
    # component no longer matches its sources.
    edit(text_tools / "app.py", "top > 100", "top > 50")
    assert_friendly_failure(run_pdk("build", text_tools, "--check"), "is missing or older than its sources", "Run `pdk build`")


# -- manifest sync through pdk build ----------------------------------------------------------


AUTHOR_HEADER = """\
# Text tools - hand-edited manifest.
#   The comments and odd spacing below must survive `pdk build`.
"""


def test_build_rewrites_tools_and_keeps_the_authors_text(text_tools: Path) -> None:
    manifest = text_tools / "plugin.toml"
    original = manifest.read_text(encoding="utf-8")
    head, _tools = original.split("[[tools]]", 1)
    head = AUTHOR_HEADER + head.replace('surfaces = ["tools"]', 'surfaces = [ "tools" ]   # only tools').replace(
        "[build]\n", "[build]\n# app.py defines `plugin`.\n"
    )
    # A stale, partial [[tools]] section, followed by author text that must stay after it.
    stale = '[[tools]]\nname = "text_stats"\ndescription = "Outdated."\n\n# Closing remark by the author.\n'
    manifest.write_text(head + stale, encoding="utf-8")

    calls: list[None] = []
    result = build(text_tools, on_componentize=lambda: calls.append(None))
    assert calls == []  # plugin.toml is not an input of the component
    assert result.cached and result.manifest_updated

    rewritten = manifest.read_text(encoding="utf-8")
    assert rewritten.startswith(head)  # every byte before [[tools]] is untouched
    assert rewritten.rstrip("\n").endswith("# Closing remark by the author.")
    assert tomllib.loads(rewritten)["tools"] == tomllib.loads(original)["tools"]

    # Unchanged now: a second build writes nothing at all.
    before = file_state(manifest)
    proc = run_pdk("build", text_tools)
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout and "plugin.toml: updated" not in proc.stdout
    assert file_state(manifest) == before


def test_cli_build_reports_the_manifest_update(text_tools: Path) -> None:
    edit(text_tools / "plugin.toml", "Count the words, unique words", "Count words, unique words")
    proc = run_pdk("build", text_tools)
    assert proc.returncode == 0, proc.stderr
    assert "plugin.toml: updated [[tools]] (text_stats, reshape)" in proc.stdout
    assert (text_tools / "plugin.toml").read_text() == (EXAMPLE / "plugin.toml").read_text()


# -- friendly build errors --------------------------------------------------------------------

MANIFEST = """\
schema_version = 2
id = "{id}"
name = "Broken"
version = "0.1.0"
surfaces = ["tools"]

[runtime]
kind = "{kind}"
world = "tool"
component = "build/plugin.wasm"

[build]
{build}
"""

GOOD_APP = """\
from pdk import Plugin

plugin = Plugin()


@plugin.tool
def double(n: int) -> int:
    \"\"\"Double a number.\"\"\"
    return 2 * n
"""


def make_plugin(root: Path, files: dict[str, str], build_table: str = 'module = "app"', kind: str = "wasm-component") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "plugin.toml").write_text(MANIFEST.format(id=root.name, kind=kind, build=build_table), encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


ERROR_CASES = {
    "module-named-like-bindings": (
        {"wit_world.py": GOOD_APP}, 'module = "wit_world"', "module_name_clash",
        ["The app module is named 'wit_world'", "Rename wit_world.py"],
    ),
    "module-named-like-world": (
        {"tool.py": GOOD_APP}, 'module = "tool"', "module_name_clash",
        ["The app module is named 'tool'", "Rename tool.py"],
    ),
    "import-inside-function": (
        {"app.py": GOOD_APP + "\n\n@plugin.tool\ndef rows(text: str) -> int:\n    \"\"\"Rows.\"\"\"\n    import csv\n    return len(list(csv.reader([text])))\n"},
        'module = "app"', "import_in_function",
        ["app.py:15: `import csv` runs inside function rows()", "Move the import to the top of app.py"],
    ),
    "syntax-error": (
        {"app.py": GOOD_APP.replace("def double(n: int) -> int:", "def double(n: int) -> int")},
        'module = "app"', "syntax_error", ["app.py:7: syntax error"],
    ),
    "syntax-error-in-second-source": (
        {"app.py": "import helpers\n" + GOOD_APP, "helpers.py": "x = (1,\n"},
        'module = "app"\nsources = ["app.py", "helpers.py"]', "syntax_error", ["helpers.py:1: syntax error"],
    ),
    "no-plugin-object": (
        {"app.py": "from pdk import Plugin\n\n\ndef double(n: int) -> int:\n    return 2 * n\n"},
        'module = "app"', "missing_plugin", ["module 'app' has no", "plugin = Plugin()"],
    ),
    "plugin-is-the-class": (
        {"app.py": "from pdk import Plugin\n\nplugin = Plugin\n"},
        'module = "app"', "missing_plugin", ["module 'app' has no", "plugin = Plugin()"],
    ),
    "misnamed-plugin-attribute": (
        {"app.py": GOOD_APP}, 'module = "app"\nplugin = "plugn"', "missing_plugin", ["has no attribute 'plugn'"],
    ),
    "two-plugin-objects": (
        {"app.py": GOOD_APP + "\nother = Plugin()\n"}, 'module = "app"', "missing_plugin", ["several Plugin objects", "[build] plugin"],
    ),
    "import-time-exception": (
        {"app.py": GOOD_APP + "\nraise RuntimeError('no config')\n"}, 'module = "app"', "import_error",
        ["app.py:11: importing 'app' raised RuntimeError: no config"],
    ),
    "no-tools-in-tool-world": (
        {"app.py": "from pdk import Plugin\n\nplugin = Plugin()\n"}, 'module = "app"', "missing_handler",
        ["world 'tool' needs at least one tool", "@plugin.tool"],
    ),
    "missing-source": (
        {"app.py": GOOD_APP}, 'module = "main"', "missing_source", ["source 'main.py' does not exist", "[build] module"],
    ),
    "unsupported-hint": (
        {"app.py": GOOD_APP.replace("def double(n: int) -> int:", "def double(n: complex) -> int:")},
        'module = "app"', "unsupported_hint", ["tool 'double'"],
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_friendly_errors_fail_before_componentize(tmp_path: Path, case: str) -> None:
    files, build_table, kind, fragments = ERROR_CASES[case]
    plugin = make_plugin(tmp_path / case, files, build_table)
    manifest = file_state(plugin / "plugin.toml")

    calls: list[None] = []
    with pytest.raises(BuildError) as info:
        build(plugin, on_componentize=lambda: calls.append(None))
    assert info.value.kind == kind
    # Static checks fail before componentize-py starts; introspection errors may start it
    # (it overlaps introspection) but it is killed and nothing is written.
    assert not any(plugin.glob("build/*.wasm"))

    assert_friendly_failure(run_pdk("build", plugin), *fragments)
    assert file_state(plugin / "plugin.toml") == manifest
    assert not (plugin / "build").exists()


def test_no_manifest(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(GOOD_APP)
    with pytest.raises(BuildError) as info:
        build(tmp_path)
    assert info.value.kind == "no_manifest"
    assert_friendly_failure(run_pdk("build", tmp_path), f"There is no plugin.toml in {tmp_path}", "pdk build DIR")
    assert list(tmp_path.iterdir()) == [tmp_path / "app.py"]


def test_retired_runtime_is_refused_by_build(tmp_path: Path) -> None:
    plugin = make_plugin(tmp_path / "legacy", {"app.py": GOOD_APP}, kind="wasm")
    proc = run_pdk("build", plugin, "--json")
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["kind"] == "bad_manifest"
    assert "runtime.kind" in error["message"] and "retired" in error["message"]
    assert_friendly_failure(run_pdk("build", plugin), "retired", '"wasm-component" is the only runtime')


def test_a_c_extension_dependency_is_named(tmp_path: Path) -> None:
    """A declared C extension (`rpds-py`, installed here for jsonschema: a Rust extension
    module built for the host CPython, which the wasm32-wasi CPython inside a component
    cannot load) is refused before componentize-py starts, naming the alternatives."""
    app = "import rpds\n" + GOOD_APP.replace("return 2 * n", "return len(rpds.List(range(2 * n)))")
    plugin = make_plugin(tmp_path / "cext", {"app.py": app}, 'module = "app"\ndependencies = ["rpds-py"]')
    proc = run_pdk("build", plugin)
    assert_friendly_failure(proc, "dependency 'rpds-py'", "compiled extension modules", "pure-Python", "wasm32-wasi wheel")
    assert "componentize-py" not in "".join(line for line in proc.stderr.splitlines() if line.startswith("pdk: "))
    assert not (plugin / "build" / "plugin.wasm").exists()


def test_an_undeclared_installed_package_is_not_bundled(tmp_path: Path) -> None:
    """A real componentize-py run: `rpds` is installed in the build environment but not
    declared, so the component does not get it and the message says how to declare it."""
    app = "import rpds\n" + GOOD_APP.replace("return 2 * n", "return len(rpds.List(range(2 * n)))")
    plugin = make_plugin(tmp_path / "undeclared", {"app.py": app})
    # RUST_BACKTRACE makes componentize-py append a Rust backtrace; none of it may leak.
    proc = run_pdk("build", plugin, env={"RUST_BACKTRACE": "1"})
    message = assert_friendly_failure(proc, "app.py:1: componentize-py could not import 'rpds'", "[build] dependencies")
    assert "Stack backtrace" not in message and "anyhow" not in message
    assert not (plugin / "build" / "plugin.wasm").exists()


def test_a_plugin_object_with_another_name_builds(tmp_path: Path) -> None:
    """Introspection accepts the module's only `Plugin` whatever its name, so the
    component's entry module must find the same object. componentize-py imports the
    entry module while building, so a wrong lookup fails the build itself (it used
    to: `AttributeError: module 'app' has no attribute 'plugin'`)."""
    app = GOOD_APP.replace("plugin = Plugin()", "my_plugin = Plugin()").replace("@plugin.tool", "@my_plugin.tool")
    plugin = make_plugin(tmp_path / "named", {"app.py": app})
    calls: list[None] = []
    result = build(plugin, on_componentize=lambda: calls.append(None))
    assert calls == [None] and not result.cached and result.manifest_updated
    assert result.tools == ["double"] and result.component.is_file()
    assert tomllib.loads((plugin / "plugin.toml").read_text())["tools"][0]["name"] == "double"
