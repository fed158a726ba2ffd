"""Every limit holds under both compiler tiers: the hostile test plugin's spin loop
is stopped by the epoch deadline and by fuel, its memory bomb hits the cap with a
clean `MemoryError`, and the plugin serves the next call — with Winch (fast tier)
code exactly as with Cranelift (optimized tier) code.

Hosts are strict about the tier (`compile="fast"` / `"optimized"`), so the code that
runs is the tier named in the test id (asserted through `plugin.tier`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from pdk.errors import ErrorCode
from pdk.host import Host, InstanceLimits, LoadedPlugin
from pdk.host.engine import Tier
from pdk.limits import MEMORY_DEFAULT_BYTES, MIB

pytestmark = pytest.mark.slow

TIERS = [Tier.FAST, Tier.OPTIMIZED]
CALL_FUEL = 400_000_000  # per call: plenty for `echo`, ~0.2 s of a Python spin loop


@pytest.fixture(scope="module")
def hostile_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("hostile")


@pytest.fixture(params=TIERS, ids=lambda t: t.value)
def tier(request: pytest.FixtureRequest) -> Tier:
    tier: Tier = request.param
    return tier


@pytest.fixture
def tier_host(tier: Tier) -> Iterator[Host]:
    with Host(compile=tier.value, limits=InstanceLimits(deadline_s=1.0)) as h:
        yield h


@pytest.fixture
def hostile(tier_host: Host, hostile_dir: Path, tier: Tier) -> LoadedPlugin:
    plugin = tier_host.load(hostile_dir, dev_grants=True)
    assert plugin.tier is tier
    return plugin


def test_the_epoch_deadline_stops_a_spin_loop(hostile: LoadedPlugin) -> None:
    assert hostile.call_tool("count").content == 1
    started = time.perf_counter()
    result = hostile.call_tool("spin")
    elapsed = time.perf_counter() - started
    assert result.error is not None
    assert result.error.code is ErrorCode.TIMEOUT
    assert result.error.details == {"fault": "timeout", "instance_recycled": True}
    assert elapsed < 1.0 + 0.5, f"spin ran {elapsed:.2f}s with a 1.0s deadline"
    # A fresh instance serves the next call; the old state is gone.
    assert hostile.call_tool("count").content == 1
    assert hostile.status()["instance"]["recycles"] == 1


def test_a_memory_bomb_hits_the_cap_and_the_plugin_survives(hostile: LoadedPlugin) -> None:
    assert hostile.instance.limits.memory_bytes == MEMORY_DEFAULT_BYTES == 64 * MIB
    result = hostile.call_tool("allocate", {"mib": 128})
    assert result.error is not None
    assert result.error.code is ErrorCode.FAILED
    assert result.error.message == "MemoryError"
    after = hostile.call_tool("allocate", {"mib": 8})
    assert after.ok, after.error
    assert after.content == {"allocated": 8 * MIB}


def test_a_smaller_memory_cap_is_enforced(tier_host: Host, hostile_dir: Path, tier: Tier) -> None:
    plugin = tier_host.load(hostile_dir, dev_grants=True, limits=InstanceLimits(memory_bytes=32 * MIB))
    assert plugin.tier is tier
    result = plugin.call_tool("allocate", {"mib": 24})  # fits under 64 MiB, not under 32 MiB
    assert result.error is not None and result.error.code is ErrorCode.FAILED
    assert plugin.call_tool("allocate", {"mib": 1}).ok


def test_fuel_stops_a_spin_loop_and_a_normal_call_has_enough(hostile_dir: Path, tier: Tier) -> None:
    limits = InstanceLimits(deadline_s=30.0, fuel=CALL_FUEL)  # the deadline is far: fuel must stop it
    with Host(compile=tier.value, fuel=True, limits=limits) as host:
        plugin = host.load(hostile_dir, dev_grants=True)
        assert plugin.tier is tier
        echoed = plugin.call_tool("echo", {"text": "fuelled"})
        assert echoed.ok, echoed.error
        assert echoed.content == {"text": "fuelled", "length": 7}

        started = time.perf_counter()
        result = plugin.call_tool("spin")
        elapsed = time.perf_counter() - started
        assert result.error is not None
        assert result.error.code is ErrorCode.TIMEOUT
        assert result.error.message == "the call ran out of fuel and was stopped"
        assert result.error.details == {"fault": "fuel", "instance_recycled": True}
        assert elapsed < 30.0, "fuel, not the deadline, stopped the loop"

        # Fuel is per call: the next call on the fresh instance has its full budget.
        assert plugin.call_tool("echo", {"text": "again"}).content == {"text": "again", "length": 5}
        assert plugin.status()["instance"]["recycles"] == 1
