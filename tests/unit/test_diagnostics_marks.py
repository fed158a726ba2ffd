"""DiagnosticLog marks (records since mark N, exactly, in a bounded ring) and
listeners, and the log lines the CLI prints from its records."""

from __future__ import annotations

from pdk._terminal import for_terminal
from pdk.cli._runtime_view import log_line, log_lines
from pdk.host.diagnostics import GUEST_SOURCES, DiagnosticLog, LogRecord, StdioCapture
from pdk.limits import LOG_MESSAGE_MAX_BYTES


def test_since_a_mark_returns_exactly_the_later_records() -> None:
    log = DiagnosticLog(max_records=8)
    log.add("log", "info", "before")
    mark = log.mark()
    assert mark == 1 and log.since(mark) == []
    log.add("log", "warn", "one")
    log.add("host", "error", "host note")
    log.add("stdout", "info", "two")
    assert [r.message for r in log.since(mark)] == ["one", "host note", "two"]
    assert [r.message for r in log.since(mark, GUEST_SOURCES)] == ["one", "two"]
    assert log.dropped_since(mark) == 0


def test_a_full_ring_says_how_many_records_since_the_mark_it_lost() -> None:
    log = DiagnosticLog(max_records=4)
    mark = log.mark()
    for i in range(10):
        log.add("stderr", "info", f"line {i}")
    assert [r.message for r in log.since(mark)] == ["line 6", "line 7", "line 8", "line 9"]
    assert log.dropped_since(mark) == 6 and log.dropped == 6
    assert log.dropped_since(log.mark()) == 0


def test_listeners_see_every_record_and_cannot_break_logging() -> None:
    log = DiagnosticLog()
    seen: list[LogRecord] = []

    def broken(record: LogRecord) -> None:
        raise RuntimeError("listener bug")

    log.subscribe(broken)
    log.subscribe(seen.append)
    log.add("log", "info", "x" * (LOG_MESSAGE_MAX_BYTES + 100))
    assert len(seen) == 1 and len(seen[0].message.encode()) <= LOG_MESSAGE_MAX_BYTES  # bounded before anyone sees it
    log.unsubscribe(seen.append)
    log.add("log", "info", "later")
    assert len(seen) == 1 and len(log.records()) == 2


def test_captured_stdout_lines_are_records_since_the_mark() -> None:
    log = DiagnosticLog()
    mark = log.mark()
    out = StdioCapture(log, "stdout", budget=20)
    out.write(b"hello\nwor")
    out.write(b"ld\n" + b"z" * 30)
    assert [(r.source, r.message) for r in log.since(mark)] == [("stdout", "hello"), ("stdout", "world")]
    assert out.discarded_bytes == 9 + 3 + 30 - 20


def test_log_lines_are_what_the_cli_prints() -> None:
    assert log_line({"source": "log", "level": "warn", "message": "careful"}) == "log warn: careful"
    assert log_line({"source": "stdout", "level": "info", "message": "printed"}) == "stdout: printed"
    assert log_lines([{"source": "stderr", "level": "info", "message": "e"}], dropped=3) == ["(3 earlier log records no longer kept)", "stderr: e"]
    shown = for_terminal(log_line({"source": "log", "level": "info", "message": "\x1b]52;c;aGk=\x07\u202e"}))
    assert shown == "log info: \\x1b]52;c;aGk=\\x07\\u202e"
