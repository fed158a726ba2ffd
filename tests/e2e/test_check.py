"""`pdk check` end to end: static validation of built plugin directories and packed
`.yoi-plugin` archives, reading the component's real type with wasmtime.

Bad packages are copies of the session-built text-tools with one thing changed,
plus one component built with raw componentize-py from a custom WIT world that
imports an interface outside the contract (the only way to get a real component
with an extra import: `pdk build` only targets the contract's worlds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from generator.check import check

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PDK = Path(sys.executable).with_name("pdk")
COMPONENTIZE_PY = Path(sys.executable).with_name("componentize-py")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
REPORT_KEYS = {"ok", "path", "id", "version", "world", "digest", "package_bytes", "component", "problems"}
COMPONENT_KEYS = {"path", "sha256", "bytes", "imports", "exports"}
TOOLS_EXPORT = "yoi:plugin/tools@2.0.0"
HOST_IMPORTS = {"yoi:host/log@2.0.0", "yoi:host/request@2.0.0", "yoi:host/fs@2.0.0"}


def run_pdk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PDK), *map(str, args)], capture_output=True, text=True, timeout=900, env=dict(os.environ))


def check_json(path: Path) -> tuple[int, dict[str, Any]]:
    proc = run_pdk("check", path, "--json")
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def problems(doc: dict[str, Any]) -> list[str]:
    return [f"{p['path']}: {p['message']}" for p in doc["problems"]]


@pytest.fixture(scope="module")
def built(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("text-tools")


@pytest.fixture
def copy_of(built: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "text-tools"
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    return dest


def edit_manifest(plugin: Path, *replacements: tuple[str, str]) -> None:
    path = plugin / "plugin.toml"
    text = path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def without_tools(plugin: Path) -> None:
    path = plugin / "plugin.toml"
    path.write_text(path.read_text(encoding="utf-8").split("[[tools]]", 1)[0], encoding="utf-8")


# -- a good package ---------------------------------------------------------------------------


def test_built_text_tools_is_ok_in_human_form(built: Path) -> None:
    proc = run_pdk("check", built)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"ok: {built}"
    out = proc.stdout
    assert "plugin:    text-tools 0.1.0 (world tool)" in out
    assert re.search(r"digest:    sha256:[0-9a-f]{64}\n", out)
    assert f"exports:   {TOOLS_EXPORT}\n" in out
    imports_line = next(line for line in lines if line.lstrip().startswith("imports:"))
    for name in HOST_IMPORTS:
        assert name in imports_line
    assert re.search(r"\(\+\d+ WASI, sandboxed\)$", imports_line)
    assert "problem" not in out


def test_built_text_tools_is_ok_as_json(built: Path) -> None:
    code, doc = check_json(built)
    assert code == 0
    assert set(doc) == REPORT_KEYS
    assert all(SNAKE.match(k) for k in doc)
    assert doc["ok"] is True and doc["problems"] == []
    assert (doc["id"], doc["version"], doc["world"]) == ("text-tools", "0.1.0", "tool")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", doc["digest"])
    component = doc["component"]
    assert set(component) == COMPONENT_KEYS and all(SNAKE.match(k) for k in component)
    assert component["path"] == "build/text_tools.wasm"
    assert component["bytes"] == (built / "build" / "text_tools.wasm").stat().st_size
    assert doc["package_bytes"] > component["bytes"]
    assert HOST_IMPORTS <= set(component["imports"])
    assert all(i.startswith("wasi:") or i.startswith("yoi:") for i in component["imports"])
    assert list(component["exports"]) == [TOOLS_EXPORT]
    assert "call" in component["exports"][TOOLS_EXPORT]


def test_check_api_matches_the_cli(built: Path) -> None:
    report = check(built)
    _, doc = check_json(built)
    assert report.to_json() == {**doc, "path": str(built)}


# -- bad packages -----------------------------------------------------------------------------


def test_wrong_world_reports_the_missing_exports(copy_of: Path) -> None:
    edit_manifest(copy_of, ('world = "tool"', 'world = "service"'), ('surfaces = ["tools"]', 'surfaces = ["services", "ingresses"]'))
    without_tools(copy_of)
    # A well-formed service manifest, so the only problems left are the component's.
    with (copy_of / "plugin.toml").open("a", encoding="utf-8") as f:
        f.write('\n[[services]]\nname = "svc"\n\n[[ingresses]]\nname = "inbox"\nevent_kinds = ["message"]\n')
    proc = run_pdk("check", copy_of)
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"INVALID: {copy_of}")
    code, doc = check_json(copy_of)
    assert code == 1 and doc["ok"] is False
    found = problems(doc)
    assert "component.exports: world 'service' needs export yoi:plugin/lifecycle@2.0.0, which the component lacks" in found
    assert "component.exports: world 'service' needs export yoi:plugin/events@2.0.0, which the component lacks" in found
    assert f"component.exports: unexpected export '{TOOLS_EXPORT}' for world 'service'" in found
    assert doc["component"]["exports"] == {TOOLS_EXPORT: doc["component"]["exports"][TOOLS_EXPORT]}
    for line in found:
        assert f"problem:   {line}" in proc.stdout


def test_world_plugin_needs_lifecycle_and_events_too(copy_of: Path) -> None:
    edit_manifest(copy_of, ('world = "tool"', 'world = "plugin"'))
    code, doc = check_json(copy_of)
    assert code == 1
    assert [p["message"] for p in doc["problems"]] == [
        "world 'plugin' needs export yoi:plugin/events@2.0.0, which the component lacks",
        "world 'plugin' needs export yoi:plugin/lifecycle@2.0.0, which the component lacks",
    ]


def test_changing_only_the_world_is_a_manifest_problem(copy_of: Path) -> None:
    edit_manifest(copy_of, ('world = "tool"', 'world = "service"'))
    code, doc = check_json(copy_of)
    assert code == 1
    assert "surfaces: 'tools' cannot be served by world 'service'" in problems(doc)
    assert doc["component"] is None  # the manifest is refused before the component is read


def test_legacy_runtime_is_refused(copy_of: Path) -> None:
    edit_manifest(copy_of, ('kind = "wasm-component"', 'kind = "wasm"'))
    proc = run_pdk("check", copy_of)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "problem:   runtime.kind: " in proc.stdout and "retired" in proc.stdout
    code, doc = check_json(copy_of)
    assert code == 1
    (problem,) = doc["problems"]
    assert problem["path"] == "runtime.kind"
    assert '"wasm-component" is the only runtime' in problem["message"]


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ('text = {type = "string"}', 'text = {type = "string", oneOf = []}', "tools[0].input_schema.properties.text.oneOf", "unsupported JSON Schema keyword"),
        ('required = ["text"]', 'required = ["text", "txt"]', "tools[0].input_schema.required", "names 'txt', which is not a property"),
        ('type = "object"\nrequired = ["text"]', 'type = "array"\nrequired = ["text"]', "tools[0].input_schema.type", 'the root of an input schema must be "object"'),
    ],
    ids=["keyword", "required", "root"],
)
def test_bad_input_schema_is_refused(copy_of: Path, old: str, new: str, path: str, fragment: str) -> None:
    edit_manifest(copy_of, (old, new))
    code, doc = check_json(copy_of)
    assert code == 1 and doc["ok"] is False
    assert any(p["path"] == path and fragment in p["message"] for p in doc["problems"]), doc["problems"]


def test_unknown_field_is_refused(copy_of: Path) -> None:
    edit_manifest(copy_of, ("[build]\n", "[build]\nmodul = \"app\"\n"))
    code, doc = check_json(copy_of)
    assert code == 1 and problems(doc)[0].startswith("build.modul: unknown field")


def test_missing_component_says_run_pdk_build(copy_of: Path) -> None:
    shutil.rmtree(copy_of / "build")
    proc = run_pdk("check", copy_of)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "run `pdk build`" in proc.stdout.lower()


def test_a_file_that_is_not_a_component_is_reported(copy_of: Path) -> None:
    (copy_of / "build" / "text_tools.wasm").write_bytes(b"\0asm\x01\0\0\0not really")
    code, doc = check_json(copy_of)
    assert code == 1
    assert problems(doc)[0].startswith("runtime.component: not a valid WebAssembly component")


def test_no_plugin_toml(tmp_path: Path) -> None:
    code, doc = check_json(tmp_path)
    assert code == 1 and doc["ok"] is False
    assert "no plugin.toml" in problems(doc)[0]


# -- an extra import --------------------------------------------------------------------------

EXTRA_WIT = """\
package test:extra@0.1.0;

