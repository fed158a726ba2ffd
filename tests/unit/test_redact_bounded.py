"""`redact_bounded`: guest text is cut before it is redacted (host work bounded by the
budget, not by what the guest sends), and a secret straddling the cut never leaks."""

from __future__ import annotations

import pytest

import pdk.host.redact as redact_module
from pdk.host.diagnostics import DiagnosticLog
from pdk.host.error_record import error_record, plugin_error_record
from pdk.host.redact import REDACTED, redact, redact_bounded
from pdk.limits import ERROR_MESSAGE_MAX_BYTES, LOG_MESSAGE_MAX_BYTES, REDACT_LOOKAHEAD_BYTES

BEARER = "Bearer " + "eyJhbGciOiJIUzI1NiJ9" + "Q" * 40
OPENAI = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
GITHUB = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"

# (text around the cut, the secret part that must not appear, even partly)
SHAPES = [
    (f"Authorization: {BEARER}", BEARER.split(" ", 1)[1]),
    (f"authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    (f"https://api.example.com/v1/x?api_key=SECRETVALUE{'z' * 30}&page=2", "SECRETVALUE"),
    (f"https://api.example.com/v1/x?token={'t' * 40}", "t" * 8),
    (f"calling with {OPENAI} now", OPENAI[3:]),
    (f"push {GITHUB}", GITHUB[4:]),
    (f"key id {AWS}", AWS[4:]),
    (f"--password hunter2hunter2hunter2 --verbose", "hunter2"),
    (f'{{"client_secret": "abcdefghijklmnopqrstuvwxyz"}}', "abcdefgh"),
]


def fragments(secret: str, size: int = 6) -> list[str]:
    """Every `size`-long piece of the secret: none may survive in the output."""
    return [secret[i : i + size] for i in range(0, max(len(secret) - size + 1, 1))]


@pytest.mark.parametrize(("shape", "secret"), SHAPES)
@pytest.mark.parametrize("budget", [ERROR_MESSAGE_MAX_BYTES, 256])
def test_a_secret_straddling_the_cut_never_leaks(shape: str, secret: str, budget: int) -> None:
    # Put the cut at every offset across the secret, on both sides of the lookahead window.
    for cut_at in list(range(-len(shape) - 2, 3)) + [REDACT_LOOKAHEAD_BYTES - len(shape) // 2]:
        pad = max(budget + cut_at, 0)
        text = "x" * pad + " " + shape + " " + "y" * (4 * 1024 * 1024)  # a 4 MB message
        out = redact_bounded(text, budget)
        assert len(out.encode("utf-8")) <= budget
        assert out.endswith("…")
        for piece in fragments(secret):
            assert piece not in out, (cut_at, out[-80:])


@pytest.mark.parametrize(("shape", "secret"), SHAPES)
def test_short_texts_are_redacted_exactly_as_before(shape: str, secret: str) -> None:
    text = f"before {shape} after"
    assert redact_bounded(text, 4096) == redact(text)
    assert secret not in redact_bounded(text, 4096)


def test_a_4_mb_message_is_cut_before_it_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = redact_module.redact

    def counting(text: str) -> str:
        seen.append(len(text.encode("utf-8")))
        return real(text)

    monkeypatch.setattr(redact_module, "redact", counting)
    huge = "token=abc " * 400_000  # 4 MB of pairs that each make the redactor look twice
    out = redact_bounded(huge, ERROR_MESSAGE_MAX_BYTES)
    assert len(out.encode("utf-8")) <= ERROR_MESSAGE_MAX_BYTES
    assert "abc" not in out and out.count(REDACTED) > 100
    # The redactor saw the budget plus its lookahead, not the 4 MB.
    assert seen and max(seen) <= ERROR_MESSAGE_MAX_BYTES + REDACT_LOOKAHEAD_BYTES


def test_shrinking_redaction_still_marks_the_cut() -> None:
    text = "Authorization: Bearer " + "a" * 5000 + "\n" + "z" * 10_000_000
    out = redact_bounded(text, 100)
    assert out.startswith("Authorization: [redacted]") and out.endswith("…")
    assert "aaaa" not in out


def test_error_records_and_logs_use_it() -> None:
    message = "x" * 5000 + " " + f"Authorization: {BEARER}" + " tail" * 800_000
    record = error_record("failed", message)
    assert len(record.message.encode("utf-8")) <= ERROR_MESSAGE_MAX_BYTES
    assert "eyJhbGci" not in record.message
    guest = plugin_error_record({"code": "denied", "message": message, "details_json": '{"api_key": "s3cr3tvalue"}', "retryable": True})
    assert guest.code.value == "denied" and guest.retryable is True
    assert guest.details == {"api_key": REDACTED}
    log = DiagnosticLog()
    log.add("guest", "info", message)
    (kept,) = log.messages("guest")
    assert len(kept.encode("utf-8")) <= LOG_MESSAGE_MAX_BYTES and "eyJhbGci" not in kept


@pytest.mark.parametrize("budget", [0, 1, 2, 3, 4])
def test_tiny_budgets(budget: int) -> None:
    out = redact_bounded("a" * 100_000, budget)
    assert len(out.encode("utf-8")) <= budget
