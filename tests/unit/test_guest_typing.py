"""The guest API ships `py.typed`; it must pass `mypy --strict` (configured in pyproject)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_guest_api_passes_mypy_strict() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
