"""The grants file: what an operator lets one exact package do.

A grant is pinned to a package by id + version + digest; if any of the three differs, the
grant contributes nothing at all (DESIGN.md, "Grants"). Authority is the intersection of
what the manifest declares and what the grant allows; this module parses and validates
the grants side and answers "is X granted?" for one package. URL matching itself lives in
`pdk.package.targets`; dev grants are derived from the typed manifest.

Grants file shape (docs/architecture.md):

    [[plugins]]
    id = "text-tools"
    version = "0.1.0"
    digest = "sha256:<64 hex>"
    surfaces = ["tools"]
    tools = ["word_count"]            # or ["*"]
    host_apis = ["request"]
    config = { greeting = "hi" }

    [[plugins.request]]               # same shape as the manifest's [[request]]
    scheme = "https"
    host = "api.example.com"

    [[plugins.websocket]]             # request shape, scheme ws/wss, no methods
    scheme = "wss"
    host = "chat.example.com"

    [[plugins.fs]]
    name = "data"
    path = "/srv/plugin-data"
    operations = ["read", "list"]

    [[plugins.secrets]]               # host-side secret references, never resolved here
    name = "api_token"
    env = "TEXT_TOOLS_TOKEN"          # exactly one of env / file
    header = "Authorization"          # optional: the request header it is sent as
"""

from __future__ import annotations

import datetime
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Any

from pdk import _contract
from pdk.limits import CONFIG_MAX_BYTES
from pdk.package.errors import PdkError
from pdk.package.manifest import Manifest
from pdk.package.targets import MatchResult, Target, TargetError, match_url, parse_targets

SURFACES: frozenset[str] = frozenset(_contract.SURFACES)
HOST_APIS: frozenset[str] = frozenset(_contract.HOST_APIS)
FS_OPERATIONS: frozenset[str] = frozenset(_contract.FS_OPERATIONS)
# `log` is always allowed to a running plugin (docs/architecture.md): it is bounded and
# never fails, and a plugin that cannot explain itself is harder to operate.
ALWAYS_ALLOWED_HOST_APIS: frozenset[str] = frozenset({"log"})

_PLUGIN_KEYS = frozenset(
    {"id", "version", "digest", "surfaces", "tools", "host_apis", "config", "request", "fs", "websocket", "secrets"}
)
_FS_KEYS = frozenset({"name", "path", "operations"})
_SECRET_KEYS = frozenset({"name", "env", "file", "header"})

_VERSION_RE = re.compile(r"[0-9A-Za-z.+-]{1,64}")
_DIGEST_RE = re.compile(r"sha256:[0-9a-fA-F]{64}")
# Tool names are matched exactly; `*` alone means every declared tool. No prefixes: a
# prefix would grant tools a later version adds without the operator seeing them.
_TOOL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HEADER_NAME_RE = _contract.token_re(64)
# Digests in reasons are shortened: enough to tell two apart, not a wall of hex.
_DIGEST_SHOWN = len("sha256:") + 12


class GrantsErrorCode(str, Enum):
    """Why a grants file (or a manifest read for dev grants) was refused."""

    UNREADABLE = "unreadable"
    SYNTAX = "syntax"
    UNKNOWN_KEY = "unknown_key"
    MISSING_KEY = "missing_key"
    INVALID_VALUE = "invalid_value"
    DUPLICATE = "duplicate"


class GrantsError(PdkError):
    """A malformed grants file. `code` is a GrantsErrorCode; the message names the file
    and the key (`grants.toml: plugins[0].request[1].port: ...`)."""

    def __init__(self, code: GrantsErrorCode, message: str, *, source: str = "", key: str = "") -> None:
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(message, code=code, text=f"{where}: {message}" if where else message)
        self.code: GrantsErrorCode = code
        self.source = source
        self.key = key

    def json_fields(self) -> dict[str, Any]:
        return {k: v for k, v in (("source", self.source), ("key", self.key)) if v}


