"""The guest half of `pdk dev`'s runner component.

`generator/dev_runner.py` builds one component per (PDK, componentize-py, dependency
set) whose entry module imports this one: it preloads the standard library (only
modules imported while componentize-py builds exist at run time), exports the union
world, and runs a plugin's *sources* that the dev host hands it at run time. So an
edit costs a fresh instance and an `exec` of the sources, not a componentize-py build
and a compile.

The sources arrive as one JSON document (`bundle`), read through the `fs` import
from a root name no manifest can declare (`DEV_BUNDLE_ROOT`); only the dev host
serves it (pdk/host/dev_runner.py). Each fresh instance loads the bundle at its first
call. A call of the reserved tool `DEV_PROBE_TOOL` loads it and says whether that
worked, without running plugin code beyond its import; the dev host probes every
new version before it serves it.

Standard library only (this is guest code); nothing here runs in a real build."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import pkgutil
import sys
import types as _pytypes
from typing import Any, Sequence

from . import _bridge
from ._bounds import encodable
from ._plugin import Plugin
from ._wire import dumps, error_from_exception

DEV_BUNDLE_ROOT = ":pdk-dev"  # not a valid manifest root name, so never a plugin's root
DEV_BUNDLE_PATH = "bundle.json"
DEV_PROBE_TOOL = "pdk-dev:probe"  # not a valid tool name, so never a plugin's tool
BUNDLE_FORMAT = 1

# Standard-library trees the runner does not preload: tests, GUIs, tools that start
# programs or browsers, and modules that print or refuse to import inside WASI.
_SKIP_TOP = frozenset({
    "test", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3", "ensurepip", "venv", "pydoc_data",
    "__phello__", "antigravity", "this", "__main__", "__hello__", "_pyrepl", "pydoc", "webbrowser",
    "msilib", "winreg", "winsound", "_winapi", "nt", "msvcrt", "_msi", "_overlapped", "_wmi",
    "sqlite3", "dbm", "curses", "readline", "idle",
    "xxsubtype", "xxlimited", "xxlimited_35", "_testcapi", "_testinternalcapi", "_testbuffer",
    "_testimportmultiple", "_testmultiphase", "_testsinglephase", "_xxtestfuzz", "_ctypes_test",
    "ctypes", "tty", "pty", "termios", "crypt", "nis", "spwd", "ossaudiodev", "_tkinter",
})
_SKIP_PARTS = frozenset({"test", "tests", "__main__", "idle_test"})


def preload(extra: Sequence[str] = ()) -> list[str]:
    """Import every importable standard-library module and package tree, then the
    `extra` module trees (the plugin's declared dependencies and `[build] preload`).
    Runs while componentize-py pre-initialises the runner: only what is imported then
    exists at run time. Returns the names that failed to import."""
    failed: list[str] = []

    def load(name: str) -> None:
        try:
            module = importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a module WASI cannot import is simply not preloaded
            failed.append(name)
            return
        path = getattr(module, "__path__", None)
        if path is None:
            return
        for info in pkgutil.walk_packages(path, name + ".", onerror=lambda _name: None):
            if _SKIP_PARTS.isdisjoint(info.name.split(".")) and info.name not in sys.modules:
                try:
                    importlib.import_module(info.name)
                except BaseException:  # noqa: BLE001
                    failed.append(info.name)

    for top in sorted(sys.stdlib_module_names):
        if top not in _SKIP_TOP:
            load(top)
    for name in extra:
        load(name)
    return failed


class _BundleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the plugin's modules from the bundle (module name → file name, source)."""

    def __init__(self, modules: dict[str, tuple[str, str, bool]]) -> None:
        self.modules = modules

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        entry = self.modules.get(fullname)
        if entry is None:
            return None
        filename, _source, is_package = entry
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=filename, is_package=is_package)
        spec.has_location = True
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: _pytypes.ModuleType) -> None:
        filename, source, is_package = self.modules[module.__name__]
        if is_package:
            module.__path__ = []
        code = compile(source, filename, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - running the plugin's own sources is the point


def module_table(files: dict[str, str], root: str) -> dict[str, tuple[str, str, bool]]:
    """Relative `*.py` paths → {module name: (file name, source, is package)}."""
    table: dict[str, tuple[str, str, bool]] = {}
    for rel, source in files.items():
        if not rel.endswith(".py"):
            continue
        parts = rel[:-3].split("/")
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        if not parts or not all(p.isidentifier() for p in parts):
            continue
        table[".".join(parts)] = (f"{root.rstrip('/')}/{rel}", source, is_package)
    return table


class BundleError(Exception):
    """The bundle cannot run in this runner. `needs_build`: a real build could run it
    (a module the runner did not preload)."""

    def __init__(self, message: str, *, needs_build: bool = False) -> None:
        super().__init__(message)
        self.needs_build = needs_build


def _where(exc: BaseException, root: str) -> str:
    """`file:line: ` of the innermost frame in the plugin's own sources (under
    `root`), or ''."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}: "
    tb = exc.__traceback__
    found = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(root):
            found = f"{filename}:{tb.tb_lineno}: "
        tb = tb.tb_next
    return found


def load_plugin(bundle: dict[str, Any], preloaded: Sequence[str] = ()) -> Plugin:
    """Import the bundle's module and return its `Plugin`. Raises `BundleError`.
    `preloaded`: the module trees preloaded beyond the standard library."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"bundle format {bundle.get('format')!r} is not {BUNDLE_FORMAT}: this runner is out of date")
    files = bundle["files"]
    root = str(bundle["root"]).rstrip("/") + "/"
    table = module_table(files, root)
    module_name = str(bundle["module"])
    sys.meta_path.insert(0, _BundleFinder(table))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top and top not in {name.split(".")[0] for name in table}:
            if top in sys.stdlib_module_names or top in {name.split(".")[0] for name in preloaded}:
                raise BundleError(
                    f"{_where(exc, root)}module {exc.name!r} is not in the dev runner (it preloads the standard library, "
                    f"the PDK and the declared dependencies): this change needs a real build",
                    needs_build=True,
                ) from None
            raise BundleError(
                f"{_where(exc, root)}module {exc.name!r} is not part of the plugin, the standard library or its declared "
                f"dependencies: add the file or package to [build] sources in plugin.toml, or declare its distribution "
                f"(pure Python, installed here) in pyproject.toml [project] dependencies or plugin.toml [build] dependencies"
            ) from None
        raise BundleError(f"{_where(exc, root)}{type(exc).__name__}: {exc}") from None
    except BaseException as exc:  # noqa: BLE001 - the plugin's import failed
        raise BundleError(f"{_where(exc, root)}{type(exc).__name__}: {exc}") from None
    attr = bundle.get("attr")
    if attr:
        plugin = getattr(module, str(attr), None)
        if not isinstance(plugin, Plugin):
            raise BundleError(f"{module_name}.{attr} is not a pdk.Plugin")
        return plugin
    found = [v for v in vars(module).values() if isinstance(v, Plugin)]
    if len(found) != 1:
        raise BundleError(f"module {module_name!r} defines {len(found)} pdk.Plugin objects; expected one (or set [build] plugin)")
    return found[0]


class Runner:
    """The runner's exports: load the bundle once per instance, then delegate to a
    `Bridge` exactly as a built component's entry module does."""

    def __init__(self, *, types: Any, err: type[BaseException], log: Any, request: Any, fs: Any, preloaded: Sequence[str] = ()) -> None:
        self.preloaded = tuple(preloaded)
        self.types = types
        self.err = err
        self.log = log
        self.request = request
        self.fs = fs
        self.bridge: _bridge.Bridge | None = None
        self.failure: BundleError | None = None

    def _load(self) -> _bridge.Bridge:
        if self.bridge is not None:
            return self.bridge
        if self.failure is not None:
            raise self.failure
        try:
            try:
                raw = bytes(self.fs.read_file(DEV_BUNDLE_ROOT, DEV_BUNDLE_PATH))
            except self.err as exc:
                raise BundleError(f"the dev host did not hand over the sources: {getattr(exc, 'value', exc)}") from None
            plugin = load_plugin(json.loads(raw), self.preloaded)
            self.bridge = _bridge.Bridge(plugin, types=self.types, err=self.err, log=self.log, request=self.request, fs=self.fs)
            return self.bridge
        except BundleError as exc:
            self.failure = exc
            raise
        except BaseException as exc:  # noqa: BLE001
            self.failure = BundleError(f"{type(exc).__name__}: {exc}")
            raise self.failure from None

    def _refusal(self, exc: BaseException) -> BaseException:
        t = self.types
        wire = error_from_exception(exc)
        return self.err(t.PluginError(t.ErrorCode.FAILED, encodable(wire.message), None, False))

    def _probe(self) -> Any:
        try:
            self._load()
            doc: dict[str, Any] = {"loaded": True}
        except BundleError as exc:
            doc = {"loaded": False, "error": str(exc), "needs_build": exc.needs_build}
        except BaseException as exc:  # noqa: BLE001
            doc = {"loaded": False, "error": error_from_exception(exc).message, "needs_build": False}
        return self.types.ToolOutput("probe", encodable(dumps(doc)))

    def _loaded(self) -> _bridge.Bridge:
        """The bridge, or the plugin error an export raises when the sources did not load."""
        try:
            return self._load()
        except BaseException as exc:  # noqa: BLE001 - nothing may escape an export
            raise self._refusal(exc) from None

    def tools_call(self, call: Any) -> Any:
        if call.tool == DEV_PROBE_TOOL:
            return self._probe()
        return self._loaded().tools_call(call)

    def lifecycle_start(self, config_json: str) -> Any:
        return self._loaded().lifecycle_start(config_json)

    def lifecycle_stop(self) -> Any:
        return self._loaded().lifecycle_stop()

    def lifecycle_status(self) -> Any:
        # status() has no error result: sources that did not load mean "unhealthy".
        try:
            bridge = self._load()
        except BaseException as exc:  # noqa: BLE001
            return self.types.PluginStatus(False, dumps({"error": encodable(str(exc))}))
        return bridge.lifecycle_status()

    def events_handle(self, event: Any) -> Any:
        return self._loaded().events_handle(event)
