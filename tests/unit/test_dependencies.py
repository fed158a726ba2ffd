"""Declared dependencies: resolved with importlib.metadata from the build environment
(real installed distributions: fake ones written to a temporary site directory on
`sys.path`, and the venv's real C-extension `pydantic-core`), refused by name when
missing or native, bundled by copying only their files, and part of the build key."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from generator import build as build_mod
from generator import dependencies as deps
from generator.diagnose import BuildError

MANIFEST = """schema_version = 2
id = "deps-probe"
name = "Deps probe"
version = "0.1.0"
description = "Declares dependencies."
surfaces = ["tools"]
host_apis = ["log"]

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/p.wasm"

[build]
module = "app"
"""

APP = '''from pdk import Plugin

plugin = Plugin()


@plugin.tool
def ping() -> str:
    """Answer."""
    return "pong"
'''


def fake_dist(site: Path, name: str, version: str, files: dict[str, str], *, requires: tuple[str, ...] = (), tag: str = "py3-none-any") -> None:
    """Install a distribution the way pip leaves it: files plus a dist-info with a RECORD."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"] + [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n")
    record = []
    for rel, text in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text)}")
    record += [f"{info.name}/METADATA,,", f"{info.name}/WHEEL,,", f"{info.name}/RECORD,,", f"{rel.split('/')[0]}/__pycache__/x.cpython-311.pyc,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    s = tmp_path / "site"
    s.mkdir()
    monkeypatch.syspath_prepend(str(s))
    return s


def project(tmp_path: Path, build_extra: str = "", pyproject: str | None = None) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    (d / "plugin.toml").write_text(MANIFEST + build_extra)
    (d / "app.py").write_text(APP)
    if pyproject is not None:
        (d / "pyproject.toml").write_text(pyproject)
    return d


def test_resolves_declared_distributions_recursively(site: Path) -> None:
    fake_dist(site, "alpha-lib", "1.2", {"alpha/__init__.py": "A = 1\n"}, requires=("beta>=2", "gamma; python_version < '3'", "delta; extra == 'x'"))
    fake_dist(site, "beta", "2.0", {"beta.py": "B = 2\n"}, requires=("yoi-pdk",))
    resolved = deps.resolve(("alpha-lib>=1",), "plugin.toml [build] dependencies")
    assert [(d.name, d.version) for d in resolved] == [("alpha-lib", "1.2"), ("beta", "2.0")]
    assert resolved[0].files == ("alpha/__init__.py",)  # no metadata, no caches


def test_a_missing_dependency_is_refused_with_its_name(site: Path) -> None:
    with pytest.raises(BuildError) as info:
        deps.resolve(("no-such-dist-xyz",), "pyproject.toml [project] dependencies")
    assert info.value.kind == "missing_dependency"
    assert "'no-such-dist-xyz' (declared in pyproject.toml [project] dependencies) is not installed" in str(info.value)
    assert "pip install 'no-such-dist-xyz'" in str(info.value)


def test_a_missing_transitive_dependency_names_who_needs_it(site: Path) -> None:
    fake_dist(site, "alpha-lib", "1.2", {"alpha/__init__.py": ""}, requires=("not-installed-abc",))
    with pytest.raises(BuildError) as info:
        deps.resolve(("alpha-lib",), "here")
    assert "'not-installed-abc' (declared in alpha-lib's requirements) is not installed" in str(info.value)


def test_an_unsatisfied_version_is_refused(site: Path) -> None:
    fake_dist(site, "alpha-lib", "1.2", {"alpha/__init__.py": ""})
    with pytest.raises(BuildError) as info:
        deps.resolve(("alpha-lib>=2",), "here")
    assert info.value.kind == "missing_dependency" and "1.2 is installed" in str(info.value)


def test_a_real_c_extension_is_refused_naming_the_alternatives() -> None:
    with pytest.raises(BuildError) as info:
        deps.resolve(("pydantic-core",), "here")
    message = str(info.value)
    assert info.value.kind == "native_dependency"
    assert "dependency 'pydantic-core'" in message and ".so" in message
    assert "pure-Python package" in message and "wasm32-wasi wheel" in message


def test_a_platform_wheel_tag_is_refused_and_a_wasi_one_accepted(site: Path) -> None:
    fake_dist(site, "plat", "1.0", {"plat.py": ""}, tag="cp311-cp311-manylinux_2_17_x86_64")
    fake_dist(site, "wasi-ext", "1.0", {"wasi_ext/_speedups.so": "", "wasi_ext/__init__.py": ""}, tag="cp314-cp314-wasi_0_0_0_wasm32")
    with pytest.raises(BuildError) as info:
        deps.resolve(("plat",), "here")
    assert "tag cp311-cp311-manylinux_2_17_x86_64" in str(info.value)
    assert [d.name for d in deps.resolve(("wasi-ext",), "here")] == ["wasi-ext"]


def test_declared_comes_from_build_table_else_pyproject(tmp_path: Path) -> None:
    d = project(tmp_path, pyproject='[project]\nname = "x"\ndependencies = ["alpha-lib>=1", "yoi-pdk"]\n')
    assert deps.declared(d, None) == (("alpha-lib>=1", "yoi-pdk"), "pyproject.toml [project] dependencies")
    assert deps.declared(d, ("beta",)) == (("beta",), "plugin.toml [build] dependencies")
    assert deps.declared(d, ()) == ((), "plugin.toml [build] dependencies")


def test_stage_copies_only_the_distributions_files(site: Path, tmp_path: Path) -> None:
    fake_dist(site, "alpha-lib", "1.2", {"alpha/__init__.py": "A = 1\n", "alpha/data.txt": "x"})
    (site / "unrelated.py").write_text("")
    dest = tmp_path / "staged"
    deps.stage(deps.resolve(("alpha-lib",), "here"), dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == ["alpha/__init__.py", "alpha/data.txt"]


def test_the_build_key_follows_the_installed_distributions(site: Path, tmp_path: Path) -> None:
    fake_dist(site, "alpha-lib", "1.2", {"alpha/__init__.py": "A = 1\n"})
    d = project(tmp_path, '\ndependencies = ["alpha-lib"]\n')
    key = build_mod._input_key(build_mod._load_plan(d))
    assert key == build_mod._input_key(build_mod._load_plan(d))
    # "pip install --upgrade": a new version with new file hashes in its RECORD.
    for p in site.glob("alpha_lib-*.dist-info"):
        for f in p.iterdir():
            f.unlink()
        p.rmdir()
    fake_dist(site, "alpha-lib", "1.3", {"alpha/__init__.py": "A = 2\n"})
    upgraded = build_mod._input_key(build_mod._load_plan(d))
    assert upgraded != key
    (d / "plugin.toml").write_text(MANIFEST)  # nothing declared: not part of the key
    assert build_mod._input_key(build_mod._load_plan(d)) not in (key, upgraded)


@pytest.mark.parametrize(("declared", "kind"), [("pydantic-core", "native_dependency"), ("no-such-dist-xyz", "missing_dependency")])
def test_build_refuses_before_componentize_starts(tmp_path: Path, declared: str, kind: str) -> None:
    d = project(tmp_path, pyproject=f'[project]\nname = "x"\ndependencies = ["{declared}"]\n')

    def started() -> None:
        raise AssertionError("componentize-py must not start")

    with pytest.raises(BuildError) as info:
        build_mod.build(d, on_componentize=started)
    assert info.value.kind == kind and repr(declared) in str(info.value)
    with pytest.raises(BuildError):
        build_mod.build(d, check_only=True)
