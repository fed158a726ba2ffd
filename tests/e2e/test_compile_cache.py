"""The compile cache on disk, with real components: a second host loads a compiled
component instead of compiling it, and a damaged entry is thrown away and rebuilt —
never loaded.

Each test uses its own cache directory (`Host(cache_dir=...)`), not the session
cache. One cold compile seeds a directory for the module; each corruption test
works on a copy of it and pays for one recompile.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from pdk.host import Host

pytestmark = pytest.mark.slow

STATS_INPUT = {"text": "b a b"}
STATS_CONTENT = {"words": 3, "unique_words": 2, "lines": 1, "top": ["b", "a"]}


@pytest.fixture(scope="module")
def text_tools_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("text-tools")


def artifacts(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.cwasm"))


def load_and_call(cache_dir: Path, plugin_dir: Path) -> tuple[Host, Any]:
    # The fast tier (Winch): every tier's entries go through the same cache code
    # (pdk/host/compile_cache.py, one directory, the fingerprint names the tier), and a
    # cold Winch compile takes seconds where Cranelift's takes tens of them, three times
    # here. Optimized code in the cache: test_compile_tiers.py.
    host = Host(cache_dir=cache_dir, compile="fast")
    try:
        plugin = host.load(plugin_dir, dev_grants=True)
        result = plugin.call_tool("text_stats", STATS_INPUT)
        assert result.ok, result.error
        assert result.content == STATS_CONTENT
    finally:
        host.close()
    return host, plugin


@pytest.fixture(scope="module")
def seeded_cache(text_tools_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding one entry, written by a cold load."""
    cache_dir = tmp_path_factory.mktemp("seeded") / "cache"
    host, _ = load_and_call(cache_dir, text_tools_dir)
    assert (host.cache.stats.hits, host.cache.stats.misses, host.cache.stats.discarded) == (0, 1, 0)
    assert len(artifacts(cache_dir)) == 1
    assert len(list(cache_dir.glob("*.json"))) == 1
    return cache_dir


@pytest.fixture
def cache_copy(seeded_cache: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(seeded_cache, copy)
    return copy


def test_a_second_host_loads_from_the_cache(seeded_cache: Path, text_tools_dir: Path) -> None:
    before = [(p.name, p.stat().st_size) for p in artifacts(seeded_cache)]
    host, _ = load_and_call(seeded_cache, text_tools_dir)
    assert host.cache.stats.hits == 1
    assert host.cache.stats.misses == 0
    assert host.cache.stats.discarded == 0
    assert [(p.name, p.stat().st_size) for p in artifacts(seeded_cache)] == before


def test_a_copied_cache_is_verified_and_used(cache_copy: Path, text_tools_dir: Path) -> None:
    # A copy has new inodes and mtimes: the entry is re-hashed, found good and used.
    host, _ = load_and_call(cache_copy, text_tools_dir)
    assert (host.cache.stats.hits, host.cache.stats.misses, host.cache.stats.discarded) == (1, 0, 0)


def overwrite_middle(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2)
        original = f.read(4096)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in original))
    assert path.stat().st_size == size


def truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("damage", [overwrite_middle, truncate], ids=lambda f: f.__name__)
def test_a_damaged_entry_is_discarded_and_rebuilt(cache_copy: Path, text_tools_dir: Path, damage: Any) -> None:
    (artifact,) = artifacts(cache_copy)
    damage(artifact)

    host, _ = load_and_call(cache_copy, text_tools_dir)
    assert host.cache.stats.discarded == 1
    assert host.cache.stats.misses == 1
    assert host.cache.stats.hits == 0

    # The rebuilt entry is whole again: the next host uses it.
    assert len(artifacts(cache_copy)) == 1
    again, _ = load_and_call(cache_copy, text_tools_dir)
    assert (again.cache.stats.hits, again.cache.stats.misses, again.cache.stats.discarded) == (1, 0, 0)



def mapped_files() -> set[str]:
    with open("/proc/self/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


def test_code_compiled_on_a_miss_runs_from_the_written_artifact(text_tools_dir: Path, tmp_path: Path) -> None:
    # The compile's own code is anonymous memory, all of it resident and private; the
    # artifact, once written, is mapped instead (clean file pages, shared), and every
    # plugin of that component in the host runs the same mapped code.
    cache_dir = tmp_path / "cache"
    with Host(cache_dir=cache_dir, compile="fast") as host:
        first = host.load(text_tools_dir, dev_grants=True)
        (artifact,) = artifacts(cache_dir)
        assert str(artifact) in mapped_files()
        assert first.call_tool("text_stats", STATS_INPUT).content == STATS_CONTENT
        second = host.load(text_tools_dir, dev_grants=True)
        assert second.instance._component is first.instance._component
        assert second.call_tool("text_stats", STATS_INPUT).content == STATS_CONTENT
        assert (host.cache.stats.hits, host.cache.stats.misses, host.cache.stats.discarded) == (0, 1, 0)
