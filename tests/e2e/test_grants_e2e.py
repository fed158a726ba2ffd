"""Grants, end to end: a grants file decides which tools of which exact package run.

A grant is pinned to id + version + package digest; a tool that is not granted is
refused before any guest code runs (the instance is not even created), and a grant
for another digest or version enables nothing. Tampered packages are refused by
the archive reader (bad CRC) or, when the attacker fixes the CRC, denied because
the digest no longer matches the grant.
"""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import pytest

from generator.pack import pack
from pdk.errors import ErrorCode
from pdk.host import GrantsError, Host, LoadedPlugin, open_package
from pdk.package import PackageError

pytestmark = pytest.mark.slow

OTHER_DIGEST = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def hostile_dir(built_plugin: Callable[[str], Path]) -> Path:
    return built_plugin("hostile")


@pytest.fixture(scope="module")
def hostile_digest(hostile_dir: Path) -> str:
    return open_package(hostile_dir).digest


def grants_toml(
    path: Path,
    *,
    digest: str,
    id: str = "hostile",
    version: str = "0.1.0",
    surfaces: tuple[str, ...] = ("tools",),
    tools: tuple[str, ...] = ("echo",),
) -> Path:
    def strings(values: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    path.write_text(
        "[[plugins]]\n"
        f'id = "{id}"\n'
        f'version = "{version}"\n'
        f'digest = "{digest}"\n'
        f"surfaces = {strings(surfaces)}\n"
        f"tools = {strings(tools)}\n"
        "host_apis = []\n"
    )
    return path


def assert_denied_without_running(plugin: LoadedPlugin, tool: str, input: Any = None) -> str:
    before = plugin.status()["instance"]
    result = plugin.call_tool(tool, input)
    assert result.error is not None, f"{tool} ran"
    assert result.error.code is ErrorCode.DENIED
    assert result.summary == "tool error: denied"
    assert plugin.status()["instance"] == before, "guest code ran for a denied call"
    return result.error.message


# --------------------------------------------------------------------- one granted tool


def test_only_the_granted_tool_runs(host: Host, hostile_dir: Path, hostile_digest: str, tmp_path: Path) -> None:
    grants = grants_toml(tmp_path / "grants.toml", digest=hostile_digest, tools=("echo",))
    plugin = host.load(hostile_dir, grants=grants)
    assert plugin.status()["grants"]["matched"] is True
    assert plugin.status()["grants"]["dev"] is False

    # Denied before any plugin code runs: no instance exists yet.
    message = assert_denied_without_running(plugin, "count")
    assert message == "tool 'count' is not granted to hostile"
    assert_denied_without_running(plugin, "spin")
    assert plugin.instance.instantiations == 0

    allowed = plugin.call_tool("echo", {"text": "granted"})
    assert allowed.ok, allowed.error
    assert allowed.content == {"text": "granted", "length": 7}
    assert plugin.instance.calls == 1

    # Still denied with a live instance: the counter does not move.
    assert_denied_without_running(plugin, "read_env")
    assert plugin.instance.calls == 1
    assert plugin.status()["tools"]["errors"] == {"denied": 3}


def test_a_wildcard_grants_every_tool(host: Host, hostile_dir: Path, hostile_digest: str, tmp_path: Path) -> None:
    grants = grants_toml(tmp_path / "grants.toml", digest=hostile_digest, tools=("*",))
    plugin = host.load(hostile_dir, grants=grants)
    assert plugin.call_tool("count").content == 1
    assert plugin.call_tool("echo", {"text": "x"}).ok


def test_tools_without_the_tools_surface_are_not_granted(host: Host, hostile_dir: Path, hostile_digest: str, tmp_path: Path) -> None:
    grants = grants_toml(tmp_path / "grants.toml", digest=hostile_digest, surfaces=(), tools=("*",))
    plugin = host.load(hostile_dir, grants=grants)
    message = assert_denied_without_running(plugin, "echo", {"text": "x"})
    assert "tools surface is not granted" in message


# --------------------------------------------------------------------- grants that do not match


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"digest": OTHER_DIGEST}, "digest mismatch for 'hostile' 0.1.0"),
        ({"version": "0.1.1"}, "version mismatch for 'hostile'"),
        ({"version": "0.2.0", "digest": OTHER_DIGEST}, "version mismatch for 'hostile'"),
        ({"id": "text-tools"}, "no grant for plugin id 'hostile'"),
    ],
)
def test_a_grant_for_another_package_enables_nothing(
    host: Host, hostile_dir: Path, hostile_digest: str, tmp_path: Path, changes: dict[str, str], reason: str
) -> None:
    fields: dict[str, Any] = {"digest": hostile_digest, "tools": ("*",), **changes}
    grants = grants_toml(tmp_path / "grants.toml", **fields)
    plugin = host.load(hostile_dir, grants=grants)
    status = plugin.status()["grants"]
    assert status["matched"] is False
    assert status["reason"].startswith(reason)
    for tool in ("echo", "count", "spin"):
        message = assert_denied_without_running(plugin, tool, {"text": "x"} if tool == "echo" else None)
        assert reason in message
    assert plugin.instance.instantiations == 0


def test_no_grants_at_all_enables_nothing(host: Host, hostile_dir: Path) -> None:
    plugin = host.load(hostile_dir)
    assert plugin.status()["grants"]["matched"] is False
    message = assert_denied_without_running(plugin, "echo", {"text": "x"})
    assert "no grants file given" in message


