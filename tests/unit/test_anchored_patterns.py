"""Names checked against `^...$` patterns are checked whole: `$` also matches just
before a trailing newline, so `re.match` used to accept `"name\\n"`. Every such check
uses `fullmatch` (emit topics, WebSocket connection names, target hosts, interface
names, template versions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from generator.template_repo import _VERSION
from pdk.host.grants import GrantsFile, GrantSet
from pdk.host.runtime.commands import CommandChecker
from pdk.host.world import _IFACE_RE
from pdk.package.manifest import parse_manifest_text
from pdk.package.targets import UrlError, normalize_host

DIGEST = "sha256:" + "b" * 64
MANIFEST = """
schema_version = 2
id = "p"
name = "P"
version = "0.1.0"
description = "anchored pattern tests"
surfaces = ["services", "ingresses"]
host_apis = ["websocket"]

[runtime]
kind = "wasm-component"
world = "service"
component = "build/p.wasm"

[[services]]
name = "p"

[[ingresses]]
name = "jobs"
sources = ["manual"]
event_kinds = ["job"]
"""


def checker() -> CommandChecker:
    text = f'[[plugins]]\nid = "p"\nversion = "0.1.0"\ndigest = "{DIGEST}"\nsurfaces = ["services", "ingresses"]\nhost_apis = ["websocket"]\n'
    grants: GrantSet = GrantsFile.parse(text).for_package("p", "0.1.0", DIGEST)
    return CommandChecker(parse_manifest_text(MANIFEST), grants)


def emit(topic: str) -> dict[str, Any]:
    return {"topic": topic, "data_json": json.dumps({"n": 1})}


def test_an_emit_topic_with_a_trailing_newline_is_invalid() -> None:
    c = checker()
    assert c.invalid("emit", emit("done")) is None
    assert c.invalid("emit", emit("done\n")) is not None
    assert c.invalid("emit", emit("done")) is None  # a remembered good topic stays good
    assert c.invalid("emit", emit("done\n")) is not None  # and the bad one stays bad


def test_a_websocket_connection_name_with_a_trailing_newline_is_invalid() -> None:
    c = checker()
    good = c.invalid("websocket_send", {"connection": "feed", "message": {"text": "x"}})
    bad = c.invalid("websocket_send", {"connection": "feed\n", "message": {"text": "x"}})
    assert bad is not None and "connection" in bad
    assert good is None or "connection" not in good


@pytest.mark.parametrize("host", ["example.com\n", "127.0.0.1.example\n"])
def test_a_host_with_a_trailing_newline_is_refused(host: str) -> None:
    assert normalize_host(host.rstrip("\n")) == host.rstrip("\n")
    with pytest.raises(UrlError):
        normalize_host(host)


def test_interface_names_and_template_versions_are_matched_whole() -> None:
    assert _IFACE_RE.fullmatch("yoi:host/log@2.0.0") is not None
    assert _IFACE_RE.fullmatch("yoi:host/log@2.0.0\n") is None
    assert _VERSION.fullmatch("1.2.0") is not None
    assert _VERSION.fullmatch("1.2.0\n") is None
