"""Background builds of the session's plugins (tests/conftest.py's `built_plugin`).

At collection's end, `planned_plugins` lists the example and test plugins the selected
tests use, in the order they first need them. When a test first asks `built_plugin`,
a `Prebuilder` thread builds them one after another with the real `pdk build`
(generator.build, componentize-py) while the tests run (a test runs on one core; the
build mostly waits on its componentize-py child, which takes the other). A test
waits for its own plugin's build only; a plugin that is still queued when a test asks
for it is taken off the queue and built by the test itself, and a background build
that failed is built again in the foreground, which reports the error as usual."""

from __future__ import annotations

import inspect
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from generator.build import build
from pdk.testing._progress import pytest_note

_QUOTED = re.compile(r"""["']([a-z0-9][a-z0-9-]*)["']""")
_LOCAL_IMPORT = re.compile(r"^(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)


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


def planned_plugins(items: list[pytest.Item], names: list[str]) -> list[str]:
    """The plugins the selected tests that use `built_plugin` name (in the test function,
    else anywhere in its module and the helpers it imports), in the order of the first
    test that may need each."""
    known = set(names)
    order: list[str] = []
    cache: dict[Path, list[str]] = {}
    for item in items:
        if "built_plugin" not in getattr(item, "fixturenames", ()):
            continue
        found = _names_in_function(item, known)
        if not found:
            module = Path(str(item.path))
            if module not in cache:
                cache[module] = _names_in(module, known, set())
            found = cache[module]
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
    """One background thread building the planned plugins in order."""

    def __init__(self, config: pytest.Config, prepare: Callable[[str], Path]) -> None:
        self._note = pytest_note(config)  # called from the main thread only
        self._prepare = prepare  # name -> the directory to build (a session copy)
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
                dest = self._prepare(name)
                build(dest)
                job.dest = dest
            except BaseException as exc:  # noqa: BLE001 - the foreground build reports it
                job.error = exc
            job.seconds = time.monotonic() - started
            job.done.set()

    def wait(self, name: str) -> Path | None:
        """The directory of `name` once its background build is done; None when it has
        none (not planned, still queued: the caller builds it) or it failed."""
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
