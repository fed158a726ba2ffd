"""Grants files: parsing, pinning to id + version + digest, dev grants."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pdk.host.grants import (
    FsRoot,
    GrantsError,
    GrantsErrorCode,
    GrantSet,
    GrantsFile,
    SecretRef,
)
from pdk.package.manifest import Manifest, ManifestError, Runtime, parse_manifest, parse_manifest_text
from pdk.package.targets import Target

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32

FULL = f"""
[[plugins]]
id = "text-tools"
version = "0.1.0"
digest = "{DIGEST}"
surfaces = ["tools", "services"]
tools = ["word_count"]
host_apis = ["request", "fs", "websocket"]
config = {{ greeting = "hi", limits = {{ max = 3 }}, tags = ["a", "b"] }}

[[plugins.request]]
scheme = "https"
host = "api.example.com"
methods = ["GET"]
path_prefixes = ["/v1"]

[[plugins.websocket]]
scheme = "wss"
host = "chat.example.com"
path_prefixes = ["/socket"]

[[plugins.fs]]
name = "data"
path = "/srv/plugin-data"
operations = ["read", "list"]

[[plugins.secrets]]
name = "api_token"
env = "TEXT_TOOLS_TOKEN"
header = "Authorization"

[[plugins.secrets]]
name = "signing_key"
file = "/run/secrets/signing.key"
"""

MINIMAL = f"""
[[plugins]]
id = "text-tools"
version = "0.1.0"
digest = "{DIGEST}"
"""


def full_grant() -> GrantSet:
    return GrantsFile.parse(FULL).for_package("text-tools", "0.1.0", DIGEST)


def test_full_file_parses() -> None:
    grants = GrantsFile.parse(FULL, source="grants.toml")
    assert grants.source == "grants.toml"
    (plugin,) = grants.plugins
    assert plugin.id == "text-tools"
    assert plugin.version == "0.1.0"
    assert plugin.digest == DIGEST
    assert plugin.surfaces == ("tools", "services")
    assert plugin.tools == ("word_count",)
    assert plugin.host_apis == ("request", "fs", "websocket")
    assert dict(plugin.config) == {"greeting": "hi", "limits": {"max": 3}, "tags": ["a", "b"]}
    assert plugin.request_targets == (
        Target(scheme="https", host="api.example.com", port=None, methods=("GET",), path_prefixes=("/v1",)),
    )
    assert plugin.websocket_targets == (
        Target(scheme="wss", host="chat.example.com", port=None, methods=(), path_prefixes=("/socket",)),
    )
    assert plugin.fs_roots == (FsRoot(name="data", path="/srv/plugin-data", operations=("read", "list")),)
    assert plugin.secrets == (
        SecretRef(name="api_token", env="TEXT_TOOLS_TOKEN", header="Authorization"),
        SecretRef(name="signing_key", file="/run/secrets/signing.key"),
    )


def test_minimal_grant_enables_only_log() -> None:
    grant = GrantsFile.parse(MINIMAL).for_package("text-tools", "0.1.0", DIGEST)
    assert grant.matched and not grant.dev
    assert not grant.allows_surface("tools")
    assert not grant.allows_tool("word_count")
    assert grant.allows_host_api("log")
    assert not grant.allows_host_api("request")
    assert dict(grant.config) == {}


def test_empty_file_grants_nothing() -> None:
    grants = GrantsFile.parse("")
    assert grants.plugins == ()
    result = grants.for_package("text-tools", "0.1.0", DIGEST)
    assert not result.matched
    assert "no grant" in result.reason


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "grants.toml"
    path.write_text(FULL, encoding="utf-8")
    assert GrantsFile.load(path).plugins[0].id == "text-tools"


def test_matching_grant_enables_what_it_lists() -> None:
    grant = full_grant()
    assert grant.matched
    assert grant.reason.startswith("granted")
    assert grant.allows_surface("tools") and grant.allows_surface("services")
    assert not grant.allows_surface("ingresses")
    assert grant.allows_tool("word_count")
    assert not grant.allows_tool("word_count2")
    assert not grant.allows_tool("word")  # exact names, no prefixes
    assert grant.allows_host_api("request") and grant.allows_host_api("fs")
    assert grant.allows_fs("data", "read") and not grant.allows_fs("data", "write")
    assert not grant.allows_fs("other", "read")
    assert grant.fs_root("data") == FsRoot("data", "/srv/plugin-data", ("read", "list"))
    assert len(grant.request_targets) == 1 and len(grant.websocket_targets) == 1
    assert len(grant.secrets) == 2


def test_grant_checks_urls_against_declared_targets() -> None:
    grant = full_grant()
    declared = [Target.from_mapping({"scheme": "https", "host": "api.example.com", "path_prefixes": ["/"]})]
    assert grant.check_request("https://api.example.com/v1/x", "GET", declared).allowed
    assert not grant.check_request("https://api.example.com/v1evil", "GET", declared).allowed
    assert not grant.check_request("https://api.example.com/v1/x", "GET", []).allowed
    ws_declared = [Target.from_mapping({"scheme": "wss", "host": "chat.example.com"}, websocket=True)]
    assert grant.check_websocket("wss://chat.example.com/socket", ws_declared).allowed


def test_request_needs_the_host_api() -> None:
    text = FULL.replace('host_apis = ["request", "fs", "websocket"]', 'host_apis = ["fs"]')
    grant = GrantsFile.parse(text).for_package("text-tools", "0.1.0", DIGEST)
    declared = list(grant.request_targets)
    result = grant.check_request("https://api.example.com/v1/x", "GET", declared)
    assert not result.allowed and "request" in result.reason
    assert not grant.check_websocket("wss://chat.example.com/socket", list(grant.websocket_targets)).allowed


def test_wildcard_tools() -> None:
    grant = GrantsFile.parse(FULL.replace('tools = ["word_count"]', 'tools = ["*"]')).for_package(
        "text-tools", "0.1.0", DIGEST
    )
    assert grant.allows_tool("word_count") and grant.allows_tool("anything")


def test_tools_need_the_tools_surface() -> None:
    text = FULL.replace('surfaces = ["tools", "services"]', 'surfaces = ["services"]')
    grant = GrantsFile.parse(text).for_package("text-tools", "0.1.0", DIGEST)
    assert not grant.allows_tool("word_count")


@pytest.mark.parametrize(
    ("plugin_id", "version", "digest", "field"),
    [
        ("text-tools2", "0.1.0", DIGEST, "no grant for plugin id"),
        ("Text-Tools", "0.1.0", DIGEST, "no grant for plugin id"),  # ids are exact
        ("text-tools", "0.1.1", DIGEST, "version mismatch"),
        ("text-tools", "0.1.0-rc1", DIGEST, "version mismatch"),
        ("text-tools", "0.1.0", OTHER_DIGEST, "digest mismatch"),
        ("text-tools", "0.1.0", DIGEST[:-1] + "0", "digest mismatch"),
        ("text-tools", "0.1.0", "sha256:", "digest mismatch"),
        ("text-tools", "0.1.0", "", "digest mismatch"),
    ],
)
def test_mismatch_enables_nothing(plugin_id: str, version: str, digest: str, field: str) -> None:
    grant = GrantsFile.parse(FULL).for_package(plugin_id, version, digest)
    assert not grant.matched
    assert field in grant.reason
    assert grant.surfaces == frozenset() and grant.tools == frozenset() and grant.host_apis == frozenset()
    assert grant.request_targets == () and grant.fs_roots == () and grant.websocket_targets == ()
    assert grant.secrets == () and dict(grant.config) == {}
    for surface in ("tools", "services", "ingresses"):
        assert not grant.allows_surface(surface)
    assert not grant.allows_tool("word_count")
    for api in ("log", "request", "fs", "websocket"):
        assert not grant.allows_host_api(api)
    assert not grant.allows_fs("data", "read")
    assert not grant.check_request("https://api.example.com/v1/x", "GET", []).allowed


def test_digest_reason_is_short() -> None:
    reason = GrantsFile.parse(FULL).for_package("text-tools", "0.1.0", OTHER_DIGEST).reason
    assert DIGEST not in reason and OTHER_DIGEST not in reason


def test_digest_hex_case_does_not_matter() -> None:
    upper = FULL.replace(DIGEST, DIGEST.upper().replace("SHA256:", "sha256:"))
    grant = GrantsFile.parse(upper).for_package("text-tools", "0.1.0", DIGEST)
    assert grant.matched
    assert GrantsFile.parse(FULL).for_package("text-tools", "0.1.0", "sha256:" + "AB" * 32).matched


def test_two_versions_of_one_plugin() -> None:
    text = MINIMAL + MINIMAL.replace('"0.1.0"', '"0.2.0"').replace(DIGEST, OTHER_DIGEST)
    grants = GrantsFile.parse(text)
    assert grants.for_package("text-tools", "0.1.0", DIGEST).matched
    assert grants.for_package("text-tools", "0.2.0", OTHER_DIGEST).matched
    # the digest of one version does not unlock the other
    assert not grants.for_package("text-tools", "0.2.0", DIGEST).matched


# --- malformed files -----------------------------------------------------------------------


def entry(**changes: Any) -> str:
    """MINIMAL with extra lines appended to the plugin table."""
    return MINIMAL + "\n".join(f"{key} = {value}" for key, value in changes.items()) + "\n"


@pytest.mark.parametrize(
    ("text", "code", "key"),
    [
        ("[[plugins]\nid = 1", GrantsErrorCode.SYNTAX, ""),
        ("plugins = 3", GrantsErrorCode.INVALID_VALUE, "plugins"),
        ("[plugins]\nid = 'x'", GrantsErrorCode.INVALID_VALUE, "plugins"),
        ("[enabled]\nx = 1", GrantsErrorCode.UNKNOWN_KEY, "enabled"),
        (MINIMAL.replace('id = "text-tools"\n', ""), GrantsErrorCode.MISSING_KEY, "plugins[0].id"),
        (MINIMAL.replace('version = "0.1.0"\n', ""), GrantsErrorCode.MISSING_KEY, "plugins[0].version"),
        (MINIMAL.replace(f'digest = "{DIGEST}"\n', ""), GrantsErrorCode.MISSING_KEY, "plugins[0].digest"),
        (MINIMAL.replace('"text-tools"', '"-bad"'), GrantsErrorCode.INVALID_VALUE, "plugins[0].id"),
        (MINIMAL.replace('"text-tools"', "7"), GrantsErrorCode.INVALID_VALUE, "plugins[0].id"),
        (MINIMAL.replace(DIGEST, "sha256:abc"), GrantsErrorCode.INVALID_VALUE, "plugins[0].digest"),
        (MINIMAL.replace(DIGEST, "md5:" + "ab" * 16), GrantsErrorCode.INVALID_VALUE, "plugins[0].digest"),
        (entry(permissions="[]"), GrantsErrorCode.UNKNOWN_KEY, "plugins[0].permissions"),
        (entry(surfaces='["tools", "timers"]'), GrantsErrorCode.INVALID_VALUE, "plugins[0].surfaces"),
        (entry(surfaces='"tools"'), GrantsErrorCode.INVALID_VALUE, "plugins[0].surfaces"),
        (entry(host_apis='["network"]'), GrantsErrorCode.INVALID_VALUE, "plugins[0].host_apis"),
        (entry(tools='["word_*"]'), GrantsErrorCode.INVALID_VALUE, "plugins[0].tools"),
        (entry(tools="[1]"), GrantsErrorCode.INVALID_VALUE, "plugins[0].tools"),
        (entry(config='"x"'), GrantsErrorCode.INVALID_VALUE, "plugins[0].config"),
        (entry(config="{ when = 2024-01-01 }"), GrantsErrorCode.INVALID_VALUE, "plugins[0].config.when"),
        (entry(config="{ a = [{ t = 10:00:00 }] }"), GrantsErrorCode.INVALID_VALUE, "plugins[0].config.a[0].t"),
        (entry(config=f'{{ big = "{"x" * 70000}" }}'), GrantsErrorCode.INVALID_VALUE, "plugins[0].config"),
        (entry(request="{ scheme = 'https' }"), GrantsErrorCode.INVALID_VALUE, "plugins[0].request"),
        (
            MINIMAL + "[[plugins.request]]\nscheme = 'https'\nhost = 'h.example'\nport = 70000\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].request[0].port",
        ),
        (
            MINIMAL + "[[plugins.request]]\nscheme = 'https'\nhost = 'h.example'\npaths = ['/']\n",
            GrantsErrorCode.UNKNOWN_KEY,
            "plugins[0].request[0].paths",
        ),
        (MINIMAL + "[[plugins.request]]\nscheme = 'https'\n", GrantsErrorCode.MISSING_KEY, "plugins[0].request[0].host"),
        (
            MINIMAL + "[[plugins.request]]\nscheme = 'https'\nhost = 'h.example'\npath_prefixes = ['/v1/../x']\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].request[0].path_prefixes",
        ),
        (
            MINIMAL + "[[plugins.websocket]]\nscheme = 'https'\nhost = 'h.example'\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].websocket[0].scheme",
        ),
        (
            MINIMAL + "[[plugins.websocket]]\nscheme = 'wss'\nhost = 'h.example'\nmethods = ['GET']\n",
            GrantsErrorCode.UNKNOWN_KEY,
            "plugins[0].websocket[0].methods",
        ),
        (
            MINIMAL + "[[plugins.fs]]\nname = 'data'\noperations = ['read']\n",
            GrantsErrorCode.MISSING_KEY,
            "plugins[0].fs[0].path",
        ),
        (
            MINIMAL + "[[plugins.fs]]\nname = 'data'\npath = 'relative/dir'\noperations = ['read']\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].fs[0].path",
        ),
        (
            MINIMAL + "[[plugins.fs]]\nname = 'data'\npath = '/srv/x'\n",
            GrantsErrorCode.MISSING_KEY,
            "plugins[0].fs[0].operations",
        ),
        (
            MINIMAL + "[[plugins.fs]]\nname = 'data'\npath = '/srv/x'\noperations = ['delete']\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].fs[0].operations",
        ),
        (
            MINIMAL + "[[plugins.fs]]\nname = '../x'\npath = '/srv/x'\noperations = ['read']\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].fs[0].name",
        ),
        (
            MINIMAL + "[[plugins.fs]]\nname = 'd'\npath = '/a'\noperations = []\nmode = 1\n",
            GrantsErrorCode.UNKNOWN_KEY,
            "plugins[0].fs[0].mode",
        ),
        (
            MINIMAL
            + "[[plugins.fs]]\nname = 'd'\npath = '/a'\noperations = []\n"
            + "[[plugins.fs]]\nname = 'd'\npath = '/b'\noperations = []\n",
            GrantsErrorCode.DUPLICATE,
            "plugins[0].fs[1].name",
        ),
        (MINIMAL + "[[plugins.secrets]]\nname = 'tok'\n", GrantsErrorCode.INVALID_VALUE, "plugins[0].secrets[0]"),
        (
            MINIMAL + "[[plugins.secrets]]\nname = 'tok'\nenv = 'A'\nfile = '/x'\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].secrets[0]",
        ),
        (MINIMAL + "[[plugins.secrets]]\nenv = 'A'\n", GrantsErrorCode.MISSING_KEY, "plugins[0].secrets[0].name"),
        (
            MINIMAL + "[[plugins.secrets]]\nname = 'tok'\nenv = 'BAD-NAME'\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].secrets[0].env",
        ),
        (
            MINIMAL + "[[plugins.secrets]]\nname = 'tok'\nfile = 'rel.txt'\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].secrets[0].file",
        ),
        (
            MINIMAL + "[[plugins.secrets]]\nname = 'tok'\nenv = 'A'\nheader = 'Bad Header'\n",
            GrantsErrorCode.INVALID_VALUE,
            "plugins[0].secrets[0].header",
        ),
        (
            MINIMAL + "[[plugins.secrets]]\nname = 'tok'\nenv = 'A'\nvalue = 'literal'\n",
            GrantsErrorCode.UNKNOWN_KEY,
            "plugins[0].secrets[0].value",
        ),
        (
            MINIMAL + "[[plugins.secrets]]\nname = 'tok'\nenv = 'A'\n[[plugins.secrets]]\nname = 'tok'\nenv = 'B'\n",
            GrantsErrorCode.DUPLICATE,
            "plugins[0].secrets[1].name",
        ),
        (MINIMAL + MINIMAL.replace(DIGEST, OTHER_DIGEST), GrantsErrorCode.DUPLICATE, "plugins[1]"),
    ],
)
def test_malformed_files(text: str, code: GrantsErrorCode, key: str) -> None:
    with pytest.raises(GrantsError) as err:
        GrantsFile.parse(text, source="grants.toml")
    error = err.value
    assert error.code == code
    assert error.key == key
    assert error.source == "grants.toml"
    assert str(error).startswith("grants.toml: " + (key + ": " if key else ""))
    assert len(str(error)) < 400  # bounded: no echo of huge values


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(GrantsError) as err:
        GrantsFile.load(missing)
    assert err.value.code == GrantsErrorCode.UNREADABLE
    assert str(missing) in str(err.value)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "grants.toml"
    path.write_bytes(b"\xff\xfe[[plugins]]")
    with pytest.raises(GrantsError) as err:
        GrantsFile.load(path)
    assert err.value.code == GrantsErrorCode.SYNTAX


def test_error_codes_are_snake_case_strings() -> None:
    assert {code.value for code in GrantsErrorCode} == {
        "unreadable",
        "syntax",
        "unknown_key",
        "missing_key",
        "invalid_value",
        "duplicate",
    }


# --- dev grants ----------------------------------------------------------------------------

MANIFEST = """
schema_version = 2
id = "text-tools"
name = "Text tools"
version = "0.1.0"
description = "Counts words."
surfaces = ["tools"]
host_apis = ["request", "fs", "websocket"]

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/plugin.wasm"

