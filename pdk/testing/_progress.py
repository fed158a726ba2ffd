"""Progress of the fixtures' slow steps (a build, a first compile, the dev runner's
build) and their one-off notes, through pytest's own terminal reporter: a line when
a step starts and one when it ends, written past output capture so it shows while
the test session runs, never inside a test's captured output."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import pytest

from pdk.host.progress import ProgressEvent


def pytest_note(config: pytest.Config) -> Callable[[str], None]:
    """Write one `pdk: ...` line to pytest's terminal, past output capture."""
    reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
    capture: Any = config.pluginmanager.get_plugin("capturemanager")

    def note(message: str) -> None:
        if reporter is None:
            return
        disabled = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
        with disabled:
            reporter.ensure_newline()
            reporter.write_line(f"pdk: {message}")

    return note


def pytest_progress(config: pytest.Config) -> Callable[[ProgressEvent], None]:
    """A progress sink for `pdk.host` and `generator.build` that writes to pytest's terminal."""
    note = pytest_note(config)
    silent: set[str] = set()

    def sink(event: ProgressEvent) -> None:
        if event.phase == "start" and event.show_after_s > 0:
            silent.add(event.step)  # a usually quick step: not worth two lines here
            return
        if event.phase == "end" and event.step in silent:
            silent.discard(event.step)
            return
        if event.phase == "start":
            note(f"{event.message}...")
        elif event.phase == "end":
            note(f"{event.message} ({event.elapsed_s:.1f}s)" if event.ok else f"{event.message}: failed after {event.elapsed_s:.1f}s")
        else:
            note(event.message)

    return sink
