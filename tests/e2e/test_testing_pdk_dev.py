"""`pytest --pdk-dev`: a generated project's own test suite, run in a subprocess as its
author runs it, on `pdk dev`'s runner instead of a real build (pdk/testing/_dev_mode.py).

The subprocesses inherit this session's `YOI_PDK_CACHE_DIR` (tests/conftest.py), so
the dev runner (cached beside the compile cache) is built at most once per test
session (in the background, in its turn among the planned builds: tests/_prebuild.py) and
shared with tests/e2e/test_dev.py. "No componentize-py build" is checked
on disk: a real build writes `build/<module>.wasm` into the project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from project_support import KINDS, edit, pdk_new, pytest_summary

ON_RUNNER = "loaded on the dev runner, no componentize-py build"
FALLBACK = "--pdk-dev runs it from a real build (pdk build) instead"


def author_pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project, capture_output=True, text=True, env=dict(os.environ),
    )


def components_in(project: Path) -> list[str]:
    return sorted(p.relative_to(project).as_posix() for p in project.rglob("*.wasm"))


@pytest.mark.parametrize("kind", KINDS)
def test_every_templates_readme_shows_the_edit_loop(kind: str, tmp_path: Path) -> None:
    project = tmp_path / f"my-{kind}"
    pdk_new(kind, project)
    readme = (project / "README.md").read_text()
    loop = readme.split("## The edit loop\n", 1)[1].split("\n## ", 1)[0]
    assert "pdk dev . --dev-grants" in loop and "pytest --pdk-dev" in loop
    assert ("pdk call . " if kind == "tool" else "pdk send . ") in loop and "served by `pdk dev`" in loop
    assert "plain `pytest` stays the truth" in loop and "before\n`pdk pack`" in loop


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "passed"), [("tool", 8), ("service", 12)])
def test_a_projects_own_tests_pass_on_the_dev_runner_without_a_build(kind: str, passed: int, tmp_path: Path) -> None:
    project = tmp_path / f"my-{kind}"
    pdk_new(kind, project)
    proc = author_pytest(project, "--pdk-dev")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert pytest_summary(proc.stdout).startswith(f"{passed} passed")
    said = [line for line in proc.stdout.splitlines() if ON_RUNNER in line]
    assert len(said) == 1 and said[0].startswith(f"pdk: my-{kind}: {ON_RUNNER} (checks "), said  # once per plugin, not per load
    assert "with componentize-py" not in proc.stdout  # generator.build's progress line
    assert components_in(project) == []


@pytest.mark.slow
def test_a_broken_edit_fails_clearly_and_a_module_the_runner_lacks_falls_back_to_a_real_build(tmp_path: Path) -> None:
    project = tmp_path / "my-tool"
    pdk_new("tool", project)

    # Fine in CPython (the unit tests and the introspection), fatal inside the sandbox.
    edit(project / "app.py", "MAX_TIMES = 10\n", 'MAX_TIMES = 10\nif sys.platform == "wasi":\n    raise RuntimeError("only in the sandbox")\n')
    edit(project / "app.py", "from dataclasses import dataclass\n", "import sys\nfrom dataclasses import dataclass\n")
    line = (project / "app.py").read_text().splitlines().index('    raise RuntimeError("only in the sandbox")') + 1
    proc = author_pytest(project, "--pdk-dev")
    assert proc.returncode == 1, proc.stdout[-4000:]
    assert pytest_summary(proc.stdout).startswith("5 passed, 3 errors")  # the unit tests pass; the e2e fixture fails
    failure = f"--pdk-dev: my-tool: the plugin's sources did not load on the dev runner: {project.resolve()}/app.py:{line}: RuntimeError: only in the sandbox"
    assert failure in proc.stdout, proc.stdout[-4000:]
    assert "Traceback" not in proc.stdout and "_dev_mode.py" not in proc.stdout
    assert components_in(project) == []

    # A standard-library module the runner does not preload: a real build runs it.
    edit(project / "app.py", 'if sys.platform == "wasi":\n    raise RuntimeError("only in the sandbox")\n', "import pydoc_data.topics  # noqa: F401\n")
    proc = author_pytest(project, "--pdk-dev")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert pytest_summary(proc.stdout).startswith("8 passed")
    notes = [line for line in proc.stdout.splitlines() if FALLBACK in line]
    assert len(notes) == 1 and notes[0].startswith("pdk: my-tool: ") and "'pydoc_data'" in notes[0], proc.stdout[-4000:]
    assert ON_RUNNER not in proc.stdout
    assert components_in(project) == ["build/my_tool.wasm"]
