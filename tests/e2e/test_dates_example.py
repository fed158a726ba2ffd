"""examples/dates: a plugin with a pure-Python dependency (python-dateutil, declared in
its pyproject.toml) is built with exactly that dependency bundled and answers in
real wasmtime; the build is cached on the resolved distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from generator import build as build_mod
from pdk.host import Host

pytestmark = pytest.mark.slow


def test_the_dependency_is_bundled_and_works_in_the_component(host: Host, built_plugin: Callable[[str], Path]) -> None:
    project = built_plugin("dates")
    plugin = host.load(project, dev_grants=True)
    result = plugin.call_tool("shift_date", {"date": "Jan 31 2024", "months": 1})
    assert result.error is None, result.error
    assert result.content == {"date": "2024-02-29", "weekday": "Thursday"}
    bad = plugin.call_tool("shift_date", {"date": "not a date at all"})
    assert bad.error is not None and bad.error.code.value == "invalid_input"
    assert "not a date: 'not a date at all'" in bad.error.message


def test_the_build_record_is_keyed_on_the_resolved_distributions(built_plugin: Callable[[str], Path]) -> None:
    project = built_plugin("dates")
    plan = build_mod._load_plan(project)
    assert [d.name for d in plan.dependencies][:1] == ["python-dateutil"]
    assert build_mod.build(project, check_only=True).cached  # up to date as built
    # A plugin.toml [build] list replaces pyproject's: without the dependency the key moves.
    manifest = project / "plugin.toml"
    text = manifest.read_text()
    try:
        manifest.write_text(text.replace('module = "app"', 'module = "app"\ndependencies = []'))
        with pytest.raises(build_mod.BuildError) as info:
            build_mod.build(project, check_only=True)
        assert info.value.kind == "stale_component"
    finally:
        manifest.write_text(text)
    assert build_mod.build(project, check_only=True).cached
