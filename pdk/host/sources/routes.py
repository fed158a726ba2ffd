"""The HTTP ingress route table: a path maps to exactly one (runtime, ingress)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ._runtime import ingresses_with_source, plugin_id_of


class RouteConflict(ValueError):
    """Two ingresses (of one or several plugins) declare the same `http_path`."""


@dataclass(frozen=True)
class Route:
    path: str
    rt: Any
    plugin_id: str
    ingress: str
    kinds: tuple[str, ...]

    @property
    def source_name(self) -> str:
        """The key of this route in the runtime's `sources` and the event's `source`."""
        return f"http:{self.ingress}"

    def kind_for(self, requested: str | None) -> str | None:
        """The event kind: the requested one when declared, the first one when none was
        requested, None for an undeclared request."""
        if requested is None or requested == "":
            return self.kinds[0]
        return requested if requested in self.kinds else None


def build_routes(runtimes: Sequence[Any]) -> dict[str, Route]:
    """Every "http" ingress of every runtime, by path. Raises `RouteConflict` on a
    path declared twice, naming both owners."""
    routes: dict[str, Route] = {}
    for rt in runtimes:
        plugin_id = plugin_id_of(rt)
        for decl in ingresses_with_source(rt, "http"):
            path = decl.http_path
            if path is None:
                raise RouteConflict(f"{plugin_id}: ingress {decl.name!r} has the http source but no http_path")
            if not decl.event_kinds:
                raise RouteConflict(f"{plugin_id}: ingress {decl.name!r} declares no event kinds")
            route = Route(path, rt, plugin_id, decl.name, decl.event_kinds)
            other = routes.get(path)
            if other is not None:
                raise RouteConflict(
                    f"http path {path} is declared twice: by {other.plugin_id} ingress {other.ingress!r} "
                    f"and by {plugin_id} ingress {decl.name!r}; a path maps to exactly one ingress"
                )
            routes[path] = route
    return routes
