"""Fixtures of the end-to-end tests, on top of tests/conftest.py: `pdk run` in the
background (tests/e2e/_pdk_run.py), and the builds of generated projects shared
across test files (tests/e2e/project_support.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest
from _pdk_run import PdkRun
from project_support import SharedBuilds


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A fresh control-socket directory (`YOI_PDK_RUNTIME_DIR`), short because a Unix
    socket path must fit in ~104 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pdk-rt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run_pdk(runtime_dir: Path) -> Iterator[Callable[..., PdkRun]]:
    """`run_pdk(*args)` starts `pdk run *args` with `runtime_dir`; every process it
    started is killed (if still running) when the test ends."""
    started: list[PdkRun] = []

    def _run(*args: str | Path) -> PdkRun:
        r = PdkRun(*args, runtime_dir=runtime_dir)
        started.append(r)
        return r

    yield _run
    for r in started:
        r.kill()


@pytest.fixture(scope="session")
def shared_builds(tmp_path_factory: pytest.TempPathFactory) -> SharedBuilds:
    """Builds of generated projects, shared with later tests that render the same
    project (tests/e2e/project_support.py)."""
    return SharedBuilds(tmp_path_factory.mktemp("shared-builds"))
