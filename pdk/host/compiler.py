"""`Compiler`: which tier compiles a component, and when the optimized code arrives.

Modes (`CompileMode`):

- `optimized` - Cranelift code only, compiled in the foreground when not cached. The
  library's default: production hosts want the fastest code and compile once.
- `fast` - Winch code only. For tests of the tier itself.
- `tiered` - the best code in the cache (optimized, else fast); with neither, Winch
  compiles now (3-4x quicker) and Cranelift compiles in the background, replacing it
  in the cache for later loads. What dev-time commands and the pytest fixtures use.

The background upgrade (`Upgrade`) is a daemon thread in a long-running process
(`pdk run`, a dev host), or a detached low-priority process
(`python -m pdk.host._precompile`) for a short command such as `pdk call`, which
exits long before Cranelift finishes; `none` skips it (test sessions, where it would
only compete with the tests for the CPU; `pdk build --precompile` and `pdk pack`
can produce the optimized code up front instead). A loaded plugin keeps the code it
was loaded with; only later loads see the upgrade (`on_upgraded` tells a dev host
when it is there).

If this wasmtime cannot compile with Winch, `fast`/`tiered` fall back to Cranelift
and say so once per process (a progress note, else a `RuntimeWarning`).
"""

from __future__ import annotations

import enum
import os
import subprocess
import sys
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import wasmtime
from wasmtime.component import Component

from .compile_cache import CompiledComponentCache
from .engine import Engines, EngineSettings, EpochTicker, Tier, fast_tier_available, make_engine
from .progress import ProgressEvent, note, step

ENV_NO_BACKGROUND = "YOI_PDK_NO_BACKGROUND_COMPILE"  # set: never upgrade in the background
PENDING_STALE_S = 15 * 60.0  # a marker older than this belongs to a dead compile


class CompileMode(str, enum.Enum):
    OPTIMIZED = "optimized"
    FAST = "fast"
    TIERED = "tiered"


class Upgrade(str, enum.Enum):
    THREAD = "thread"
    PROCESS = "process"
    NONE = "none"


@dataclass(frozen=True)
class ComponentSource:
    """A component to compile: its sha256, how to read its bytes (only on a miss),
    a label for progress lines, and the package it came from (a directory or a
    `.yoi-plugin`), which a background process reopens."""

    sha256: str
    read: Callable[[], bytes]
    label: str = "component"
    package_path: Path | None = None


@dataclass
class Compiled:
    """A compiled component and the engine (and epoch ticker) it runs on."""

    component: Component
    tier: Tier
    engine: wasmtime.Engine
    ticker: EpochTicker
    cached: bool
    seconds: float


_fallback_lock = threading.Lock()
_fallback_said = False


def _say_fallback_once(progress: Callable[[ProgressEvent], None] | None, reason: str) -> None:
    global _fallback_said
    with _fallback_lock:
        if _fallback_said:
            return
        _fallback_said = True
    message = f"the fast compiler (Winch) is unavailable in this wasmtime ({reason}); compiling with Cranelift, which is slower on a first run"
    if progress is not None:
        note(progress, "compile", message)
    else:
        warnings.warn(message, RuntimeWarning, stacklevel=3)


