"""The typed model of a validated `plugin.toml`: every declaration as a frozen
dataclass, and the error that lists what is wrong with a manifest.

Built only by `pdk.package._manifest_validate`; read everywhere else (through
`pdk.package.manifest`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pdk.package.errors import PdkError
from pdk.package.targets import Target


@dataclass(frozen=True)
class Problem:
    """One validation finding, located by its TOML path. `code` is set when the
    finding breaks a package rule (a `PackageError` code such as `path_traversal`)."""

    path: str
    message: str
    code: str = field(default="", compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_json(self) -> dict[str, str]:
        """`{"path", "message"}`, with the package `code` when there is one."""
        data = {"path": self.path, "message": self.message}
        if self.code:
            data["code"] = self.code
        return data


class ManifestError(PdkError):
    """A manifest that cannot be used. `problems` lists every finding."""

    default_code = "invalid_manifest"

    def __init__(self, problems: list[Problem], source: str = "plugin.toml") -> None:
        self.problems = problems
        self.source = source
        first = str(problems[0]) if problems else "invalid manifest"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: {first}{more}")

    def json_fields(self) -> dict[str, Any]:
        return {"problems": [p.to_json() for p in self.problems]}


@dataclass(frozen=True)
class Runtime:
    """`[runtime]`: the component and the world it implements."""

    kind: str
    world: str
    component: str


@dataclass(frozen=True)
class BuildDecl:
    """`[build]`: how `pdk build` finds the plugin. Absent keys are None / empty."""

    module: str | None = None
    sources: tuple[str, ...] = ()
    plugin: str | None = None
    preload: tuple[str, ...] = ()
    # Requirement strings to bundle; None: take pyproject.toml's [project] dependencies.
    dependencies: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ToolDecl:
    """A `[[tools]]` entry."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class FsDecl:
    """A `[[fs]]` entry: a root name (the grant supplies the host path) and the
    operations the plugin asks for."""

    name: str
    operations: tuple[str, ...]


@dataclass(frozen=True)
class TimerDecl:
    """An ingress's `timer = {interval_ms = N}`."""

    interval_ms: int


@dataclass(frozen=True)
class ConnectionDecl:
    """An ingress's `[[ingresses.connections]]` entry. `event_kinds` is what the
    connection delivers: its own list, or every kind of its ingress when it has none."""

    ingress: str
    name: str
    url: str
    event_kinds: tuple[str, ...]
    subprotocols: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class HandlerDecl:
    """A `[[services]]` or `[[ingresses]]` entry. A service has a name and a
    description only; the other fields keep their defaults."""

    name: str
    description: str
    sources: tuple[str, ...] = ("manual",)
    event_kinds: tuple[str, ...] = ()
    payload_schema: dict[str, Any] | None = None
    http_path: str | None = None
    timer: TimerDecl | None = None
    queue_capacity: int | None = None
    max_attempts: int | None = None
    retry_backoff_ms: int | None = None
    connections: tuple[ConnectionDecl, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """A validated `plugin.toml`. Targets are parsed (`pdk.package.targets`)."""

    id: str
    name: str
    version: str
    description: str
    surfaces: tuple[str, ...]
    host_apis: tuple[str, ...]
    runtime: Runtime
    tools: tuple[ToolDecl, ...] = ()
    services: tuple[HandlerDecl, ...] = ()
    ingresses: tuple[HandlerDecl, ...] = ()
    build: BuildDecl = BuildDecl()
    request_targets: tuple[Target, ...] = ()
    websocket_targets: tuple[Target, ...] = ()
    fs_roots: tuple[FsDecl, ...] = ()

    def tool(self, name: str) -> ToolDecl | None:
        return next((t for t in self.tools if t.name == name), None)

    def ingress(self, name: str) -> HandlerDecl | None:
        return next((i for i in self.ingresses if i.name == name), None)

    @property
    def connections(self) -> tuple[ConnectionDecl, ...]:
        """Every connection of every ingress, in manifest order."""
        return tuple(conn for ingress in self.ingresses for conn in ingress.connections)

    @property
    def referenced_files(self) -> tuple[str, ...]:
        """The package files the manifest needs besides itself."""
        return (self.runtime.component,)

