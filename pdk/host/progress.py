"""Progress of long steps: the host and the toolchain emit events, a caller renders them.

Anything that can take over a second (a componentize-py build, a first compile,
starting a service, connecting) is wrapped in `step(sink, ...)`, which emits a
`start` event and an `end` event with the elapsed time. The library never prints on
its own: with no sink (None) nothing is emitted. A caller that wants output passes a
sink - `StreamRenderer(sys.stderr)` for a terminal or a log, or any callable that
takes a `ProgressEvent` (the pytest plugin writes through pytest's terminal writer).

    with step(progress, "compile", "compiling text_tools.wasm (first run - cached afterwards)") as s:
        component = Component(engine, data)
        s.done("compiled text_tools.wasm")
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Literal, Protocol, TextIO

Phase = Literal["start", "end", "note"]


@dataclass(frozen=True)
class ProgressEvent:
    """One report. `step` names the kind of work (`build`, `compile`, `start`,
    `connect`, ...); `elapsed_s` is set on `end`; `ok` is False when the step failed."""

    step: str
    phase: Phase
    message: str
    elapsed_s: float = 0.0
    ok: bool = True
    show_after_s: float = 0.0  # a start: render only if the step is still running after this


class ProgressSink(Protocol):
    def __call__(self, event: ProgressEvent) -> None: ...


class Step:
    """A running step; ends with `done(...)` or when its `with` block exits."""

    def __init__(
        self, sink: ProgressSink | Callable[[ProgressEvent], None] | None, name: str, message: str, show_after_s: float = 0.0
    ) -> None:
        self._sink = sink
        self.name = name
        self.message = message
        self.started = time.monotonic()
        self._ended = False
        self._end_message: str | None = None
        if sink is not None:
            sink(ProgressEvent(name, "start", message, show_after_s=show_after_s))

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def done(self, message: str | None = None) -> None:
        """Set what the end event says (default: the start message)."""
        self._end_message = message

    def end(self, ok: bool = True) -> None:
        if self._ended:
            return
        self._ended = True
        if self._sink is not None:
            self._sink(ProgressEvent(self.name, "end", self._end_message or self.message, self.elapsed_s, ok))

    def __enter__(self) -> Step:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.end(ok=exc_type is None)


def step(sink: ProgressSink | Callable[[ProgressEvent], None] | None, name: str, message: str, *, show_after_s: float = 0.0) -> Step:
    """Start a step; `show_after_s` > 0 for one that is usually quick (the renderer
    then says nothing unless it runs longer than that)."""
    return Step(sink, name, message, show_after_s)


def note(sink: ProgressSink | Callable[[ProgressEvent], None] | None, name: str, message: str) -> None:
    """A one-off remark (a fallback, a background job started)."""
    if sink is not None:
        sink(ProgressEvent(name, "note", message))


@dataclass
class _Running:
    event: ProgressEvent
    started: float
    shown: bool


class StreamRenderer:
    """Renders events to a text stream (stderr for the CLI).

    On a TTY a running step is one live line with its elapsed time, redrawn every
    0.1 s and replaced by its outcome; elsewhere a step is one line when it starts
    and one when it ends. A step started with `show_after_s` stays silent unless it
    is still running after that long (a service start that is usually instant).
    Lines start with `prefix` (default `pdk: `)."""

    def __init__(self, stream: TextIO, *, live: bool | None = None, prefix: str = "pdk: ") -> None:
        self.stream = stream
        try:
            self.live = stream.isatty() if live is None else live
        except (AttributeError, ValueError):
            self.live = False
        self.prefix = prefix
        self._lock = threading.Lock()
        self._running: list[_Running] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.phase == "note":
                self._clear()
                self._write(f"{self.prefix}{event.message}\n")
                self._draw()
            elif event.phase == "start":
                running = _Running(event, time.monotonic(), shown=event.show_after_s <= 0)
                self._running.append(running)
                if running.shown:
                    self._show(running)
                if self.live or not running.shown:
                    self._ensure_ticker()
            else:
                self._end(event)

    def _show(self, running: _Running) -> None:
        running.shown = True
        if self.live:
            self._draw()
        else:
            self._write(f"{self.prefix}{running.event.message}...\n")

    def _end(self, event: ProgressEvent) -> None:
        # An end may say something else than its start: match on the step name, latest first.
        found: _Running | None = None
        for i in range(len(self._running) - 1, -1, -1):
            if self._running[i].event.step == event.step:
                found = self._running.pop(i)
                break
        if found is not None and not found.shown:
            return  # ended before it was worth a line
        if self.live:
            self._write("\r\x1b[K")
        if event.ok:
            self._write(f"{self.prefix}{event.message} ({event.elapsed_s:.1f}s)\n")
        else:
            self._write(f"{self.prefix}{event.message}: failed after {event.elapsed_s:.1f}s\n")
        self._draw()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream must not break the work it reports on

    def _clear(self) -> None:
        if self.live and any(r.shown for r in self._running):
            self._write("\r\x1b[K")

    def _draw(self) -> None:
        if not self.live:
            return
        shown = [r for r in self._running if r.shown]
        if shown:
            r = shown[-1]
            self._write(f"\r\x1b[K{self.prefix}{r.event.message} {time.monotonic() - r.started:4.1f}s")

    def _ensure_ticker(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="pdk-progress", daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                if not self._running:  # idle: stop until the next step starts
                    self._thread = None
                    return
                now = time.monotonic()
                for r in self._running:
                    if not r.shown and now - r.started >= r.event.show_after_s:
                        self._show(r)
                self._draw()

    def close(self) -> None:
        """Stop redrawing and clear a live line (steps still running are not ended)."""
        self._stop.set()
        with self._lock:
            self._clear()
            self._running = []
