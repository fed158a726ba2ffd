"""The names of the plugin contract, in one place: packages, worlds, interfaces,
surfaces, host APIs, and the patterns of ids and names.

`wit/plugin.wit` is the contract itself; this module spells out the names that the
guest PDK, the package reader, the host and the toolchain all need. Standard library
only: this module is bundled into every component."""

from __future__ import annotations

import re
from typing import Final, Mapping

# -- WIT packages and their version ----------------------------------------------------------

PLUGIN_PACKAGE: Final = "yoi:plugin"
HOST_PACKAGE: Final = "yoi:host"
CONTRACT_VERSION: Final = "2.0.0"

# -- worlds and what they export -------------------------------------------------------------

WORLDS: Final = ("tool", "service", "ingress", "plugin")
# What `pdk new` scaffolds (the combined `plugin` world has no template of its own).
PLUGIN_KINDS: Final = ("tool", "service", "ingress")

# Exported interface → the functions it must have.
INTERFACE_FUNCS: Final[Mapping[str, frozenset[str]]] = {
    "tools": frozenset({"call"}),
    "lifecycle": frozenset({"start", "status", "stop"}),
    "events": frozenset({"handle"}),
}
# World → the interfaces it exports, in WIT order.
WORLD_EXPORTS: Final[Mapping[str, tuple[str, ...]]] = {
    "tool": ("tools",),
    "service": ("lifecycle", "events"),
    "ingress": ("events",),
    "plugin": ("tools", "lifecycle", "events"),
}
# The `yoi:host` interfaces a component may import.
HOST_INTERFACES: Final = ("log", "request", "fs")

# -- manifest vocabulary -----------------------------------------------------------------------

SURFACES: Final = ("tools", "services", "ingresses")
# What each world exports, hence which surfaces it can serve.
WORLD_SURFACES: Final[Mapping[str, frozenset[str]]] = {
    "tool": frozenset({"tools"}),
    "service": frozenset({"services", "ingresses"}),
    "ingress": frozenset({"ingresses"}),
    "plugin": frozenset(SURFACES),
}
# Host APIs a manifest may declare and a grant may allow (`websocket` is host-owned: the
# host's driver holds the connections, the guest imports nothing for it).
HOST_APIS: Final = ("log", "request", "fs", "websocket")
FS_OPERATIONS: Final = ("read", "list", "write")
INGRESS_SOURCES: Final = ("manual", "http", "timer", "websocket")

# -- ids and names -------------------------------------------------------------------------
#
# Each pattern is the whole rule (length included) and is used with `re.fullmatch` or
# the compiled `*_RE` below; `*_RULE` is how messages describe it.

# A plugin id: also a file name (`dist/<id>-<version>.yoi-plugin`), a Python project
# name (which cannot end in '-') and, in the service template, the service's name; lower
# case, so that two ids never differ only in case on a case-insensitive file system. The
# templates' copier validators use this very pattern (tests/unit/test_manifest.py).
PLUGIN_ID_PATTERN: Final = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
PLUGIN_ID_RULE: Final = "1-63 lower-case letters, digits or '-', starting with a letter and not ending with '-'"
# Tools, services, ingresses, connections, event kinds.
NAME_PATTERN: Final = r"[a-z][a-z0-9_.-]{0,63}"
NAME_RULE: Final = "1-64 of [a-z0-9_.-], starting with a letter"
# Filesystem roots (manifest and grants).
ROOT_NAME_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
ROOT_NAME_RULE: Final = "1-64 of [A-Za-z0-9._-], starting with a letter or digit"
# Secret references (grants; named by WebSocket connections).
SECRET_NAME_PATTERN: Final = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
SECRET_NAME_RULE: Final = "1-64 of [A-Za-z0-9_.-], starting with a letter or '_'"
# RFC 9110 `tchar`: what HTTP methods, header names and WebSocket subprotocols are made of.
TOKEN_CHAR_CLASS: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]"

PLUGIN_ID_RE: Final = re.compile(PLUGIN_ID_PATTERN)
NAME_RE: Final = re.compile(NAME_PATTERN)
ROOT_NAME_RE: Final = re.compile(ROOT_NAME_PATTERN)
SECRET_NAME_RE: Final = re.compile(SECRET_NAME_PATTERN)


def token_re(max_len: int) -> re.Pattern[str]:
    """An RFC 9110 token of 1 to `max_len` characters (anchored at the end, so `match`
    and `fullmatch` agree)."""
    return re.compile(f"{TOKEN_CHAR_CLASS}{{1,{max_len}}}\\Z")


def is_plugin_id(value: object) -> bool:
    return isinstance(value, str) and PLUGIN_ID_RE.fullmatch(value) is not None


def is_name(value: object) -> bool:
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None
