"""A generated project installs anywhere: made by `pdk new` in a folder outside this
repository, its README's install command (`python3 -m venv .venv && ... pip install -e
'.[test]'`) gets yoi-pdk from where the running yoi-pdk came from (this checkout, as
`yoi-pdk @ file://...`), and then its own tests pass, with nothing from this
repository's venv.

One venv serves the three kinds: the first project's README command runs as written
(it creates the venv); for the other two, the same command without its
`python3 -m venv .venv` step runs with that venv activated, so the expensive part
(componentize-py, wasmtime) is installed once; pip's cache is the user's as usual.

Each project is built by its own tests, with the venv's componentize-py. Once they
pass, its build/ is kept for a later test that renders the same project
(test_templates.py's routes, `shared_builds` in tests/e2e/conftest.py): the folder is
named `my-plugin` as there, so the renders are byte for byte the same."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from project_support import KINDS, ROOT, SharedBuilds, pdk_new, pytest_summary, run

from generator.requirement import installed_requirement


def readme_install_command(project: Path) -> str:
    readme = (project / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Next steps\n\n```sh\n(.*?)```", readme, re.S)
    assert block is not None
    first = block.group(1).splitlines()[0]
    assert "pip install -e '.[test]'" in first
    return first


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: no trace of this repository's venv."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_ADDOPTS"}}
    venv_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != Path(venv_bin))
    return env


@pytest.mark.slow
def test_each_kind_installs_with_its_readmes_command_in_a_fresh_venv_and_passes_its_tests(tmp_path: Path, shared_builds: SharedBuilds) -> None:
    assert not tmp_path.resolve().is_relative_to(ROOT)
    assert installed_requirement() == f"yoi-pdk @ {ROOT.as_uri()}"
    env = clean_env()
    assert shutil.which("python3", path=env["PATH"]) is not None
    shared: Path | None = None
    for kind in KINDS:
        project = tmp_path / kind / "my-plugin"
        pdk_new(kind, project)
        rendered = SharedBuilds.render_key(project)
        command = readme_install_command(project)
        if shared is None:
            shared = project / ".venv"
        else:
            steps = command.split(" && ")
            assert steps[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"], command
            command = " && ".join([f". {shared}/bin/activate", *steps[2:]])
        run(["bash", "-c", command], cwd=project, env=env)
        python = shared / "bin" / "python"
        # The project's venv has its own yoi-pdk, installed (not editable) from this checkout.
        where = run([str(python), "-c", "import pdk, sys; print(pdk.__file__); print(sys.prefix)"], cwd=tmp_path, env=env).stdout.split()
        assert Path(where[0]).is_relative_to(shared.resolve()) and not Path(where[0]).is_relative_to(ROOT)
        proc = run(["bash", "-c", f". {shared}/bin/activate && pytest -q -p no:cacheprovider"], cwd=project, env=env, check=False)
        summary = pytest_summary(proc.stdout)
        assert proc.returncode == 0, f"{kind}: {summary}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        assert "passed" in summary and "skipped" not in summary, summary
        shared_builds.offer(rendered, project)
