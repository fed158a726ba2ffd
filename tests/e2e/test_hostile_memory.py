"""Family 1 of the hostile-plugin suite: memory and resources are capped per plugin.

wasmtime's `memory_size` limit caps each linear memory; a component can define many core
instances, each with its own memory or table. The host also caps how many memories,
tables, table elements and core instances a plugin's store may create, so the memory cap
holds for the plugin as a whole. The attack components are hand-written in the component
text format (the PDK would never produce them)."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest
import wasmtime
from wasmtime.component import Component, Linker

from pdk.host import InstanceLimits
from pdk.host.diagnostics import DiagnosticLog
from pdk.host.engine import EngineSettings, EpochTicker, make_engine
from pdk.host.instance import GuestFault, PluginInstance
from pdk.limits import MIB

PAGE = 64 * 1024


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return make_engine(EngineSettings())


@pytest.fixture(scope="module")
def ticker(engine: wasmtime.Engine) -> Iterator[EpochTicker]:
    t = EpochTicker(engine)
    yield t
    t.close()


def _instance(engine: wasmtime.Engine, ticker: EpochTicker, wat: str, limits: InstanceLimits) -> PluginInstance:
    component = Component(engine, wat)
    return PluginInstance(engine, component, Linker(engine), ticker, limits, DiagnosticLog())


def _touching_memories(count: int, pages: int) -> str:
    """`count` core instances, each with a memory of `pages` pages whose every page is
    written by the module's start function (so the pages are really committed)."""
    mods = []
    for i in range(count):
        mods.append(
            f"""(core module $m{i}
                  (memory (export "mem") {pages})
                  (func $touch (local $a i32)
                    (block $done (loop $next
                      (br_if $done (i32.ge_u (local.get $a) (i32.const {pages * PAGE})))
                      (i32.store8 (local.get $a) (i32.const 1))
                      (local.set $a (i32.add (local.get $a) (i32.const {PAGE})))
                      (br $next))))
                  (start $touch))
                (core instance $i{i} (instantiate $m{i}))"""
        )
    return "(component " + "\n".join(mods) + ")"


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / MIB


@pytest.mark.parametrize("count", [2, 3, 8])
def test_many_memories_cannot_add_up_past_the_cap(engine: wasmtime.Engine, ticker: EpochTicker, count: int) -> None:
    # Each memory is just under the cap (62.5 MiB under 64 MiB): only the sum is too much.
    inst = _instance(engine, ticker, _touching_memories(count, 1000), InstanceLimits(memory_bytes=64 * MIB))
    before = _rss_mib()
    with pytest.raises(GuestFault) as info:
        inst.warm()
    assert info.value.kind == "instantiate"
    assert "memory count" in info.value.message
    # At most one 62.5 MiB memory was committed before the second one was refused.
    assert _rss_mib() - before < 64 + 16


def test_one_memory_under_the_cap_is_fine(engine: wasmtime.Engine, ticker: EpochTicker) -> None:
    inst = _instance(engine, ticker, _touching_memories(1, 100), InstanceLimits(memory_bytes=64 * MIB))
    assert inst.warm() >= 0
    assert inst.instantiations == 1


def test_one_memory_over_the_cap_is_refused(engine: wasmtime.Engine, ticker: EpochTicker) -> None:
    inst = _instance(engine, ticker, _touching_memories(1, 1100), InstanceLimits(memory_bytes=64 * MIB))
    with pytest.raises(GuestFault) as info:
        inst.warm()
    assert info.value.kind == "instantiate"


def test_more_memories_allowed_split_the_cap(engine: wasmtime.Engine, ticker: EpochTicker) -> None:
    # Allowing 4 memories splits 64 MiB into 16 MiB each: two 20 MiB memories are refused
    # although each alone would fit the plugin's cap, and two 10 MiB memories are fine.
    limits = InstanceLimits(memory_bytes=64 * MIB, memories=4)
    assert limits.memory_bytes_per_memory * limits.memories <= 64 * MIB
    with pytest.raises(GuestFault):
        _instance(engine, ticker, _touching_memories(2, 320), limits).warm()
    ok = _instance(engine, ticker, _touching_memories(2, 160), limits)
    ok.warm()
    assert ok.instantiations == 1


@pytest.mark.parametrize("elements", [300_000, 30_000_000])
def test_huge_tables_are_refused(engine: wasmtime.Engine, ticker: EpochTicker, elements: int) -> None:
    wat = f'(component (core module $m (table {elements} funcref)) (core instance $i (instantiate $m)))'
    before = _rss_mib()
    with pytest.raises(GuestFault) as info:
        _instance(engine, ticker, wat, InstanceLimits()).warm()
    assert info.value.kind == "instantiate"
    assert _rss_mib() - before < 16


def test_many_tables_are_refused(engine: wasmtime.Engine, ticker: EpochTicker) -> None:
    tables = " ".join(f"(table {1000} funcref)" for _ in range(20))
    wat = f"(component (core module $m {tables}) (core instance $i (instantiate $m)))"
    with pytest.raises(GuestFault) as info:
        _instance(engine, ticker, wat, InstanceLimits()).warm()
    assert "table" in info.value.message


def test_many_core_instances_are_refused(engine: wasmtime.Engine, ticker: EpochTicker) -> None:
    body = "(core module $m) " + " ".join(f"(core instance $i{i} (instantiate $m))" for i in range(200))
    with pytest.raises(GuestFault) as info:
        _instance(engine, ticker, f"(component {body})", InstanceLimits()).warm()
    assert "instance" in info.value.message


def test_repeated_attacks_do_not_grow_the_host(engine: wasmtime.Engine, ticker: EpochTicker) -> None:
    wat = _touching_memories(8, 1000)
    component = Component(engine, wat)
    before = None
    for round_ in range(12):
        inst = PluginInstance(engine, component, Linker(engine), ticker, InstanceLimits(), DiagnosticLog())
        with pytest.raises(GuestFault):
            inst.warm()
        if round_ == 1:
            before = _rss_mib()
    assert before is not None
    assert _rss_mib() - before < 32
