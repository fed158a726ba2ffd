"""Dependencies point one way: guest (`pdk` top level) <- `pdk.package` <- `pdk.host`
<- `pdk.cli` / `pdk.testing`; the toolchain (`generator`) is never imported by the host
or the package layer; plugins (examples, templates) use only the public `pdk`.

Checked twice: statically, by parsing every import with `ast` (so an import inside a
function counts too), and dynamically, by importing a layer in a fresh interpreter and
looking at `sys.modules` (so an import hidden behind `importlib` counts too)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PDK = ROOT / "pdk"
STDLIB = frozenset(sys.stdlib_module_names)
GUEST_MODULES = frozenset(p.stem for p in PDK.glob("*.py") if p.stem != "__init__")


def imports_of(path: Path, package: str) -> list[tuple[int, str]]:
    """Every module `path` imports, absolute (relative imports resolved against
    `package`, the dotted package the file lives in)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from pdk import _host` imports the module `pdk._host` (not so `from pdk import Plugin`).
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names if is_project_module(f"{module}.{alias.name}"))
    return found


def is_project_module(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def package_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts if path.name != "__init__.py" else rel.parts[:-1]
    return ".".join(parts[:-1] if path.name != "__init__.py" else parts)


def violations(paths: list[Path], allowed: Callable[[str], bool]) -> list[str]:
    out = []
    for path in paths:
        for line, module in imports_of(path, package_of(path)):
            if module and not allowed(module):
                out.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return out


def top(module: str) -> str:
    return module.split(".")[0]


# -- the guest: standard library and other guest modules only -----------------------------------


def guest_allowed(module: str) -> bool:
    if module == "__future__" or top(module) in STDLIB:
        return True
    if module == "pdk":
        return True
    parts = module.split(".")
    # `pdk.<guest module>` (and names imported from it); never a subpackage.
    return parts[0] == "pdk" and len(parts) >= 2 and parts[1] in GUEST_MODULES


def test_guest_modules_import_only_the_standard_library_and_each_other() -> None:
    guest = sorted(PDK.glob("*.py"))
    assert len(guest) > 10 and PDK / "_contract.py" in guest
    assert violations(guest, guest_allowed) == []


def test_importing_the_guest_loads_no_subpackage_and_nothing_third_party() -> None:
    loaded = modules_after_import("pdk", *(f"pdk.{m}" for m in sorted(GUEST_MODULES)))
    outside = sorted(
        m for m in loaded if top(m) not in STDLIB and top(m) != "pdk" and not m.startswith("_")
    )
    assert outside == []
    assert sorted(m for m in loaded if m.startswith("pdk.") and m.split(".")[1] not in GUEST_MODULES) == []


# -- the host: never the toolchain --------------------------------------------------------------

TOOLCHAIN = ("generator", "copier", "componentize_py")


def test_the_host_never_imports_the_toolchain() -> None:
    host = sorted((PDK / "host").rglob("*.py"))
    assert violations(host, lambda m: top(m) not in TOOLCHAIN) == []


def test_importing_the_host_loads_no_toolchain() -> None:
    host_modules = [module_name(p) for p in sorted((PDK / "host").rglob("*.py"))]
    loaded = modules_after_import(*host_modules)
    assert sorted(m for m in loaded if top(m) in TOOLCHAIN) == []


# -- the package layer: never the host, the CLI, the test plugin or the toolchain ---------------

ABOVE_PACKAGE = ("pdk.host", "pdk.cli", "pdk.testing")


def package_allowed(module: str) -> bool:
    return top(module) not in TOOLCHAIN and not any(module == m or module.startswith(m + ".") for m in ABOVE_PACKAGE)


def test_the_package_layer_imports_nothing_above_it() -> None:
    package = sorted((PDK / "package").rglob("*.py"))
    assert PDK / "package" / "targets.py" in package
    assert violations(package, package_allowed) == []


def test_importing_the_package_layer_loads_nothing_above_it() -> None:
    loaded = modules_after_import(*(module_name(p) for p in sorted((PDK / "package").rglob("*.py"))))
    assert sorted(m for m in loaded if not package_allowed(m)) == []
    assert "wasmtime" not in loaded  # `pdk check`'s manifest step stays cheap


def test_target_matching_lives_in_the_package_layer_only() -> None:
    assert not (PDK / "host" / "targets.py").exists()
    old = "pdk.host." + "targets"
    users = [
        str(p.relative_to(ROOT))
        for folder in ("pdk", "generator", "tests", "bench", "examples")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if old in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert users == []


# -- plugins: examples and templates ------------------------------------------------------------

# Template tests that still reach into a host module; the curated `pdk.host` API replaces them.
KNOWN_TEMPLATE_HOST_IMPORTS = frozenset({"pdk.host.codec"})


def plugin_allowed(module: str, *, local: frozenset[str], test: bool, declared: frozenset[str]) -> bool:
    if module == "__future__" or top(module) in STDLIB or top(module) in local or top(module) in declared:
        return True
    if module == "pdk" or (module.startswith("pdk.") and module.split(".")[1] in GUEST_MODULES and not module.split(".")[1].startswith("_")):
        return True
    if test:
        return top(module) == "pytest" or module in ("pdk.testing", "pdk.host") or module in KNOWN_TEMPLATE_HOST_IMPORTS
    return False


def declared_imports(project: Path) -> frozenset[str]:
    """Import names of the distributions a plugin declares in its pyproject.toml."""
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return frozenset()
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("dependencies", [])
    wanted = {re.split(r"[\s<>=!~;\[(]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    names = set()
    for module, dists in metadata.packages_distributions().items():
        if any(d.lower().replace("_", "-") in wanted for d in dists):
            names.add(module)
    return frozenset(names)


def is_test_file(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith(("test_", "conftest"))


def test_examples_import_only_pdk() -> None:
    found: list[str] = []
    for project in sorted(p for p in (ROOT / "examples").iterdir() if (p / "plugin.toml").is_file()):
        local = frozenset(p.stem for p in project.glob("*.py")) | frozenset(p.name for p in project.iterdir() if (p / "__init__.py").is_file())
        declared = declared_imports(project)
        for path in sorted(project.rglob("*.py")):
            if path.name == "chat_server.py":
                continue  # a stand-alone chat server for trying the example, not plugin code
            for line, module in imports_of(path, ""):
                if module and not plugin_allowed(module, local=local, test=is_test_file(path), declared=declared):
                    found.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert found == []


_IMPORT_LINE = re.compile(r"^\s*(?:from\s+(\.*[\w.]*)\s+import\b|import\s+([\w.]+(?:\s*,\s*[\w.]+)*))")


def test_templates_import_only_pdk() -> None:
    found: list[str] = []
    kinds = [p for p in sorted((ROOT / "templates").iterdir()) if (p / "copier.yml").is_file()]
    assert {p.name for p in kinds} >= {"tool", "service", "ingress"}
    for kind in kinds:
        local = frozenset({"app"})
        for path in sorted(kind.rglob("*.py.jinja")):
            for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                match = _IMPORT_LINE.match(text)
                if not match:
                    continue
                modules = [match.group(1)] if match.group(1) is not None else [m.strip() for m in match.group(2).split(",")]
                for module in modules:
                    if not plugin_allowed(module, local=local, test=is_test_file(path), declared=frozenset()):
                        found.append(f"{path.relative_to(ROOT)}:{n}: imports {module}")
    assert found == []


# -- helpers ------------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if path.name == "__init__.py" else rel.parts
    return ".".join(parts)


def modules_after_import(*modules: str) -> set[str]:
    """`sys.modules` of a fresh interpreter after importing `modules` (and nothing else:
    no pytest, no conftest)."""
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sorted(sys.modules)))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(proc.stdout.split())


@pytest.mark.parametrize("module", ["pdk._contract", "pdk.limits"])
def test_contract_modules_are_guest_safe(module: str) -> None:
    loaded = modules_after_import(module)
    assert sorted(m for m in loaded if top(m) not in STDLIB and not m.startswith(("_", "pdk"))) == []
