"""The event payload of an HTTP request body, by its Content-Type.

JSON media types (`application/json`, `*/*+json`) give `Case("json", text)` after a
syntax check, `text/*` gives `Case("text", str)`, an empty body without a type gives
`Case("empty")`, anything else `Case("binary", bytes)`."""

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


def _decode(body: bytes, charset: str | None, what: str) -> str:
    name = charset or "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        raise HttpError(400, "bad_request", f"unknown charset {name[:32]!r}") from None
    try:
        return body.decode(name)
    except UnicodeDecodeError as exc:
        raise HttpError(400, "bad_request", f"the {what} body is not valid {name}: {exc.reason} at byte {exc.start}") from None


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
