"""The safe package reader: directories and `.yoi-plugin` archives, honest and hostile.

Hostile archives are built byte by byte (`_raw_zip`) so a test can make the headers
lie in exactly one way; ordinary ones come from `zipfile`.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from pdk.package import PackageError, PackageFiles, PackageLimits, package_digest
from pdk.package.errors import MESSAGE_MAX_CHARS

MANIFEST = b'schema_version = 2\nid = "demo"\nversion = "0.1.0"\n'
FILE_MODE = (stat.S_IFREG | 0o644) << 16


# ---------------------------------------------------------------------------
# A minimal ZIP writer that lets a test lie in any header field
# ---------------------------------------------------------------------------


@dataclass
class Raw:
    name: bytes
    content: bytes = b""
    method: int = zipfile.ZIP_STORED
    flags: int = 0
    attr: int = FILE_MODE
    declared_size: int | None = None  # uncompressed size written in both headers
    crc: int | None = None
    payload: bytes | None = None  # bytes stored after the local header (default: content, compressed)
    local_name: bytes | None = None
    header_offset: int | None = None  # central directory points here instead of the real header


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _raw_zip(entries: list[Raw], *, eocd_count: int | None = None) -> bytes:
    body = bytearray()
    central = bytearray()
    for e in entries:
        payload = e.payload
        if payload is None:
            payload = _deflate(e.content) if e.method == zipfile.ZIP_DEFLATED else e.content
        crc = zlib.crc32(e.content) if e.crc is None else e.crc
        size = len(e.content) if e.declared_size is None else e.declared_size
        offset = len(body) if e.header_offset is None else e.header_offset
        local_name = e.name if e.local_name is None else e.local_name
        body += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, e.flags, e.method, 0, 0x21, crc, len(payload), size, len(local_name), 0
        )
        body += local_name + payload
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", (3 << 8) | 20, 20, e.flags, e.method, 0, 0x21,
            crc, len(payload), size, len(e.name), 0, 0, 0, 0, e.attr, offset,
        )
        central += e.name
    count = len(entries) if eocd_count is None else eocd_count
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    return bytes(body + central + eocd)


def _write(tmp_path: Path, data: bytes, name: str = "p.yoi-plugin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _zip_with(tmp_path: Path, entries: list[tuple[str, bytes]], name: str = "p.yoi-plugin") -> Path:
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names, which some tests want
        with zipfile.ZipFile(path, "w") as archive:
            for entry_name, data in entries:
                archive.writestr(entry_name, data)
    return path


def _code(path: Path, limits: PackageLimits | None = None) -> str:
    with pytest.raises(PackageError) as info:
        PackageFiles.from_archive(path, limits=limits)
    return info.value.code


def _ok(*extra: Raw) -> list[Raw]:
    return [Raw(b"plugin.toml", MANIFEST), *extra]


# ---------------------------------------------------------------------------
# Honest archives
# ---------------------------------------------------------------------------


def test_reads_an_ordinary_archive(tmp_path: Path) -> None:
    files = {"plugin.toml": MANIFEST, "build/plugin.wasm": b"\0asm\1\0\0\0", "README.md": b"# demo\n"}
    path = _zip_with(tmp_path, list(files.items()))
    package = PackageFiles.from_archive(path)
    assert package.paths() == ["README.md", "build/plugin.wasm", "plugin.toml"]
    assert {p: package.read(p) for p in package.paths()} == files
    assert package.digest() == package_digest(files)


def test_deflated_entries_are_accepted(tmp_path: Path) -> None:
    content = b"hello " * 50_000
    path = _write(tmp_path, _raw_zip(_ok(Raw(b"big.txt", content, method=zipfile.ZIP_DEFLATED))))
    package = PackageFiles.from_archive(path)
    assert package.read("big.txt") == content
    assert package.digest() == package_digest({"plugin.toml": MANIFEST, "big.txt": content})


def test_directory_entries_are_accepted_and_ignored(tmp_path: Path) -> None:
    path = _zip_with(tmp_path, [("build/", b""), ("build/plugin.wasm", b"w"), ("plugin.toml", MANIFEST)])
    package = PackageFiles.from_archive(path)
    assert package.paths() == ["build/plugin.wasm", "plugin.toml"]


def test_directory_and_archive_digests_are_identical(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "build").mkdir(parents=True)
    (src / "plugin.toml").write_bytes(MANIFEST)
    (src / "build" / "plugin.wasm").write_bytes(os.urandom(100_000))
    include = ["plugin.toml", "build/plugin.wasm"]
    from_dir = PackageFiles.from_directory(src, include)
    archive = _zip_with(tmp_path, [(p, (src / p).read_bytes()) for p in include])
    assert PackageFiles.from_archive(archive).digest() == from_dir.digest()


def test_reading_an_unknown_path_is_a_package_error(tmp_path: Path) -> None:
    package = PackageFiles.from_archive(_write(tmp_path, _raw_zip(_ok())))
    with pytest.raises(PackageError) as info:
        package.read("nope.txt")
    assert info.value.code == "missing_file"


def test_archive_changed_after_check_is_detected(tmp_path: Path) -> None:
    path = _write(tmp_path, _raw_zip(_ok(Raw(b"a.txt", b"aaaa"))))
    package = PackageFiles.from_archive(path)
    # Same length, valid CRC: only the recorded hash can tell.
    path.write_bytes(_raw_zip(_ok(Raw(b"a.txt", b"bbbb"))))
    with pytest.raises(PackageError) as info:
        package.read("a.txt")
    assert info.value.code == "changed_on_disk"


# ---------------------------------------------------------------------------
# Hostile archives: one specific code each
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        (b"../evil.txt", "path_traversal"),
        (b"a/../../evil.txt", "path_traversal"),
        (b"/etc/passwd", "absolute_path"),
        (b"C:/evil.txt", "absolute_path"),
        (b"c:evil.txt", "absolute_path"),
        (b"a\\b.txt", "bad_path"),
        (b"..\\evil.txt", "bad_path"),
        (b"a//b.txt", "bad_path"),
        (b"./a.txt", "bad_path"),
        (b"a/.../b", "bad_path"),
        (b"a\x01b", "bad_path"),
        (b"plugin.toml\x00.evil", "bad_path"),
        (b"caf\xc3\xa9.txt", "bad_path"),  # non-ASCII without the UTF-8 flag
        (b"x" * 256, "path_too_long"),
    ],
)
def test_bad_entry_names(tmp_path: Path, name: bytes, code: str) -> None:
    assert _code(_write(tmp_path, _raw_zip(_ok(Raw(name, b"x"))))) == code


def test_utf8_flagged_names_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, _raw_zip(_ok(Raw("café.txt".encode(), b"x", flags=0x800))))
    assert "café.txt" in PackageFiles.from_archive(path)


def test_traversal_in_a_directory_entry(tmp_path: Path) -> None:
    assert _code(_write(tmp_path, _raw_zip(_ok(Raw(b"../", attr=(stat.S_IFDIR | 0o755) << 16))))) == "path_traversal"


def test_symlink_entry(tmp_path: Path) -> None:
    link = Raw(b"link", b"/etc/passwd", attr=(stat.S_IFLNK | 0o777) << 16)
    assert _code(_write(tmp_path, _raw_zip(_ok(link)))) == "symlink"


def test_fifo_entry(tmp_path: Path) -> None:
    fifo = Raw(b"pipe", b"", attr=(stat.S_IFIFO | 0o644) << 16)
    assert _code(_write(tmp_path, _raw_zip(_ok(fifo)))) == "not_regular_file"


@pytest.mark.parametrize(
    "names",
    [
        ["a.txt", "a.txt"],
        ["README.md", "readme.md"],
        ["caf\u00e9.txt", "cafe\u0301.txt"],  # NFC vs NFD
        ["a.txt", "a.txt."],
        ["lib", "lib/x.py"],  # a file and a directory at once
    ],
)
def test_duplicate_entries(tmp_path: Path, names: list[str]) -> None:
    entries = [Raw(n.encode(), b"x", flags=0x800) for n in names]
    assert _code(_write(tmp_path, _raw_zip(_ok(*entries)))) == "duplicate_entry"


def test_duplicate_written_by_zipfile(tmp_path: Path) -> None:
    path = _zip_with(tmp_path, [("plugin.toml", MANIFEST), ("plugin.toml", b"evil")])
    assert _code(path) == "duplicate_entry"


@pytest.mark.parametrize("flag", [0x0001, 0x0041])
def test_encrypted_entry(tmp_path: Path, flag: int) -> None:
    assert _code(_write(tmp_path, _raw_zip(_ok(Raw(b"secret", b"x", flags=flag))))) == "encrypted"


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, 99])
def test_unsupported_compression(tmp_path: Path, method: int) -> None:
    entry = Raw(b"data", b"x", method=method, payload=b"x")
    assert _code(_write(tmp_path, _raw_zip(_ok(entry)))) == "unsupported_compression"


def test_too_many_entries(tmp_path: Path) -> None:
    entries = [(f"f{i}", b"") for i in range(PackageLimits().max_entries)]
    path = _zip_with(tmp_path, [("plugin.toml", MANIFEST), *entries])
    assert _code(path) == "too_many_entries"


def test_exactly_the_entry_limit_is_fine(tmp_path: Path) -> None:
    entries = [(f"f{i}", b"") for i in range(PackageLimits().max_entries - 1)]
    path = _zip_with(tmp_path, [("plugin.toml", MANIFEST), *entries])
    assert len(PackageFiles.from_archive(path)) == PackageLimits().max_entries


def test_central_directory_lying_about_its_count(tmp_path: Path) -> None:
    # zipfile walks the directory by byte size, not by count: a low count must not
    # let thousands of records through to be parsed.
    entries = _ok(*[Raw(f"{i:0250d}".encode(), b"") for i in range(3000)])
    assert _code(_write(tmp_path, _raw_zip(entries, eocd_count=1))) == "too_many_entries"


def test_entries_counted_after_parsing_too(tmp_path: Path) -> None:
    # Small records fit the directory-size bound; the parsed count still has to be checked.
    entries = _ok(*[Raw(f"f{i}".encode(), b"") for i in range(PackageLimits().max_entries)])
    assert _code(_write(tmp_path, _raw_zip(entries, eocd_count=1))) == "too_many_entries"


def test_oversized_entry_by_declared_size(tmp_path: Path) -> None:
    limit = PackageLimits().max_file_bytes
    big = Raw(b"big", b"x", method=zipfile.ZIP_DEFLATED, declared_size=limit + 1)
    assert _code(_write(tmp_path, _raw_zip(_ok(big)))) == "entry_too_large"


def test_declared_total_over_the_limit(tmp_path: Path) -> None:
    limits = PackageLimits()
    each = limits.max_file_bytes  # each entry is allowed on its own; together they are not
    count = limits.max_total_bytes // each + 1
    entries = [Raw(f"part{i}".encode(), b"x", method=zipfile.ZIP_DEFLATED, declared_size=each) for i in range(count)]
    assert _code(_write(tmp_path, _raw_zip(_ok(*entries)))) == "expansion_bomb"


def test_bomb_with_lying_header_sizes(tmp_path: Path) -> None:
    # 8 MiB of zeros deflate to ~8 KiB; both headers claim 1 MiB, which passes every
    # declared-size check. Only counting the real inflated bytes catches it.
    bomb = Raw(b"bomb", b"\0" * (8 * 1024 * 1024), method=zipfile.ZIP_DEFLATED, declared_size=1024 * 1024)
    assert _code(_write(tmp_path, _raw_zip(_ok(bomb)))) == "expansion_bomb"


def test_compressed_size_larger_than_any_deflate_output(tmp_path: Path) -> None:
    # Claims 100 bytes but stores ~8 KiB of deflate data: a size lie seen in the headers.
    liar = Raw(b"liar", b"\0" * (8 * 1024 * 1024), method=zipfile.ZIP_DEFLATED, declared_size=100)
    assert _code(_write(tmp_path, _raw_zip(_ok(liar)))) == "corrupt_entry"


def test_real_bytes_are_counted_against_the_total(tmp_path: Path) -> None:
    limits = PackageLimits(max_total_bytes=1000)
    entries = _ok(Raw(b"a", b"a" * 600, method=zipfile.ZIP_DEFLATED), Raw(b"b", b"b" * 600))
    assert _code(_write(tmp_path, _raw_zip(entries)), limits) == "expansion_bomb"


def test_overlapping_entries(tmp_path: Path) -> None:
    # The overlap zip bomb: one entry's local header and data sit inside another's data,
    # so the same bytes count twice. Names, sizes and CRCs are all consistent.
    assert _code(_write(tmp_path, _overlapping_archive())) == "overlapping_entries"


def _overlapping_archive() -> bytes:
    """Entry `inner` lives inside the stored data of entry `plugin.toml`."""
    inner_local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(b"hi"), 2, 2, 5, 0) + b"innerhi"
    outer_content = MANIFEST + b"#" + inner_local
    outer_local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(outer_content), len(outer_content),
        len(outer_content), 11, 0,
    ) + b"plugin.toml"
    body = outer_local + outer_content
    inner_offset = len(outer_local) + len(MANIFEST) + 1
    central = b""
    for name, crc, size, offset in [
        (b"plugin.toml", zlib.crc32(outer_content), len(outer_content), 0),
        (b"inner", zlib.crc32(b"hi"), 2, inner_offset),
    ]:
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", (3 << 8) | 20, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0, 0, 0, 0,
            FILE_MODE, offset,
        ) + name
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 2, 2, len(central), len(body), 0)
    return body + central + eocd


def test_bad_crc(tmp_path: Path) -> None:
    path = _zip_with(tmp_path, [("plugin.toml", MANIFEST), ("data.bin", b"ABCDEFGH")])
    raw = path.read_bytes()
    assert raw.count(b"ABCDEFGH") == 1
    path.write_bytes(raw.replace(b"ABCDEFGH", b"ABCDEFGX"))
    assert _code(path) == "bad_crc"


def test_bad_crc_in_deflated_entry(tmp_path: Path) -> None:
    entry = Raw(b"data", b"payload" * 100, method=zipfile.ZIP_DEFLATED, crc=1234)
    assert _code(_write(tmp_path, _raw_zip(_ok(entry)))) == "bad_crc"


@pytest.mark.parametrize("data", [b"", b"hello, not a zip", b"PK\x03\x04" + b"\0" * 100, os.urandom(4096)])
def test_not_a_zip(tmp_path: Path, data: bytes) -> None:
    assert _code(_write(tmp_path, data)) == "not_a_zip"


def test_truncated_archive_is_not_a_zip(tmp_path: Path) -> None:
    data = _raw_zip(_ok(Raw(b"a", b"x" * 1000)))
    assert _code(_write(tmp_path, data[: len(data) // 2])) == "not_a_zip"


def test_missing_manifest(tmp_path: Path) -> None:
    assert _code(_zip_with(tmp_path, [("README.md", b"hi")])) == "missing_manifest"


def test_manifest_in_a_subfolder_is_missing(tmp_path: Path) -> None:
    path = _zip_with(tmp_path, [("demo/plugin.toml", MANIFEST)])
    with pytest.raises(PackageError) as info:
        PackageFiles.from_archive(path)
    assert info.value.code == "missing_manifest"
    assert "demo/plugin.toml" in info.value.message


def test_manifest_as_a_directory_is_missing(tmp_path: Path) -> None:
    assert _code(_zip_with(tmp_path, [("plugin.toml/", b"")])) == "missing_manifest"


@pytest.mark.parametrize(
    "entry",
    [
        Raw(b"a.txt", b"abc", local_name=b"b.txt"),  # local header names another file
        Raw(b"a.txt", b"abc", payload=b"abcd", declared_size=3),  # stored sizes differ
        Raw(b"a.txt", b"abc", method=zipfile.ZIP_DEFLATED, payload=_deflate(b"abc")[:-2]),  # deflate cut short
        Raw(b"a.txt", b"abcdef", method=zipfile.ZIP_DEFLATED, payload=_deflate(b"abc"), crc=zlib.crc32(b"abc")),
        Raw(b"a.txt", b"abc", method=zipfile.ZIP_DEFLATED, payload=_deflate(b"abc") + b"junk"),
        Raw(b"a.txt", b"abc", method=zipfile.ZIP_DEFLATED, payload=b"\xff\xff\xff\xff"),  # not deflate
        Raw(b"dir/", b"content", attr=(stat.S_IFDIR | 0o755) << 16),  # a directory with content
    ],
)
def test_corrupt_entries(tmp_path: Path, entry: Raw) -> None:
    assert _code(_write(tmp_path, _raw_zip(_ok(entry)))) == "corrupt_entry"


def test_missing_archive_file(tmp_path: Path) -> None:
    assert _code(tmp_path / "absent.yoi-plugin") == "missing_file"


def test_error_message_is_one_bounded_line_naming_the_entry(tmp_path: Path) -> None:
    name = "../" + "\n" * 5 + "x" * 200
    path = _write(tmp_path, _raw_zip(_ok(Raw(name.encode(), b"x"))))
    with pytest.raises(PackageError) as info:
        PackageFiles.from_archive(path)
    err = info.value
    assert err.code == "path_traversal"
    assert "\n" not in err.message and len(err.message) <= MESSAGE_MAX_CHARS
    assert "../" in err.message
    assert err.to_dict()["code"] == "path_traversal"


# ---------------------------------------------------------------------------
# Directories
# ---------------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "plugin"
    (root / "build").mkdir(parents=True)
    (root / "plugin.toml").write_bytes(MANIFEST)
    (root / "build" / "plugin.wasm").write_bytes(b"\0asm")
    return root


def _dir_code(root: Path, include: list[str], limits: PackageLimits | None = None) -> str:
    with pytest.raises(PackageError) as info:
        PackageFiles.from_directory(root, include, limits=limits)
    return info.value.code


def test_directory_lists_only_included_files(plugin_dir: Path) -> None:
    (plugin_dir / "secret.txt").write_text("no")
    package = PackageFiles.from_directory(plugin_dir, ["plugin.toml", "build/plugin.wasm"])
    assert package.paths() == ["build/plugin.wasm", "plugin.toml"]
    assert package.read("build/plugin.wasm") == b"\0asm"


def test_directory_refuses_a_symlinked_file(plugin_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (plugin_dir / "link.txt").symlink_to(tmp_path / "outside.txt")
    assert _dir_code(plugin_dir, ["plugin.toml", "link.txt"]) == "symlink"


def test_directory_refuses_a_symlinked_parent(plugin_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.wasm").write_bytes(b"x")
    (plugin_dir / "out").symlink_to(tmp_path / "elsewhere")
    assert _dir_code(plugin_dir, ["plugin.toml", "out/x.wasm"]) == "symlink"


@pytest.mark.parametrize(
    ("include", "code"),
    [
        (["plugin.toml", "../plugin/plugin.toml"], "path_traversal"),
        (["plugin.toml", "/etc/passwd"], "absolute_path"),
        (["plugin.toml", "build\\plugin.wasm"], "bad_path"),
        (["plugin.toml", "missing.wasm"], "missing_file"),
        (["plugin.toml", "build"], "not_regular_file"),
        (["plugin.toml", "plugin.toml"], "duplicate_entry"),
        (["build/plugin.wasm"], "missing_manifest"),
    ],
)
def test_directory_include_errors(plugin_dir: Path, include: list[str], code: str) -> None:
    assert _dir_code(plugin_dir, include) == code


def test_directory_entry_too_large(plugin_dir: Path) -> None:
    limits = PackageLimits(max_file_bytes=3)
    assert _dir_code(plugin_dir, ["plugin.toml"], limits) == "entry_too_large"


def test_directory_total_too_large(plugin_dir: Path) -> None:
    limits = PackageLimits(max_total_bytes=len(MANIFEST) + 1)
    assert _dir_code(plugin_dir, ["plugin.toml", "build/plugin.wasm"], limits) == "package_too_large"


def test_directory_file_changed_after_check(plugin_dir: Path) -> None:
    package = PackageFiles.from_directory(plugin_dir, ["plugin.toml", "build/plugin.wasm"])
    (plugin_dir / "build" / "plugin.wasm").write_bytes(b"\0asm-changed")
    with pytest.raises(PackageError) as info:
        package.read("build/plugin.wasm")
    assert info.value.code == "changed_on_disk"


def test_directory_root_missing(tmp_path: Path) -> None:
    assert _dir_code(tmp_path / "nope", ["plugin.toml"]) == "missing_file"


# ---------------------------------------------------------------------------
# Robustness: no input produces anything but a PackageError
# ---------------------------------------------------------------------------


def test_directory_offset_pushing_headers_below_zero(tmp_path: Path) -> None:
    # zipfile shifts header offsets by (actual - declared) directory start; declaring
    # the directory 1000 bytes later than it is makes every header offset negative.
    data = bytearray(_raw_zip(_ok(Raw(b"a.txt", b"abc"))))
    declared = struct.unpack_from("<L", data, len(data) - 6)[0]
    struct.pack_into("<L", data, len(data) - 6, declared + 1000)
    assert _code(_write(tmp_path, bytes(data))) == "corrupt_entry"


def test_mutated_archives_only_ever_raise_package_error(tmp_path: Path) -> None:
    import random

    base = _raw_zip(
        _ok(
            Raw(b"a.txt", b"hello world " * 40, method=zipfile.ZIP_DEFLATED),
            Raw(b"dir/", attr=(stat.S_IFDIR | 0o755) << 16),
            Raw(b"b.bin", bytes(range(256))),
        )
    )
    rng = random.Random(20240601)  # fixed seed: the same 400 cases every run
    path = tmp_path / "m.yoi-plugin"
    for _ in range(400):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.6:
                data[pos] = rng.randrange(256)
            elif choice < 0.8:
                del data[pos : pos + rng.randint(1, 8)]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        path.write_bytes(data)
        try:
            package = PackageFiles.from_archive(path)
            for name in package.paths():
                package.read(name)
        except PackageError:
            pass
