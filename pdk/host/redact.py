"""Host-side redaction and char-safe bounding of text shown to users.

Everything the host prints or stores about a plugin (errors, diagnostics, status) goes
through `redact_bounded` (or `redact` and `bound_text`, the one in `pdk._bounds`). v1 leaked bearer tokens (`Authorization: Bearer abc`
kept `abc`) and panicked when a cut fell inside a multibyte character; both are fixed
here.

Redaction is best-effort pattern matching, biased towards over-redaction: losing a bit of
context in a log line is cheap, leaking a credential is not. Every pattern is linear-time
(no nested quantifiers over the same characters), because the input may be guest-made.
"""

from __future__ import annotations

import base64
import binascii
import re

from pdk._bounds import ELLIPSIS, bound_text, encodable
from pdk.limits import REDACT_LOOKAHEAD_BYTES

__all__ = ["REDACTED", "bound_text", "is_secret_key", "redact", "redact_bounded"]

REDACTED = "[redacted]"

# Header-like keys whose value is the whole rest of the line (`Bearer abc`, cookies).
_HEADER_KEYS = frozenset({"authorization", "proxy_authorization", "cookie", "set_cookie"})
# Keys that are secret on their own (`?key=AIza…`, `sig=` of a presigned URL).
_EXACT_KEYS = frozenset({"key", "pass", "pwd", "sig", "auth", "apikey", "credentials"})
# Keys ending like this are secret: `github_token`, `db_password`, `client_secret`,
# `x-api-key`, `aws_secret_access_key`. `max_tokens` or `token_type` do not end so.
_SECRET_SUFFIXES = (
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "api_key",
    "apikey",
    "secret_key",
    "private_key",
    "access_key",
    "credential",
    "credentials",
    "signature",
    "session_id",
    "sessionid",
)

_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# `"key": "value"`, `'key': 'value'` (Python reprs), `('key', 'value')` header tuples,
# and bare scalars such as `"pin": 1234`.
_QUOTED_PAIR_RE = re.compile(
    r"""(["'])(?P<key>[A-Za-z0-9_.-]{1,64})\1(?P<sep>\s*[:=,]\s*)"""
    r"""(?:(?P<q>["'])(?P<value>(?:\\.|(?!(?P=q))[^\\\n])*)(?P=q)|(?P<bare>[^\s,;}\]"'][^\s,;}\]"']*))"""
)
# `Authorization: Bearer abc` up to the end of the line (or a closing quote).
_HEADER_LINE_RE = re.compile(
    r"(?<![\w-])(?P<key>proxy-authorization|authorization|set-cookie|cookie)(?P<sep>\s*[:=]\s*)"
    r"(?P<value>[^\r\n\"']+)",
    re.IGNORECASE,
)
# `key=value` (query strings, logs), `key: value` (YAML), `--key=value`. Keys and values
# are matched separately: the value is only looked at when the key is secret, so that a
# run of harmless pairs (`a:a:a:…`) costs linear time, not quadratic.
_PAIR_KEY_RE = re.compile(r"(?<![\w.-])(?P<key>-{0,2}[A-Za-z_][A-Za-z0-9_.-]{0,63})(?P<sep>\s*[:=]\s*)")
_PAIR_VALUE_RE = re.compile(r"[^\s&\"',;<>]+")
# `--password hunter2` on a command line.
_FLAG_KEY_RE = re.compile(r"(?<![\w-])(?P<key>--?[A-Za-z][A-Za-z0-9_-]{0,63})(?P<sep> +)(?=[^\s-])")
_FLAG_VALUE_RE = re.compile(r"\S+")
# A bearer credential anywhere, even without its header name.
_BEARER_RE = re.compile(r"\b(?P<scheme>Bearer)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/-]{8,}=*)", re.IGNORECASE)
_BASIC_RE = re.compile(r"\b(?P<scheme>Basic)(?P<sep>\s+)(?P<value>[A-Za-z0-9+/]{4,}={0,2})", re.IGNORECASE)
# `scheme://user:pass@host`: everything between `//` and the last `@` of the authority.
_USERINFO_RE = re.compile(r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://)[^/\s?#\"'<>]*@")
# Well-known opaque credential shapes.
_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic style (`sk-proj-…`, `sk-ant-…`)
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"  # GitHub fine-grained tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWT (signature may be empty)
    r")"
)


