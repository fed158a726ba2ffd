"""Shared helpers of the Service runtime e2e tests (real components, real wasmtime)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pdk.host import Case, Host, LoadedPlugin
from pdk.host.runtime import Accepted, Refused, RuntimeOptions, ServiceRuntime

# Fast retries and restarts: the tests check the schedule, not the waiting.
FAST = {"retry_backoff_ms": 0, "restart_backoff_initial_s": 0.01, "restart_backoff_max_s": 0.08}
IDLE_TIMEOUT_S = 60.0


def invariant(rt: ServiceRuntime) -> dict[str, Any]:
    """Check the runtime invariant on a status snapshot and return the snapshot."""
    doc = rt.status()
    c, q = doc["counters"], doc["queue"]
    assert c["accepted"] == c["handled"] + c["dead_lettered"] + q["depth"] + q["in_flight"], doc
    assert c["refused_total"] == sum(c["refused"].values())
    return doc


def job(rt: ServiceRuntime, text: str) -> Accepted | Refused:
    return rt.submit("jobs", "job", Case("text", text))


class Runtimes:
    """Makes runtimes over freshly loaded plugins and stops them all at teardown."""

    def __init__(self, host: Host, built_plugin: Callable[[str], Path]) -> None:
        self.host = host
        self.built_plugin = built_plugin
        self.made: list[ServiceRuntime] = []

    def load(self, name: str, **load: Any) -> LoadedPlugin:
        load.setdefault("dev_grants", "grants" not in load)
        return self.host.load(self.built_plugin(name), **load)

    def make(self, name: str, config: dict[str, Any] | None = None, *, load: dict[str, Any] | None = None, **options: Any) -> ServiceRuntime:
        plugin = self.load(name, **(load or {}))
        rt = ServiceRuntime(plugin, config, RuntimeOptions(**{**FAST, **options}))
        self.made.append(rt)
        return rt

    def close(self) -> None:
        for rt in self.made:
            rt.stop(drain_deadline_s=0.0)


@pytest.fixture
def runtime_host(pdk_host: Host) -> Host:
    """pdk.testing's session `Host` (its dev-grant banners go to pytest's captured stderr)."""
    return pdk_host


@pytest.fixture
def runtimes(runtime_host: Host, built_plugin: Callable[[str], Path]) -> Iterator[Runtimes]:
    made = Runtimes(runtime_host, built_plugin)
    yield made
    made.close()
