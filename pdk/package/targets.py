"""URL target matching: the one place that decides whether a URL is inside a target.

A request (or WebSocket connection) is allowed only when some target declared in the
manifest AND some target granted by the operator each allow it (docs/architecture.md):

* paths are matched **segment by segment** (`/v1` allows `/v1/x`, never `/v1evil`), and
  the request path is normalized first, so `/v1/../admin` or `/v1/%2e%2e/admin` cannot
  climb out of a prefix; a path whose separators or dot segments a server could read
  differently (a backslash, literal or `%5c`; `..;x` or `..%3bx`; an overlong UTF-8 `.`
  or `/`) is refused rather than guessed at;
* hosts are normalized (case, trailing dot, IDNA) so that two spellings of one name match
  the same targets, and `*.` wildcards match subdomains only, never the apex;
* ports and methods are part of the match, with defaults spelled out below;
* after DNS resolution, a wildcard never reaches a loopback/private/link-local address and
  a DNS name never does either: only a target that names an IP literal or `localhost`
  explicitly may (see `check_resolved`).

Pure logic, standard library only (shared by the manifest check, grants, the host and
the toolchain); no network access happens here.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pdk._contract import token_re
from pdk.package.errors import PdkError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

HTTP_SCHEMES: frozenset[str] = frozenset({"http", "https"})
WEBSOCKET_SCHEMES: frozenset[str] = frozenset({"ws", "wss"})
DEFAULT_PORTS: Mapping[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# A target with no `methods` allows only safe reads: anything that changes state must be
# named, so an operator never grants POST by forgetting a key.
DEFAULT_METHODS: tuple[str, ...] = ("GET", "HEAD")

# Bounds on what we are willing to parse; anything longer is refused, not truncated.
URL_MAX_LEN = 8192
HOST_MAX_LEN = 253

_TARGET_KEYS_REQUEST = frozenset({"scheme", "host", "port", "methods", "path_prefixes"})
_TARGET_KEYS_WEBSOCKET = frozenset({"scheme", "host", "port", "path_prefixes"})

# RFC 9110 token characters: what a method name may be made of.
_METHOD_RE = token_re(32)
# After IDNA encoding a DNS name is ASCII; underscores occur in real names (SRV-style).
_DNS_NAME_RE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_PERCENT_RE = re.compile(r"%(..)?", re.DOTALL)
_HEX2_RE = re.compile(r"^[0-9A-Fa-f]{2}$")
# RFC 3986 unreserved characters: decoding them never changes what a server sees.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# `.` and `/` are decoded too (the brief's `%2e`/`%2f`), so that encoded dot segments and
# encoded slashes are seen, and judged, as the segments a lenient server may make of them.
_DECODED_BYTES = frozenset({0x2E, 0x2F}) | frozenset(ord(c) for c in _UNRESERVED)
# Every printable ASCII character: what `_decode_path` leaves unescaped (built once:
# making it per call was half the cost of judging a URL).
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
_CONTROL_OR_SPACE_RE = re.compile(r"[\x00-\x20\x7f]")
# Lead bytes that only ever start an overlong (invalid) UTF-8 sequence, on escapes that
# `_decode_path` has upper-cased: C0/C1, E0 followed by 80-9F, F0 followed by 80-8F.
_OVERLONG_RE = re.compile(r"%C[01]|%E0%[89]|%F0%8")
_PARAMS_RE = re.compile(r";|%3B")


class TargetError(PdkError, ValueError):
    """A target mapping (from a manifest or a grants file) is malformed.

    `code` is one of `unknown_key`, `missing_key`, `invalid_value`; `key` names the
    offending key so that callers can prefix their own location (file, table index)."""

    def __init__(self, code: str, key: str, message: str) -> None:
        super().__init__(message, code=code, text=f"{key}: {message}" if key else message)
        self.code: str = code
        self.key = key


class UrlError(ValueError):
    """A URL or path cannot be judged safely (malformed, ambiguous or escaping)."""


@dataclass(frozen=True)
class MatchResult:
    """The verdict of a match, with a short human-readable reason (never a secret:
    reasons name scheme, host, port, method and a bounded path, never query strings)."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class RequestLine:
    """A URL reduced to exactly the parts that matching looks at, normalized."""

    scheme: str
    host: str
    port: int
    method: str
    path: str

    def describe(self) -> str:
        shown = self.path if len(self.path) <= 200 else self.path[:200] + "…"
        return f"{self.method} {self.scheme}://{_host_for_display(self.host)}:{self.port}{shown}"