def redact(text: str) -> str:
    """Replace secrets in `text` with `[redacted]`: credential headers (whole value),
    secret-named keys in query strings, `key=value`, `key: value`, JSON/Python-repr pairs
    and command-line flags, URL userinfo, private-key blocks and well-known token shapes
    (`sk-…`, `ghp_…`, `xoxb-…`, AWS, Google, Stripe, JWTs). Never raises."""
    text = _PRIVATE_KEY_RE.sub(REDACTED, text)
    text = _QUOTED_PAIR_RE.sub(_redact_quoted_pair, text)
    text = _HEADER_LINE_RE.sub(_redact_header, text)
    text = _redact_key_values(_PAIR_KEY_RE, _PAIR_VALUE_RE, text)
    text = _redact_key_values(_FLAG_KEY_RE, _FLAG_VALUE_RE, text)
    text = _BEARER_RE.sub(_redact_scheme_value, text)
    text = _BASIC_RE.sub(_redact_basic, text)
    text = _USERINFO_RE.sub(lambda m: m.group("prefix") + REDACTED + "@", text)
    return _TOKEN_RE.sub(REDACTED, text)


def is_secret_key(key: str) -> bool:
    """Whether a key/header/flag name names a secret (`X-Api-Key`, `--password`, …)."""
    normalized = key.lstrip("-").lower().replace("-", "_").replace(".", "_")
    return (
        normalized in _HEADER_KEYS
        or normalized in _EXACT_KEYS
        or normalized.endswith(_SECRET_SUFFIXES)
    )


def _redact_quoted_pair(match: re.Match[str]) -> str:
    if not is_secret_key(match.group("key")):
        return match.group(0)
    quote, q, bare = match.group(1), match.group("q"), match.group("bare")
    if bare is not None:
        # JSON literals carry no secret; keeping them keeps the document readable.
        if bare in ("null", "true", "false", "None", "True", "False", REDACTED):
            return match.group(0)
        return f"{quote}{match.group('key')}{quote}{match.group('sep')}{REDACTED}"
    if match.group("value") in ("", REDACTED):
        return match.group(0)
    return f"{quote}{match.group('key')}{quote}{match.group('sep')}{q}{REDACTED}{q}"


def _redact_header(match: re.Match[str]) -> str:
    value = match.group("value")
    # Keep trailing blanks (and so the layout of the line) outside the replacement.
    stripped = value.rstrip()
    if not stripped or stripped == REDACTED:
        return match.group(0)
    return f"{match.group('key')}{match.group('sep')}{REDACTED}{value[len(stripped):]}"


def _redact_key_values(key_re: re.Pattern[str], value_re: re.Pattern[str], text: str) -> str:
    """Replace the value after every secret `key<sep>`. A pair whose key is not secret
    consumes only its key and separator: its value is scanned again, because
    `url=https://h/?token=abc` hides a secret pair inside a harmless one."""
    out: list[str] = []
    pos = 0
    while (match := key_re.search(text, pos)) is not None:
        end = match.end()
        value = value_re.match(text, end) if is_secret_key(match.group("key")) else None
        if value is not None and value.group(0) != REDACTED:
            out.append(text[pos:end] + REDACTED)
            pos = value.end()
        else:
            out.append(text[pos:end])
            pos = end
    out.append(text[pos:])
    return "".join(out)


def _redact_scheme_value(match: re.Match[str]) -> str:
    return f"{match.group('scheme')}{match.group('sep')}{REDACTED}"


def _redact_basic(match: re.Match[str]) -> str:
    # "Basic authentication" is prose; a Basic credential is base64 of `user:password`.
    try:
        decoded = base64.b64decode(match.group("value"), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    if b":" not in decoded:
        return match.group(0)
    return _redact_scheme_value(match)


def redact_bounded(text: str, max_bytes: int, marker: str = ELLIPSIS) -> str:
    """`text` redacted and cut to at most `max_bytes` bytes of UTF-8 (char-safe).

    Host work stays bounded whatever the guest sends: the text is cut first, to the
    budget plus `REDACT_LOOKAHEAD_BYTES`, so a 4 MB message costs as much as a short
    one; then redacted; then cut again to the budget. The lookahead lets a secret that
    straddles the final cut be seen whole by the patterns, and the window's last word,
    which the first cut may have broken into something no pattern recognizes (`sk-ab`),
    is dropped before redacting. Never raises for a non-negative budget."""
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    window = max_bytes + REDACT_LOOKAHEAD_BYTES
    if len(text) <= window // 4 or len(text.encode("utf-8", "surrogatepass")) <= window:
        return bound_text(redact(text), max_bytes, marker)
    head = bound_text(text, window, "")
    start = len(head)
    while start > 0 and not head[start - 1].isspace() and len(head) - start < REDACT_LOOKAHEAD_BYTES:
        start -= 1
    if start > 0 and head[start - 1].isspace():
        head = head[:start]
    # The original did not fit: the result is marked as cut even if redaction shrank it.
    marker_bytes = len(encodable(marker).encode("utf-8"))
    if marker_bytes > max_bytes:
        return bound_text(marker, max_bytes, "")
    return bound_text(redact(head), max_bytes - marker_bytes, "") + encodable(marker)