class Compiler:
    """Compiles and caches components for one host, per its `CompileMode`."""

    def __init__(
        self,
        directory: Path | None,
        engines: Engines,
        mode: CompileMode | str = CompileMode.OPTIMIZED,
        *,
        upgrade: Upgrade | str = Upgrade.THREAD,
        progress: Callable[[ProgressEvent], None] | None = None,
        on_upgraded: Callable[[str, Tier], None] | None = None,
    ) -> None:
        self.directory = directory
        self.engines = engines
        self.progress = progress
        self.on_upgraded = on_upgraded
        self.caches = {tier: CompiledComponentCache(directory, engines.settings(tier).fingerprint) for tier in Tier}
        self.requested_mode = CompileMode(mode)
        self.mode = self.requested_mode
        if self.mode is not CompileMode.OPTIMIZED:
            available, reason = fast_tier_available()
            if not available:
                _say_fallback_once(progress, reason)
                self.mode = CompileMode.OPTIMIZED
        self.upgrade = Upgrade(upgrade)
        if os.environ.get(ENV_NO_BACKGROUND) or directory is None:
            self.upgrade = Upgrade.NONE  # nowhere to keep the upgrade, or told not to
        self._lock = threading.Lock()
        self._upgrades: dict[str, threading.Thread] = {}
        # What this compiler handed out and plugins still use, per (tier, sha256): a
        # second plugin of the same component bytes shares its code, whether it was
        # compiled here (cache off, or a cold cache) or deserialized from the cache.
        self._shared: weakref.WeakValueDictionary[tuple[Tier, str], Component] = weakref.WeakValueDictionary()

    @property
    def foreground_tier(self) -> Tier:
        """The tier this compiler compiles with while the caller waits."""
        return Tier.OPTIMIZED if self.mode is CompileMode.OPTIMIZED else Tier.FAST

    def cache(self, tier: Tier | None = None) -> CompiledComponentCache:
        return self.caches[tier or self.foreground_tier]

    def _usable_tiers(self) -> tuple[Tier, ...]:
        if self.mode is CompileMode.OPTIMIZED:
            return (Tier.OPTIMIZED,)
        if self.mode is CompileMode.FAST:
            return (Tier.FAST,)
        return (Tier.OPTIMIZED, Tier.FAST)

    def cached_tier(self, sha256: str) -> Tier | None:
        """The best tier with a good cache entry for this component (usable in this mode)."""
        for tier in self._usable_tiers():
            if self.caches[tier].has(sha256):
                return tier
        return None

    def load(self, source: ComponentSource) -> Compiled:
        """The compiled component: the best cached code, else compiled now.

        Raises `wasmtime.WasmtimeError` when the bytes are not a valid component."""
        started = time.monotonic()
        for tier in self._usable_tiers():
            cache = self.caches[tier]
            component = self._shared.get((tier, source.sha256))
            if component is None and cache.has(source.sha256):
                component = cache.try_load(self.engines.engine(tier), source.sha256)
                if component is not None:
                    self._shared[(tier, source.sha256)] = component
            if component is not None:
                if tier is not Tier.OPTIMIZED:
                    self._schedule_upgrade(source, None)
                engine = self.engines.engine(tier)
                return Compiled(component, tier, engine, self.engines.ticker(tier), True, time.monotonic() - started)
        data = source.read()
        compiled = self.compile(source, self.foreground_tier, data=data)
        if compiled.tier is not Tier.OPTIMIZED:
            self._schedule_upgrade(source, data)
        return compiled

    def compile(self, source: ComponentSource, tier: Tier, *, data: bytes | None = None) -> Compiled:
        """Compile with `tier` now and store it in the cache (a precompile)."""
        started = time.monotonic()
        engine = self.engines.engine(tier)
        cached = self.directory is not None
        what = f"compiling {source.label} ({tier.compiler}{', first run - cached afterwards' if cached else ''})"
        with step(self.progress, "compile", what) as s:
            component = self.caches[tier].compile_and_store(engine, data if data is not None else source.read(), source.sha256)
            s.done(f"compiled {source.label} with {tier.compiler}{', cached for later runs' if cached else ''}")
        self._shared[(tier, source.sha256)] = component
        return Compiled(component, tier, engine, self.engines.ticker(tier), False, time.monotonic() - started)

    # -- background upgrade ----------------------------------------------------------------------

    def _schedule_upgrade(self, source: ComponentSource, data: bytes | None) -> None:
        if self.mode is not CompileMode.TIERED or self.upgrade is Upgrade.NONE:
            return
        if self.caches[Tier.OPTIMIZED].has(source.sha256):
            return
        if self.upgrade is Upgrade.PROCESS:
            self._spawn_precompile(source)
            return
        with self._lock:
            if source.sha256 in self._upgrades:
                return
            thread = threading.Thread(target=self._upgrade_in_thread, args=(source, data), name="pdk-optimize", daemon=True)
            self._upgrades[source.sha256] = thread
        thread.start()

    def _upgrade_in_thread(self, source: ComponentSource, data: bytes | None) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: per thread
        except (AttributeError, OSError):
            pass
        started = time.monotonic()
        try:
            # Its own engine, compiling on this one thread: the host's work keeps the
            # other cores. The artifact loads into the host's optimized engine (the
            # compile-thread count is not part of an artifact's compatibility).
            engine = make_engine(self.engines.settings(Tier.OPTIMIZED), parallel=False)
            component = Component(engine, data if data is not None else source.read())
            self.caches[Tier.OPTIMIZED].store(component, source.sha256)
        except (wasmtime.WasmtimeError, OSError):
            return  # the foreground code keeps serving; a later load tries again
        note(self.progress, "upgrade", f"optimized code for {source.label} is cached (Cranelift, {time.monotonic() - started:.1f}s in the background); later loads use it")
        if self.on_upgraded is not None:
            self.on_upgraded(source.sha256, Tier.OPTIMIZED)

    def _spawn_precompile(self, source: ComponentSource) -> None:
        marker = self.caches[Tier.OPTIMIZED].pending_marker(source.sha256)
        if marker is None or source.package_path is None:
            return
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            if marker.exists() and time.time() - marker.stat().st_mtime < PENDING_STALE_S:
                return  # one is already under way
            marker.write_text(str(os.getpid()))
        except OSError:
            return
        cmd = [
            sys.executable, "-m", "pdk.host._precompile",
            "--cache-dir", str(self.directory), "--sha256", source.sha256,
            "--fuel", str(int(self.engines.consume_fuel)), "--marker", str(marker), str(source.package_path),
        ]
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
        except OSError:
            marker.unlink(missing_ok=True)
            return
        note(self.progress, "upgrade", f"compiling optimized code for {source.label} in the background (pid {proc.pid}); later runs load it")

    def wait_upgrades(self, timeout_s: float | None = None) -> bool:
        """Wait for this process's background upgrades; True when none is left running."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._upgrades.values())
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


def precompile(
    data: bytes, sha256: str, directory: Path, *, consume_fuel: bool = False, tier: Tier = Tier.OPTIMIZED, parallel: bool = True
) -> CompiledComponentCache:
    """Compile `data` with `tier` into the cache at `directory` (for `pdk build
    --precompile`, `pdk pack` and the background process)."""
    settings = EngineSettings(consume_fuel=consume_fuel, tier=tier)
    cache = CompiledComponentCache(directory, settings.fingerprint)
    if not cache.has(sha256):
        cache.compile_and_store(make_engine(settings, parallel=parallel), data, sha256)
    return cache


def precompile_package(
    path: str | Path,
    *,
    directory: Path | None = None,
    consume_fuel: bool = False,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> bool:
    """Compile a package's component with the optimized tier into the compile cache
    (`pdk build --precompile`), so the first run loads Cranelift code at once.

    Returns False when it was cached already (or the cache is disabled)."""
    from .compile_cache import default_cache_dir
    from .loader import open_package

    directory = directory if directory is not None else default_cache_dir()
    if directory is None:
        return False
    package = open_package(path)
    name = package.manifest.runtime.component
    source = ComponentSource(package.files.entry(name).sha256.hex(), package.component_bytes, Path(name).name, package.source)
    compiler = Compiler(directory, Engines(consume_fuel=consume_fuel), CompileMode.OPTIMIZED, upgrade=Upgrade.NONE, progress=progress)
    try:
        if compiler.caches[Tier.OPTIMIZED].has(source.sha256):
            return False
        compiler.compile(source, Tier.OPTIMIZED)
        return True
    finally:
        compiler.engines.close()
