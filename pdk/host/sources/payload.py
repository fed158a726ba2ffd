"""The event payload of an HTTP request body, by its Content-Type.

JSON media types (`application/json`, `*/*+json`) give `Case("json", text)` after a
syntax check, `text/*` gives `Case("text", str)`, an empty body without a type gives
`Case("empty")`, anything else `Case("binary", bytes)`. A charset must name one of the
text encodings in `TEXT_CHARSETS` (Python's codec registry also holds bytes-to-bytes
codecs such as rot13 or zlib, and codecs whose decoding cost is not linear)."""

from __future__ import annotations

import codecs
import json

from pdk.host.codec import Case

from .http_wire import HttpError


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """(lower-cased media type, charset or None)."""
    if not content_type:
        return "", None
    media, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower() or None
    return media.strip().lower(), charset


def is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


# The charsets a body may declare, by their codec's canonical name.
TEXT_CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
        "ascii", "latin-1", *(f"iso-8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)),
        *(f"cp{n}" for n in (437, 850, 866, 874, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258)),
        "koi8-r", "koi8-u", "shift_jis", "cp932", "euc-jp", "iso-2022-jp", "gb2312", "gbk", "gb18030",
        "big5", "euc-kr", "cp949",
    )
)


def _codec(name: str) -> str:
    try:
        canonical = codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a name with NUL
        canonical = None
    if canonical not in TEXT_CHARSETS:
        raise HttpError(400, "bad_request", f"unknown or unsupported charset {name[:32]!r}")
    return name


def _decode(body: bytes, charset: str | None, what: str) -> str:
    name = _codec(charset or "utf-8")
    try:
        return body.decode(name)
    except UnicodeDecodeError as exc:
        raise HttpError(400, "bad_request", f"the {what} body is not valid {name[:32]}: {exc.reason} at byte {exc.start}") from None


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def payload_from(content_type: str | None, body: bytes) -> Case:
    media, charset = media_type(content_type)
    if is_json(media):
        text = _decode(body, charset, "JSON")
        try:
            json.loads(text, parse_constant=_no_constants)
        except (ValueError, RecursionError) as exc:
            raise HttpError(400, "invalid_json", f"the body is not valid JSON: {str(exc)[:200]}") from None
        return Case("json", text)
    if media.startswith("text/"):
        return Case("text", _decode(body, charset, "text"))
    if not media and not body:
        return Case("empty", None)
    return Case("binary", body)
