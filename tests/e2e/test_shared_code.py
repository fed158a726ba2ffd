"""Many plugins per host share compiled code: two packages of the same component bytes
(counter-service under two ids: two digests, one component) loaded into one `Host`
run on one engine and one compiled `Component` object - compiled or deserialized once,
whether the cache is cold, warm or off - while each keeps its own instance and state.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Callable

import pytest

from pdk.host import Case, Host, LoadedPlugin
from pdk.host.runtime import RuntimeOptions, ServiceRuntime

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def copies(built_plugin: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """counter-service under three ids (the `id` in plugin.toml changed; same component)."""
    base = built_plugin("counter-service")
    root = tmp_path_factory.mktemp("copies")
    out = []
    for i in range(3):
        dst = root / f"counter-{i}"
        shutil.copytree(base, dst)
        toml = dst / "plugin.toml"
        toml.write_text(re.sub(r'^id = "counter-service"', f'id = "counter-{i}"', toml.read_text(), count=1, flags=re.M))
        out.append(dst)
    return out


def load_all(host: Host, paths: list[Path]) -> list[LoadedPlugin]:
    plugins = [host.load(p, dev_grants=True) for p in paths]
    assert len({p.id for p in plugins}) == len(paths)
    assert len({p.digest for p in plugins}) == len(paths)  # distinct packages...
    return plugins


def assert_shared(plugins: list[LoadedPlugin]) -> None:
    # ...one compiled component and one engine (PluginInstance keeps them privately).
    first = plugins[0].instance
    assert all(p.instance._component is first._component for p in plugins)
    assert all(p.instance._engine is first._engine for p in plugins)
    assert len({id(p.instance) for p in plugins}) == len(plugins)


def test_a_cold_cache_compiles_once_and_every_plugin_shares_it(copies: list[Path], tmp_path: Path) -> None:
    with Host(cache_dir=tmp_path / "cache", compile="fast", upgrade="none", stderr=io.StringIO()) as host:
        plugins = load_all(host, copies)
        assert_shared(plugins)
        assert (host.cache.stats.misses, host.cache.stats.hits) == (1, 0)  # compiled once, never deserialized


def test_a_warm_cache_deserializes_once(copies: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with Host(cache_dir=cache, compile="fast", upgrade="none", stderr=io.StringIO()) as host:
        host.load(copies[0], dev_grants=True)
    with Host(cache_dir=cache, compile="fast", upgrade="none", stderr=io.StringIO()) as host:
        plugins = load_all(host, copies)
        assert_shared(plugins)
        assert (host.cache.stats.misses, host.cache.stats.hits) == (0, 1)


def test_without_a_cache_the_host_compiles_once(copies: list[Path]) -> None:
    with Host(cache_dir=None, compile="fast", upgrade="none", stderr=io.StringIO()) as host:
        plugins = load_all(host, copies[:2])
        assert_shared(plugins)
        assert host.cache.stats.misses == 1


def test_plugins_sharing_code_keep_their_own_state(copies: list[Path], tmp_path: Path) -> None:
    with Host(cache_dir=tmp_path / "cache", compile="fast", upgrade="none", stderr=io.StringIO()) as host:
        a, b = load_all(host, copies[:2])
        assert_shared([a, b])
        runtimes = [ServiceRuntime(p, {}, RuntimeOptions()) for p in (a, b)]
        try:
            for rt in runtimes:
                assert rt.start()["lifecycle"]["state"] == "running"
            for rt, n in zip(runtimes, (3, 1)):
                for _ in range(n):
                    assert getattr(rt.submit("inbox", "message", Case("text", "hi")), "event_id", None)
                assert rt.wait_idle(60)
            assert [rt.status()["counters"]["handled"] for rt in runtimes] == [3, 1]
            assert [rt.status()["plugin"]["instance"]["instantiations"] for rt in runtimes] == [1, 1]
        finally:
            for rt in runtimes:
                rt.stop(drain_deadline_s=0.0)