interface secrets {
  get: func(name: string) -> string;
}

world tool-plus {
  include yoi:plugin/tool@2.0.0;
  import secrets;
}
"""

EXTRA_APP = """\
from wit_world import exports
from wit_world.imports import secrets


class Tools(exports.Tools):
    def call(self, call):
        raise NotImplementedError(secrets.get(call.tool))
"""


@pytest.fixture(scope="module")
def extra_import_package(tmp_path_factory: pytest.TempPathFactory, built: Path) -> Path:
    """The contract's `tool` world plus an import of `test:extra/secrets`, built with raw
    componentize-py and packaged with a manifest claiming world "tool"."""
    work = tmp_path_factory.mktemp("extra-import")
    (work / "wit").mkdir()
    (work / "wit" / "extra.wit").write_text(EXTRA_WIT)
    (work / "app").mkdir()
    (work / "app" / "extra_app.py").write_text(EXTRA_APP)
    package = work / "package"
    (package / "build").mkdir(parents=True)
    command = [
        str(COMPONENTIZE_PY), "-d", str(ROOT / "wit"), "-d", str(work / "wit"), "-w", "test:extra/tool-plus",
        "componentize", "extra_app", "-p", str(work / "app"), "-o", str(package / "build" / "text_tools.wasm"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.copy2(built / "plugin.toml", package / "plugin.toml")
    return package


def test_an_import_outside_the_contract_is_refused(extra_import_package: Path) -> None:
    code, doc = check_json(extra_import_package)
    assert code == 1 and doc["ok"] is False
    assert "test:extra/secrets@0.1.0" in doc["component"]["imports"]
    assert problems(doc) == ["component.imports: import 'test:extra/secrets@0.1.0' is not an allowed host or WASI interface"]
    proc = run_pdk("check", extra_import_package)
    assert proc.returncode == 1
    assert "problem:   component.imports: import 'test:extra/secrets@0.1.0'" in proc.stdout


# -- packed archives --------------------------------------------------------------------------


def test_a_packed_archive_checks_ok_with_the_directory_digest(copy_of: Path, tmp_path: Path) -> None:
    archive = tmp_path / "text-tools.yoi-plugin"
    proc = run_pdk("pack", copy_of, "-o", archive)
    assert proc.returncode == 0, proc.stderr
    dir_code, dir_doc = check_json(copy_of)
    code, doc = check_json(archive)
    assert (dir_code, code) == (0, 0)
    assert doc["ok"] is True and doc["problems"] == []
    assert doc["digest"] == dir_doc["digest"]
    assert doc["component"] == dir_doc["component"]
    assert doc["path"] == str(archive)
    human = run_pdk("check", archive)
    assert human.returncode == 0 and human.stdout.startswith(f"ok: {archive}")


def test_a_corrupt_archive_is_a_package_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yoi-plugin"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    code, doc = check_json(bad)
    assert code == 1 and doc["ok"] is False
    assert doc["problems"][0]["path"] == "package"
