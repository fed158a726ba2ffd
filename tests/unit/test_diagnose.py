"""Build diagnostics: the static checks that run before componentize-py, and the
translation of componentize-py's failure output into one actionable paragraph.

The componentize-py outputs below are real outputs of componentize-py 0.25.1
(captured from `pdk build` runs with RUST_BACKTRACE=1, Rust frames shortened);
they are inputs, not stand-ins for the code under test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from generator.diagnose import (
    BuildError,
    check_function_imports,
    check_module_name,
    check_syntax,
    host_extension_module,
    translate_componentize_failure,
)

SITE_PACKAGES = [Path(p) for p in sys.path if p.endswith("site-packages")]

C_EXTENSION_OUTPUT = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
AssertionError: Traceback (most recent call last):
  File "/0/yoi_component_entry.py", line 21, in <module>
    import app as _app
  File "/0/app.py", line 1, in <module>
    import rpds
  File "/1/rpds/__init__.py", line 1, in <module>
    from .rpds import *
ModuleNotFoundError: No module named 'rpds.rpds'


Caused by:
    ModuleNotFoundError: No module named 'rpds.rpds'

Stack backtrace:
   0: <anyhow::Error>::msg::<alloc::string::String>
   1: anyhow::__private::format_err
   2: <componentize_py::ComponentGenerator>::generate::{closure#0}
  10: cfunction_vectorcall_NOARGS
             at /tmp/python-build.20260509073455.222/Python-3.11.7/Objects/methodobject.c:486:24
  28: _start
"""

MISSING_MODULE_OUTPUT = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
AssertionError: Traceback (most recent call last):
  File "/0/yoi_component_entry.py", line 21, in <module>
    import app as _app
  File "/0/app.py", line 3, in <module>
    import helpers
ModuleNotFoundError: No module named 'helpers'


Caused by:
    ModuleNotFoundError: No module named 'helpers'
"""

ATTRIBUTE_ERROR_OUTPUT = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
AssertionError: Traceback (most recent call last):
  File "/0/yoi_component_entry.py", line 24, in <module>
    _b = _bridge.Bridge(_app.plugin, types=_types, err=componentize_py_types.Err, log=_log, request=_request, fs=_fs)
                        ^^^^^^^^^^^
AttributeError: module 'app' has no attribute 'plugin'


Caused by:
    AttributeError: module 'app' has no attribute 'plugin'

Stack backtrace:
   0: <anyhow::Error>::msg::<alloc::string::String>
  28: _start
"""


def assert_one_friendly_paragraph(err: BuildError) -> None:
    text = str(err)
    assert text == err.message
    assert "\n\n" not in text.strip()
    assert "Traceback" not in text
    assert "Stack backtrace" not in text and "anyhow" not in text and "_start" not in text


# -- static checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    ["wit_world", "wit_world.exports", "componentize_py_types", "poll_loop", "yoi_component_entry", "tool", "service", "ingress", "plugin"],
)
def test_module_names_that_clash_with_bindings_or_worlds(module: str) -> None:
    with pytest.raises(BuildError) as info:
        check_module_name(module)
    assert info.value.kind == "module_name_clash"
    top = module.split(".")[0]
    assert f"{top!r}" in info.value.message and f"Rename {top}.py" in info.value.message
    assert_one_friendly_paragraph(info.value)


@pytest.mark.parametrize("module", ["app", "tools", "my_plugin", "pkg.tool", "plugins"])
def test_ordinary_module_names_pass(module: str) -> None:
    check_module_name(module)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "app.py"
    src.write_text("from pdk import Plugin\n\nplugin = Plugin()\n\ndef broken(:\n    pass\n")
    with pytest.raises(BuildError) as info:
        check_syntax(src, "app.py")
    assert info.value.kind == "syntax_error"
    assert info.value.message.startswith("app.py:5: syntax error: ")
    assert_one_friendly_paragraph(info.value)
    check_syntax(Path(__file__), "test_diagnose.py")