@dataclass(frozen=True)
class FsRoot:
    """A named filesystem root. `path` is the host path (never shown to the guest);
    it is None in dev grants, where the host must supply one."""

    name: str
    path: str | None
    operations: tuple[str, ...]


@dataclass(frozen=True)
class SecretRef:
    """A reference to a host-side secret: where to read it (`env` or `file`) and,
    optionally, the request header it is sent as. Never resolved by this module."""

    name: str
    env: str | None = None
    file: str | None = None
    header: str | None = None


@dataclass(frozen=True)
class PluginGrant:
    """One `[[plugins]]` entry, validated."""

    id: str
    version: str
    digest: str
    surfaces: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    host_apis: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    request_targets: tuple[Target, ...] = ()
    fs_roots: tuple[FsRoot, ...] = ()
    websocket_targets: tuple[Target, ...] = ()
    secrets: tuple[SecretRef, ...] = ()


@dataclass(frozen=True)
class GrantSet:
    """The effective grants of one package. `matched` is False when no grant pinned
    this exact package; such a set allows nothing and `reason` says why."""

    plugin_id: str | None = None
    version: str | None = None
    digest: str | None = None
    surfaces: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    host_apis: frozenset[str] = frozenset()
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    request_targets: tuple[Target, ...] = ()
    fs_roots: tuple[FsRoot, ...] = ()
    websocket_targets: tuple[Target, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    matched: bool = False
    dev: bool = False
    reason: str = "no grant"

    @classmethod
    def empty(cls, reason: str) -> GrantSet:
        return cls(reason=reason)

    @classmethod
    def from_grant(cls, grant: PluginGrant) -> GrantSet:
        return cls(
            plugin_id=grant.id,
            version=grant.version,
            digest=grant.digest,
            surfaces=frozenset(grant.surfaces),
            tools=frozenset(grant.tools),
            host_apis=frozenset(grant.host_apis),
            config=grant.config,
            request_targets=grant.request_targets,
            fs_roots=grant.fs_roots,
            websocket_targets=grant.websocket_targets,
            secrets=grant.secrets,
            matched=True,
            reason=f"granted: {grant.id} {grant.version} {_short_digest(grant.digest)}",
        )

    @classmethod
    def dev_grants(cls, manifest: Manifest) -> GrantSet:
        """Grant exactly what a (validated) manifest declares. For development only,
        and flagged `dev=True` so that every caller can say so out loud. Fs roots get
        no host path (`path=None`); no secrets are granted."""
        return cls(
            plugin_id=manifest.id,
            version=manifest.version,
            digest=None,
            surfaces=frozenset(manifest.surfaces),
            tools=frozenset(tool.name for tool in manifest.tools),
            host_apis=frozenset(manifest.host_apis),
            request_targets=manifest.request_targets,
            fs_roots=tuple(FsRoot(name=root.name, path=None, operations=root.operations) for root in manifest.fs_roots),
            websocket_targets=manifest.websocket_targets,
            matched=True,
            dev=True,
            reason="dev grants: exactly what the manifest declares (not for production)",
        )

    def allows_surface(self, surface: str) -> bool:
        return self.matched and surface in self.surfaces

    def allows_tool(self, name: str) -> bool:
        """Exact names, or `*` for every tool. A tool call also needs the `tools`
        surface, so a grant that lists tools without that surface enables none."""
        if not self.allows_surface("tools"):
            return False
        return "*" in self.tools or name in self.tools

    def allows_host_api(self, api: str) -> bool:
        if not self.matched:
            return False
        return api in ALWAYS_ALLOWED_HOST_APIS or api in self.host_apis

    def fs_root(self, name: str) -> FsRoot | None:
        if not self.allows_host_api("fs"):
            return None
        return next((root for root in self.fs_roots if root.name == name), None)

    def allows_fs(self, name: str, operation: str) -> bool:
        root = self.fs_root(name)
        return root is not None and operation in root.operations

    def check_request(self, url: str, method: str, declared: Sequence[Target]) -> MatchResult:
        """`request` granted as a host API, and the URL inside a declared and a granted
        target. DNS results are judged separately (`targets.check_resolved`)."""
        if not self.allows_host_api("request"):
            return MatchResult(False, "host api 'request' is not granted")
        return match_url(url, method, declared, self.request_targets)

    def check_websocket(self, url: str, declared: Sequence[Target]) -> MatchResult:
        if not self.allows_host_api("websocket"):
            return MatchResult(False, "host api 'websocket' is not granted")
        # A WebSocket handshake is an HTTP GET.
        return match_url(url, "GET", declared, self.websocket_targets)


@dataclass(frozen=True)
class GrantsFile:
    """A parsed grants file: every `[[plugins]]` entry, in file order."""

    plugins: tuple[PluginGrant, ...] = ()
    source: str = "<grants>"

    @classmethod
    def load(cls, path: str | PurePath) -> GrantsFile:
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise GrantsError(GrantsErrorCode.UNREADABLE, f"cannot read: {exc.strerror or exc}", source=source) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GrantsError(GrantsErrorCode.SYNTAX, "not valid UTF-8", source=source) from None
        return cls.parse(text, source=source)

    @classmethod
    def parse(cls, text: str, *, source: str = "<grants>") -> GrantsFile:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise GrantsError(GrantsErrorCode.SYNTAX, f"invalid TOML: {exc}", source=source) from None
        return cls(plugins=_parse_file(data, _Where(source, "")), source=source)

    def for_package(self, id: str, version: str, digest: str) -> GrantSet:
        """The effective authority of one package. Only an entry whose id, version and
        digest all match exactly contributes; otherwise the result is empty and its
        `reason` names the first field that differed."""
        same_id = [grant for grant in self.plugins if grant.id == id]
        if not same_id:
            return GrantSet.empty(f"no grant for plugin id {id!r}")
        same_version = [grant for grant in same_id if grant.version == version]
        if not same_version:
            granted = ", ".join(sorted({grant.version for grant in same_id}))
            return GrantSet.empty(f"version mismatch for {id!r}: package {version!r}, granted {granted}")
        wanted = digest.lower() if _DIGEST_RE.fullmatch(digest) else digest
        for grant in same_version:
            if grant.digest == wanted:
                return GrantSet.from_grant(grant)
        return GrantSet.empty(
            f"digest mismatch for {id!r} {version}: package {_short_digest(digest)}, "
            f"granted {_short_digest(same_version[0].digest)}"
        )


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """Where in which file we are, for error messages."""

    source: str
    key: str

    def at(self, key: str | int) -> _Where:
        if isinstance(key, int):
            return _Where(self.source, f"{self.key}[{key}]")
        return _Where(self.source, f"{self.key}.{key}" if self.key else key)

    def error(self, code: GrantsErrorCode, message: str) -> GrantsError:
        return GrantsError(code, message, source=self.source, key=self.key)


def _parse_file(data: Mapping[str, Any], where: _Where) -> tuple[PluginGrant, ...]:
    _reject_unknown(data, frozenset({"plugins"}), where)
    entries = data.get("plugins", [])
    if not isinstance(entries, list):
        raise where.at("plugins").error(GrantsErrorCode.INVALID_VALUE, "must be an array of tables ([[plugins]])")
    grants: list[PluginGrant] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        at = where.at("plugins").at(index)
        grant = _parse_plugin(entry, at)
        if (grant.id, grant.version) in seen:
            # Two grants for one package would make its authority depend on file order.
            raise at.error(GrantsErrorCode.DUPLICATE, f"second grant for {grant.id!r} {grant.version}")
        seen.add((grant.id, grant.version))
        grants.append(grant)
    return tuple(grants)


def _parse_plugin(entry: Any, where: _Where) -> PluginGrant:
    table = _table(entry, where)
    _reject_unknown(table, _PLUGIN_KEYS, where)
    return PluginGrant(
        id=_pattern(table, "id", _contract.PLUGIN_ID_RE, where, _contract.PLUGIN_ID_RULE),
        version=_pattern(table, "version", _VERSION_RE, where, "a version such as 0.1.0"),
        digest=_pattern(table, "digest", _DIGEST_RE, where, "sha256:<64 hex>").lower(),
        surfaces=_choices(table, "surfaces", SURFACES, where),
        tools=_tools(table, where),
        host_apis=_choices(table, "host_apis", HOST_APIS, where),
        config=_config(table, where),
        request_targets=_targets(table, "request", where, websocket=False),
        fs_roots=_fs_roots(table.get("fs", []), where.at("fs")),
        websocket_targets=_targets(table, "websocket", where, websocket=True),
        secrets=_secrets(table, where),
    )


def _table(value: Any, where: _Where) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise where.error(GrantsErrorCode.INVALID_VALUE, "must be a table")
    return value


def _reject_unknown(table: Mapping[str, Any], allowed: frozenset[str], where: _Where) -> None:
    for key in table:
        if key not in allowed:
            raise where.at(str(key)).error(
                GrantsErrorCode.UNKNOWN_KEY, f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )


def _pattern(table: Mapping[str, Any], key: str, pattern: re.Pattern[str], where: _Where, what: str) -> str:
    if key not in table:
        raise where.at(key).error(GrantsErrorCode.MISSING_KEY, "required")
    value = table[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise where.at(key).error(GrantsErrorCode.INVALID_VALUE, f"must be {what}")
    return value


def _strings(table: Mapping[str, Any], key: str, where: _Where) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise where.at(key).error(GrantsErrorCode.INVALID_VALUE, "must be a list of strings")
    return tuple(dict.fromkeys(value))  # de-duplicated, order kept


def _choices(table: Mapping[str, Any], key: str, allowed: frozenset[str], where: _Where) -> tuple[str, ...]:
    values = _strings(table, key, where)
    for value in values:
        if value not in allowed:
            raise where.at(key).error(
                GrantsErrorCode.INVALID_VALUE, f"{_show(value)} is not one of {', '.join(sorted(allowed))}"
            )
    return values


def _tools(table: Mapping[str, Any], where: _Where) -> tuple[str, ...]:
    tools = _strings(table, "tools", where)
    for name in tools:
        if name != "*" and not _TOOL_RE.fullmatch(name):
            raise where.at("tools").error(
                GrantsErrorCode.INVALID_VALUE, f"{_show(name)}: tools are exact names, or \"*\" for all"
            )
    return tools


def _config(table: Mapping[str, Any], where: _Where) -> Mapping[str, Any]:
    config = table.get("config", {})
    at = where.at("config")
    if not isinstance(config, Mapping):
        raise at.error(GrantsErrorCode.INVALID_VALUE, "must be a table")
    # Config reaches the guest as JSON; TOML dates/times have no JSON spelling.
    bad = _non_json_key(config)
    if bad is not None:
        raise at.at(bad).error(GrantsErrorCode.INVALID_VALUE, "dates and times cannot be passed as config (use a string)")
    size = len(json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > CONFIG_MAX_BYTES:
        raise at.error(GrantsErrorCode.INVALID_VALUE, f"{size} bytes as JSON, more than {CONFIG_MAX_BYTES}")
    return MappingProxyType(dict(config))


def _non_json_key(value: Any, path: str = "") -> str | None:
    if isinstance(value, (datetime.date, datetime.time)):
        return path or "?"
    children: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        children = [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    for child_path, child in children:
        found = _non_json_key(child, child_path)
        if found is not None:
            return found
    return None


def _targets(table: Mapping[str, Any], key: str, where: _Where, *, websocket: bool) -> tuple[Target, ...]:
    try:
        return parse_targets(table.get(key, []), websocket=websocket)
    except TargetError as exc:
        raise _target_error(exc, where.at(key)) from None


def _target_error(exc: TargetError, where: _Where) -> GrantsError:
    code = {
        "unknown_key": GrantsErrorCode.UNKNOWN_KEY,
        "missing_key": GrantsErrorCode.MISSING_KEY,
    }.get(exc.code, GrantsErrorCode.INVALID_VALUE)
    key = f"{where.key}{exc.key}" if exc.key.startswith("[") else where.at(exc.key).key if exc.key else where.key
    return GrantsError(code, exc.message, source=where.source, key=key)


def _fs_roots(items: Any, where: _Where) -> tuple[FsRoot, ...]:
    if not isinstance(items, list):
        raise where.error(GrantsErrorCode.INVALID_VALUE, "must be an array of tables")
    roots: list[FsRoot] = []
    for index, item in enumerate(items):
        at = where.at(index)
        table = _table(item, at)
        _reject_unknown(table, _FS_KEYS, at)
        name = _pattern(table, "name", _contract.ROOT_NAME_RE, at, _contract.ROOT_NAME_RULE)
        if any(root.name == name for root in roots):
            raise at.at("name").error(GrantsErrorCode.DUPLICATE, f"root {name!r} appears twice")
        path = _host_path(table, "path", at)
        if "operations" not in table:
            # Operations are authority; a grant must spell them out.
            raise at.at("operations").error(GrantsErrorCode.MISSING_KEY, "required (subset of list, read, write)")
        operations = _choices(table, "operations", FS_OPERATIONS, at)
        roots.append(FsRoot(name=name, path=path, operations=operations))
    return tuple(roots)


def _host_path(table: Mapping[str, Any], key: str, where: _Where) -> str:
    if key not in table:
        raise where.at(key).error(GrantsErrorCode.MISSING_KEY, "required (an absolute host path)")
    value = table[key]
    if not isinstance(value, str) or not value or "\0" in value or not PurePath(value).is_absolute():
        raise where.at(key).error(GrantsErrorCode.INVALID_VALUE, "must be an absolute host path")
    return value


def _secrets(table: Mapping[str, Any], where: _Where) -> tuple[SecretRef, ...]:
    items = table.get("secrets", [])
    at_secrets = where.at("secrets")
    if not isinstance(items, list):
        raise at_secrets.error(GrantsErrorCode.INVALID_VALUE, "must be an array of tables ([[plugins.secrets]])")
    refs: list[SecretRef] = []
    for index, item in enumerate(items):
        at = at_secrets.at(index)
        entry = _table(item, at)
        _reject_unknown(entry, _SECRET_KEYS, at)
        name = _pattern(entry, "name", _contract.SECRET_NAME_RE, at, "an identifier of [A-Za-z0-9_.-]")
        if any(ref.name == name for ref in refs):
            raise at.at("name").error(GrantsErrorCode.DUPLICATE, f"secret {name!r} appears twice")
        # One source per secret: two would leave "which one wins" to the host.
        if ("env" in entry) == ("file" in entry):
            raise at.error(GrantsErrorCode.INVALID_VALUE, "needs exactly one of env or file")
        env = _pattern(entry, "env", _ENV_NAME_RE, at, "an environment variable name") if "env" in entry else None
        file = _host_path(entry, "file", at) if "file" in entry else None
        header = _pattern(entry, "header", _HEADER_NAME_RE, at, "an HTTP header name") if "header" in entry else None
        refs.append(SecretRef(name=name, env=env, file=file, header=header))
    return tuple(refs)


def _short_digest(digest: str) -> str:
    return digest if len(digest) <= _DIGEST_SHOWN else digest[:_DIGEST_SHOWN] + "…"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"
