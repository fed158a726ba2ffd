"""Redaction with real secret shapes, and char-safe bounding at every cut offset."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdk.host.redact import REDACTED, bound_text, is_secret_key, redact

# Realistic shapes (all fake): what a leak would actually look like.
OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
ANTHROPIC_KEY = "sk-ant-api03-" + "abcDEF123_-" * 4
GITHUB_PAT = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_FINE = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
SLACK_BOT = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
GOOGLE_KEY = "AIza" + "SyD-1234567890abcdefghijklmnopqrstu"
STRIPE_KEY = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
BASIC = "dXNlcjpodW50ZXIy"  # base64("user:hunter2")


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("Authorization: Bearer abc123def456", "abc123def456", "Authorization: [redacted]"),
        ("authorization: bearer abc123def456", "abc123def456", "authorization: [redacted]"),
        (f"Authorization: Bearer {JWT}\r\nAccept: */*", JWT, "Authorization: [redacted]\r\nAccept: */*"),
        (f"Authorization: Basic {BASIC}", BASIC, "Authorization: [redacted]"),
        ("Authorization: token abc", "abc", "Authorization: [redacted]"),
        ("Proxy-Authorization: Basic Zm9vOmJhcg==", "Zm9vOmJhcg==", "Proxy-Authorization: [redacted]"),
        ("Cookie: session=abc; theme=dark", "session=abc", "Cookie: [redacted]"),
        ('{"Authorization": "Bearer abc123def456"}', "abc123def456", '{"Authorization": "[redacted]"}'),
        ("[('Authorization', 'Bearer abc123def456')]", "abc123def456", "[('Authorization', '[redacted]')]"),
        ("{'authorization': 'Bearer abc123def456'}", "abc123def456", "{'authorization': '[redacted]'}"),
        ('"Authorization: Bearer abc123def456"', "abc123def456", '"Authorization: [redacted]"'),
        ("retry with Bearer abc123def456 failed", "abc123def456", "retry with Bearer [redacted] failed"),
        (f"sent Basic {BASIC} upstream", BASIC, "sent Basic [redacted] upstream"),
    ],
)
def test_authorization_values_are_fully_replaced(text: str, secret: str, expected: str) -> None:
    out = redact(text)
    assert secret not in out
    assert out == expected


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /v1/items?api_key=abcdef123456&page=2", "abcdef123456"),
        ("https://h.example/cb?access_token=ya29.a0AfH6SMBx&state=xyz", "ya29.a0AfH6SMBx"),
        ("https://h.example/x?token=t0k3n", "t0k3n"),
        ("https://h.example/x?key=" + GOOGLE_KEY, GOOGLE_KEY),
        ("https://acct.blob.core.windows.net/c/b?sv=2021&sig=AbC%2Bd%3D", "AbC%2Bd%3D"),
        ("https://s3.example/o?X-Amz-Security-Token=FQoGZXIvYXdz&X-Amz-Signature=abcd", "FQoGZXIvYXdz"),
        ("https://s3.example/o?X-Amz-Credential=AKID%2F2024&X-Amz-Signature=abcd1234", "abcd1234"),
        ("password=hunter2", "hunter2"),
        ("PASSWORD=hunter2", "hunter2"),
        ("db_password: hunter2", "hunter2"),
        ("client_secret=s3cr3t&grant_type=client_credentials", "s3cr3t"),
        ("secret: very-secret-value", "very-secret-value"),
        ("refresh_token=1//0gAbCdEf", "1//0gAbCdEf"),
        ("X-Api-Key: abcd1234efgh", "abcd1234efgh"),
        ("x-api-key=abcd1234efgh", "abcd1234efgh"),
        ("GITHUB_TOKEN=" + GITHUB_PAT, GITHUB_PAT),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ('{"password": "hunter2", "user": "bob"}', "hunter2"),
        ('{"password":"hun\\"ter2"}', 'hun\\"ter2'),
        ("{'password': 'hunter2'}", "hunter2"),
        ('{"pin_password": 123456}', "123456"),
        ('{"api_key": "abc", "nested": {"access_token": "def456"}}', "def456"),
        ("--password hunter2", "hunter2"),
        ("--token=abc123", "abc123"),
        ("url=https://h.example/?token=inner123&x=1", "inner123"),
    ],
)
def test_secret_keys_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


def test_query_string_keeps_harmless_parameters() -> None:
    out = redact("https://h.example/x?api_key=abc123&page=2&max_tokens=100&token_type=bearer")
    assert out == "https://h.example/x?api_key=[redacted]&page=2&max_tokens=100&token_type=bearer"


def test_json_keeps_its_shape() -> None:
    out = redact('{"user": "bob", "password": "hunter2", "token": null, "retries": 3}')
    assert out == '{"user": "bob", "password": "[redacted]", "token": null, "retries": 3}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pass@h.example/x", "https://[redacted]@h.example/x"),
        ("wss://bot:s3cret@chat.example/socket", "wss://[redacted]@chat.example/socket"),
        ("postgres://app:pw@db:5432/app", "postgres://[redacted]@db:5432/app"),
        ("https://user:p@ss@h.example/x", "https://[redacted]@h.example/x"),
        ("https://tok3n@h.example/", "https://[redacted]@h.example/"),
        ("see https://h.example/x?mail=a@b.example", "see https://h.example/x?mail=a@b.example"),
        ("https://h.example/u/@handle", "https://h.example/u/@handle"),
        ("mail bob@example.com", "mail bob@example.com"),
    ],
)
def test_url_userinfo(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "secret",
    [OPENAI_KEY, ANTHROPIC_KEY, GITHUB_PAT, GITHUB_FINE, SLACK_BOT, AWS_KEY_ID, GOOGLE_KEY, STRIPE_KEY, JWT],
)
@pytest.mark.parametrize("template", ["{}", "error: bad key {} (401)", "value='{}'", "{}\nnext line"])
def test_opaque_tokens(secret: str, template: str) -> None:
    out = redact(template.format(secret))
    assert secret not in out
    assert out == template.format(REDACTED)


def test_private_key_block() -> None:
    text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\nok"
    out = redact(text)
    assert "MIIEowIBAAKCAQEA" not in out
    assert out.endswith("\nok")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain text with nothing secret",
        "uses Basic authentication",
        "missing Bearer token",
        "max_tokens=100 token_type=bearer",
        "task-abcdefghijklmnopqrstuvwxyz",  # `sk-` inside a word is not a key
        "word_count counted 42 words",
        "GET https://api.example.com/v1/items?page=2",
        "caf\u00e9 \u20ac \U0001f600",
    ],
)
def test_harmless_text_is_unchanged(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc123def456",
        '{"password": "x"} https://u:p@h/ token=abc ' + JWT,
        "--password hunter2 " + OPENAI_KEY,
    ],
)
def test_redact_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("Authorization", True),
        ("x-api-key", True),
        ("--password", True),
        ("github_token", True),
        ("aws_secret_access_key", True),
        ("max_tokens", False),
        ("token_type", False),
        ("user", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redact_is_linear_on_hostile_input() -> None:
    # No timing threshold: this only has to finish; a quadratic regex would not in CI time.
    hostile = "a" * 200_000 + "=" + "b" * 200_000 + ' "' * 50_000 + "https://" + "x" * 100_000
    assert redact(hostile).startswith("aaaa")
    pairs = "a:" * 100_000 + '"a": ' * 50_000 + "--a " * 50_000 + "token=" * 50_000
    assert redact(pairs).startswith("a:a:")


# --- bound_text ----------------------------------------------------------------------------

SAMPLES = [
    "ascii only text",
    "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e",  # 2-byte characters
    "\u20ac100 \u20ac200 \u20ac300",  # 3-byte characters
    "\U0001f600\U0001f680\U0001f44d ok",  # 4-byte characters
    "a\u00e9\u20ac\U0001f600" * 5,  # mixed widths
    "e\u0301\u0301\u0301",  # combining marks (each its own character)
]


@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize("marker", ["\u2026", "", "...", "[cut]"])
def test_bound_text_at_every_offset(text: str, marker: str) -> None:
    size = len(text.encode("utf-8"))
    for max_bytes in range(size + 2):
        out = bound_text(text, max_bytes, marker)
        encoded = out.encode("utf-8")  # would raise on a split character
        assert len(encoded) <= max_bytes
        if size <= max_bytes:
            assert out == text
        elif len(marker.encode("utf-8")) <= max_bytes:
            assert out.endswith(marker)
            body = out[: len(out) - len(marker)] if marker else out
            assert text.startswith(body)
            # As much text as fits: one more character would exceed the budget.
            nxt = text[len(body)]
            assert len((body + nxt + marker).encode("utf-8")) > max_bytes


@pytest.mark.parametrize(
    ("text", "max_bytes", "expected"),
    [
        ("caf\u00e9", 4, "c\u2026"),  # 5 bytes; the 3-byte marker leaves 1 byte of text
        ("caf\u00e9", 5, "caf\u00e9"),
        ("caf\u00e9!", 5, "ca\u2026"),
        ("\u20ac\u20ac", 5, "\u2026"),
        ("\u20ac\u20ac", 6, "\u20ac\u20ac"),
        ("\U0001f600\U0001f600", 7, "\U0001f600\u2026"),
        ("\U0001f600\U0001f600", 6, "\u2026"),  # 3 bytes left: not enough for a 4-byte emoji
        ("\U0001f600\U0001f600x", 7, "\U0001f600\u2026"),
        ("abc", 0, ""),
        ("abcd", 2, ""),  # the marker alone does not fit and is not split either
    ],
)
def test_bound_text_examples(text: str, max_bytes: int, expected: str) -> None:
    assert bound_text(text, max_bytes) == expected


def test_bound_text_cuts_an_oversized_marker_char_safely() -> None:
    assert bound_text("abcdef", 4, marker="\u20ac\u20ac") == "\u20ac"


def test_bound_text_replaces_lone_surrogates() -> None:
    out = bound_text("ab\ud800cd", 100)
    assert out == "ab\ufffdcd"
    out.encode("utf-8")


def test_bound_text_rejects_negative_budget() -> None:
    with pytest.raises(ValueError):
        bound_text("x", -1)


@given(text=st.text(), max_bytes=st.integers(min_value=0, max_value=64), marker=st.sampled_from(["\u2026", "", "...", "\U0001f600"]))
def test_bound_text_property(text: str, max_bytes: int, marker: str) -> None:
    out = bound_text(text, max_bytes, marker)
    encoded = out.encode("utf-8")
    assert len(encoded) <= max_bytes
    assert encoded.decode("utf-8") == out  # valid UTF-8, nothing split
    if len(text.encode("utf-8")) <= max_bytes:
        assert out == text
    elif len(marker.encode("utf-8")) <= max_bytes:
        # a prefix of the input, then the marker
        assert out.endswith(marker)
        assert text.startswith(out[: len(out) - len(marker)])
    else:
        assert marker.startswith(out)  # only (part of) the marker fits