@pytest.mark.parametrize(
    ("body", "line", "statement"),
    [
        ("def f():\n    import json\n    return json.dumps(1)\n", 2, "import json"),
        ("def f():\n    from collections import OrderedDict\n", 2, "from collections import OrderedDict"),
        ("async def f():\n    import heapq\n", 2, "import heapq"),
        ("class C:\n    def m(self):\n        if True:\n            import csv\n", 4, "import csv"),
        ("def outer():\n    def inner():\n        import os, sys\n", 3, "import os, sys"),
    ],
)
def test_imports_inside_functions_are_flagged_with_location(tmp_path: Path, body: str, line: int, statement: str) -> None:
    src = tmp_path / "app.py"
    src.write_text(body)
    with pytest.raises(BuildError) as info:
        check_function_imports(src, "app.py")
    err = info.value
    assert err.kind == "import_in_function"
    assert err.message.startswith(f"app.py:{line}: `{statement}` runs inside function ")
    assert "Move the import to the top of app.py" in err.message
    assert_one_friendly_paragraph(err)


def test_imports_already_made_at_module_level_are_fine(tmp_path: Path) -> None:
    src = tmp_path / "app.py"
    src.write_text(
        "import json\nimport os.path\nfrom collections import Counter\n\n"
        "def f():\n    import json\n    import os.path\n    from collections import Counter\n"
        "    from . import sibling\n    return json, Counter\n"
    )
    check_function_imports(src, "app.py")


# -- componentize-py failures -----------------------------------------------------------------


def test_host_extension_module_finds_real_extension_files() -> None:
    found = host_extension_module("rpds.rpds", SITE_PACKAGES)
    assert found is not None and found.name.startswith("rpds.") and found.suffix in {".so", ".pyd"}
    assert host_extension_module("json", SITE_PACKAGES) is None
    assert host_extension_module("rpds", SITE_PACKAGES) is None  # the package itself is pure Python
    assert host_extension_module("rpds.rpds", []) is None


def test_a_host_c_extension_is_named_as_such() -> None:
    err = translate_componentize_failure(C_EXTENSION_OUTPUT, SITE_PACKAGES)
    assert err.kind == "c_extension"
    assert err.message.startswith("app.py:1: a dependency (rpds) is a C extension")
    assert "pure-Python" in err.message
    assert "No module named 'rpds.rpds'" in err.message
    assert_one_friendly_paragraph(err)


def test_without_the_host_file_the_same_failure_is_a_missing_module() -> None:
    err = translate_componentize_failure(C_EXTENSION_OUTPUT, [])
    assert err.kind == "missing_module"
    assert_one_friendly_paragraph(err)


def test_a_missing_module_points_at_the_import_and_build_sources() -> None:
    err = translate_componentize_failure(MISSING_MODULE_OUTPUT, SITE_PACKAGES)
    assert err.kind == "missing_module"
    assert err.message.startswith("app.py:3: componentize-py could not import 'helpers'")
    assert "[build] sources" in err.message
    assert_one_friendly_paragraph(err)


def test_unknown_location_import_errors_are_c_extensions() -> None:
    output = (
        'AssertionError: Traceback (most recent call last):\n  File "/0/app.py", line 2, in <module>\n'
        "ImportError: cannot import name '_pydantic_core' from 'pydantic_core' (unknown location)\n"
    )
    err = translate_componentize_failure(output)
    assert err.kind == "c_extension" and "(pydantic_core)" in err.message and err.message.startswith("app.py:2: ")
    assert_one_friendly_paragraph(err)


def test_other_failures_keep_only_the_python_error() -> None:
    err = translate_componentize_failure(ATTRIBUTE_ERROR_OUTPUT, SITE_PACKAGES)
    assert err.kind == "componentize_failed"
    assert err.message == "componentize-py failed: AttributeError: module 'app' has no attribute 'plugin'"
    assert_one_friendly_paragraph(err)


def test_unrecognised_output_is_shown_briefly() -> None:
    err = translate_componentize_failure("error: something odd\n" + "\n".join(f"line {i}" for i in range(40)))
    assert err.kind == "componentize_failed"
    assert "line 39" in err.message and "line 20" not in err.message
