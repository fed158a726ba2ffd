"""Background builds of the session's components (tests/conftest.py's `prebuilder`).

At collection's end, `planned_jobs` lists what the selected tests will need built, in
the order they first need it: the example and test plugins they ask `built_plugin`
for, test_codec.py's echo component (`CODEC_ECHO`, for the tests that use its
`echo_wasm`; compiled too, by `precompile`), and `pdk dev`'s runner component (`DEV_RUNNER`, for the slow tests of a
module that runs `pdk dev` or `pytest --pdk-dev`). From the session's first test, a
`Prebuilder` thread builds them one after another with the real toolchain
(generator.build's `pdk build`, generator.dev_runner's `ensure_runner`, componentize-py)
while the tests run. A test waits for its own component only; one that is still queued
when a test asks for it is taken off the queue and built by the test itself, and a
background build that failed is built again in the foreground, which reports the error
as usual. The dev runner is waited for by nobody: `ensure_runner` holds a file lock
while it builds, so a `pdk dev` that needs the runner meanwhile waits for it and then
finds it in the cache."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from pdk.testing._progress import pytest_note

_QUOTED = re.compile(r"""["']([a-z0-9][a-z0-9-]*)["']""")
_LOCAL_IMPORT = re.compile(r"^(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
_RUNS_PDK_DEV = re.compile(r"""["']pdk\.cli["'],\s*["']dev["']|["']--pdk-dev["']""")

CODEC_ECHO = "codec-echo"  # the job names that are not plugins
DEV_RUNNER = "dev-runner"
ROOT = Path(__file__).resolve().parent.parent
CODEC_FIXTURE = ROOT / "tests" / "fixtures" / "codec_echo"


def build_codec_echo(staging: Path) -> Path:
    """test_codec.py's echo component, built with componentize-py from a staging copy of
    the app (componentize-py writes __pycache__ into every -p directory)."""
    shutil.copytree(CODEC_FIXTURE / "app", staging / "app")
    out = staging / "echo.wasm"
    command = [
        str(Path(sys.executable).with_name("componentize-py")),
        # The contract first: the fixture's `use yoi:plugin/...` resolves against it.
        "-d", str(ROOT / "wit"),
        "-d", str(CODEC_FIXTURE / "wit"),
        "-w", "yoi:codec-test/codec-echo",
        "componentize", "codec_echo_app",
        "-p", str(staging / "app"),
        "-o", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=staging, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"componentize-py failed:\n{done.stdout}\n{done.stderr}"
    return out


def precompile(wasm: Path) -> Path:
    """`wasm` compiled by a default `wasmtime.Engine()` (what test_codec.py's `engine`
    is), serialized beside it as .cwasm for `Component.deserialize_file`."""
    from wasmtime import Engine
    from wasmtime.component import Component

    out = wasm.with_suffix(".cwasm")
    out.write_bytes(Component.from_file(Engine(), str(wasm)).serialize())
    return out


def _names_in(module: Path, names: set[str], seen: set[Path]) -> list[str]:
    """Plugin names quoted in a test module and in the helper modules beside it it imports."""
    if module in seen or not module.is_file():
        return []
    seen.add(module)
    text = module.read_text(encoding="utf-8")
    found = [m.group(1) for m in _QUOTED.finditer(text) if m.group(1) in names]
    for helper in _LOCAL_IMPORT.findall(text):
        found += _names_in(module.parent / f"{helper}.py", names, seen)
    return found


def _names_in_function(item: pytest.Item, names: set[str]) -> list[str]:
    try:
        text = inspect.getsource(getattr(item, "function"))
    except (AttributeError, OSError, TypeError):
        return []
    return [m.group(1) for m in _QUOTED.finditer(text) if m.group(1) in names]


def _runs_pdk_dev(item: pytest.Item, cache: dict[Path, bool]) -> bool:
    if item.get_closest_marker("slow") is None:
        return False
    module = Path(str(item.path))
    if module not in cache:
        cache[module] = module.is_file() and _RUNS_PDK_DEV.search(module.read_text(encoding="utf-8")) is not None
    return cache[module]


def planned_jobs(items: list[pytest.Item], names: list[str]) -> list[str]:
    """What the selected tests need built, in the order of the first test that may need
    each: the plugins that the tests using `built_plugin` name (in the test function,
    else anywhere in its module and the helpers it imports), `CODEC_ECHO` and
    `DEV_RUNNER` (see the module's docstring)."""
    known = set(names)
    order: list[str] = []
    cache: dict[Path, list[str]] = {}
    dev_modules: dict[Path, bool] = {}
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        found: list[str] = []
        if "built_plugin" in fixtures:
            found = _names_in_function(item, known)
            if not found:
                module = Path(str(item.path))
                if module not in cache:
                    cache[module] = _names_in(module, known, set())
                found = list(cache[module])
        if "echo_wasm" in fixtures:
            found.append(CODEC_ECHO)
        if DEV_RUNNER not in order and _runs_pdk_dev(item, dev_modules):
            found.append(DEV_RUNNER)  # after the test's own plugins: nobody waits for it
        for name in found:
            if name not in order:
                order.append(name)
    return order


@dataclass
class _Job:
    done: threading.Event = field(default_factory=threading.Event)
    dest: Path | None = None
    error: BaseException | None = None
    seconds: float = 0.0


class Prebuilder:
    """One background thread building the planned jobs in order."""

    def __init__(self, config: pytest.Config, make: Callable[[str], Path]) -> None:
        self._note = pytest_note(config)  # called from the main thread only
        self._make = make  # name -> what it built (a plugin's session copy, a component)
        self._lock = threading.Lock()
        self._queue: list[str] = []
        self._jobs: dict[str, _Job] = {}
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self, names: list[str]) -> None:
        self._queue = list(names)
        if self._queue:
            self._thread = threading.Thread(target=self._run, name="pdk-prebuild", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed or not self._queue:
                    return
                name = self._queue.pop(0)
                job = self._jobs[name] = _Job()
            started = time.monotonic()
            try:
                job.dest = self._make(name)
            except BaseException as exc:  # noqa: BLE001 - the foreground build reports it
                job.error = exc
            job.seconds = time.monotonic() - started
            job.done.set()

    def wait(self, name: str) -> Path | None:
        """What `name`'s background build made, once it is done; None when it has none
        (not planned, still queued: the caller builds it) or it failed."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                if name in self._queue:
                    self._queue.remove(name)
                return None
        started = time.monotonic()
        job.done.wait()
        if job.error is not None or job.dest is None:
            return None
        waited = time.monotonic() - started
        self._note(f"built {name} in the background ({job.seconds:.1f}s, of which the tests waited {waited:.1f}s)")
        return job.dest

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
        if self._thread is not None:
            self._thread.join()
