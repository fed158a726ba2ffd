"""Safe, read-only views of a plugin package: a directory or a `.yoi-plugin` archive.

Used by `pdk check`, `pdk pack` and the host. Everything read here is untrusted:
names are validated before use, sizes declared by the archive are bounded *and*
the real bytes are counted while reading, CRCs are checked, and every problem is
a `PackageError` with a stable `code` — never a traceback.

The archive reader lets `zipfile` parse the central directory (after bounding how
much it will read) but reads entry data itself, so it can count inflated bytes and
refuse data beyond the declared size instead of silently truncating it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Protocol

from pdk import limits as _limits
from pdk.package.digest import package_digest_from_hashes
from pdk.package.errors import PackageError, show

MANIFEST_NAME = "plugin.toml"

_CHUNK = 64 * 1024
_FLAG_ENCRYPTED = 0x0001
_FLAG_DATA_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_ZIP64_PLACEHOLDER = 0xFFFFFFFF

# ZIP record layouts (APPNOTE 4.3.7, 4.3.15, 4.3.14, 4.3.16).
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_SIG = b"PK\x03\x04"
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_CENTRAL_RECORD_SIZE = 46
# Room per central-directory record for extra fields and a comment; generous for
# every real zip tool (Info-ZIP adds ~24 bytes), small enough to bound what
# zipfile loads into memory before we can count the entries it parsed.
_CENTRAL_RECORD_SLACK = 1024


@dataclass(frozen=True)
class PackageLimits:
    """The package bounds; defaults come from `pdk.limits`."""

    max_entries: int = _limits.PACKAGE_MAX_ENTRIES
    max_file_bytes: int = _limits.PACKAGE_MAX_FILE_BYTES
    max_total_bytes: int = _limits.PACKAGE_MAX_TOTAL_BYTES
    max_path_len: int = _limits.PACKAGE_MAX_PATH_LEN

    @property
    def max_central_directory_bytes(self) -> int:
        return self.max_entries * (_CENTRAL_RECORD_SIZE + self.max_path_len + _CENTRAL_RECORD_SLACK)


@dataclass(frozen=True)
class PackageEntry:
    """One file of a package: its path, real size and raw sha256."""

    path: str
    size: int
    sha256: bytes


# ---------------------------------------------------------------------------
# Path rules (shared by directories, archives and the packer)
# ---------------------------------------------------------------------------


def validate_path(name: str, limits: PackageLimits | None = None) -> None:
    """Raise `PackageError` unless `name` is a canonical relative `/`-separated path.

    Canonical means it names exactly one place inside the package on every OS:
    no absolute or drive-letter paths, no `..`, no backslashes, no empty or `.`
    segments, no control characters."""
    limits = limits or PackageLimits()
    if not name:
        raise PackageError("empty path", code="bad_path", entry=name)
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise PackageError(f"{show(name)} is not valid UTF-8", code="bad_path", entry=name) from None
    if len(encoded) > limits.max_path_len:
        raise PackageError(
            f"{show(name)} is {len(encoded)} bytes long; the limit is {limits.max_path_len}",
            code="path_too_long",
            entry=name,
        )
    _check_absolute(name)
    _check_segments(name)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise PackageError(f"{show(name)} contains a control character", code="bad_path", entry=name)


def _check_absolute(name: str) -> None:
    if name.startswith("/"):
        raise PackageError(f"{show(name)} is an absolute path", code="absolute_path", entry=name)
    if len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha():
        raise PackageError(f"{show(name)} starts with a drive letter", code="absolute_path", entry=name)


def _check_segments(name: str) -> None:
    segments = name.split("/")
    if ".." in segments:
        raise PackageError(f"{show(name)} escapes the package with '..'", code="path_traversal", entry=name)
    # Backslash is a separator on Windows: `..\\x` would be traversal there.
    if "\\" in name:
        raise PackageError(f"{show(name)} contains a backslash", code="bad_path", entry=name)
    for segment in segments:
        if segment == "" or segment.strip(". ") == "":
            raise PackageError(
                f"{show(name)} has an empty, '.' or dots-only segment", code="bad_path", entry=name
            )


def _collision_key(path: str) -> str:
    # Names that extract to the same file on macOS/Windows (case, NFC/NFD, trailing
    # dots/spaces) must not coexist: which one wins would depend on the OS.
    folded = unicodedata.normalize("NFC", path).casefold()
    return "/".join(segment.rstrip(". ") for segment in folded.split("/"))


def _check_unique(files: Iterable[str], dirs: Iterable[str] = ()) -> None:
    seen: dict[str, str] = {}
    for path in files:
        key = _collision_key(path)
        if key in seen:
            other = seen[key]
            detail = "twice" if other == path else f"twice (as {show(other)})"
            raise PackageError(f"{show(path)} appears {detail}", code="duplicate_entry", entry=path)
        seen[key] = path
    parents = {_collision_key(d) for d in dirs}
    for path in seen.values():
        parts = path.split("/")
        parents.update(_collision_key("/".join(parts[:i])) for i in range(1, len(parts)))
    for key, path in seen.items():
        if key in parents:
            raise PackageError(
                f"{show(path)} is both a file and a directory", code="duplicate_entry", entry=path
            )


def _require_manifest(paths: Iterable[str]) -> None:
    paths = list(paths)
    if MANIFEST_NAME in paths:
        return
    nested = [p for p in paths if p.endswith("/" + MANIFEST_NAME)]
    hint = f" (found {show(nested[0])}; it must be at the root)" if nested else ""
    raise PackageError(f"no {MANIFEST_NAME} at the package root{hint}", code="missing_manifest")


def _sort_key(path: str) -> bytes:
    return path.encode("utf-8")


# ---------------------------------------------------------------------------
# The read-only view
# ---------------------------------------------------------------------------


class _Source(Protocol):
    def read(self, entry: PackageEntry) -> bytes: ...


class PackageFiles:
    """A validated, read-only set of package files (from a directory or an archive)."""

    def __init__(self, entries: Iterable[PackageEntry], source: _Source, origin: str) -> None:
        self._entries = {e.path: e for e in sorted(entries, key=lambda e: _sort_key(e.path))}
        self._source = source
        self.origin = origin

    @classmethod
    def from_directory(
        cls,
        root: str | os.PathLike[str],
        include: Iterable[str],
        *,
        limits: PackageLimits | None = None,
    ) -> PackageFiles:
        """Only the listed relative files of `root`; symlinks anywhere on a path are refused."""
        limits = limits or PackageLimits()
        root_path = Path(root)
        if not root_path.is_dir():
            raise PackageError(f"{show(str(root))} is not a directory", code="missing_file")
        paths = list(include)
        _check_count(len(paths), limits)
        for path in paths:
            validate_path(path, limits)
        _check_unique(paths)
        _require_manifest(paths)
        entries = []
        total = 0
        for path in sorted(paths, key=_sort_key):
            entry = _hash_directory_file(root_path, path, limits)
            total += entry.size
            if total > limits.max_total_bytes:
                raise PackageError(
                    f"files up to {show(path)} total {total} bytes; the limit is {limits.max_total_bytes}",
                    code="package_too_large",
                    entry=path,
                )
            entries.append(entry)
        return cls(entries, _DirectorySource(root_path), str(root_path))

    @classmethod
    def from_archive(
        cls, path: str | os.PathLike[str], *, limits: PackageLimits | None = None
    ) -> PackageFiles:
        """A `.yoi-plugin` archive, fully checked (structure, names, sizes, CRCs) before returning."""
        limits = limits or PackageLimits()
        archive = Path(path)
        try:
            with _open_for_reading(archive) as fp:
                members = _read_members(fp, limits)
                entries = _hash_members(fp, members, limits)
        except OSError as exc:  # a real I/O failure mid-read, not a format problem
            raise PackageError(
                f"{show(str(archive))} cannot be read ({exc.strerror or exc})", code="unreadable"
            ) from None
        source = _ArchiveSource(archive, {m.path: m for m in members})
        return cls(entries, source, str(archive))

    def paths(self) -> list[str]:
        """File paths in byte-sorted order (the digest and packing order)."""
        return list(self._entries)

    def entries(self) -> list[PackageEntry]:
        return list(self._entries.values())

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, path: str) -> PackageEntry:
        try:
            return self._entries[path]
        except KeyError:
            raise PackageError(f"{show(path)} is not in the package", code="missing_file", entry=path) from None

    def read(self, path: str) -> bytes:
        """The file's content, re-verified against the hash taken when the view was built."""
        entry = self.entry(path)
        data = self._source.read(entry)
        if len(data) != entry.size or hashlib.sha256(data).digest() != entry.sha256:
            raise PackageError(
                f"{show(path)} changed after the package was checked", code="changed_on_disk", entry=path
            )
        return data

    def digest(self) -> str:
        return package_digest_from_hashes((e.path, e.sha256, e.size) for e in self._entries.values())