@dataclass(frozen=True)
class Target:
    """One declared or granted target.

    `host` is normalized; a wildcard is stored as `*.` + normalized base. `port` None means
    "the scheme's default port only". `methods` empty means GET and HEAD only.
    `path_prefixes` are normalized absolute paths; `/` allows every path."""

    scheme: str
    host: str
    port: int | None = None
    methods: tuple[str, ...] = ()
    path_prefixes: tuple[str, ...] = ("/",)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, websocket: bool = False) -> Target:
        """Parse and validate a manifest/grants table. `websocket=True` selects the
        WebSocket shape: scheme `ws`/`wss` and no `methods` (a handshake is a GET)."""
        if not isinstance(data, Mapping):
            raise TargetError("invalid_value", "", "a target must be a table")
        allowed_keys = _TARGET_KEYS_WEBSOCKET if websocket else _TARGET_KEYS_REQUEST
        for key in data:
            if key not in allowed_keys:
                raise TargetError("unknown_key", str(key), f"unknown key (allowed: {', '.join(sorted(allowed_keys))})")
        schemes = WEBSOCKET_SCHEMES if websocket else HTTP_SCHEMES
        return cls(
            scheme=_parse_scheme(data, schemes),
            host=_parse_target_host(data),
            port=_parse_port(data),
            methods=() if websocket else _parse_methods(data),
            path_prefixes=_parse_prefixes(data),
        )

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    @property
    def ip(self) -> IPAddress | None:
        """The target's host as an address when it is an IP literal."""
        return _as_ip(self.host)

    @property
    def effective_methods(self) -> tuple[str, ...]:
        return self.methods or DEFAULT_METHODS

    def matches_host(self, host: str) -> bool:
        """`host` must already be normalized (see `normalize_host`)."""
        if self.wildcard:
            base = self.host[2:]
            # Subdomains only: `*.example.com` never matches `example.com` itself.
            return host.endswith("." + base) and len(host) > len(base) + 1
        return host == self.host

    def mismatch(self, req: RequestLine) -> str | None:
        """None when this target allows `req`, else the first rule that refused it."""
        if req.scheme != self.scheme:
            return "scheme"
        if not self.matches_host(req.host):
            return "host"
        if req.port != (self.port if self.port is not None else DEFAULT_PORTS[self.scheme]):
            return "port"
        if req.method not in self.effective_methods:
            return "method"
        if not any(path_within(req.path, prefix) for prefix in self.path_prefixes):
            return "path"
        return None


# --- parsing of target tables -------------------------------------------------------------


def _parse_scheme(data: Mapping[str, Any], schemes: frozenset[str]) -> str:
    if "scheme" not in data:
        raise TargetError("missing_key", "scheme", "required")
    scheme = data["scheme"]
    if not isinstance(scheme, str) or scheme.lower() not in schemes:
        raise TargetError("invalid_value", "scheme", f"must be one of {', '.join(sorted(schemes))}")
    return scheme.lower()


def _parse_target_host(data: Mapping[str, Any]) -> str:
    if "host" not in data:
        raise TargetError("missing_key", "host", "required")
    raw = data["host"]
    if not isinstance(raw, str) or not raw:
        raise TargetError("invalid_value", "host", "must be a non-empty string")
    wildcard = raw.startswith("*.")
    base = raw[2:] if wildcard else raw
    if base.startswith("[") and base.endswith("]"):
        base = base[1:-1]  # accept `[::1]` as written in URLs
    try:
        host = normalize_host(base)
    except UrlError as exc:
        raise TargetError("invalid_value", "host", str(exc)) from None
    if wildcard:
        if _as_ip(host) is not None:
            raise TargetError("invalid_value", "host", "a wildcard cannot cover an IP address")
        # `*.com` would grant a whole public suffix; a wildcard needs a registrable base.
        if "." not in host:
            raise TargetError("invalid_value", "host", "a wildcard needs at least two labels after '*.'")
        return "*." + host
    return host


