"""Output commands: each one validated, grant-checked, executed and given a result.

Every command of an output is judged on its own, so an invalid or ungranted command
never prevents its valid siblings (v1 dropped the whole output). The steps, in order,
each able to end the command:

1. count: at most `COMMANDS_PER_OUTPUT_MAX` per output, checked on the raw list before
   any per-command work; the excess is refused as a whole with one `invalid` result;
2. shape (`invalid`): a unique non-empty id, a known kind, bounded fields, JSON that
   parses, a URL and method that can be judged;
3. grants (`denied`): `emit`, `log` and `status_update` need nothing beyond a
   running plugin; `websocket_send` needs the `websocket` host API, a connection
   declared in the manifest and its URL inside a declared and a granted target;
   `http_request` needs the `request` host API and its URL and method inside a
   declared and a granted target;
4. execution by the executor registered for the kind: `executed`, `failed` or
   `unsupported` (`websocket_send` and `http_request` are `unsupported` until the
   WebSocket and HTTP issues register executors).

Executors are plain functions `(CommandContext) -> Execution` in
`ServiceRuntime.command_executors`. They run on the dispatcher thread, between two
handler calls, so they must not block: an asynchronous executor starts its work
elsewhere, returns `executed` at once, and later delivers the result as an event
with `runtime.submit(ingress, kind, payload, correlation_id=command_id)` (`ingress`
is `context.event.ingress` unless the plugin says otherwise; the ingress must
declare the result's kind, e.g. `http_response`). Such result events may come from
any source: the runtime remembers the ids of recent commands it executed.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pdk.limits import COMMAND_DETAIL_MAX_BYTES, COMMAND_PAYLOAD_MAX_BYTES, COMMANDS_PER_OUTPUT_MAX
from pdk.package.manifest import Manifest

from ..codec import Case
from ..grants import GrantSet
from ..guest_json import GuestJsonError, loads_guest
from ..http_check import RequestInvalid, check_line, check_parts
from ..redact import bound_text, redact_bounded
from .model import QueuedEvent

if TYPE_CHECKING:
    from .runtime import ServiceRuntime

COMMAND_KINDS: tuple[str, ...] = ("websocket_send", "http_request", "emit", "log", "status_update")
COMMAND_RESULTS: tuple[str, ...] = ("executed", "denied", "invalid", "failed", "unsupported")
_RESULTS = frozenset(COMMAND_RESULTS)
_KINDS = frozenset(COMMAND_KINDS)
LOG_LEVELS = frozenset({"debug", "info", "warn", "error"})
COMMAND_ID_MAX_LEN = 128
EXCESS_KIND = "excess"  # the one result standing for the commands past the per-output count
_TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_CONNECTION_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Execution:
    """What an executor reports: a result (`executed`, `failed`, `unsupported`, or
    `denied` for a late refusal) and a short detail (bounded and redacted for it)."""

    result: str
    detail: str = ""


@dataclass(slots=True)
class CommandContext:
    """Everything an executor may use for one command (made per command on the hot
    path: a plain slotted class, which builds four times faster than a frozen one)."""

    runtime: ServiceRuntime
    event: QueuedEvent
    command_id: str
    kind: str
    value: Any  # the command's plain payload (a dict; a Case for `message`)


Executor = Callable[[CommandContext], Execution]


class CommandResult(NamedTuple):
    """One command's result (a named tuple: immutable, and built per command cheaply)."""

    command_id: str
    kind: str
    result: str
    detail: str
    event_id: str
    at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "kind": self.kind,
            "result": self.result,
            "detail": self.detail,
            "event_id": self.event_id,
            "at_ms": self.at_ms,
        }


# Short details repeat from event to event (`emitted on <topic>`): their redaction
# is remembered (a pure function of the text), at most this many of this length.
DETAILS_REMEMBERED = 1024
DETAIL_REMEMBERED_MAX_LEN = 256


def bounded_detail(text: str) -> str:
    if len(text) <= DETAIL_REMEMBERED_MAX_LEN:
        return _short_detail(text)
    return redact_bounded(text, COMMAND_DETAIL_MAX_BYTES)


@functools.lru_cache(maxsize=DETAILS_REMEMBERED)
def _short_detail(text: str) -> str:
    return redact_bounded(text, COMMAND_DETAIL_MAX_BYTES)


TOPICS_REMEMBERED = 256

# The last JSON text `_json_problem` accepted on this thread, with its value: the
# `emit` executor runs right after its check on the same thread and takes the value
# from here instead of parsing the text again (`parsed_json`).
_last_parsed = threading.local()


def parsed_json(text: str) -> Any:
    """`loads_guest(text)`, reusing the value when this thread's check just parsed
    this very text object."""
    last: tuple[str, Any] | None = getattr(_last_parsed, "pair", None)
    _last_parsed.pair = None
    if last is not None and last[0] is text:
        return last[1]
    return loads_guest(text)


