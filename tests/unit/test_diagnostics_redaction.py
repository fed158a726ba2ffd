"""DiagnosticLog redacts every record; short messages that redaction leaves alone are
remembered (so a handler that logs on every event skips the patterns), and nothing
remembered is ever a secret."""

from __future__ import annotations

from pdk.host import diagnostics
from pdk.host.diagnostics import CLEAN_REMEMBERED, CLEAN_REMEMBERED_MAX_LEN, DiagnosticLog
from pdk.host.redact import REDACTED
from pdk.limits import LOG_MESSAGE_MAX_BYTES


def test_a_repeated_secret_is_redacted_every_time_and_never_remembered() -> None:
    log = DiagnosticLog()
    secret = "calling with Authorization: Bearer abcdefghijklmnop"
    for _ in range(3):
        log.add("log", "info", secret)
    assert log.messages() == [f"calling with Authorization: {REDACTED}"] * 3
    assert secret not in diagnostics._clean
    assert all("abcdefghijklmnop" not in m for m in diagnostics._clean)


def test_a_repeated_clean_message_is_kept_as_it_is_and_remembered() -> None:
    log = DiagnosticLog()
    for _ in range(3):
        log.add("command", "info", "hello: hello")
    assert log.messages() == ["hello: hello"] * 3
    assert "hello: hello" in diagnostics._clean


def test_long_messages_are_not_remembered_and_still_bounded() -> None:
    log = DiagnosticLog()
    long_clean = "x" * (CLEAN_REMEMBERED_MAX_LEN + 1)
    log.add("log", "info", long_clean)
    assert long_clean not in diagnostics._clean and log.messages() == [long_clean]
    huge = "y " * LOG_MESSAGE_MAX_BYTES
    log.add("log", "info", huge)
    assert len(log.messages()[-1].encode()) <= LOG_MESSAGE_MAX_BYTES


def test_the_memory_of_clean_messages_is_bounded() -> None:
    log = DiagnosticLog(max_records=4)
    for i in range(CLEAN_REMEMBERED * 3):
        log.add("log", "info", f"event {i} handled")
    assert len(diagnostics._clean) <= CLEAN_REMEMBERED
    assert log.messages() == [f"event {i} handled" for i in range(CLEAN_REMEMBERED * 3 - 4, CLEAN_REMEMBERED * 3)]