def _parse_port(data: Mapping[str, Any]) -> int | None:
    port = data.get("port")
    if port is None:
        return None
    # bool is an int subclass; `port = true` is a typo, not port 1.
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise TargetError("invalid_value", "port", "must be an integer 1-65535")
    return port


def _parse_methods(data: Mapping[str, Any]) -> tuple[str, ...]:
    methods = data.get("methods", [])
    if not isinstance(methods, list):
        raise TargetError("invalid_value", "methods", "must be a list of HTTP method names")
    out: list[str] = []
    for method in methods:
        if not isinstance(method, str) or not _METHOD_RE.fullmatch(method):
            raise TargetError("invalid_value", "methods", f"not an HTTP method: {_show(method)}")
        if method.upper() not in out:
            out.append(method.upper())
    return tuple(out)


def _parse_prefixes(data: Mapping[str, Any]) -> tuple[str, ...]:
    if "path_prefixes" not in data:
        return ("/",)  # a target without prefixes names the whole host
    prefixes = data["path_prefixes"]
    if not isinstance(prefixes, list) or not prefixes:
        raise TargetError("invalid_value", "path_prefixes", "must be a non-empty list (use [\"/\"] for every path)")
    out: list[str] = []
    for prefix in prefixes:
        normalized = _parse_prefix(prefix)
        if normalized not in out:
            out.append(normalized)
    return tuple(out)


def _parse_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise TargetError("invalid_value", "path_prefixes", f"must start with '/': {_show(prefix)}")
    if "?" in prefix or "#" in prefix:
        raise TargetError("invalid_value", "path_prefixes", f"a path prefix has no query or fragment: {_show(prefix)}")
    segments = _decode_path(prefix).split("/")
    if any(_is_dot_like(seg) for seg in segments):
        # A prefix that contains `.`/`..` says something other than what it means.
        raise TargetError("invalid_value", "path_prefixes", f"no '.' or '..' segments: {_show(prefix)}")
    try:
        return normalize_path(prefix)
    except UrlError as exc:
        raise TargetError("invalid_value", "path_prefixes", str(exc)) from None


def parse_targets(items: Any, *, websocket: bool = False) -> tuple[Target, ...]:
    """Parse a list of target tables; a TargetError's key is prefixed with the index."""
    if not isinstance(items, list):
        raise TargetError("invalid_value", "", "must be an array of tables")
    targets: list[Target] = []
    for index, item in enumerate(items):
        try:
            targets.append(Target.from_mapping(item, websocket=websocket))
        except TargetError as exc:
            key = f"[{index}].{exc.key}" if exc.key else f"[{index}]"
            raise TargetError(exc.code, key, exc.message) from None
    return tuple(targets)


# --- normalization --------------------------------------------------------------------------


def normalize_host(host: str) -> str:
    """Lower-case, strip one trailing dot, IDNA-encode (stdlib `idna` codec, IDNA 2003);
    IP literals are returned in their canonical compressed form."""
    if not host or len(host) > HOST_MAX_LEN + 1:
        raise UrlError("host is empty or too long")
    host = host.lower()
    # Only a text with a `:` (IPv6) or of ASCII digits and dots (IPv4) can be an IP
    # literal; for a name, `ipaddress` would raise (slowly) and say no.
    ip = _as_ip(host) if ":" in host or host.replace(".", "").isdigit() else None
    if ip is not None:
        return str(ip)
    if host.endswith("."):
        host = host[:-1]
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UrlError("host is not a valid domain name") from None
    encoded = encoded.lower()
    if not _DNS_NAME_RE.fullmatch(encoded) or len(encoded) > HOST_MAX_LEN:
        raise UrlError("host is not a valid domain name")
    return encoded


