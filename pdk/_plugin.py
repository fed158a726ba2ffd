"""`Plugin`: the registry that turns decorated, type-hinted functions into a plugin."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar, get_type_hints

from ._awaiting import awaitable, resolve
from ._contract import NAME_RE
from ._decode import DecodeError, decode_arguments, decode_value
from ._encode import EncodeError, to_json_value
from ._awaiting import _PLAIN_TYPES
from ._events import COMMAND_TYPES, Command, Event, Output, PayloadTooLarge, Status, payload_check
from ._schema import input_schema_for
from ._validation import validation_details
from ._wire import WireToolOutput, dumps, frozen, tool_output, tool_output_json
from .errors import ErrorCode, PluginError, ToolError
from .limits import COMMAND_PAYLOAD_MAX_BYTES, COMMANDS_PER_OUTPUT_MAX, SERVICE_OUTPUT_MAX_BYTES

F = TypeVar("F", bound=Callable[..., Any])
_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")


def _json_input(text: str) -> Any:
    """`json.loads(text)`. A text that is one JSON object with nothing around it (what a
    host sends) is scanned directly, without `loads`' layers and whitespace matches;
    anything else, or any error, goes through `json.loads`, which words the error."""
    if type(text) is str and text[:1] == "{" and text[-1:] == "}":
        try:
            value, end = _SCAN(text, 0)
        except (StopIteration, ValueError):
            pass
        else:
            if end == len(text):
                return value
    return json.loads(text)



@dataclass(frozen=True)
class ToolOutput:
    """What a tool may return to control its summary explicitly.

    `summary` is a short human line (cut to 1 KiB); `content` is any JSON value
    (at most 64 KiB once encoded)."""

    summary: str
    content: Any = None


@dataclass
class ToolSpec:
    """One registered tool."""

    name: str
    description: str
    func: Callable[..., Any]
    _schema: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def input_schema(self) -> dict[str, Any]:
        if self._schema is None:
            self._schema = input_schema_for(self.func)
        return self._schema


def _description_of(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    # The first paragraph is the description; the rest is for humans reading code.
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def _check_tool_name(name: str) -> None:
    if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
        raise ValueError(
            f"invalid tool name {name!r}: use 1-64 lower-case letters, digits, '_', '-' or '.', starting with a letter"
        )


@dataclass
class EventHandlerSpec:
    """A registered `@plugin.on_event` handler."""

    ingress: str
    kinds: tuple[str, ...] | None
    func: Callable[..., Any]
    takes_state: bool


@dataclass(frozen=True)
class WireStatus:
    healthy: bool
    data_json: str | None


@dataclass(frozen=True)
class WireOutput:
    data_json: str | None
    commands: list[Command]
    # Per command: the JSON text of an `Emit`'s or a `StatusUpdate`'s data, else None
    # (encoded once, for the bound and for the wire). Left empty, the bridge encodes.
    payloads: tuple[str | None, ...] = ()


def _positional_count(func: Callable[..., Any]) -> int:
    params = inspect.signature(func).parameters.values()
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


def _first_param_hint(func: Callable[..., Any]) -> Any:
    params = list(inspect.signature(func).parameters.values())
    if not params:
        return None
    try:
        hints = get_type_hints(func)
    except Exception:  # unresolvable hints: treat the config as plain JSON
        return None
    return hints.get(params[0].name)


class Plugin:
    """A Yoi plugin: tools, and (for services and ingresses) lifecycle and event handlers.

    Create one at module level (`plugin = Plugin()`) and decorate plain functions.
    The functions stay ordinary Python: unit tests call them directly.

    Any of these functions may be `async def`: its coroutine is driven to completion in
    the call (see `pdk/_awaiting.py`: no event loop, so await other coroutines or
    `asyncio.sleep(0)`, not timers, tasks or asyncio I/O).

    Service state: whatever `@plugin.on_start` returns becomes `plugin.state`; it is
    passed to event handlers, `@plugin.status` and `@plugin.on_stop`, and tools of a
    combined plugin can read it as `plugin.state`."""

    def __init__(self) -> None:
        self.tools: dict[str, ToolSpec] = {}
        self.event_handlers: list[EventHandlerSpec] = []
        self.state: Any = None
        self.running = False
        self._start: Callable[..., Any] | None = None
        self._stop: Callable[..., Any] | None = None
        self._status: Callable[..., Any] | None = None
        # (ingress, kind) -> the handler, found once per pair (cleared when one registers).
        self._routes: dict[tuple[str, str], EventHandlerSpec] = {}
        self._routed = 0  # len(event_handlers) when _routes was last valid

    # -- lifecycle and events ------------------------------------------------------------------

    def on_start(self, func: F) -> F:
        """Register the start handler: `(config) -> initial state`. A dataclass or
        TypedDict hint on `config` validates the operator's config."""
        self._start = func
        return func

    def on_stop(self, func: F) -> F:
        """Register the stop handler: `(state) -> None`."""
        self._stop = func
        return func

    def status(self, func: F) -> F:
        """Register the status reporter: `(state) -> dict | Status`. Must be cheap."""
        self._status = func
        return func

    def on_event(self, ingress: str, *, kinds: list[str] | tuple[str, ...] | None = None) -> Callable[[F], F]:
        """Register a handler for events of `ingress` (as declared in plugin.toml),
        optionally only of some `kinds`. The handler is `(state, event)` or `(event)`
        and returns None, a command, a list of commands, or `Output(commands, data)`."""

        def register(func: F) -> F:
            wanted = tuple(kinds) if kinds is not None else None
            for h in self.event_handlers:
                if h.ingress == ingress and (h.kinds is None or wanted is None or set(h.kinds) & set(wanted)):
                    raise ValueError(f"two handlers for ingress {ingress!r} overlap on kinds {wanted or 'all'}")
            self.event_handlers.append(EventHandlerSpec(ingress, wanted, func, _positional_count(func) >= 2))
            self._routes.clear()
            return func

        return register

    def describe_handlers(self) -> dict[str, Any]:
        """What `pdk build` compares with plugin.toml."""
        ingresses: dict[str, list[str] | None] = {}
        for h in self.event_handlers:
            if h.kinds is None or ingresses.get(h.ingress, []) is None:
                ingresses[h.ingress] = None
            else:
                ingresses[h.ingress] = sorted(set(ingresses.get(h.ingress) or []) | set(h.kinds))
        return {
            "ingresses": ingresses,
            "has_start": self._start is not None,
            "has_stop": self._stop is not None,
            "has_status": self._status is not None,
        }

    def run_start(self, config_json: str) -> WireStatus:
        try:
            config = json.loads(config_json) if config_json else {}
        except ValueError as exc:
            raise PluginError(f"config is not valid JSON: {exc}", code=ErrorCode.INVALID_INPUT) from None
        if self._start is not None:
            hint = _first_param_hint(self._start)
            if hint is not None and hint not in (dict, Any):
                try:
                    config = decode_value(hint, config)
                except DecodeError as exc:
                    raise PluginError(f"config: {exc}", code=ErrorCode.INVALID_INPUT) from None
            self.state = resolve(self._start(config), "on_start")
        else:
            self.state = {}
        self.running = True
        return self.run_status()

    def run_stop(self) -> WireStatus:
        try:
            if self._stop is not None:
                resolve(self._stop(self.state), "on_stop")
        finally:
            self.running = False
        status = WireStatus(healthy=True, data_json=None)
        self.state = None
        return status

    def run_status(self) -> WireStatus:
        if self._status is None:
            return WireStatus(healthy=self.running, data_json=None)
        result = resolve(self._status(self.state), "status")
        if isinstance(result, Status):
            return WireStatus(result.healthy, None if result.data is None else dumps(to_json_value(result.data)))
        return WireStatus(self.running, None if result is None else dumps(to_json_value(result)))

    def _handler_for(self, event: Event) -> EventHandlerSpec:
        key = (event.ingress, event.kind)
        if self._routed != len(self.event_handlers):  # a list changed without on_event
            self._routes.clear()
            self._routed = len(self.event_handlers)
        try:
            found = self._routes.get(key)
        except TypeError:  # an unhashable ingress or kind (an Event built by hand): no cache
            found, key = None, None  # type: ignore[assignment]
        if found is not None:
            return found
        for h in self.event_handlers:
            if h.ingress == event.ingress and (h.kinds is None or event.kind in h.kinds):
                if key is not None:
                    if len(self._routes) >= 256:
                        self._routes.clear()
                    self._routes[key] = h
                return h
        raise PluginError(
            f"no handler for events of kind {event.kind!r} on ingress {event.ingress!r}",
            code=ErrorCode.UNSUPPORTED,
        )

    def run_event(self, event: Event) -> WireOutput:
        """Dispatch one event and bound what the handler returned."""
        handler = self._handler_for(event)
        result = handler.func(self.state, event) if handler.takes_state else handler.func(event)
        kind = type(result)
        if kind not in _PLAIN_TYPES and awaitable(result):
            result = resolve(result, f"the handler for ingress {event.ingress!r}")
            kind = type(result)
        data: Any = None
        # The common returns first, by exact type; then what isinstance accepts.
        if kind is list:
            commands = list(result)
        elif result is None:
            commands = []
        elif isinstance(result, Output):
            commands, data = list(result.commands), result.data
        elif isinstance(result, COMMAND_TYPES):
            commands = [result]
        elif isinstance(result, (list, tuple)):
            commands = list(result)
        else:
            raise PluginError(
                f"handler returned {type(result).__name__}; return None, a command, a list of commands or Output(...)",
                code=ErrorCode.INVALID_OUTPUT,
            )
        payloads: list[str | None] = []
        if commands:
            for i, c in enumerate(commands):
                check = payload_check(c)
                if check is None:
                    raise PluginError(f"commands[{i}] is a {type(c).__name__}, not a command", code=ErrorCode.INVALID_OUTPUT)
                try:
                    payloads.append(check(c))
                except PayloadTooLarge:
                    raise PluginError(f"commands[{i}] payload exceeds {COMMAND_PAYLOAD_MAX_BYTES} bytes", code=ErrorCode.INVALID_OUTPUT) from None
            if len(commands) > COMMANDS_PER_OUTPUT_MAX:
                raise PluginError(f"{len(commands)} commands; at most {COMMANDS_PER_OUTPUT_MAX} per event", code=ErrorCode.INVALID_OUTPUT)
        data_json = None if data is None else dumps(to_json_value(data))
        if data_json is not None and len(data_json.encode("utf-8")) > SERVICE_OUTPUT_MAX_BYTES:
            raise PluginError("output data is too large", code=ErrorCode.INVALID_OUTPUT)
        return frozen(WireOutput, {"data_json": data_json, "commands": commands, "payloads": tuple(payloads)})

    # -- tools ---------------------------------------------------------------------------

    def tool(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Register a model-callable tool. Usable bare (`@plugin.tool`) or with
        arguments (`@plugin.tool(name="count", description="...")`)."""

        def register(f: F) -> F:
            tool_name = name or f.__name__
            _check_tool_name(tool_name)
            if tool_name in self.tools:
                raise ValueError(f"tool {tool_name!r} is registered twice")
            self.tools[tool_name] = ToolSpec(
                name=tool_name, description=description or _description_of(f), func=f
            )
            return f

        return register(func) if func is not None else register

    def run_tool(self, name: str, input_json: str) -> WireToolOutput:
        """Decode, validate, call and bound one tool call, as the component does.

        Raises `PluginError` (or any exception the tool raised); the export glue turns
        both into typed errors."""
        spec = self.tools.get(name)
        if spec is None:
            raise PluginError(
                f"unknown tool {name!r}; this plugin has: {', '.join(sorted(self.tools)) or 'none'}",
                code=ErrorCode.UNSUPPORTED,
            )
        try:
            data = _json_input(input_json)
        except ValueError as exc:
            raise ToolError(f"input is not valid JSON: {exc}", code=ErrorCode.INVALID_INPUT) from None
        try:
            kwargs = decode_arguments(spec.func, data)
        except DecodeError as exc:
            raise ToolError(
                str(exc),
                code=ErrorCode.INVALID_INPUT,
                details=validation_details(exc.errors),
            ) from None
        result = spec.func(**kwargs)
        if awaitable(result):
            result = resolve(result, f"tool {name!r}")
        return self._tool_output(name, result)

    @staticmethod
    def _tool_output(name: str, result: Any) -> WireToolOutput:
        try:
            if isinstance(result, ToolOutput):
                return tool_output(result.summary, to_json_value(result.content))
            if isinstance(result, str):
                # A short string is its own summary; a long one also travels whole as content.
                return tool_output(result, result if len(result.encode("utf-8")) > 1024 else None)
            content = to_json_value(result)
        except EncodeError as exc:
            raise ToolError(f"tool {name!r} returned a value that is not JSON: {exc}", code=ErrorCode.INVALID_OUTPUT) from None
        if content is None:
            return tool_output(f"{name}: done", None)
        content_json = dumps(content)
        return tool_output_json(f"{name}: {content_json}", content_json)
