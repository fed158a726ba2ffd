"""`pytest --pdk-dev`: the fixtures load plugins on `pdk dev`'s runner instead of a
real build (generator/dev_runner.py, pdk/host/dev_runner.py; the differences from a
real build are listed in docs/dev.md).

Per plugin directory and session: the host-side checks of `pdk build` once
(`prepare`: syntax, imports, introspection, handler checks, plugin.toml's [[tools]]
synced) and the runner of its dependency set once (`ensure_runner`: built on first
use, then cached beside the compile cache). Per load: a fresh runner instance under
the plugin's manifest, grants and limits, probed (it imports the sources now) before
the host adopts it. A probe that fails is the test's failure, with the error; a
plugin only a real build can run (a module the runner did not preload) is said once
and then loaded from a real build for the rest of the session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

if TYPE_CHECKING:
    from pdk.host import GrantsFile, Host, LoadedPlugin
    from pdk.host.progress import ProgressEvent

OPTION = "--pdk-dev"


@dataclass
class _Entry:
    """What the session knows about one plugin directory."""

    bundle: bytes = b""
    runner: Path | None = None
    needs_build: bool = False  # only a real build runs it: loads go through `pdk build`
    announced: bool = False


@dataclass
class DevLoads:
    """The session's dev-runner loads, one `_Entry` per plugin directory."""

    host: Host
    progress: Callable[[ProgressEvent], None]
    note: Callable[[str], None]  # one line on pytest's terminal
    entries: dict[Path, _Entry] = field(default_factory=dict)

    def load(self, directory: Path, grants: GrantsFile | str | Path | None) -> LoadedPlugin | None:
        """The plugin in `directory` loaded on the dev runner and adopted by the host,
        or None when only a real build can run it (said once per directory). A check
        or a probe that fails fails the test, with the error."""
        from generator.diagnose import BuildError
        from generator.dev_runner import ensure_runner, prepare
        from pdk.host.dev_runner import load_with_runner, probe

        entry = self.entries.setdefault(directory, _Entry())
        if entry.needs_build:
            return None
        name = directory.name
        if entry.runner is None:
            try:
                prepared = prepare(directory)
                runner = ensure_runner(directory, progress=self.progress)
            except BuildError as exc:
                pytest.fail(f"{OPTION}: {name}: {exc.message}", pytrace=False)
            if prepared.manifest_updated:
                self.note(f"{name}: plugin.toml [[tools]] re-derived from the code and updated ({', '.join(prepared.tools)})")
            entry.bundle, entry.runner = prepared.bundle, runner.path
            checks_s = prepared.seconds
        else:
            checks_s = 0.0
        plugin = load_with_runner(
            self.host, directory, entry.runner, entry.bundle, grants=grants, dev_grants=grants is None, register=False
        )
        found = probe(plugin)
        if not found.loaded:
            plugin.close()
            if found.needs_build:
                entry.needs_build = True
                self.note(f"{name}: {found.error}; {OPTION} runs it from a real build (pdk build) instead")
                return None
            pytest.fail(f"{OPTION}: {name}: the plugin's sources did not load on the dev runner: {found.error}", pytrace=False)
        self.host._register(plugin)  # noqa: SLF001 - adopted only once probed, as `pdk dev` does
        if not entry.announced:
            entry.announced = True
            self.note(f"{name}: loaded on the dev runner, no componentize-py build (checks {checks_s:.1f}s; {OPTION})")
        return plugin
