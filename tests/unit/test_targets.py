"""URL target matching: every allowed and denied case of the rules, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from pdk.package.targets import (
    MatchResult,
    Target,
    TargetError,
    UrlError,
    check_resolved,
    is_restricted_address,
    match_url,
    normalize_host,
    normalize_path,
    parse_targets,
    path_within,
)


def target(host: str = "api.example.com", **kw: Any) -> Target:
    data: dict[str, Any] = {"scheme": "https", "host": host}
    data.update(kw)
    return Target.from_mapping(data)


API = target(methods=["GET"], path_prefixes=["/v1"])


def allowed(url: str, method: str = "GET", declared: Target = API, granted: Target | None = None) -> bool:
    result = match_url(url, method, [declared], [granted if granted is not None else declared])
    assert isinstance(result, MatchResult) and result.reason
    return result.allowed


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/v1", True),
        ("https://api.example.com/v1/", True),
        ("https://api.example.com/v1/x", True),
        ("https://api.example.com/v1/x/y?q=1", True),
        ("https://api.example.com/v1evil", False),
        ("https://api.example.com/v1-evil/x", False),
        ("https://api.example.com/v", False),
        ("https://api.example.com/", False),
        ("https://api.example.com", False),
        ("https://api.example.com/V1", False),  # paths are case-sensitive
        ("https://api.example.com/v1/../admin", False),
        ("https://api.example.com/v1/x/../y", True),
        ("https://api.example.com/v1/./x", True),
        ("https://api.example.com/./v1/x", True),
        ("https://api.example.com/admin/../v1/x", True),
        ("https://api.example.com/v1/%2e%2e/admin", False),
        ("https://api.example.com/v1/%2E%2E/admin", False),
        ("https://api.example.com/v1/.%2e/admin", False),
        ("https://api.example.com/v1%2f..%2fadmin", False),
        ("https://api.example.com/v1%2Fx", True),
        ("https://api.example.com/%76%31/x", True),  # encoded unreserved chars decode to /v1
        ("https://api.example.com//v1/x", True),
        ("https://api.example.com/v1//x", True),
        ("https://api.example.com//admin", False),
        ("https://api.example.com/v1/..;/admin", False),  # Tomcat-style ..;
        ("https://api.example.com/v1/x#/../../admin", True),  # fragment ignored
        ("https://api.example.com/v1?next=/../admin", True),  # query is not the path
        ("https://api.example.com/..", False),
        ("https://api.example.com/v1/../../v1", False),  # climbs above the root
        ("https://api.example.com/v1\\..\\admin", False),
        ("https://api.example.com/v1/%zz", False),
        ("https://api.example.com/v1/%2", False),
    ],
)
def test_segment_aware_paths(url: str, expected: bool) -> None:
    assert allowed(url) is expected


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("", "/"),
        ("/", "/"),
        ("/v1", "/v1"),
        ("/v1/", "/v1/"),
        ("//v1//x//", "/v1/x/"),
        ("/a/b/..", "/a/"),
        ("/a/./b/.", "/a/b/"),
        ("/a/%2e%2E/b", "/b"),
        ("/a%2Fb", "/a/b"),
        ("/%7euser", "/~user"),
        ("/a%3fb", "/a%3Fb"),  # reserved escapes stay escaped, upper-cased
        ("/%252e%252e/x", "/%252e%252e/x"),  # decoded once, never twice
        ("/caf\u00e9", "/caf%C3%A9"),
        ("/caf%c3%a9", "/caf%C3%A9"),
    ],
)
def test_normalize_path(raw: str, normalized: str) -> None:
    assert normalize_path(raw) == normalized


@pytest.mark.parametrize("raw", ["/..", "/a/../..", "/%2e%2e", "relative", "/a\\b", "/a/..;x/b", "/%", "/%g0"])
def test_normalize_path_refuses(raw: str) -> None:
    with pytest.raises(UrlError):
        normalize_path(raw)


# Separators and dot segments a server could read differently from us, spelled with
# escapes: an encoded backslash (any case), an escaped `;` after a dot segment, overlong
# UTF-8 for `.`, `/` and `\`. Each is refused as a class, wherever it sits in the path.
ENCODED_TRICKS = [
    "/v1/..%5cadmin",
    "/v1/..%5Cadmin",
    "/v1/%2e%2e%5cadmin",
    "/v1/%2E%2e%5C..%5Cadmin",
    "/v1/x%5c..%5c..%5cadmin",
    "/v1/%5c",
    "/v1/..%3b/admin",
    "/v1/..%3Bx/admin",
    "/v1/.%3b/x",
    "/v1/%c0%ae%c0%ae/admin",
    "/v1/%C0%AE./admin",
    "/v1/..%c0%afadmin",
    "/v1/..%c1%9cadmin",
    "/v1/%e0%80%ae%e0%80%ae/admin",
    "/v1/%f0%80%80%ae/admin",
]


@pytest.mark.parametrize("raw", ENCODED_TRICKS)
def test_encoded_separators_and_dot_segments_are_refused(raw: str) -> None:
    with pytest.raises(UrlError):
        normalize_path(raw)
    result = match_url("https://api.example.com" + raw, "GET", [API], [API])
    assert not result.allowed and result.reason.startswith("invalid url: path")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("/v1/a%5b%5d", "/v1/a%5B%5D"),  # other reserved escapes stay escaped
        ("/v1/..%2fadmin", None),  # decoded: climbs out of /v1, so it is not inside the target
        ("/v1/%2e%2e/v1/x", "/v1/x"),
        ("/v1/caf%c3%a9", "/v1/caf%C3%A9"),  # real UTF-8 is fine
        ("/v1/%e0%a4%85", "/v1/%E0%A4%85"),  # a 3-byte sequence starting E0 that is not overlong
        ("/v1/a;b", "/v1/a;b"),  # a `;` outside a dot segment is an ordinary character
    ],
)
def test_harmless_escapes_still_match(raw: str, normalized: str | None) -> None:
    if normalized is None:
        assert normalize_path(raw) == "/admin"
        assert not allowed("https://api.example.com" + raw)
    else:
        assert normalize_path(raw) == normalized
        assert allowed("https://api.example.com" + raw)


def test_encoded_tricks_are_refused_in_target_prefixes_too() -> None:
    for raw in ("/v1%5cadmin", "/v1/..%3b"):
        with pytest.raises(TargetError):
            target(path_prefixes=[raw])


@pytest.mark.parametrize(
    ("path", "prefix", "expected"),
    [
        ("/v1", "/v1", True),
        ("/v1/x", "/v1", True),
        ("/v1evil", "/v1", False),
        ("/anything", "/", True),
        ("/", "/", True),
        ("/v1/x", "/v1/", True),
        ("/v1/", "/v1/", True),
        ("/v1", "/v1/", False),
        ("/v1/x/y", "/v1/x", True),
        ("/v1/xy", "/v1/x", False),
    ],
)
def test_path_within(path: str, prefix: str, expected: bool) -> None:
    assert path_within(path, prefix) is expected


def test_root_prefix_allows_everything_and_missing_prefixes_mean_root() -> None:
    everything = target(path_prefixes=["/"])
    assert allowed("https://api.example.com/", declared=everything)
    assert allowed("https://api.example.com/any/thing", declared=everything)
    assert target().path_prefixes == ("/",)


def test_prefix_is_normalized_like_the_path() -> None:
    t = target(path_prefixes=["/caf%c3%a9", "//x//"])
    assert t.path_prefixes == ("/caf%C3%A9", "/x/")
    assert allowed("https://api.example.com/caf\u00e9/menu", declared=t)


# --- hosts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://API.Example.COM/v1", True),
        ("https://api.example.com./v1", True),
        ("https://API.EXAMPLE.COM./v1", True),
        ("https://api.example.com../v1", False),
        ("https://api.example.co/v1", False),
        ("https://xapi.example.com/v1", False),
        ("https://api.example.com.evil.net/v1", False),
        ("https://sub.api.example.com/v1", False),  # exact host, no implicit subdomains
        ("https://api%2eexample.com/v1", False),
    ],
)
def test_host_normalization(url: str, expected: bool) -> None:
    assert allowed(url) is expected


@pytest.mark.parametrize(
    ("target_host", "url_host"),
    [
        ("b\u00fccher.example", "b\u00fccher.example"),
        ("b\u00fccher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "b\u00fccher.example"),
        ("B\u00dcCHER.example", "b\u00fccher.EXAMPLE."),
    ],
)
def test_idna_spellings_are_one_host(target_host: str, url_host: str) -> None:
    t = target(target_host, path_prefixes=["/"])
    assert t.host == "xn--bcher-kva.example"
    assert allowed(f"https://{url_host}/x", declared=t)


def test_idna_lookalike_is_another_host() -> None:
    t = target("bucher.example", path_prefixes=["/"])
    assert not allowed("https://b\u00fccher.example/x", declared=t)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example.com/", True),
        ("https://a.b.example.com/", True),
        ("https://A.EXAMPLE.COM./", True),
        ("https://example.com/", False),  # the apex is not a subdomain
        ("https://example.com./", False),
        ("https://evilexample.com/", False),
        ("https://a.example.com.evil.net/", False),
        ("https://.example.com/", False),
    ],
)
def test_wildcard_matches_subdomains_only(url: str, expected: bool) -> None:
    assert allowed(url, declared=target("*.example.com")) is expected


@pytest.mark.parametrize("host", ["*.com", "*", "*.", "a.*.example.com", "*.127.0.0.1", "exa mple.com", "", "a..b"])
def test_invalid_target_hosts(host: str) -> None:
    with pytest.raises(TargetError) as err:
        target(host)
    assert err.value.key == "host"


def test_ip_literal_targets() -> None:
    v4 = target("127.0.0.1", path_prefixes=["/"], port=8080)
    assert allowed("https://127.0.0.1:8080/x", declared=v4)
    assert not allowed("https://127.0.0.2:8080/x", declared=v4)
    v6 = Target.from_mapping({"scheme": "http", "host": "[::1]"})
    assert v6.host == "::1"
    assert allowed("http://[::1]/", declared=v6)
    assert allowed("http://[0:0:0:0:0:0:0:1]/", declared=v6)


@pytest.mark.parametrize("host", ["Example.COM", "example.com.", "b\u00fccher.example", "127.0.0.1", "::1"])
def test_normalize_host_is_idempotent(host: str) -> None:
    once = normalize_host(host)
    assert normalize_host(once) == once


# --- ports and schemes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("https://api.example.com/", None, True),
        ("https://api.example.com:443/", None, True),  # explicit default port
        ("https://api.example.com:8443/", None, False),  # None = default port only
        ("https://api.example.com:8443/", 8443, True),
        ("https://api.example.com/", 8443, False),
        ("https://api.example.com/", 443, True),
        ("https://api.example.com:80/", None, False),
        ("https://api.example.com:0/", None, False),
        ("https://api.example.com:99999/", None, False),
        ("https://api.example.com:abc/", None, False),
    ],
)
def test_ports(url: str, port: int | None, expected: bool) -> None:
    kw: dict[str, Any] = {"path_prefixes": ["/"]}
    if port is not None:
        kw["port"] = port
    assert allowed(url, declared=target(**kw)) is expected


@pytest.mark.parametrize(
    ("scheme", "url", "expected"),
    [
        ("http", "http://h.example/", True),
        ("http", "http://h.example:80/", True),
        ("http", "HTTP://h.example/", True),
        ("http", "https://h.example/", False),
        ("https", "http://h.example/", False),
        ("https", "http://h.example:443/", False),
        ("https", "ftp://h.example/", False),
        ("https", "file:///etc/passwd", False),
        ("https", "javascript:alert(1)", False),
        ("https", "//h.example/", False),
        ("https", "h.example/x", False),
    ],
)
def test_schemes(scheme: str, url: str, expected: bool) -> None:
    t = Target.from_mapping({"scheme": scheme, "host": "h.example"})
    assert allowed(url, declared=t) is expected


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("wss://chat.example/socket", None, True),
        ("wss://chat.example:443/socket", None, True),
        ("ws://chat.example/socket", None, False),
        ("wss://chat.example:8443/socket", 8443, True),
        ("wss://chat.example/socketx", None, False),
        ("https://chat.example/socket", None, False),
    ],
)
def test_websocket_targets(url: str, port: int | None, expected: bool) -> None:
    data: dict[str, Any] = {"scheme": "wss", "host": "chat.example", "path_prefixes": ["/socket"]}
    if port is not None:
        data["port"] = port
    t = Target.from_mapping(data, websocket=True)
    assert t.methods == ()
    assert match_url(url, "GET", [t], [t]).allowed is expected


def test_ws_default_port_is_80() -> None:
    t = Target.from_mapping({"scheme": "ws", "host": "chat.example"}, websocket=True)
    assert match_url("ws://chat.example:80/", "GET", [t], [t]).allowed
    assert not match_url("ws://chat.example:443/", "GET", [t], [t]).allowed


# --- methods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("methods", "method", "expected"),
    [
        (["GET"], "GET", True),
        (["GET"], "get", True),
        (["get"], "GET", True),
        (["GET"], "POST", False),
        (["GET"], "HEAD", False),
        (["POST", "PUT"], "PUT", True),
        ([], "GET", True),  # empty = GET and HEAD only
        ([], "HEAD", True),
        ([], "POST", False),
        ([], "DELETE", False),
        (None, "GET", True),
        (None, "PATCH", False),
        (["GET"], "G ET", False),
        (["GET"], "", False),
    ],
)
def test_methods(methods: list[str] | None, method: str, expected: bool) -> None:
    kw: dict[str, Any] = {"path_prefixes": ["/"]}
    if methods is not None:
        kw["methods"] = methods
    assert allowed("https://api.example.com/x", method, declared=target(**kw)) is expected


# --- declared AND granted ------------------------------------------------------------------


def test_declared_but_not_granted() -> None:
    declared = target(path_prefixes=["/v1"])
    granted = target(path_prefixes=["/v2"])
    result = match_url("https://api.example.com/v1/x", "GET", [declared], [granted])
    assert not result.allowed
    assert "not granted" in result.reason


def test_granted_but_not_declared() -> None:
    declared = target(path_prefixes=["/v2"])
    granted = target(path_prefixes=["/v1"])
    result = match_url("https://api.example.com/v1/x", "GET", [declared], [granted])
    assert not result.allowed
    assert "not declared" in result.reason


def test_intersection_of_different_targets() -> None:
    declared = [target(methods=["GET", "POST"], path_prefixes=["/v1"])]
    granted = [target(methods=["GET"], path_prefixes=["/"])]
    assert match_url("https://api.example.com/v1/x", "GET", declared, granted).allowed
    assert not match_url("https://api.example.com/v1/x", "POST", declared, granted).allowed
    assert not match_url("https://api.example.com/v2", "GET", declared, granted).allowed


def test_any_target_on_each_side_suffices() -> None:
    declared = [target("a.example.org"), target("b.example.org", path_prefixes=["/"])]
    granted = [target("c.example.org"), target("*.example.org", path_prefixes=["/x"])]
    assert match_url("https://b.example.org/x/y", "GET", declared, granted).allowed
    assert not match_url("https://b.example.org/y", "GET", declared, granted).allowed


@pytest.mark.parametrize(("declared", "granted"), [([], [API]), ([API], []), ([], [])])
def test_no_targets_means_no_access(declared: list[Target], granted: list[Target]) -> None:
    assert not match_url("https://api.example.com/v1", "GET", declared, granted).allowed


def test_reason_names_the_closest_mismatch_without_the_query() -> None:
    result = match_url("https://api.example.com/v1evil?token=s3cret", "GET", [API], [API])
    assert "path" in result.reason
    assert "s3cret" not in result.reason


# --- malformed URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@api.example.com/v1",
        "https://user@api.example.com/v1",
        "https://@api.example.com/v1",
        "https://api.example.com@evil.net/v1",
        "https:///v1",
        "https://api.example.com/v1 x",
        "https://api.example.com/v1\n",
        "https://api.ex\tample.com/v1",
        "https://api.example.com/v1\x00",
        "https://[::1/v1",
        "https://api.example.com/" + "a" * 9000,
        "",
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str) -> None:
    result = match_url(url, "GET", [API], [API])
    assert not result.allowed
    assert result.reason.startswith("invalid url")


def test_userinfo_reason_does_not_echo_the_password() -> None:
    result = match_url("https://user:hunter2@api.example.com/v1", "GET", [API], [API])
    assert "hunter2" not in result.reason


# --- target validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "key"),
    [
        ({"host": "h.example"}, "missing_key", "scheme"),
        ({"scheme": "https"}, "missing_key", "host"),
        ({"scheme": "ftp", "host": "h.example"}, "invalid_value", "scheme"),
        ({"scheme": "wss", "host": "h.example"}, "invalid_value", "scheme"),
        ({"scheme": "https", "host": "h.example", "port": 0}, "invalid_value", "port"),
        ({"scheme": "https", "host": "h.example", "port": 65536}, "invalid_value", "port"),
        ({"scheme": "https", "host": "h.example", "port": True}, "invalid_value", "port"),
        ({"scheme": "https", "host": "h.example", "port": "443"}, "invalid_value", "port"),
        ({"scheme": "https", "host": "h.example", "methods": "GET"}, "invalid_value", "methods"),
        ({"scheme": "https", "host": "h.example", "methods": ["GE T"]}, "invalid_value", "methods"),
        ({"scheme": "https", "host": "h.example", "path_prefixes": []}, "invalid_value", "path_prefixes"),
        ({"scheme": "https", "host": "h.example", "path_prefixes": ["v1"]}, "invalid_value", "path_prefixes"),
        ({"scheme": "https", "host": "h.example", "path_prefixes": ["/v1?x"]}, "invalid_value", "path_prefixes"),
        ({"scheme": "https", "host": "h.example", "path_prefixes": ["/v1/../admin"]}, "invalid_value", "path_prefixes"),
        ({"scheme": "https", "host": "h.example", "path_prefixes": ["/./v1"]}, "invalid_value", "path_prefixes"),
        ({"scheme": "https", "host": "h.example", "path_prefixes": ["/%2e%2e"]}, "invalid_value", "path_prefixes"),
        ({"scheme": "https", "host": "h.example", "paths": ["/"]}, "unknown_key", "paths"),
    ],
)
def test_target_validation(data: dict[str, Any], code: str, key: str) -> None:
    with pytest.raises(TargetError) as err:
        Target.from_mapping(data)
    assert (err.value.code, err.value.key) == (code, key)


def test_websocket_targets_have_no_methods() -> None:
    with pytest.raises(TargetError) as err:
        Target.from_mapping({"scheme": "wss", "host": "h.example", "methods": ["GET"]}, websocket=True)
    assert (err.value.code, err.value.key) == ("unknown_key", "methods")
    with pytest.raises(TargetError):
        Target.from_mapping({"scheme": "https", "host": "h.example"}, websocket=True)


def test_parse_targets_prefixes_the_index() -> None:
    with pytest.raises(TargetError) as err:
        parse_targets([{"scheme": "https", "host": "h.example"}, {"scheme": "https", "host": "h", "port": -1}])
    assert err.value.key == "[1].port"


# --- restricted addresses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "restricted"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("10.0.0.1", True),
        ("10.255.255.255", True),
        ("172.16.0.1", True),
        ("172.31.255.255", True),
        ("172.32.0.1", False),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("169.254.0.1", True),
        ("0.0.0.0", True),
        ("100.64.0.1", True),  # CGNAT shared space
        ("224.0.0.1", True),
        ("239.255.255.250", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fc00::1", True),
        ("fd12:3456::1", True),
        ("fe80::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", True),  # 6to4 of 127.0.0.1
        ("8.8.8.8", False),
        ("93.184.216.34", False),
        ("2606:4700:4700::1111", False),
        ("::ffff:8.8.8.8", False),
        ("not-an-ip", True),  # fail closed
    ],
)
def test_is_restricted_address(address: str, restricted: bool) -> None:
    assert is_restricted_address(address) is restricted


def http(host: str, **kw: Any) -> Target:
    return Target.from_mapping({"scheme": "http", "host": host, **kw})


@pytest.mark.parametrize(
    ("host", "addresses", "declared", "granted", "expected"),
    [
        # public addresses: any matching target, wildcard or not
        ("api.example.com", ["93.184.216.34"], ["api.example.com"], ["api.example.com"], True),
        ("a.example.com", ["93.184.216.34", "2606:4700::1"], ["*.example.com"], ["*.example.com"], True),
        # a wildcard never reaches a restricted address
        ("a.example.com", ["127.0.0.1"], ["*.example.com"], ["*.example.com"], False),
        ("a.example.com", ["169.254.169.254"], ["*.example.com"], ["*.example.com"], False),
        ("a.example.com", ["::ffff:127.0.0.1"], ["*.example.com"], ["*.example.com"], False),
        ("a.example.com", ["93.184.216.34", "10.0.0.1"], ["*.example.com"], ["*.example.com"], False),
        # a DNS name resolving to loopback is denied even when named exactly
        ("internal.example.com", ["127.0.0.1"], ["internal.example.com"], ["internal.example.com"], False),
        ("internal.example.com", ["192.168.1.10"], ["internal.example.com"], ["internal.example.com"], False),
        ("internal.example.com", ["fc00::1"], ["internal.example.com"], ["internal.example.com"], False),
        # explicit IP literals and localhost, declared and granted
        ("127.0.0.1", ["127.0.0.1"], ["127.0.0.1"], ["127.0.0.1"], True),
        ("10.0.0.5", ["10.0.0.5"], ["10.0.0.5"], ["10.0.0.5"], True),
        ("[::1]", ["::1"], ["::1"], ["[::1]"], True),
        ("127.0.0.1", ["::ffff:127.0.0.1"], ["127.0.0.1"], ["127.0.0.1"], True),
        ("localhost", ["127.0.0.1", "::1"], ["localhost"], ["localhost"], True),
        ("LOCALHOST.", ["127.0.0.1"], ["localhost"], ["localhost"], True),
        # localhost may only mean loopback
        ("localhost", ["10.0.0.1"], ["localhost"], ["localhost"], False),
        # explicit on one side only is not enough
        ("127.0.0.1", ["127.0.0.1"], ["127.0.0.1"], [], False),
        ("a.example.com", ["10.0.0.1"], ["a.example.com"], ["*.example.com"], False),
        # a literal reaches only itself
        ("127.0.0.1", ["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"], False),
        # host not named on a side at all
        ("api.example.com", ["93.184.216.34"], ["api.example.com"], ["other.example.com"], False),
        # nothing resolved, or garbage
        ("api.example.com", [], ["api.example.com"], ["api.example.com"], False),
        ("api.example.com", ["nope"], ["api.example.com"], ["api.example.com"], False),
    ],
)
def test_check_resolved(
    host: str, addresses: list[str], declared: list[str], granted: list[str], expected: bool
) -> None:
    result = check_resolved(host, addresses, [http(h) for h in declared], [http(h) for h in granted])
    assert result.allowed is expected, result.reason


def test_explicit_loopback_grant_allows_the_whole_request() -> None:
    t = http("127.0.0.1", port=8080, path_prefixes=["/hook"])
    assert match_url("http://127.0.0.1:8080/hook/x", "GET", [t], [t]).allowed
    assert check_resolved("127.0.0.1", ["127.0.0.1"], [t], [t]).allowed


def test_restricted_reason_is_specific() -> None:
    result = check_resolved("a.example.com", ["169.254.169.254"], [http("*.example.com")], [http("*.example.com")])
    assert "restricted" in result.reason and "169.254.169.254" in result.reason


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.0.0.1.", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "fe80::1%eth0", "2001:DB8::1",
     "1.2.3", "01.2.3.4", "0x7f.0.0.1", "256.1.1.1", "١٢٧.٠.٠.١", "localhost", "api.example.com", "123", "1.2.3.4.5"],
)  # fmt: skip
def test_ip_literals_are_told_from_names_as_ipaddress_tells_them(host: str) -> None:
    # normalize_host only asks `ipaddress` about texts that could be IP literals; the
    # answer must be the one asking it about every text gives.
    import ipaddress

    lowered = host.lower()
    try:
        expected: str | None = str(ipaddress.ip_address(lowered))
    except ValueError:
        expected = None
    try:
        got: str | None = normalize_host(host)
    except UrlError:
        got = None
    if expected is not None:
        assert got == expected
    else:
        assert got is None or not any(ch == ":" for ch in got)  # a name (or refused), never an address
        if got is not None:
            assert got == lowered.rstrip(".").encode("idna").decode("ascii")
