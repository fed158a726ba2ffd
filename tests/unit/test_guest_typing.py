"""The package ships `py.typed`: `pdk` (guest, package, host, cli, testing) and the
`generator` toolchain must pass `mypy --strict` (configured in pyproject), and the guest
modules must import only the standard library."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_pdk_and_generator_pass_mypy_strict() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert set(config["packages"]) >= {"pdk", "generator"}
    # `mypy` with no arguments, as a developer runs it; the cache is the checkout's
    # .mypy_cache (gitignored), so a warm run takes seconds.
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every module was checked: nothing under pdk/ or generator/ was silently left out.
    checked = re.search(r"no issues found in (\d+) source files", proc.stdout)
    assert checked is not None, proc.stdout
    modules = [p for top in ("pdk", "generator") for p in (ROOT / top).rglob("*.py")]
    assert int(checked.group(1)) == len(modules), proc.stdout


def test_guest_modules_import_only_the_standard_library() -> None:
    # Everything at the top level of `pdk` is bundled into components, where only the
    # standard library exists.
    allowed_prefixes = ("pdk", "__future__")
    stdlib = sys.stdlib_module_names
    for path in sorted((ROOT / "pdk").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in stdlib or top in allowed_prefixes, f"{path.name} imports {module}"