def test_a_malformed_grants_file_is_an_error_not_a_grant(host: Host, hostile_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "grants.toml"
    bad.write_text('[[plugins]]\nid = "hostile"\nversion = "0.1.0"\ndigest = "sha256:abc"\n')
    with pytest.raises(GrantsError) as info:
        host.load(hostile_dir, grants=bad)
    assert "plugins[0].digest" in str(info.value)
    with pytest.raises(GrantsError):
        host.load(hostile_dir, grants=tmp_path / "missing.toml")


# --------------------------------------------------------------------- tampered packages


@pytest.fixture(scope="module")
def packed(hostile_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("packed") / "hostile-0.1.0.yoi-plugin"
    result = pack(hostile_dir, out)
    return result.path, result.digest


def tamper_archive(source: Path, dest: Path, member: str, old: bytes, new: bytes, *, fix_crc: bool) -> None:
    """Copy `source` to `dest` with `old` replaced by `new` inside a stored member.
    With `fix_crc`, also rewrite the CRC in the local header and the central
    directory, as an attacker would: the archive is then internally consistent."""
    assert len(old) == len(new)
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as zf:
        info = zf.getinfo(member)
        assert info.compress_type == zipfile.ZIP_STORED
        central_start = zf.start_dir
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    content = bytes(data[start : start + info.file_size])
    assert content.count(old) == 1
    content = content.replace(old, new)
    data[start : start + info.file_size] = content
    if fix_crc:
        crc = zlib.crc32(content)
        struct.pack_into("<L", data, info.header_offset + 14, crc)
        offset = central_start
        while data[offset : offset + 4] == b"PK\x01\x02":
            n, e, c = struct.unpack_from("<HHH", data, offset + 28)
            if data[offset + 46 : offset + 46 + n].decode() == member:
                struct.pack_into("<L", data, offset + 16, crc)
            offset += 46 + n + e + c
    dest.write_bytes(bytes(data))


def test_the_packed_archive_runs_under_its_grant(host: Host, packed: tuple[Path, str], hostile_digest: str, tmp_path: Path) -> None:
    archive, digest = packed
    assert digest == hostile_digest  # the directory and its archive hash the same
    plugin = host.load(archive, grants=grants_toml(tmp_path / "grants.toml", digest=digest))
    assert plugin.digest == digest
    assert plugin.call_tool("echo", {"text": "packed"}).content == {"text": "packed", "length": 6}


def test_a_byte_changed_in_the_archive_is_refused(host: Host, packed: tuple[Path, str], tmp_path: Path) -> None:
    archive, digest = packed
    tampered = tmp_path / "tampered.yoi-plugin"
    tamper_archive(archive, tampered, "plugin.toml", b"Spins, allocates", b"Spins, Allocates", fix_crc=False)
    with pytest.raises(PackageError):
        host.load(tampered, grants=grants_toml(tmp_path / "grants.toml", digest=digest))


@pytest.mark.parametrize(
    ("member", "old", "new"),
    [
        ("plugin.toml", b"Spins, allocates", b"Spins, Allocates"),
        ("plugin.toml", b'"spin"', b'"spun"'),  # rename a tool: the grant is for the old package
    ],
)
def test_a_consistently_tampered_archive_is_denied(
    host: Host, packed: tuple[Path, str], tmp_path: Path, member: str, old: bytes, new: bytes
) -> None:
    archive, digest = packed
    tampered = tmp_path / "tampered.yoi-plugin"
    tamper_archive(archive, tampered, member, old, new, fix_crc=True)
    plugin = host.load(tampered, grants=grants_toml(tmp_path / "grants.toml", digest=digest, tools=("*",)))
    assert plugin.digest != digest
    assert plugin.status()["grants"]["matched"] is False
    message = assert_denied_without_running(plugin, "echo", {"text": "x"})
    assert "digest mismatch" in message


def test_a_changed_plugin_directory_is_denied(host: Host, hostile_dir: Path, hostile_digest: str, tmp_path: Path) -> None:
    copy = tmp_path / "hostile"
    shutil.copytree(hostile_dir, copy)
    manifest = copy / "plugin.toml"
    manifest.write_text(manifest.read_text().replace("for host tests", "for host tests!"))
    plugin = host.load(copy, grants=grants_toml(tmp_path / "grants.toml", digest=hostile_digest, tools=("*",)))
    assert plugin.digest != hostile_digest
    assert_denied_without_running(plugin, "echo", {"text": "x"})


# --------------------------------------------------------------------- dev grants


def test_dev_grants_say_so_on_stderr(hostile_dir: Path, hostile_digest: str, tmp_path: Path) -> None:
    stderr = io.StringIO()
    with Host(stderr=stderr) as host:
        plugin = host.load(hostile_dir, dev_grants=True)
        notice = stderr.getvalue()
        assert notice.startswith("pdk: DEV GRANTS: hostile 0.1.0 gets exactly what its plugin.toml declares")
        assert "Do not use dev grants in production." in notice
        assert "tools: echo, count, spin," in notice
        assert plugin.status()["grants"]["dev"] is True
        assert plugin.call_tool("count").ok

        # A real grants file prints nothing.
        stderr.seek(0)
        stderr.truncate()
        plugin = host.load(hostile_dir, grants=grants_toml(tmp_path / "grants.toml", digest=hostile_digest))
        assert stderr.getvalue() == ""
        assert plugin.status()["grants"]["dev"] is False