def normalize_path(raw: str) -> str:
    """Normalize a URL path for matching: decode unreserved characters and `%2e`/`%2f`,
    upper-case the remaining escapes, percent-encode non-ASCII, collapse `//`, resolve
    `.` and `..`. Raises UrlError for paths that climb above the root, malformed escapes,
    backslashes, and `..;x`-style segments (servers disagree about those)."""
    if raw == "":
        raw = "/"
    if not raw.startswith("/"):
        raise UrlError("path must be absolute")
    if "\\" in raw:
        # Some servers treat `\` as `/`; we cannot know which, so we refuse to guess.
        raise UrlError("path contains a backslash")
    decoded = _decode_path(raw)
    # The same guesses, spelled with escapes (upper-cased by `_decode_path`): a server that
    # decodes `%5c` to `\` and treats it as `/` reads `/v1/..%5cadmin` as `/admin`; old
    # decoders read overlong UTF-8 (`%c0%ae`, `%c0%af`, `%e0%80%ae`) as `.` and `/`.
    if "%5C" in decoded:
        raise UrlError("path contains an encoded backslash (%5c)")
    if _OVERLONG_RE.search(decoded):
        raise UrlError("path contains an overlong UTF-8 escape")
    segments = decoded.split("/")[1:]
    out: list[str] = []
    for seg in segments:
        if seg == "..":
            if not out:
                raise UrlError("path climbs above the root")
            out.pop()
        elif seg not in ("", "."):
            if _is_dot_like(seg):
                raise UrlError("path has an ambiguous dot segment")
            out.append(seg)
    path = "/" + "/".join(out)
    # A trailing slash (or trailing `.`/`..`) names a directory; keep that distinction.
    if out and segments and segments[-1] in ("", ".", ".."):
        path += "/"
    return path


def path_within(path: str, prefix: str) -> bool:
    """Segment-aware prefix test on normalized paths: `/v1` holds `/v1` and `/v1/x` but
    not `/v1evil`; `/` holds everything; `/v1/` holds `/v1/` and below, not `/v1`."""
    if path == prefix:
        return True
    return path.startswith(prefix.rstrip("/") + "/")


def _decode_path(raw: str) -> str:
    def decode(match: re.Match[str]) -> str:
        hexpair = match.group(1)
        if hexpair is None or not _HEX2_RE.fullmatch(hexpair):
            raise UrlError("path has a malformed percent-escape")
        byte = int(hexpair, 16)
        return chr(byte) if byte in _DECODED_BYTES else "%" + hexpair.upper()

    decoded = _PERCENT_RE.sub(decode, raw)
    # Clients send non-ASCII as UTF-8 escapes; encode it here so `/café` and `/caf%C3%A9`
    # are one path. `safe` keeps every ASCII character as is (escapes are already upper).
    return urllib.parse.quote(decoded, safe=_PRINTABLE_ASCII)


def _is_dot_like(segment: str) -> bool:
    """`.`/`..` themselves, or with `;params` (Tomcat-style `..;/` resolves as `..`),
    also when the `;` is escaped (`..%3b/`)."""
    return _PARAMS_RE.split(segment, 1)[0] in (".", "..")


