"""`pdk check --grants FILE` end to end: the real CLI on the built examples.

Static: the plugin is never run and nothing connects (the request target points at a
port where nothing listens). The full status table is unit-tested in
`tests/unit/test_grants_view.py`; here the command, its JSON and human forms, its exit
codes and the manifest problems it reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pdk.host import open_package

pytestmark = pytest.mark.slow

PDK = Path(sys.executable).with_name("pdk")


def run_pdk(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(PDK), *map(str, args)], capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def fetch(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("http-fetch")


@pytest.fixture(scope="module")
def notes(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("notes")


def grants(path: Path, plugin: Path, body: str, *, digest: str | None = None) -> Path:
    m = open_package(plugin).manifest
    path.write_text(
        f'[[plugins]]\nid = "{m.id}"\nversion = "{m.version}"\ndigest = "{digest or open_package(plugin).digest}"\n'
        'surfaces = ["tools"]\ntools = ["*"]\n' + body,
        encoding="utf-8",
    )
    return path


def findings(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, str]]:
    return {(f["side"], f["kind"], f["item"]): f for f in doc["grants"]["findings"]}


DECLARED = "GET,POST http://127.0.0.1:8765 /api"


def test_partial_request_grant(fetch: Path, tmp_path: Path) -> None:
    g = grants(tmp_path / "g.toml", fetch, 'host_apis = ["request"]\n[[plugins.request]]\nscheme = "http"\nhost = "127.0.0.1"\nport = 8765\nmethods = ["GET"]\npath_prefixes = ["/api/public"]\n')
    proc = run_pdk("check", fetch, "--grants", g, "--json")
    assert proc.returncode == 0, proc.stderr  # coverage is a view, not a package problem
    doc = json.loads(proc.stdout)
    assert doc["ok"] and doc["grants"]["matched"]
    found = findings(doc)
    declared = found[("declared", "request", DECLARED)]
    assert declared["status"] == "partial"
    assert "POST /api" in declared["detail"] and "GET /api" in declared["detail"]
    assert found[("granted", "request", "GET http://127.0.0.1:8765 /api/public")]["status"] == "matches"
    assert found[("declared", "host_api", "request")]["status"] == "covered"
    human = run_pdk("check", fetch, "--grants", g)
    assert human.returncode == 0
    assert f"declared request  {DECLARED}: partial - not granted:" in human.stdout
    assert "grants:" in human.stdout and "matched" in human.stdout


def test_broad_and_grant_only(fetch: Path, tmp_path: Path) -> None:
    g = grants(tmp_path / "g.toml", fetch, 'host_apis = ["request", "fs"]\n'
               '[[plugins.request]]\nscheme = "http"\nhost = "127.0.0.1"\nport = 8765\nmethods = ["GET", "POST", "DELETE"]\n'
               '[[plugins.request]]\nscheme = "https"\nhost = "*.example.com"\n'
               '[[plugins.fs]]\nname = "data"\npath = "/srv/data"\noperations = ["read"]\n')
    found = findings(json.loads(run_pdk("check", fetch, "--grants", g, "--json").stdout))
    assert found[("declared", "request", DECLARED)]["status"] == "covered"
    assert found[("granted", "request", "GET,POST,DELETE http://127.0.0.1:8765 /")]["status"] == "broad"
    assert found[("granted", "request", "GET,HEAD https://*.example.com:443 /")]["status"] == "grant_only"
    assert found[("granted", "host_api", "fs")]["status"] == "grant_only"
    assert found[("granted", "fs", "data [read]")]["status"] == "grant_only"


def test_fs_roots(notes: Path, tmp_path: Path) -> None:
    g = grants(tmp_path / "g.toml", notes, 'host_apis = ["fs"]\n[[plugins.fs]]\nname = "notes"\npath = "/srv/notes"\noperations = ["read", "list"]\n')
    doc = json.loads(run_pdk("check", notes, "--grants", g, "--json").stdout)
    declared = findings(doc)[("declared", "fs", "notes [read, list, write]")]
    assert declared["status"] == "partial" and declared["detail"] == "not granted: write"
    assert "/srv/notes" not in json.dumps(doc)


def test_stale_digest_and_missing_entry(fetch: Path, tmp_path: Path) -> None:
    stale = grants(tmp_path / "stale.toml", fetch, 'host_apis = ["request"]\n', digest="sha256:" + "0" * 64)
    doc = json.loads(run_pdk("check", fetch, "--grants", stale, "--json").stdout)
    assert doc["grants"]["matched"] is False and "digest mismatch" in doc["grants"]["reason"]
    assert findings(doc)[("declared", "host_api", "request")]["status"] == "covered"
    assert "NOT MATCHED" in run_pdk("check", fetch, "--grants", stale).stdout
    other = tmp_path / "other.toml"
    other.write_text('[[plugins]]\nid = "someone-else"\nversion = "1.0.0"\ndigest = "sha256:' + "1" * 64 + '"\n')
    doc = json.loads(run_pdk("check", fetch, "--grants", other, "--json").stdout)
    assert doc["grants"]["entry_found"] is False
    assert findings(doc)[("declared", "request", DECLARED)]["status"] == "missing"


def test_a_malformed_grants_file_is_a_problem(fetch: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[plugins]]\nid = "http-fetch"\nversion = "0.1.0"\ndigest = "sha256:' + "0" * 64 + '"\n[[plugins.request]]\nscheme = "gopher"\nhost = "x"\n')
    proc = run_pdk("check", fetch, "--grants", bad, "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert any(p["path"] == "grants" and "plugins[0].request[0].scheme" in p["message"] for p in doc["problems"])
    missing = run_pdk("check", fetch, "--grants", tmp_path / "nope.toml")
    assert missing.returncode == 1 and "cannot read" in missing.stdout


def test_check_reports_bad_manifest_targets(fetch: Path, tmp_path: Path) -> None:
    copy = tmp_path / "http-fetch"
    shutil.copytree(fetch, copy)
    manifest = copy / "plugin.toml"
    manifest.write_text(manifest.read_text().replace('path_prefixes = ["/api"]', 'path_prefixes = ["api"]'))
    proc = run_pdk("check", copy, "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert any(p["path"] == "request[0].path_prefixes" for p in doc["problems"]), doc["problems"]
