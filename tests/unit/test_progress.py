"""Progress events and their rendering: one line at the start and one at the end off
a TTY; a live, redrawn line with the elapsed time on a TTY; usually-quick steps stay
silent unless they run long; nothing at all without a sink. And the compiler's one
notice when the fast tier is unavailable."""

from __future__ import annotations

import io
import re
import time
import warnings

import pytest

from pdk.host import compiler as compiler_mod
from pdk.host.compiler import CompileMode, Compiler
from pdk.host.engine import Engines, Tier, fast_tier_available
from pdk.host.progress import ProgressEvent, StreamRenderer, note, step


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_tty_a_step_is_a_start_line_and_an_end_line() -> None:
    out = io.StringIO()
    renderer = StreamRenderer(out)
    with step(renderer, "compile", "compiling app.wasm (Winch, first run - cached afterwards)") as s:
        s.done("compiled app.wasm with Winch")
    lines = out.getvalue().splitlines()
    assert lines[0] == "pdk: compiling app.wasm (Winch, first run - cached afterwards)..."
    assert re.fullmatch(r"pdk: compiled app\.wasm with Winch \(\d+\.\ds\)", lines[1])
    assert len(lines) == 2


def test_a_failed_step_says_so() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError):
        with step(StreamRenderer(out), "build", "building app.wasm with componentize-py"):
            raise RuntimeError("boom")
    assert re.fullmatch(r"pdk: building app\.wasm with componentize-py: failed after \d+\.\ds", out.getvalue().splitlines()[1])


def test_on_a_tty_the_running_line_is_redrawn_with_its_elapsed_time() -> None:
    out = FakeTty()
    renderer = StreamRenderer(out)
    with step(renderer, "compile", "compiling app.wasm"):
        time.sleep(0.35)
    text = out.getvalue()
    redraws = re.findall(r"\r\x1b\[Kpdk: compiling app\.wasm +\d+\.\ds", text)
    assert len(redraws) >= 2  # the first draw and at least one tick
    assert re.search(r"\r\x1b\[Kpdk: compiling app\.wasm \(\d+\.\ds\)\n$", text)
    renderer.close()


def test_a_quick_step_with_show_after_is_silent_and_a_slow_one_is_shown() -> None:
    out = io.StringIO()
    renderer = StreamRenderer(out)
    with step(renderer, "start", "starting quick", show_after_s=5.0):
        pass
    assert out.getvalue() == ""
    with step(renderer, "start", "starting slow", show_after_s=0.1):
        time.sleep(0.5)
    lines = out.getvalue().splitlines()
    assert lines[0] == "pdk: starting slow..."
    assert re.fullmatch(r"pdk: starting slow \(\d+\.\ds\)", lines[1])


def test_notes_are_one_line_and_no_sink_means_no_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    note(StreamRenderer(out), "upgrade", "compiling optimized code in the background")
    assert out.getvalue() == "pdk: compiling optimized code in the background\n"
    with step(None, "compile", "compiling"):
        pass
    note(None, "upgrade", "nothing")
    assert capsys.readouterr() == ("", "")


def test_a_broken_stream_does_not_break_the_step() -> None:
    out = io.StringIO()
    out.close()
    with step(StreamRenderer(out, live=False), "build", "building"):
        pass


def test_the_fast_tier_is_available_in_this_wasmtime() -> None:
    assert fast_tier_available() == (True, "")


def test_without_the_fast_tier_the_compiler_falls_back_and_says_so_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler_mod, "fast_tier_available", lambda: (False, "winch support is not enabled"))
    monkeypatch.setattr(compiler_mod, "_fallback_said", False)
    events: list[ProgressEvent] = []
    first = Compiler(None, Engines(), CompileMode.TIERED, progress=events.append)
    second = Compiler(None, Engines(), CompileMode.FAST, progress=events.append)
    assert first.mode is second.mode is CompileMode.OPTIMIZED
    assert first.foreground_tier is Tier.OPTIMIZED
    assert [(e.phase, e.message) for e in events] == [
        ("note", "the fast compiler (Winch) is unavailable in this wasmtime (winch support is not enabled); "
                 "compiling with Cranelift, which is slower on a first run"),
    ]


def test_without_a_sink_the_fallback_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler_mod, "fast_tier_available", lambda: (False, "no winch"))
    monkeypatch.setattr(compiler_mod, "_fallback_said", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Compiler(None, Engines(), "tiered")
        Compiler(None, Engines(), "tiered")
    assert [str(w.message) for w in caught] == [
        "the fast compiler (Winch) is unavailable in this wasmtime (no winch); compiling with Cranelift, which is slower on a first run"
    ]