def parse_request(url: str, method: str) -> RequestLine:
    """Reduce a URL to what matching needs; raise UrlError for anything not judgeable."""
    if not isinstance(url, str) or not isinstance(method, str):
        raise UrlError("url and method must be strings")
    if len(url) > URL_MAX_LEN:
        raise UrlError("url is too long")
    if _CONTROL_OR_SPACE_RE.search(url):
        # urlsplit silently drops tabs/newlines; a URL that needs that is not judged.
        raise UrlError("url contains whitespace or control characters")
    if not _METHOD_RE.fullmatch(method):
        raise UrlError("method is not a valid HTTP method")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlError("url is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlError("only http, https, ws and wss URLs are allowed")
    if "@" in parts.netloc:
        raise UrlError("url must not contain userinfo (user:password@)")
    if not parts.hostname:
        raise UrlError("url has no host")
    if port == 0:
        raise UrlError("url has port 0")
    return RequestLine(
        scheme=scheme,
        host=normalize_host(parts.hostname),
        port=port if port is not None else DEFAULT_PORTS[scheme],
        method=method.upper(),
        path=normalize_path(parts.path),  # query is not part of matching; fragment is ignored
    )


# --- matching -----------------------------------------------------------------------------


def match_url(
    url: str,
    method: str,
    declared: Sequence[Target],
    granted: Sequence[Target],
) -> MatchResult:
    """Allowed only when some declared target AND some granted target each allow the
    request. Never raises: a malformed URL is a refusal with a reason."""
    try:
        req = parse_request(url, method)
    except UrlError as exc:
        return MatchResult(False, f"invalid url: {exc}")
    missing = _first_refusal(req, declared, "declared in the manifest")
    if missing is None:
        missing = _first_refusal(req, granted, "granted")
    if missing is not None:
        return MatchResult(False, missing)
    return MatchResult(True, f"allowed: {req.describe()}")


def _first_refusal(req: RequestLine, targets: Sequence[Target], side: str) -> str | None:
    mismatches: list[str] = []
    for target in targets:
        mismatch = target.mismatch(req)
        if mismatch is None:
            return None  # allowed: the others need not be looked at
        mismatches.append(mismatch)
    if not mismatches:
        return f"not {side}: no targets ({req.describe()})"
    # The rule order in `mismatch` is scheme, host, port, method, path; the target that got
    # furthest is the most useful to show.
    order = ("scheme", "host", "port", "method", "path")
    closest = max(mismatches, key=order.index)
    return f"not {side}: no target allows {req.describe()} (closest target differs in {closest})"


# --- addresses after resolution -------------------------------------------------------------

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_restricted_address(ip: str | IPAddress) -> bool:
    """True for addresses a plugin must not reach through a wildcard or a DNS name:
    loopback, private (RFC 1918, unique-local fc00::/7), link-local (incl. the
    169.254.169.254 metadata service), unspecified, multicast, and any other non-global
    range (CGNAT, documentation, reserved). IPv4 embedded in IPv6 (mapped `::ffff:`,
    NAT64 `64:ff9b::`, 6to4 `2002::`) is judged by the IPv4 address it carries.
    Unparseable input counts as restricted (fail closed)."""
    addr = _as_ip(ip) if isinstance(ip, str) else ip
    if addr is None:
        return True
    embedded = _embedded_ipv4(addr)
    if embedded is not None:
        return is_restricted_address(embedded)
    return addr.is_multicast or not addr.is_global or addr.is_unspecified or addr.is_loopback


def _embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def check_resolved(
    host: str,
    addresses: Iterable[str | IPAddress],
    declared: Sequence[Target],
    granted: Sequence[Target],
) -> MatchResult:
    """Judge the addresses `host` resolved to, before connecting.

    Every address must pass (a resolver answer that mixes public and private addresses
    is a rebinding smell, not a choice to make silently). A restricted address is reached
    only when both a declared and a granted target name it explicitly: an IP literal equal
    to the address, or `localhost` resolving to loopback. Wildcards and other DNS names
    never reach restricted addresses."""
    try:
        name = normalize_host(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except UrlError as exc:
        return MatchResult(False, f"invalid host: {exc}")
    shown = _host_for_display(name)
    for side, targets in (("declared in the manifest", declared), ("granted", granted)):
        if not any(t.matches_host(name) for t in targets):
            return MatchResult(False, f"not {side}: no target names host {shown}")
    resolved = list(addresses)
    if not resolved:
        return MatchResult(False, f"host {shown} resolved to no address")
    for raw in resolved:
        addr = _as_ip(raw) if isinstance(raw, str) else raw
        if addr is None:
            return MatchResult(False, f"host {shown} resolved to an unparseable address")
        if not is_restricted_address(addr):
            continue
        if not (_names_explicitly(name, addr, declared) and _names_explicitly(name, addr, granted)):
            return MatchResult(
                False,
                f"host {shown} resolves to restricted address {addr}; only a target naming that "
                "IP literal or localhost explicitly (declared and granted) may reach it",
            )
    return MatchResult(True, f"allowed: {shown} -> {', '.join(str(a) for a in resolved[:8])}")


def _names_explicitly(host: str, addr: IPAddress, targets: Sequence[Target]) -> bool:
    unmapped = _unmap(addr)
    for target in targets:
        if target.wildcard or target.host != host:
            continue
        literal = target.ip
        if literal is not None and _unmap(literal) == unmapped:
            return True
        if target.host == "localhost" and unmapped.is_loopback:
            return True
    return False


def _unmap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _as_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host_for_display(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"