def _json_problem(what: str, data_json: Any, *, optional: bool) -> str | None:
    if data_json is None:
        return None if optional else f"{what} is missing"
    if not isinstance(data_json, str):
        return f"{what} must be a string of JSON"
    if len(data_json) > COMMAND_PAYLOAD_MAX_BYTES // 4 and len(data_json.encode("utf-8", "replace")) > COMMAND_PAYLOAD_MAX_BYTES:
        return f"{what} is larger than {COMMAND_PAYLOAD_MAX_BYTES} bytes"
    try:
        value = loads_guest(data_json)  # bounded depth, no NaN/Infinity (pdk.host.guest_json)
    except GuestJsonError as exc:
        return f"{what} is refused: {exc}"
    _last_parsed.pair = (data_json, value)
    return None


class CommandChecker:
    """Shape and grant checks for one plugin (its manifest and grants)."""

    def __init__(self, manifest: Manifest, grants: GrantSet) -> None:
        self.grants = grants
        self.request_targets = manifest.request_targets
        self.websocket_targets = manifest.websocket_targets
        self.connections: dict[str, str] = {conn.name: conn.url for conn in manifest.connections}
        # Emit topics that passed the pattern (a pure check of the text; most outputs
        # repeat a few topics), at most TOPICS_REMEMBERED of them.
        self._topics: set[str] = set()
        # `websocket_send` verdicts per declared connection: a pure function of its URL,
        # these grants and the manifest's targets, all fixed here (the URL match cost
        # more than the rest of an echo's host path).
        self._websocket_verdicts: dict[str, str | None] = {}

    def invalid(self, kind: str, value: Any) -> str | None:
        """Why the command's shape is invalid, or None."""
        if type(value) is not dict and not isinstance(value, Mapping):
            return f"a {kind} command carries a record"
        if kind == "emit":
            topic = value.get("topic")
            if type(topic) is not str or topic not in self._topics:
                if not isinstance(topic, str) or not _TOPIC_RE.fullmatch(topic):
                    return "emit topic must be 1-128 of [A-Za-z0-9_.:/-], starting with a letter or digit"
                if len(self._topics) < TOPICS_REMEMBERED:
                    self._topics.add(topic)
            return _json_problem("emit data_json", value.get("data_json"), optional=False)
        if kind == "log":
            if value.get("level") not in LOG_LEVELS:
                return f"log level must be one of {', '.join(sorted(LOG_LEVELS))}"
            message = value.get("message")
            if not isinstance(message, str):
                return "log message must be a string"
            if len(message.encode("utf-8", "replace")) > COMMAND_PAYLOAD_MAX_BYTES:
                return f"log message is larger than {COMMAND_PAYLOAD_MAX_BYTES} bytes"
            return None
        if kind == "status_update":
            if not isinstance(value.get("healthy"), bool):
                return "status_update healthy must be a bool"
            return _json_problem("status_update data_json", value.get("data_json"), optional=True)
        if kind == "websocket_send":
            connection = value.get("connection")
            if not isinstance(connection, str) or not _CONNECTION_RE.fullmatch(connection):
                return "websocket_send connection must be a connection name"
            message = value.get("message")
            if not isinstance(message, Case) or message.tag not in ("text", "binary"):
                return "websocket_send message must be text or binary"
            size = len(message.value.encode("utf-8", "replace")) if message.tag == "text" else len(message.value)
            if size > COMMAND_PAYLOAD_MAX_BYTES:
                return f"websocket_send message is larger than {COMMAND_PAYLOAD_MAX_BYTES} bytes"
            return None
        if kind == "http_request":
            return _http_problem(value, self.grants)
        return f"unknown command kind {kind!r}"

    def denied(self, kind: str, value: Mapping[str, Any]) -> str | None:
        """Why the plugin may not do this, or None."""
        if kind == "websocket_send":
            name = value["connection"]
            verdicts = self._websocket_verdicts
            if name in verdicts:
                return verdicts[name]
            if not self.grants.allows_host_api("websocket"):
                return "host api 'websocket' is not granted"
            url = self.connections.get(name)
            if url is None:
                return f"connection {name!r} is not declared in the manifest"
            verdict = self.grants.check_websocket(url, self.websocket_targets)
            refusal = verdicts[name] = None if verdict.allowed else f"connection {name!r}: {verdict.reason}"
            return refusal
        if kind == "http_request":
            verdict = self.grants.check_request(value["url"], str(value["method"]).upper(), self.request_targets)
            return None if verdict.allowed else verdict.reason
        return None


def _http_problem(value: Mapping[str, Any], grants: GrantSet) -> str | None:
    """The `request` import's own shape checks (`pdk.host.http_check`), then the
    command's size bound."""
    try:
        check_line(value)
        parts = check_parts(value, {ref.header.lower() for ref in grants.secrets if ref.header})
    except RequestInvalid as exc:
        return f"http_request: {exc.message}"
    size = len(str(value["url"]).encode("utf-8")) + sum(len(n) + len(v) for n, v in parts.headers) + len(parts.body or b"")
    if size > COMMAND_PAYLOAD_MAX_BYTES:
        return f"http_request is larger than {COMMAND_PAYLOAD_MAX_BYTES} bytes (url, headers and body)"
    return None