def _check_count(count: int, limits: PackageLimits) -> None:
    if count > limits.max_entries:
        raise PackageError(
            f"the package has {count} entries; the limit is {limits.max_entries}", code="too_many_entries"
        )


# ---------------------------------------------------------------------------
# Directories
# ---------------------------------------------------------------------------

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class _DirectorySource:
    root: Path

    def read(self, entry: PackageEntry) -> bytes:
        # Reading one byte more than recorded lets `PackageFiles.read` see growth.
        return b"".join(_read_directory_file(self.root, entry.path, entry.size + 1))


# (dev, ino, size, mtime_ns, ctime_ns) -> sha256: any write to a file changes its
# mtime/ctime, so a hit means unchanged content. Saves re-hashing an 18 MiB component
# on every load in a long-lived process (a test session, `pdk run`).
_HASH_MEMO: dict[tuple[int, int, int, int, int], bytes] = {}
_HASH_MEMO_MAX = 256


def _hash_directory_file(root: Path, rel: str, limits: PackageLimits) -> PackageEntry:
    fd = _open_inside(root, rel)
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if st.st_size <= limits.max_file_bytes and key in _HASH_MEMO:
        os.close(fd)
        return PackageEntry(rel, st.st_size, _HASH_MEMO[key])
    os.close(fd)
    sha = hashlib.sha256()
    size = 0
    for chunk in _read_directory_file(root, rel, limits.max_file_bytes + 1):
        size += len(chunk)
        if size > limits.max_file_bytes:
            raise PackageError(
                f"{show(rel)} is larger than {limits.max_file_bytes} bytes", code="entry_too_large", entry=rel
            )
        sha.update(chunk)
    digest = sha.digest()
    if size == st.st_size:
        if len(_HASH_MEMO) >= _HASH_MEMO_MAX:
            _HASH_MEMO.clear()
        _HASH_MEMO[key] = digest
    return PackageEntry(rel, size, digest)


