"""Turn known build failures into one actionable paragraph each.

Static checks run before componentize-py (they are cheap and precise); the rest
translate componentize-py's output after a failed run."""

from __future__ import annotations

import ast
import importlib.machinery
import re
from pathlib import Path
from typing import Iterable

from pdk._contract import WORLDS
from pdk.package.errors import PdkError

# Module names componentize-py generates for the bindings; an app module with one of
# these names shadows (or is shadowed by) the generated code.
RESERVED_MODULES = frozenset(
    {"wit_world", "componentize_py_types", "componentize_py_async_support", "poll_loop", "yoi_component_entry"}
)
WORLD_NAMES = frozenset(WORLDS)


class BuildError(PdkError):
    """An error the plugin author can fix. `kind` (= `code`) is a stable snake_case code."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, code=kind)

    @property
    def kind(self) -> str:
        return self.code_text


def check_module_name(module: str) -> None:
    top = module.split(".")[0]
    if top in RESERVED_MODULES or top in WORLD_NAMES:
        raise BuildError(
            "module_name_clash",
            f"The app module is named {top!r}, like a module componentize-py generates for the "
            f"bindings or like a world. Python cannot load two top-level modules with one name, so "
            f"the component would not build or would trap at run time. Rename {top}.py (for example "
            f"to app.py) and set [build] module in plugin.toml to the new name.",
        )


def check_syntax(path: Path, display: str) -> None:
    try:
        compile(path.read_bytes(), display, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise BuildError(
            "syntax_error",
            f"{display}:{exc.lineno}: syntax error: {exc.msg}. Fix the line and build again.",
        ) from None


def _top_level_imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def check_function_imports(path: Path, display: str) -> None:
    """Flag `import x` inside a function when `x` is not imported at module level.

    componentize-py snapshots the interpreter after importing the app; a module first
    imported inside a function at run time does not exist in the component."""
    tree = ast.parse(path.read_bytes(), display)
    top = _top_level_imports(tree)
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                missing = [a.name for a in node.names if a.name not in top]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                missing = [node.module] if node.module not in top else []
            else:
                continue
            if missing:
                raise BuildError(
                    "import_in_function",
                    f"{display}:{node.lineno}: `{ast.unparse(node)}` runs inside function "
                    f"{func.name}(). Only modules imported while the component is built exist at run "
                    f"time, so this import would fail with ModuleNotFoundError inside the component. "
                    f"Move the import to the top of {Path(display).name}.",
                )


# componentize-py mounts each `-p` directory as /0, /1, ...; `pdk build` passes the
# staged plugin first, so /0/<file> is the author's code (or the generated entry / pdk).
_FRAME = re.compile(r'File "/(\d+)/([^"]+)", line (\d+)')
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*$", re.M)
_NOT_AUTHOR = ("yoi_component_entry.py", "pdk/")


def _clean(output: str) -> str:
    # With RUST_BACKTRACE set, componentize-py appends a Rust stack backtrace; none of
    # it concerns the author, and it buries the Python error.
    return output.split("\nStack backtrace:", 1)[0].strip()


def _error_line(output: str) -> str | None:
    caused = re.search(r"Caused by:\s*\n\s*(\S[^\n]*)", output)
    if caused:
        return caused.group(1).strip()
    found = _EXC_LINE.findall(output)
    return found[-1].strip() if found else None


def _author_location(output: str) -> str | None:
    own = [(path, line) for mount, path, line in _FRAME.findall(output) if mount == "0" and not path.startswith(_NOT_AUTHOR)]
    return f"{own[-1][0]}:{own[-1][1]}" if own else None


def host_extension_module(module: str, search_path: Iterable[Path]) -> Path | None:
    """The host-built extension file (`.so`/`.pyd`) that provides `module`, if any.

    componentize-py's CPython runs on wasm32-wasi and cannot load it, so it reports the
    module as missing although it is installed."""
    parts = module.split(".")
    for base in search_path:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(base, *parts[:-1], parts[-1] + suffix)
            if candidate.is_file():
                return candidate
    return None


def translate_componentize_failure(output: str, search_path: Iterable[Path] = ()) -> BuildError:
    """Map componentize-py's failure output to one actionable paragraph (no traceback).

    `search_path` is where the build looked for modules (stage, site-packages); it
    tells a missing module from a C extension that exists only for the host."""
    output = _clean(output)
    error = _error_line(output)
    where = _author_location(output)
    at = f"{where}: " if where else ""
    seen = f" (componentize-py: {error})" if error else ""
    missing = re.search(r"No module named '([\w.]+)'", output)
    extension = host_extension_module(missing.group(1), search_path) if missing else None
    unknown_location = re.search(r"cannot import name [^\n]*\(unknown location\)", output)
    if extension is not None or unknown_location or re.search(r"\.so\b|\.pyd\b|cpython-3\d+-x86_64", output):
        name = missing.group(1) if missing else None
        if name is None:
            found = re.search(r"from '([\w.]+)'", output)
            name = found.group(1) if found else None
        which = f" ({name.split('.')[0]})" if name else ""
        return BuildError(
            "c_extension",
            f"{at}a dependency{which} is a C extension built for this machine's CPython. Components "
            f"run CPython on wasm32-wasi, so only pure-Python packages (or wasm32-wasi wheels) can be "
            f"bundled. Replace the dependency with a pure-Python one or drop it.{seen}",
        )
    if missing:
        return BuildError(
            "missing_module",
            f"{at}componentize-py could not import {missing.group(1)!r}. Add the file or package to "
            f"[build] sources in plugin.toml, or declare its distribution (pure Python, installed "
            f"here) in pyproject.toml [project] dependencies or plugin.toml [build] dependencies.{seen}",
        )
    syntax = re.search(r'File "(?:/\d+/)?([^"]+)", line (\d+)[\s\S]*?SyntaxError: ([^\n]+)', output)
    if syntax:
        return BuildError("syntax_error", f"{syntax.group(1)}:{syntax.group(2)}: syntax error: {syntax.group(3)}")
    if error:
        return BuildError("componentize_failed", f"{at}componentize-py failed: {error}")
    tail = "\n".join(output.splitlines()[-12:])
    return BuildError("componentize_failed", f"componentize-py failed:\n{tail}")