def unsupported_executor(context: CommandContext) -> Execution:
    return Execution("unsupported", f"{context.kind} commands are not executed by this host yet")


def _emit(context: CommandContext) -> Execution:
    context.runtime.emit_log.append(context, parsed_json(context.value["data_json"]))
    return _emitted_on(context.value["topic"])


@functools.lru_cache(maxsize=TOPICS_REMEMBERED)
def _emitted_on(topic: str) -> Execution:
    return Execution("executed", f"emitted on {topic}")


def _log(context: CommandContext) -> Execution:
    level, message = str(context.value["level"]), str(context.value["message"])
    context.runtime.plugin.diagnostics.add("command", level, message)
    return Execution("executed", f"logged {level}: {message}")  # bounded and redacted by `judge`


def _status_update(context: CommandContext) -> Execution:
    data_json = context.value.get("data_json")
    context.runtime.report_status(bool(context.value["healthy"]), data_json, "status_update")
    return Execution("executed", "status updated")


def default_executors() -> dict[str, Executor]:
    return {
        "emit": _emit,
        "log": _log,
        "status_update": _status_update,
        "websocket_send": unsupported_executor,
        "http_request": unsupported_executor,
    }


def judge(
    commands: list[Any],
    checker: CommandChecker,
    executors: Mapping[str, Executor],
    make_context: Callable[[str, str, Any], CommandContext],
    at_ms: int,
    event_id: str,
) -> list[CommandResult]:
    """Validate, grant-check and execute each of the first `COMMANDS_PER_OUTPUT_MAX`
    commands (one result each, stamped `at_ms`: when the handler's output came back);
    the excess, counted on the raw list before any of it is looked at, is refused with
    one `invalid` result (command id empty, kind `excess`)."""
    results: list[CommandResult] = []
    seen: set[str] = set()
    total = len(commands)
    for index, command in enumerate(commands[:COMMANDS_PER_OUTPUT_MAX] if total > COMMANDS_PER_OUTPUT_MAX else commands):
        command_id, kind, value = _parts(command)
        result, detail = _judge_one(index, command_id, kind, value, seen, checker, executors, make_context)
        if command_id:
            seen.add(command_id)
        if len(command_id) > COMMAND_ID_MAX_LEN or not command_id.isascii():
            command_id = bound_text(command_id, COMMAND_ID_MAX_LEN)  # (an ASCII id within the bound is kept as it is)
        results.append(CommandResult(command_id, kind, result, bounded_detail(detail), event_id, at_ms))
    if total > COMMANDS_PER_OUTPUT_MAX:
        excess = total - COMMANDS_PER_OUTPUT_MAX
        detail = f"{excess} commands after the first {COMMANDS_PER_OUTPUT_MAX} refused: at most {COMMANDS_PER_OUTPUT_MAX} per output ({total} returned)"
        results.append(CommandResult("", EXCESS_KIND, "invalid", detail, event_id, at_ms))
    return results


def _parts(command: Any) -> tuple[str, str, Any]:
    if type(command) is not dict and not isinstance(command, Mapping):
        return "", "unknown", None
    command_id = command.get("id")
    kind = command.get("kind")
    return (
        command_id if isinstance(command_id, str) else "",
        kind.tag if isinstance(kind, Case) else "unknown",
        kind.value if isinstance(kind, Case) else None,
    )


def _judge_one(
    index: int,
    command_id: str,
    kind: str,
    value: Any,
    seen: set[str],
    checker: CommandChecker,
    executors: Mapping[str, Executor],
    make_context: Callable[[str, str, Any], CommandContext],
) -> tuple[str, str]:
    if index >= COMMANDS_PER_OUTPUT_MAX:
        return "invalid", f"command {index + 1} of the output; at most {COMMANDS_PER_OUTPUT_MAX} per output"
    if not command_id:
        return "invalid", "the command id is empty"
    if len(command_id) > COMMAND_ID_MAX_LEN:
        return "invalid", f"the command id is longer than {COMMAND_ID_MAX_LEN} characters"
    if command_id in seen:
        return "invalid", f"the command id {command_id!r} is used twice in this output"
    if not isinstance(kind, str) or kind not in _KINDS:
        return "invalid", f"unknown command kind {kind!r}"
    problem = checker.invalid(kind, value)
    if problem is not None:
        return "invalid", problem
    refusal = checker.denied(kind, value)
    if refusal is not None:
        return "denied", refusal
    executor = executors.get(kind, unsupported_executor)
    try:
        execution = executor(make_context(command_id, kind, value))
    except Exception as exc:  # an executor bug must not sink the other commands
        return "failed", f"{type(exc).__name__}: {exc}"
    if not isinstance(execution.result, str) or execution.result not in _RESULTS:
        return "failed", f"the {kind} executor reported an unknown result {execution.result!r}"
    return execution.result, execution.detail
