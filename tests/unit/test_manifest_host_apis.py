"""Manifest validation of the host-API declarations: `[[request]]` targets (the same
parser as grants files) and `[[fs]]` roots, each problem located by its TOML path."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from pdk.package.manifest import FsDecl, ManifestError, parse_manifest

BASE = """
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
"""


def manifest(extra: str, *, base: str = BASE) -> dict[str, Any]:
    return tomllib.loads(base + extra)


def problems(extra: str, **kwargs: Any) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(manifest(extra, **kwargs))
    return [str(p) for p in info.value.problems]


def test_valid_declarations_pass() -> None:
    m = parse_manifest(manifest("""
[[request]]
scheme = "https"
host = "api.example.com"
methods = ["GET", "post"]
path_prefixes = ["/v1"]

[[request]]
scheme = "http"
host = "127.0.0.1"
port = 8765

[[fs]]
name = "data"
operations = ["read", "list"]
"""))
    assert [(t.scheme, t.host, t.port, t.methods, t.path_prefixes) for t in m.request_targets] == [
        ("https", "api.example.com", None, ("GET", "POST"), ("/v1",)),
        ("http", "127.0.0.1", 8765, (), ("/",)),
    ]
    assert m.fs_roots == (FsDecl("data", ("read", "list")),)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('scheme = "ftp"\nhost = "a.example"', "request[0].scheme: must be one of http, https"),
        ('host = "a.example"', "request[0].scheme: required"),
        ('scheme = "https"', "request[0].host: required"),
        ('scheme = "https"\nhost = "*.com"', "request[0].host: a wildcard needs at least two labels"),
        ('scheme = "https"\nhost = "a.example"\nport = 0', "request[0].port: must be an integer 1-65535"),
        ('scheme = "https"\nhost = "a.example"\nmethods = ["G E T"]', "request[0].methods: not an HTTP method"),
        ('scheme = "https"\nhost = "a.example"\npath_prefixes = ["v1"]', "request[0].path_prefixes: must start with '/'"),
        ('scheme = "https"\nhost = "a.example"\npath_prefixes = ["/v1/../admin"]', "request[0].path_prefixes: no '.' or '..' segments"),
        ('scheme = "https"\nhost = "a.example"\nheaders = {}', "request[0].headers: unknown key"),
    ],
)
def test_bad_request_targets_are_located(table: str, expected: str) -> None:
    found = problems("\n[[request]]\n" + table + "\n")
    assert any(p.startswith(expected) for p in found), found


def test_every_bad_target_is_reported() -> None:
    found = problems('\n[[request]]\nscheme = "ftp"\nhost = "a.example"\n\n[[request]]\nscheme = "https"\nhost = "b.example"\n\n[[request]]\nscheme = "https"\nhost = "c.example"\nport = 99999\n')
    assert [p.split(":")[0] for p in found] == ["request[0].scheme", "request[2].port"]


@pytest.mark.parametrize(
    ("tables", "expected"),
    [
        ('[[fs]]\noperations = ["read"]', "fs[0].name: is required"),
        ('[[fs]]\nname = "../up"\noperations = ["read"]', "fs[0].name: must be 1-64"),
        ('[[fs]]\nname = "data"', "fs[0].operations: is required"),
        ('[[fs]]\nname = "data"\noperations = []', "fs[0].operations: must name at least one"),
        ('[[fs]]\nname = "data"\noperations = ["delete"]', "fs[0].operations: unknown value 'delete'"),
        ('[[fs]]\nname = "data"\noperations = ["read"]\npath = "/srv"', "fs[0].path: host paths belong in the grants file"),
        ('[[fs]]\nname = "data"\noperations = ["read"]\n[[fs]]\nname = "data"\noperations = ["list"]', "fs[1].name: duplicate root 'data'"),
    ],
)
def test_bad_fs_roots_are_located(tables: str, expected: str) -> None:
    found = problems("\n" + tables + "\n")
    assert any(p.startswith(expected) for p in found), found


def test_declarations_need_their_host_api() -> None:
    base = BASE.replace('host_apis = ["log", "request", "fs"]', 'host_apis = ["log"]')
    found = problems('\n[[request]]\nscheme = "https"\nhost = "a.example"\n\n[[fs]]\nname = "d"\noperations = ["read"]\n', base=base)
    assert "request: [[request]] is declared but 'request' is not in host_apis" in found
    assert "fs: [[fs]] is declared but 'fs' is not in host_apis" in found
