"""pytest plugin of yoi-pdk (registered through the `pytest11` entry point).

Fixtures:
- `pdk_host`: a session-wide reference `Host` (compile cache on), closed at the end.
- `build_plugin`: `build_plugin(path) -> Path` builds a plugin once per session
  (the build cache makes unchanged rebuilds no-ops) and returns its directory.
- `fake_host`: installs a `FakeHost` for unit tests that call handlers in CPython.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from .fake_host import FakeHost


@pytest.fixture(scope="session")
def pdk_host() -> Iterator["object"]:
    from pdk.host import Host

    host = Host()
    yield host
    host.close()


@pytest.fixture(scope="session")
def build_plugin() -> Callable[[str | Path], Path]:
    from generator.build import build

    built: dict[Path, Path] = {}

    def _build(path: str | Path) -> Path:
        key = Path(path).resolve()
        if key not in built:
            build(key)
            built[key] = key
        return built[key]

    return _build


@pytest.fixture
def fake_host() -> Iterator[FakeHost]:
    with FakeHost() as host:
        yield host