[[tools]]
name = "word_count"
description = "Count the words in a text."
[tools.input_schema]
type = "object"

[[tools]]
name = "reshape"
description = "Reshape JSON."
[tools.input_schema]
type = "object"

[[request]]
scheme = "https"
host = "api.example.com"
port = 443
methods = ["GET"]
path_prefixes = ["/v1"]

[[fs]]
name = "data"
operations = ["read", "list"]

[[websocket]]
scheme = "wss"
host = "chat.example.com"
path_prefixes = ["/socket"]
"""


def test_dev_grants_mirror_the_manifest() -> None:
    manifest = tomllib.loads(MANIFEST)
    grant = GrantSet.dev_grants(parse_manifest_text(MANIFEST))
    assert grant.dev and grant.matched
    assert "dev grants" in grant.reason
    assert (grant.plugin_id, grant.version, grant.digest) == ("text-tools", "0.1.0", None)
    assert grant.surfaces == frozenset({"tools"})
    assert grant.tools == frozenset({"word_count", "reshape"})
    assert grant.allows_tool("word_count") and grant.allows_tool("reshape")
    assert not grant.allows_tool("other")
    assert not grant.allows_surface("services")
    assert grant.host_apis == frozenset({"request", "fs", "websocket"})
    assert grant.allows_host_api("websocket")
    assert grant.request_targets == (Target.from_mapping(manifest["request"][0]),)
    assert grant.fs_roots == (FsRoot(name="data", path=None, operations=("read", "list")),)
    assert grant.websocket_targets == (Target.from_mapping(manifest["websocket"][0], websocket=True),)
    assert grant.secrets == () and dict(grant.config) == {}
    # declared == granted: the manifest's own targets are exactly what is reachable
    declared = list(grant.request_targets)
    assert grant.check_request("https://api.example.com/v1/items", "GET", declared).allowed
    assert not grant.check_request("https://api.example.com/v1evil", "GET", declared).allowed
    assert not grant.check_request("https://api.example.com/v1/items", "POST", declared).allowed


def test_dev_grants_of_an_empty_manifest_allow_nothing_but_log() -> None:
    bare = Manifest(id="x", name="X", version="0.1.0", description="", surfaces=(), host_apis=(), runtime=Runtime("wasm-component", "tool", "x.wasm"))
    grant = GrantSet.dev_grants(bare)
    assert grant.dev
    assert not grant.allows_surface("tools") and not grant.allows_tool("x")
    assert grant.allows_host_api("log") and not grant.allows_host_api("request")
    assert grant.request_targets == () and grant.fs_roots == () and grant.websocket_targets == ()


@pytest.mark.parametrize(
    ("manifest", "key"),
    [
        ({"surfaces": ["telepathy"]}, "surfaces"),
        ({"tools": [{"description": "no name"}]}, "tools[0].name"),
        ({"tools": {"name": "x"}}, "tools"),
        ({"request": [{"scheme": "https", "host": "h.example", "path_prefixes": ["v1"]}]}, "request[0].path_prefixes"),
        ({"websocket": [{"scheme": "http", "host": "h.example"}]}, "websocket[0].scheme"),
        ({"fs": [{"name": "data", "path": "/srv"}]}, "fs[0].path"),  # a manifest never names host paths
    ],
)
def test_dev_grants_refuse_malformed_declarations(manifest: dict[str, Any], key: str) -> None:
    # Dev grants are derived from the typed manifest only; the one manifest parser
    # refuses what they could not mirror, naming the key.
    with pytest.raises(ManifestError) as err:
        parse_manifest({**tomllib.loads(MANIFEST), **manifest})
    assert key in [p.path for p in err.value.problems]
    assert str(err.value).startswith("plugin.toml: ")


def test_a_real_grant_is_not_dev() -> None:
    assert not full_grant().dev
