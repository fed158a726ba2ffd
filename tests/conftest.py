"""Shared fixtures, on top of pdk.testing's pytest plugin (`build_plugin`, `pdk_host`,
`http_server`, ...): components are built once per test session and shared.

`built_plugin("text-tools")` copies `examples/text-tools` (or `tests/plugins/<name>`)
into a session temporary directory and builds it there with pdk.testing's
`build_plugin` (the real componentize-py), and returns the copy's path; `host` is
pdk.testing's session `pdk_host`. The compile cache lives in the session directory
too, so the first load compiles and every later load deserializes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from pdk.host import Host

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "examples", ROOT / "tests" / "plugins")


def plugin_source(name: str) -> Path:
    for base in SOURCES:
        if (base / name / "plugin.toml").is_file():
            return base / name
    raise LookupError(f"no example or test plugin named {name!r}")


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


@pytest.fixture(scope="session")
def built_plugin(session_dir: Path, build_plugin: Callable[[str | Path], Path]) -> Callable[[str], Path]:
    built: dict[str, Path] = {}

    def _built(name: str) -> Path:
        if name not in built:
            dest = session_dir / "plugins" / name
            if not dest.exists():
                shutil.copytree(plugin_source(name), dest, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
            build_plugin(dest)
            built[name] = dest
        return built[name]

    return _built


@pytest.fixture(scope="session")
def host(pdk_host: Host) -> Host:
    """pdk.testing's session `Host`, under the name these tests use."""
    return pdk_host
