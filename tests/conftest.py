"""Shared fixtures, on top of pdk.testing's pytest plugin (`build_plugin`, `pdk_host`,
`http_server`, ...): components are built once per test session and shared.

`built_plugin("text-tools")` copies `examples/text-tools` (or `tests/plugins/<name>`)
into a session temporary directory and builds it there with pdk.testing's
`build_plugin` (the real componentize-py), and returns the copy's path; `host` is
pdk.testing's session `pdk_host`. The compile cache lives in the session directory
too, so the first load compiles and every later load deserializes.

The plugins the selected tests ask `built_plugin` for, test_codec.py's echo component
and `pdk dev`'s runner are built in the background by `prebuilder`, one at a time in
the order the tests first need them (tests/_prebuild.py), from the session's first
test: a test waits only for its own component's build, and the next builds run on the
second core while it runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest
from _prebuild import CODEC_ECHO, DEV_RUNNER, Prebuilder, build_codec_echo, planned_jobs, precompile

from generator.build import build
from generator.dev_runner import ensure_runner
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
    session.config.stash[PLAN] = planned_jobs(session.items, names)


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


def _make(name: str, session_dir: Path) -> Path:
    """A background job of `prebuilder` (tests/_prebuild.py)."""
    if name == CODEC_ECHO:
        staging = session_dir / "codec-echo"
        staging.mkdir()
        wasm = build_codec_echo(staging)
        precompile(wasm)
        return wasm
    if name == DEV_RUNNER:
        # Any plugin without declared dependencies has the same runner (its key:
        # generator/dev_runner.py); it lands in the session's cache (`YOI_PDK_CACHE_DIR`/..).
        return ensure_runner(_copy_source("text-tools", session_dir / "dev-runner-source")).path
    dest = _copy_source(name, session_dir / "plugins" / name)
    build(dest)
    return dest


@pytest.fixture(scope="session", autouse=True)
def prebuilder(pytestconfig: pytest.Config, session_dir: Path, _isolated_compile_cache: None) -> Iterator[Prebuilder]:
    """The background builds (tests/_prebuild.py), started at the session's first test."""
    background = Prebuilder(pytestconfig, lambda name: _make(name, session_dir))
    background.start(pytestconfig.stash.get(PLAN, []))
    yield background
    background.close()


@pytest.fixture(scope="session")
def built_plugin(prebuilder: Prebuilder, session_dir: Path, build_plugin: Callable[[str | Path], Path]) -> Callable[[str], Path]:
    built: dict[str, Path] = {}

    def _built(name: str) -> Path:
        if name not in built:
            dest = prebuilder.wait(name)  # its background build, if it has one
            if dest is None:
                dest = _copy_source(name, session_dir / "plugins" / name)
            build_plugin(dest)  # a no-op after a background build (the build cache is fresh)
            built[name] = dest
        return built[name]

    return _built


@pytest.fixture(scope="session")
def host(pdk_host: Host) -> Host:
    """pdk.testing's session `Host`, under the name these tests use."""
    return pdk_host
