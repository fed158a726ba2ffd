"""The dev runner's guest half (pdk/_dev_runner.py) in plain CPython: how a bundle of
sources becomes modules, and what a bundle that cannot load says. The component
itself is exercised end to end in tests/e2e/test_dev.py."""

from __future__ import annotations

import sys
import uuid
from typing import Any, Iterator

import pytest

from pdk import Plugin
from pdk._dev_runner import BUNDLE_FORMAT, BundleError, load_plugin, module_table

ROOT = "/home/ada/my-plugin"


@pytest.fixture
def clean_imports() -> Iterator[None]:
    meta, modules = list(sys.meta_path), set(sys.modules)
    yield
    sys.meta_path[:] = meta
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def _bundle(files: dict[str, str], module: str, attr: str | None = None) -> dict[str, Any]:
    return {"format": BUNDLE_FORMAT, "root": ROOT, "module": module, "attr": attr, "files": files}


def _name() -> str:
    return "devmod_" + uuid.uuid4().hex[:8]


def test_module_table_maps_paths_to_modules_and_packages() -> None:
    table = module_table({"app.py": "a", "pkg/__init__.py": "p", "pkg/sub.py": "s", "notes.txt": "x", "bad-name.py": "b"}, ROOT + "/")
    assert table == {
        "app": (f"{ROOT}/app.py", "a", False),
        "pkg": (f"{ROOT}/pkg/__init__.py", "p", True),
        "pkg.sub": (f"{ROOT}/pkg/sub.py", "s", False),
    }


def test_a_bundle_with_a_package_loads_its_plugin(clean_imports: None) -> None:
    app, pkg = _name(), _name()
    files = {
        f"{app}.py": f"from pdk import Plugin\nfrom {pkg}.words import count\nplugin = Plugin()\n\n@plugin.tool\ndef n(text: str) -> int:\n    return count(text)\n",
        f"{pkg}/__init__.py": "",
        f"{pkg}/words.py": "def count(text):\n    return len(text.split())\n",
    }
    plugin = load_plugin(_bundle(files, app))
    assert isinstance(plugin, Plugin)
    out = plugin.run_tool("n", '{"text": "a b c"}')
    assert out.content_json == "3"
    assert sys.modules[app].__file__ == f"{ROOT}/{app}.py"


def test_an_import_time_error_names_the_file_and_line(clean_imports: None) -> None:
    app = _name()
    files = {f"{app}.py": "from pdk import Plugin\nplugin = Plugin()\nraise RuntimeError('boom')\n"}
    with pytest.raises(BundleError) as info:
        load_plugin(_bundle(files, app))
    assert str(info.value) == f"{ROOT}/{app}.py:3: RuntimeError: boom"
    assert info.value.needs_build is False


def test_an_unknown_module_is_not_a_build_problem_but_the_authors(clean_imports: None) -> None:
    app = _name()
    files = {f"{app}.py": "import no_such_distribution_xyz\n"}
    with pytest.raises(BundleError) as info:
        load_plugin(_bundle(files, app))
    message = str(info.value)
    assert message.startswith(f"{ROOT}/{app}.py:1: module 'no_such_distribution_xyz' is not part of the plugin")
    assert "[build] dependencies" in message
    assert info.value.needs_build is False


def test_a_declared_module_the_runner_lacks_needs_a_real_build(clean_imports: None) -> None:
    app = _name()
    files = {f"{app}.py": "import declared_but_absent_xyz\n"}
    with pytest.raises(BundleError) as info:
        load_plugin(_bundle(files, app), preloaded=["declared_but_absent_xyz"])
    assert "is not in the dev runner" in str(info.value) and "needs a real build" in str(info.value)
    assert info.value.needs_build is True


@pytest.mark.parametrize(
    ("source", "attr", "expected"),
    [
        ("x = 1\n", None, "defines 0 pdk.Plugin objects"),
        ("from pdk import Plugin\na = Plugin()\nb = Plugin()\n", None, "defines 2 pdk.Plugin objects"),
        ("x = 1\n", "x", ".x is not a pdk.Plugin"),
    ],
)
def test_the_plugin_object_must_be_found(clean_imports: None, source: str, attr: str | None, expected: str) -> None:
    app = _name()
    with pytest.raises(BundleError, match=expected.replace(".", r"\.")):
        load_plugin(_bundle({f"{app}.py": source}, app, attr))


def test_a_bundle_of_another_format_is_refused(clean_imports: None) -> None:
    with pytest.raises(BundleError, match="this runner is out of date"):
        load_plugin({"format": BUNDLE_FORMAT + 1, "root": ROOT, "module": "app", "files": {}})
