"""Checks a submitted event against the manifest before it may enter the queue.

Cheap, pure checks, run on the producer's thread and never touching the plugin:
the ingress and kind are declared, the source may feed that ingress, the payload is
well-formed and within `EVENT_PAYLOAD_MAX_BYTES`, and a JSON payload matches the
ingress's `payload_schema`. Each failure is a typed `Refused`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pdk._validation import validation_message
from pdk.limits import EVENT_PAYLOAD_MAX_BYTES
from pdk.package.manifest import HandlerDecl, Manifest

from ..codec import Case
from ..redact import bound_text
from ..schema_check import schema_problems, schema_validator
from .model import PAYLOAD_TAGS, Refused

MESSAGE_MAX_BYTES = 1024
# Sources named by kind, alone or qualified (`http:<ingress>`, `timer:<ingress>`, as
# the host's sources name themselves); a WebSocket event's source is its connection's name.
NAMED_SOURCES = frozenset({"manual", "http", "timer"})


# (ingress, kind, source) routes that passed the declaration checks, at most this many.
CHECKED_ROUTES_REMEMBERED = 256


def source_kind(source: str) -> str:
    """`manual`, `http` or `timer` for those sources (qualified or not), else `websocket`."""
    head = source.split(":", 1)[0]
    return head if head in NAMED_SOURCES else "websocket"


def _refused(reason: str, message: str) -> Refused:
    return Refused(reason, bound_text(message, MESSAGE_MAX_BYTES))


def normalize_payload(payload: Any) -> Case | Refused:
    """The payload as a `Case` the codec can send, or `invalid_payload`."""
    if payload is None:
        return Case("empty", None)
    if not isinstance(payload, Case):
        return _refused("invalid_payload", f"payload must be a Case(tag, value), got {type(payload).__name__}")
    tag, value = payload.tag, payload.value
    if tag not in PAYLOAD_TAGS:
        return _refused("invalid_payload", f"unknown payload type {tag!r} (one of {', '.join(PAYLOAD_TAGS)})")
    if tag in ("text", "json", "failure"):
        if not isinstance(value, str):
            return _refused("invalid_payload", f"a {tag} payload is a str, got {type(value).__name__}")
        return payload
    if tag == "binary":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            return _refused("invalid_payload", f"a binary payload is bytes, got {type(value).__name__}")
        return Case("binary", bytes(value))
    if tag == "closed":
        code = value.get("code") if isinstance(value, Mapping) else getattr(value, "code", None)
        reason = value.get("reason", "") if isinstance(value, Mapping) else getattr(value, "reason", "")
        if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 65535 or not isinstance(reason, str):
            return _refused("invalid_payload", "a closed payload is {code: 0-65535, reason: str}")
        return Case("closed", {"code": code, "reason": reason})
    if value is not None:
        return _refused("invalid_payload", "an empty payload carries no value")
    return Case("empty", None)


def payload_size(payload: Case) -> int:
    """UTF-8 bytes of the payload's data. Raises UnicodeEncodeError on lone surrogates."""
    tag, value = payload.tag, payload.value
    if tag == "binary":
        return len(value)
    if tag == "closed":
        return 2 + len(value["reason"].encode("utf-8"))
    if tag == "empty":
        return 0
    if value.isascii():  # O(1) in CPython: one byte per character
        return len(value)
    return len(value.encode("utf-8"))


class Intake:
    """The submit checks of one plugin's manifest. Validators are compiled once."""

    def __init__(self, manifest: Manifest) -> None:
        self.ingresses: dict[str, HandlerDecl] = {decl.name: decl for decl in manifest.ingresses}
        self._connections: dict[str, frozenset[str]] = {
            decl.name: frozenset(conn.name for conn in decl.connections)
            for decl in manifest.ingresses
        }
        self._validators: dict[str, Any] = {}
        for decl in manifest.ingresses:
            if decl.payload_schema is not None:
                self._validators[decl.name] = schema_validator(decl.payload_schema)
        # Routes that passed the ingress, kind and source checks (pure functions of the
        # manifest), so that a steady stream of one kind skips them.
        self._routes: set[tuple[str, str, str]] = set()

    def check(self, ingress: str, kind: str, payload: Case, source: str, *, any_source: bool = False) -> int | Refused:
        """The payload's size in bytes when the event may be queued, else why not.
        `any_source` skips the source check (results of this plugin's own commands)."""
        if type(ingress) is not str or type(kind) is not str or type(source) is not str or (ingress, kind, source) not in self._routes:
            refusal = self._route_refusal(ingress, kind, source, any_source)
            if refusal is not None:
                return refusal
        try:
            size = payload_size(payload)
        except UnicodeEncodeError as exc:
            return _refused("invalid_payload", f"the payload is not valid Unicode text (lone surrogate at index {exc.start})")
        if size > EVENT_PAYLOAD_MAX_BYTES:
            return _refused("too_large", f"the payload is {size} bytes; the limit is {EVENT_PAYLOAD_MAX_BYTES}")
        if payload.tag == "json":
            try:
                data = json.loads(payload.value)
            except ValueError as exc:
                return _refused("invalid_payload", f"the JSON payload does not parse: {exc}")
            except RecursionError:
                return _refused("invalid_payload", "the JSON payload is nested too deeply")
            validator = self._validators.get(ingress)
            problems = schema_problems(validator, data) if validator is not None else None
            if problems is not None:
                # The one wording of validation errors (pdk._validation), as for tool inputs.
                message = validation_message(problems.items, problems.total)
                return _refused("invalid_payload", f"the payload does not match the schema of ingress {ingress!r}: {message}")
        return size

    def _route_refusal(self, ingress: str, kind: str, source: str, any_source: bool) -> Refused | None:
        decl = self.ingresses.get(ingress)
        if decl is None:
            known = ", ".join(sorted(self.ingresses)) or "none"
            return _refused("unknown_ingress", f"no ingress {ingress!r} is declared (declared: {known})")
        if kind not in decl.event_kinds:
            return _refused("unknown_kind", f"ingress {ingress!r} does not take events of kind {kind!r} (it takes: {', '.join(decl.event_kinds)})")
        allowed = self._source_allowed(decl, source)
        if not any_source and not allowed:
            return _refused("source_not_allowed", f"ingress {ingress!r} does not take events from source {source!r} (sources: {', '.join(decl.sources)})")
        if allowed and type(ingress) is str and type(kind) is str and type(source) is str and len(self._routes) < CHECKED_ROUTES_REMEMBERED:
            self._routes.add((ingress, kind, source))
        return None

    def _source_allowed(self, decl: HandlerDecl, source: str) -> bool:
        if not isinstance(source, str) or not source:
            return False
        kind = source_kind(source)
        if kind != "websocket":
            return kind in decl.sources
        # Anything else is a connection declared on this ingress (or "websocket" itself).
        if "websocket" not in decl.sources:
            return False
        return source == "websocket" or source in self._connections.get(decl.name, frozenset())
