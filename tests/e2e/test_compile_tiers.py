"""Tiered compilation with real components: fast-tier (Winch) code at once, optimized
(Cranelift) code compiled in the background and used by later loads; one cache entry
per tier; `pdk call` leaves the upgrade to a detached process; `pdk check` compiles
nothing and reads the same imports and exports wasmtime reports.

Each test that looks at cache entries uses its own cache directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from pdk.host import Host
from pdk.host.compiler import CompileMode
from pdk.host.engine import Tier
from pdk.host.loader import open_package
from pdk.host.progress import ProgressEvent
from pdk.host.world import binary_shape

pytestmark = pytest.mark.slow

PDK = Path(sys.executable).with_name("pdk")
STATS_INPUT = {"text": "b a b"}
STATS_CONTENT = {"words": 3, "unique_words": 2, "lines": 1, "top": ["b", "a"]}
UPGRADE_WAIT_S = 900.0  # a Cranelift compile on a loaded 2-core machine, with room to spare


@pytest.fixture(scope="module")
def text_tools_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("text-tools")


def sidecars(cache_dir: Path) -> list[dict[str, object]]:
    return sorted((json.loads(p.read_text()) for p in cache_dir.glob("*.json")), key=lambda m: str(m["fingerprint"]))


def tiers_in(cache_dir: Path) -> list[str]:
    return sorted(str(m["fingerprint"]).rpartition("tier=")[2] for m in sidecars(cache_dir))


def test_a_tiered_host_runs_fast_code_at_once_and_later_loads_get_optimized_code(text_tools_dir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    events: list[ProgressEvent] = []
    with Host(cache_dir=cache_dir, compile="tiered", upgrade="thread", progress=events.append) as host:
        plugin = host.load(text_tools_dir, dev_grants=True)
        assert plugin.tier is Tier.FAST
        result = plugin.call_tool("text_stats", STATS_INPUT)
        assert result.ok, result.error
        assert result.content == STATS_CONTENT
        assert host.compiler.wait_upgrades(UPGRADE_WAIT_S)
    compile_events = [(e.step, e.phase, e.message) for e in events if e.step == "compile"]
    assert compile_events == [
        ("compile", "start", "compiling text_tools.wasm (Winch, first run - cached afterwards)"),
        ("compile", "end", "compiled text_tools.wasm with Winch, cached for later runs"),
    ]
    upgrade_notes = [e.message for e in events if e.step == "upgrade"]
    assert len(upgrade_notes) == 1 and upgrade_notes[0].startswith("optimized code for text_tools.wasm is cached (Cranelift, ")
    # One entry per tier, keyed apart.
    assert tiers_in(cache_dir) == ["fast", "optimized"]
    assert len(list(cache_dir.glob("*.cwasm"))) == 2

    # A later tiered load takes the optimized code, compiling nothing.
    events.clear()
    with Host(cache_dir=cache_dir, compile="tiered", upgrade="thread", progress=events.append) as host:
        plugin = host.load(text_tools_dir, dev_grants=True)
        assert plugin.tier is Tier.OPTIMIZED
        assert plugin.call_tool("text_stats", STATS_INPUT).content == STATS_CONTENT
        assert host.compiler.caches[Tier.OPTIMIZED].stats.hits == 1
        assert sum(c.stats.misses for c in host.compiler.caches.values()) == 0
    assert events == []

    # A strict fast host still runs Winch code (its own entry), an optimized host Cranelift's.
    with Host(cache_dir=cache_dir, compile="fast") as host:
        assert host.load(text_tools_dir, dev_grants=True).tier is Tier.FAST
        assert (host.cache.stats.hits, host.cache.stats.misses) == (1, 0)
    with Host(cache_dir=cache_dir) as host:
        assert host.compiler.mode is CompileMode.OPTIMIZED
        assert host.load(text_tools_dir, dev_grants=True).tier is Tier.OPTIMIZED
        assert (host.cache.stats.hits, host.cache.stats.misses) == (1, 0)


def test_upgrade_none_leaves_only_fast_code(text_tools_dir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Host(cache_dir=cache_dir, compile="tiered", upgrade="none") as host:
        assert host.load(text_tools_dir, dev_grants=True).tier is Tier.FAST
        assert host.compiler.wait_upgrades(0)
    assert tiers_in(cache_dir) == ["fast"]


def run_pdk(*args: str | Path, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YOI_PDK_CACHE_DIR": str(cache_dir)}
    env.pop("YOI_PDK_NO_BACKGROUND_COMPILE", None)
    return subprocess.run([str(PDK), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def test_pdk_call_says_what_it_compiles_and_leaves_the_upgrade_to_a_background_process(text_tools_dir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = run_pdk("call", text_tools_dir, "text_stats", json.dumps(STATS_INPUT), "--dev-grants", cache_dir=cache_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == 'text_stats: {"words":3,"unique_words":2,"lines":1,"top":["b","a"]}'
    progress = [line for line in first.stderr.splitlines() if line.startswith("pdk: ") and "DEV GRANTS" not in line]
    assert progress[0] == "pdk: compiling text_tools.wasm (Winch, first run - cached afterwards)..."
    assert progress[1].startswith("pdk: compiled text_tools.wasm with Winch, cached for later runs (")
    assert progress[2].startswith("pdk: compiling optimized code for text_tools.wasm in the background (pid ")
    assert len(progress) == 3

    # The detached process removes its marker when it is done.
    deadline = time.monotonic() + UPGRADE_WAIT_S
    while list(cache_dir.glob("*.pending")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list(cache_dir.glob("*.pending"))
    assert tiers_in(cache_dir) == ["fast", "optimized"]

    second = run_pdk("call", text_tools_dir, "text_stats", json.dumps(STATS_INPUT), "--dev-grants", cache_dir=cache_dir)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    # Nothing compiled: no progress lines (the plugin's own log lines follow the result).
    assert [line for line in second.stderr.splitlines() if line.startswith("pdk: ") and "DEV GRANTS" not in line] == []


def test_pdk_check_compiles_nothing(text_tools_dir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    done = run_pdk("check", text_tools_dir, "--json", cache_dir=cache_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True
    assert doc["component"]["exports"] == {"yoi:plugin/tools@2.0.0": ["call"]}
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []
    assert done.stderr == ""


@pytest.mark.parametrize("name", ["text-tools", "counter-service", "webhook-ingress"])
def test_the_binary_reading_agrees_with_wasmtime(built_plugin: Callable[[str], Path], name: str) -> None:
    directory = built_plugin(name)
    with Host(compile="fast") as host:
        plugin = host.load(directory, dev_grants=True)
        package = open_package(directory)
        assert binary_shape(package.component_bytes()) == plugin.shape
        assert plugin.shape.exports  # something to compare
        assert all(funcs for funcs in plugin.shape.exports.values())


def test_pdk_build_precompile_puts_optimized_code_in_the_cache(text_tools_dir: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    built = run_pdk("build", text_tools_dir, "--precompile", cache_dir=cache_dir)
    assert built.returncode == 0, built.stderr
    progress = [line for line in built.stderr.splitlines() if line.startswith("pdk: ")]
    assert progress[0] == "pdk: compiling text_tools.wasm (Cranelift, first run - cached afterwards)..."
    assert progress[1].startswith("pdk: compiled text_tools.wasm with Cranelift, cached for later runs (")
    assert tiers_in(cache_dir) == ["optimized"]

    # The first call loads that code: nothing compiled, no background job.
    called = run_pdk("call", text_tools_dir, "text_stats", json.dumps(STATS_INPUT), "--dev-grants", cache_dir=cache_dir)
    assert called.returncode == 0, called.stderr
    assert [line for line in called.stderr.splitlines() if line.startswith("pdk: ") and "DEV GRANTS" not in line] == []
    assert tiers_in(cache_dir) == ["optimized"]

    # Asked again, it has nothing to do.
    again = run_pdk("build", text_tools_dir, "--precompile", cache_dir=cache_dir)
    assert [line for line in again.stderr.splitlines() if line.startswith("pdk: ")] == []
