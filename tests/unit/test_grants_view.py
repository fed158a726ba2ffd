"""`generator.grants_view`: how a grants file covers a manifest, judged statically."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from generator.grants_view import Finding, grants_view
from pdk.host.grants import GrantsFile
from pdk.package.manifest import parse_manifest

DIGEST = "sha256:" + "c" * 64

MANIFEST = """
schema_version = 2
id = "p"
name = "P"
version = "0.1.0"
surfaces = ["tools"]
host_apis = ["log", "request", "fs"]

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/p.wasm"

[[tools]]
name = "one"
description = "One."

[[tools]]
name = "two"
description = "Two."

[[request]]
scheme = "https"
host = "api.example.com"
methods = ["GET", "POST"]
path_prefixes = ["/v1"]

[[request]]
scheme = "https"
host = "*.cdn.example.com"

[[fs]]
name = "data"
operations = ["read", "list"]

[[fs]]
name = "out"
operations = ["write"]
"""


def view(grant_body: str, *, digest: str = DIGEST, version: str = "0.1.0") -> dict[tuple[str, str, str], Finding]:
    manifest = parse_manifest(tomllib.loads(MANIFEST))
    text = f'[[plugins]]\nid = "p"\nversion = "{version}"\ndigest = "{digest}"\n' + grant_body
    v = grants_view(manifest, DIGEST, GrantsFile.parse(text), "grants.toml")
    json.dumps(v.to_json())  # the --json document is JSON
    return {(f.side, f.kind, f.item): f for f in v.findings}


def status(found: dict[tuple[str, str, str], Finding], side: str, kind: str, item: str) -> str:
    return found[(side, kind, item)].status


API = "GET,POST https://api.example.com:443 /v1"
CDN = "GET,HEAD https://*.cdn.example.com:443 /"


def test_everything_covered_by_exact_grants() -> None:
    found = view("""surfaces = ["tools"]
tools = ["one", "two"]
host_apis = ["request", "fs"]
[[plugins.request]]
scheme = "https"
host = "api.example.com"
methods = ["GET", "POST"]
path_prefixes = ["/v1"]
[[plugins.request]]
scheme = "https"
host = "*.cdn.example.com"
[[plugins.fs]]
name = "data"
path = "/srv/data"
operations = ["read", "list"]
[[plugins.fs]]
name = "out"
path = "/srv/out"
operations = ["write"]
""")
    declared = {k: f.status for k, f in found.items() if k[0] == "declared"}
    granted = {k: f.status for k, f in found.items() if k[0] == "granted"}
    assert set(declared.values()) == {"covered"}, declared
    assert set(granted.values()) == {"matches"}, granted


def test_partial_missing_broad_and_grant_only() -> None:
    found = view("""surfaces = ["tools"]
tools = ["one", "three"]
host_apis = ["request", "fs", "websocket"]
[[plugins.request]]
scheme = "https"
host = "api.example.com"
methods = ["GET"]
path_prefixes = ["/"]
[[plugins.request]]
scheme = "https"
host = "img.cdn.example.com"
[[plugins.request]]
scheme = "https"
host = "elsewhere.example.org"
[[plugins.fs]]
name = "data"
path = "/srv/data"
operations = ["read", "list", "write"]
[[plugins.fs]]
name = "out"
path = "/srv/out"
operations = ["read"]
[[plugins.fs]]
name = "extra"
path = "/srv/extra"
operations = ["read"]
""")
    assert status(found, "declared", "tool", "two") == "missing"
    assert status(found, "granted", "tool", "three") == "grant_only"
    assert status(found, "granted", "host_api", "websocket") == "grant_only"
    # POST not granted; the GET grant is broader in paths than the declaration.
    api = found[("declared", "request", API)]
    assert api.status == "partial" and "POST /v1" in api.detail
    broad = found[("granted", "request", "GET https://api.example.com:443 /")]
    assert broad.status == "broad" and "GET /" in broad.detail
    # A wildcard declared, one host of it granted.
    cdn = found[("declared", "request", CDN)]
    assert cdn.status == "partial" and "narrower set of hosts" in cdn.detail
    assert status(found, "granted", "request", "GET,HEAD https://img.cdn.example.com:443 /") == "matches"
    assert status(found, "granted", "request", "GET,HEAD https://elsewhere.example.org:443 /") == "grant_only"
    assert status(found, "declared", "fs", "data [read, list]") == "covered"
    assert status(found, "granted", "fs", "data [read, list, write]") == "broad"
    assert status(found, "declared", "fs", "out [write]") == "missing"
    assert status(found, "granted", "fs", "extra [read]") == "grant_only"


def test_split_grants_cover_one_target_together() -> None:
    found = view("""host_apis = ["request"]
[[plugins.request]]
scheme = "https"
host = "api.example.com"
methods = ["GET"]
path_prefixes = ["/v1"]
[[plugins.request]]
scheme = "https"
host = "api.example.com"
methods = ["POST"]
path_prefixes = ["/v1"]
""")
    assert status(found, "declared", "request", API) == "covered"


def test_targets_without_the_host_api_are_missing() -> None:
    found = view("""host_apis = []
[[plugins.request]]
scheme = "https"
host = "api.example.com"
methods = ["GET", "POST"]
path_prefixes = ["/v1"]
""")
    api = found[("declared", "request", API)]
    assert api.status == "missing" and "not granted" in api.detail
    assert status(found, "declared", "host_api", "request") == "missing"
    assert status(found, "declared", "fs", "data [read, list]") == "missing"


def test_a_stale_digest_is_not_matched_but_still_judged() -> None:
    manifest = parse_manifest(tomllib.loads(MANIFEST))
    grants = GrantsFile.parse(f'[[plugins]]\nid = "p"\nversion = "0.1.0"\ndigest = "sha256:{"d" * 64}"\nsurfaces = ["tools"]\n')
    v = grants_view(manifest, DIGEST, grants, "grants.toml")
    assert not v.matched and "digest mismatch" in v.reason and v.entry_found
    assert any(f.kind == "surface" and f.status == "covered" for f in v.findings)


def test_no_entry_for_the_plugin() -> None:
    manifest = parse_manifest(tomllib.loads(MANIFEST))
    v = grants_view(manifest, DIGEST, GrantsFile.parse(""), "grants.toml")
    assert not v.matched and not v.entry_found
    assert {f.status for f in v.findings} == {"missing"}