def _read_directory_file(root: Path, rel: str, max_bytes: int) -> Iterator[bytes]:
    fd = _open_inside(root, rel)
    with os.fdopen(fd, "rb") as fp:
        remaining = max_bytes
        while remaining > 0:
            try:
                chunk = fp.read(min(_CHUNK, remaining))
            except OSError as exc:
                raise _os_error(rel, exc) from None
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


def _open_inside(root: Path, rel: str) -> int:
    """Open `root/rel` for reading, refusing symlinks on every segment.

    Each segment is lstat-ed, the file is opened with O_NOFOLLOW and its identity
    compared with the lstat, so a file swapped for a symlink after the check is
    caught too. (A parent directory swapped between lstat and open is not; packing
    one's own plugin directory does not have that attacker.)"""
    parts = rel.split("/")
    current = root
    for index, part in enumerate(parts):
        current = current / part
        is_last = index == len(parts) - 1
        info = _lstat(current, rel)
        if stat.S_ISLNK(info.st_mode):
            where = "" if is_last else f" (through {show(part)})"
            raise PackageError(f"{show(rel)} is a symlink{where}", code="symlink", entry=rel)
        wanted = stat.S_ISREG if is_last else stat.S_ISDIR
        if not wanted(info.st_mode):
            kind = "a regular file" if is_last else "a directory"
            raise PackageError(f"{show(rel)}: {show(part)} is not {kind}", code="not_regular_file", entry=rel)
    try:
        fd = os.open(current, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
    except OSError as exc:
        raise _os_error(rel, exc) from None
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise PackageError(f"{show(rel)} changed while being opened", code="changed_on_disk", entry=rel)
    return fd


def _lstat(path: Path, rel: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as exc:
        raise _os_error(rel, exc) from None


def _os_error(rel: str, exc: OSError) -> PackageError:
    if isinstance(exc, FileNotFoundError):
        return PackageError(f"{show(rel)} does not exist", code="missing_file", entry=rel)
    if isinstance(exc, NotADirectoryError):
        return PackageError(f"{show(rel)}: a parent is not a directory", code="not_regular_file", entry=rel)
    # ELOOP from O_NOFOLLOW: the file became a symlink between lstat and open.
    if exc.errno == errno.ELOOP:
        return PackageError(f"{show(rel)} is a symlink", code="symlink", entry=rel)
    return PackageError(f"{show(rel)} cannot be read ({exc.strerror})", code="unreadable", entry=rel)


# ---------------------------------------------------------------------------
# Archives
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """A file entry of an archive, as validated from the central directory."""

    path: str
    raw_name: bytes
    method: int
    flags: int
    crc: int
    compress_size: int
    size: int
    header_offset: int
    data_offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class _ArchiveSource:
    path: Path
    members: dict[str, _Member]

    def read(self, entry: PackageEntry) -> bytes:
        member = self.members[entry.path]
        try:
            with _open_for_reading(self.path) as fp:
                return b"".join(_member_chunks(fp, member))
        except PackageError as exc:
            # The entry passed every check when the view was built: any failure now
            # means the archive was replaced or modified since.
            raise PackageError(
                f"{show(entry.path)} changed after the package was checked ({exc.code})",
                code="changed_on_disk",
                entry=entry.path,
            ) from None


def _open_for_reading(archive: Path) -> BinaryIO:
    try:
        if archive.is_dir():
            raise PackageError(f"{show(str(archive))} is a directory, not an archive", code="not_a_zip")
        return open(archive, "rb")
    except FileNotFoundError:
        raise PackageError(f"{show(str(archive))} does not exist", code="missing_file") from None
    except OSError as exc:
        raise PackageError(f"{show(str(archive))} cannot be read ({exc.strerror})", code="unreadable") from None


def _read_members(fp: BinaryIO, limits: PackageLimits) -> list[_Member]:
    _bound_central_directory(fp, limits)
    infos = _parse_central_directory(fp)
    _check_count(len(infos), limits)
    members: list[_Member] = []
    dirs: list[str] = []
    for info in infos:
        member = _check_info(info, limits)
        if member is None:
            dirs.append(info.orig_filename.rstrip("/"))
        else:
            members.append(member)
    _check_unique([m.path for m in members], dirs)
    _check_declared_total(members, limits)
    _require_manifest(m.path for m in members)
    located = [_locate_data(fp, m) for m in members]
    _check_no_overlap(located)
    return located


def _bound_central_directory(fp: BinaryIO, limits: PackageLimits) -> None:
    """Refuse, before zipfile parses it, a central directory too big for any valid package.

    zipfile reads the whole directory into memory and builds an object per record
    without looking at the declared count, so the count and the byte size are checked
    here from the same end record zipfile will use."""
    found = _end_record(fp)
    if found is None:
        raise PackageError("not a ZIP archive (no end-of-central-directory record)", code="not_a_zip")
    count, size = found
    _check_count(count, limits)
    if size > limits.max_central_directory_bytes:
        raise PackageError(
            f"the central directory is {size} bytes; {limits.max_entries} entries need at most "
            f"{limits.max_central_directory_bytes}",
            code="too_many_entries",
        )


def _end_record(fp: BinaryIO) -> tuple[int, int] | None:
    """(entry count, central directory size), located exactly as zipfile._EndRecData does."""
    file_size = fp.seek(0, os.SEEK_END)
    if file_size < _EOCD.size:
        return None
    fp.seek(file_size - _EOCD.size)
    data = fp.read(_EOCD.size)
    if data[:4] == _EOCD_SIG and data[-2:] == b"\0\0":
        eocd_at = file_size - _EOCD.size
    else:
        search_from = max(file_size - (1 << 16) - _EOCD.size, 0)
        fp.seek(search_from)
        tail = fp.read()
        index = tail.rfind(_EOCD_SIG)
        if index < 0 or len(tail) - index < _EOCD.size:
            return None
        eocd_at = search_from + index
        data = tail[index : index + _EOCD.size]
    fields = _EOCD.unpack(data)
    return _zip64_end_record(fp, eocd_at) or (fields[4], fields[5])


def _zip64_end_record(fp: BinaryIO, eocd_at: int) -> tuple[int, int] | None:
    locator_at = eocd_at - _ZIP64_LOCATOR.size
    record_at = locator_at - _ZIP64_EOCD.size
    if record_at < 0:
        return None
    fp.seek(locator_at)
    if _ZIP64_LOCATOR.unpack(fp.read(_ZIP64_LOCATOR.size))[0] != _ZIP64_LOCATOR_SIG:
        return None
    fp.seek(record_at)
    record = _ZIP64_EOCD.unpack(fp.read(_ZIP64_EOCD.size))
    if record[0] != _ZIP64_EOCD_SIG:
        return None
    return record[7], record[8]


def _parse_central_directory(fp: BinaryIO) -> list[zipfile.ZipInfo]:
    fp.seek(0)
    try:
        with zipfile.ZipFile(fp) as archive:
            return archive.infolist()
    # zipfile signals malformed input with a spread of types; all mean "not a usable ZIP".
    except (zipfile.BadZipFile, ValueError, struct.error, EOFError, NotImplementedError, OverflowError) as exc:
        raise PackageError(f"not a readable ZIP archive ({_short(exc)})", code="not_a_zip") from None


def _short(exc: BaseException) -> str:
    return str(exc)[:160] or type(exc).__name__


def _check_info(info: zipfile.ZipInfo, limits: PackageLimits) -> _Member | None:
    """Validate one central-directory record; None for an (ignored) directory entry."""
    # orig_filename is the name as stored: zipfile's `filename` cuts at NUL and maps os.sep.
    name = info.orig_filename
    is_dir = name.endswith("/")
    path = name[:-1] if is_dir else name
    validate_path(path, limits)
    if not name.isascii() and not info.flag_bits & _FLAG_UTF8:
        # Without the flag the bytes' encoding is a guess (cp437 here, UTF-8 elsewhere),
        # and a digest over a guessed name would differ between readers.
        raise PackageError(f"{show(name)} is non-ASCII without the ZIP UTF-8 flag", code="bad_path", entry=name)
    _check_file_type(info, name, is_dir)
    if is_dir:
        if info.file_size:
            raise PackageError(f"directory entry {show(name)} has content", code="corrupt_entry", entry=name)
        return None
    _check_method(info, name)
    _check_declared_size(info, name, limits)
    return _Member(
        path=name,
        raw_name=name.encode("utf-8" if info.flag_bits & _FLAG_UTF8 else "ascii"),
        method=info.compress_type,
        flags=info.flag_bits,
        crc=info.CRC,
        compress_size=info.compress_size,
        size=info.file_size,
        header_offset=info.header_offset,
    )


def _check_file_type(info: zipfile.ZipInfo, name: str, is_dir: bool) -> None:
    # The Unix mode lives in the high 16 bits of external_attr; 0 means "not recorded".
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise PackageError(f"{show(name)} is a symlink", code="symlink", entry=name)
    allowed = (0, stat.S_IFDIR, stat.S_IFREG) if is_dir else (0, stat.S_IFREG)
    if kind not in allowed:
        raise PackageError(f"{show(name)} is not a regular file (mode {kind:o})", code="not_regular_file", entry=name)


def _check_method(info: zipfile.ZipInfo, name: str) -> None:
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise PackageError(f"{show(name)} is encrypted", code="encrypted", entry=name)
    if info.compress_type not in _METHODS:
        raise PackageError(
            f"{show(name)} uses compression method {info.compress_type}; only stored and deflated are allowed",
            code="unsupported_compression",
            entry=name,
        )


def _check_declared_size(info: zipfile.ZipInfo, name: str, limits: PackageLimits) -> None:
    if info.file_size > limits.max_file_bytes:
        raise PackageError(
            f"{show(name)} declares {info.file_size} bytes; the limit is {limits.max_file_bytes}",
            code="entry_too_large",
            entry=name,
        )
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise PackageError(f"{show(name)} is stored but its sizes differ", code="corrupt_entry", entry=name)
    # Deflate never grows data by more than a few bytes per 16 KiB block; a larger
    # compressed size would only make us read (and inflate) bytes that cannot count.
    if info.compress_size > info.file_size + info.file_size // 256 + 1024:
        raise PackageError(f"{show(name)} has an implausible compressed size", code="corrupt_entry", entry=name)


def _check_declared_total(members: list[_Member], limits: PackageLimits) -> None:
    total = sum(m.size for m in members)
    if total > limits.max_total_bytes:
        raise PackageError(
            f"entries declare {total} bytes in total; the limit is {limits.max_total_bytes}",
            code="expansion_bomb",
        )


def _locate_data(fp: BinaryIO, member: _Member) -> _Member:
    """Read the member's local header and return the member with its data offset.

    The local header must agree with the central directory: readers that trust one
    or the other would otherwise see different files under the same digest."""
    name = member.path
    # zipfile shifts offsets by the bytes it thinks were prepended; a lying directory
    # can push them below zero.
    if member.header_offset < 0:
        raise PackageError(f"{show(name)} has an invalid header offset", code="corrupt_entry", entry=name)
    fp.seek(member.header_offset)
    raw = fp.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != _LOCAL_SIG:
        raise PackageError(f"{show(name)} has no valid local header", code="corrupt_entry", entry=name)
    _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL_HEADER.unpack(raw)
    if fp.read(name_len) != member.raw_name:
        raise PackageError(f"{show(name)}: local header names a different file", code="corrupt_entry", entry=name)
    if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise PackageError(f"{show(name)} is encrypted", code="encrypted", entry=name)
    if method != member.method or not _local_sizes_agree(flags, crc, csize, usize, member):
        raise PackageError(
            f"{show(name)}: local header disagrees with the central directory", code="corrupt_entry", entry=name
        )
    data_offset = member.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    end = fp.seek(0, os.SEEK_END)
    if data_offset + member.compress_size > end:
        raise PackageError(f"{show(name)} runs past the end of the archive", code="corrupt_entry", entry=name)
    return replace(member, data_offset=data_offset)


def _local_sizes_agree(flags: int, crc: int, csize: int, usize: int, member: _Member) -> bool:
    # With a data descriptor (bit 3) the local fields are zero by design; ZIP64 puts
    # 0xFFFFFFFF there and the real sizes in an extra field.
    if flags & _FLAG_DATA_DESCRIPTOR or _ZIP64_PLACEHOLDER in (csize, usize):
        return True
    return (crc, csize, usize) == (member.crc, member.compress_size, member.size)


def _check_no_overlap(members: list[_Member]) -> None:
    # Overlapping entries are how a small archive declares a huge total honestly
    # (the "non-recursive zip bomb"); a packer never writes them.
    spans = sorted((m.header_offset, m.data_offset + m.compress_size, m.path) for m in members)
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise PackageError(
                f"{show(second)} overlaps {show(first)} in the archive", code="overlapping_entries", entry=second
            )


def _hash_members(fp: BinaryIO, members: list[_Member], limits: PackageLimits) -> list[PackageEntry]:
    entries = []
    total = 0
    for member in members:
        sha = hashlib.sha256()
        size = 0
        for chunk in _member_chunks(fp, member):
            size += len(chunk)
            total += len(chunk)
            # Real bytes, counted as they are produced: never only the header's word.
            if total > limits.max_total_bytes:
                raise PackageError(
                    f"reading {show(member.path)} passes {limits.max_total_bytes} bytes in total",
                    code="expansion_bomb",
                    entry=member.path,
                )
            sha.update(chunk)
        entries.append(PackageEntry(member.path, size, sha.digest()))
    return entries


def _member_chunks(fp: BinaryIO, member: _Member) -> Iterator[bytes]:
    """The member's content in chunks: bounded by its declared size, CRC-checked at the end."""
    fp.seek(member.data_offset)
    raw = _raw_chunks(fp, member)
    chunks = raw if member.method == zipfile.ZIP_STORED else _inflate(raw, member.path)
    produced = 0
    crc = 0
    for chunk in chunks:
        produced += len(chunk)
        if produced > member.size:
            raise PackageError(
                f"{show(member.path)} inflates beyond its declared {member.size} bytes",
                code="expansion_bomb",
                entry=member.path,
            )
        crc = zlib.crc32(chunk, crc)
        yield chunk
    if produced != member.size:
        raise PackageError(
            f"{show(member.path)} has {produced} bytes, not the declared {member.size}",
            code="corrupt_entry",
            entry=member.path,
        )
    if crc != member.crc:
        raise PackageError(f"{show(member.path)} fails its CRC-32 check", code="bad_crc", entry=member.path)


def _raw_chunks(fp: BinaryIO, member: _Member) -> Iterator[bytes]:
    remaining = member.compress_size
    while remaining > 0:
        chunk = fp.read(min(_CHUNK, remaining))
        if not chunk:
            raise PackageError(f"{show(member.path)} is truncated", code="corrupt_entry", entry=member.path)
        remaining -= len(chunk)
        yield chunk


def _inflate(raw: Iterator[bytes], name: str) -> Iterator[bytes]:
    """Raw-deflate decode with bounded output per step, so a bomb is seen after one chunk."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for data in raw:
            if inflater.eof:
                raise _trailing_data(name)
            while True:
                out = inflater.decompress(data, _CHUNK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
                # A full output chunk may leave output pending even with no input left.
                if inflater.eof or (not data and len(out) < _CHUNK):
                    break
            if inflater.unused_data:
                raise _trailing_data(name)
    except zlib.error as exc:
        raise PackageError(f"{show(name)} is not valid deflate data ({exc})", code="corrupt_entry", entry=name) from None
    if not inflater.eof:
        raise PackageError(f"{show(name)}: the deflate stream ends early", code="corrupt_entry", entry=name)


def _trailing_data(name: str) -> PackageError:
    return PackageError(f"{show(name)} has data after its deflate stream", code="corrupt_entry", entry=name)
