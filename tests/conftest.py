"""Shared fixtures, on top of pdk.testing's pytest plugin (`build_plugin`, `pdk_host`,
`http_server`, ...): components are built once per test session and shared.

`built_plugin("text-tools")` copies `examples/text-tools` (or `tests/plugins/<name>`)
into a session temporary directory and builds it there with pdk.testing's
`build_plugin` (the real componentize-py), and returns the copy's path; `host` is
pdk.testing's session `pdk_host`. The compile cache lives in the session directory
too, so the first load compiles and every later load deserializes.

The plugins the selected tests ask `built_plugin` for are built in the background, one
at a time in the order the tests first need them (tests/_prebuild.py), from the first
test that asks for one: a test waits only for its own plugin's build, and the next
builds run on the second core while it runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest
from _prebuild import Prebuilder, planned_plugins

from pdk.host import Host

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "examples", ROOT / "tests" / "plugins")


def plugin_source(name: str) -> Path:
    for base in SOURCES:
        if (base / name / "plugin.toml").is_file():
            return base / name
    raise LookupError(f"no example or test plugin named {name!r}")


PLAN = pytest.StashKey[list[str]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    # After deselection (-m, -k): only what the selected tests use is prebuilt.
    names = sorted({p.parent.name for base in SOURCES for p in base.glob("*/plugin.toml")})
    session.config.stash[PLAN] = planned_plugins(session.items, names)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pdk-session")


@pytest.fixture(scope="session", autouse=True)
def _isolated_compile_cache(session_dir: Path) -> Iterator[None]:
    # Tests never touch the user's cache; one cache per session keeps loads fast.
    old = os.environ.get("YOI_PDK_CACHE_DIR")
    os.environ["YOI_PDK_CACHE_DIR"] = str(session_dir / "compile-cache")
    yield
    if old is None:
        os.environ.pop("YOI_PDK_CACHE_DIR", None)
    else:
        os.environ["YOI_PDK_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _isolated_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `pdk run` keeps durable state under $XDG_STATE_HOME: never the user's, and a
    # fresh one per test, so that no test sees another's events or dead letters.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def _copy_source(name: str, dest: Path) -> Path:
    if not dest.exists():
        shutil.copytree(plugin_source(name), dest, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
    return dest


@pytest.fixture(scope="session")
def built_plugin(
    pytestconfig: pytest.Config, session_dir: Path, build_plugin: Callable[[str | Path], Path]
) -> Iterator[Callable[[str], Path]]:
    built: dict[str, Path] = {}
    prebuilder = Prebuilder(pytestconfig, lambda name: _copy_source(name, session_dir / "plugins" / name))
    prebuilder.start(pytestconfig.stash.get(PLAN, []))

    def _built(name: str) -> Path:
        if name not in built:
            dest = prebuilder.wait(name)  # its background build, if it has one
            if dest is None:
                dest = _copy_source(name, session_dir / "plugins" / name)
            build_plugin(dest)  # a no-op after a background build (the build cache is fresh)
            built[name] = dest
        return built[name]

    yield _built
    prebuilder.close()


@pytest.fixture(scope="session")
def host(pdk_host: Host) -> Host:
    """pdk.testing's session `Host`, under the name these tests use."""
    return pdk_host
