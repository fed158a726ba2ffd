"""The `yoi:host/fs` import: files under roots the operator granted, by name.

Authority is the intersection of the manifest (`[[fs]] name/operations`, plus `fs` in
`host_apis`) and the grant (`[[plugins.fs]] name/path/operations`, plus `fs` in the
grant's `host_apis`); it is re-checked on every call. The guest names a root and a
relative path; the host path of a root never appears in a result or a message.

Path rules (`normalize_relative_path`, pure): relative, `/`-separated, normalized (`.`
and empty segments dropped); absolute paths, `..` segments, backslashes, NUL and other
control characters are refused as `invalid_path`. Resolution then walks the path one
segment at a time with `O_NOFOLLOW` relative to the directory opened before it
(`dir_fd`), so no symbolic link is ever followed - not at the leaf, not in between - and
a rename racing the walk cannot move us outside the root. Symlinks are refused even when
they point inside the root: a link is exactly the thing whose target can change under us.

Writes are atomic: the data goes to a temporary file in the target's directory, is
fsynced, and `os.replace`s the target, so a reader sees the old or the new content,
never a mix. Missing parent directories are created (inside the root, by the same
no-follow walk): a plugin with a `write` grant owns the shape of its tree.

Every method returns `Ok(value)` / `Err({"code", "message"})` and never raises.
POSIX only (`dir_fd`, `O_NOFOLLOW`, `O_DIRECTORY`).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pdk.limits import (
    FS_LIST_MAX_ENTRIES,
    FS_PATH_MAX_BYTES,
    FS_READ_MAX_BYTES,
    FS_SEGMENT_MAX_BYTES,
    FS_WRITE_MAX_BYTES,
    HOST_API_MESSAGE_MAX_BYTES,
)

from pdk.package.manifest import Manifest

from .codec import Err, Ok
from .grants import GrantSet
from .redact import bound_text, redact_bounded

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _O_CLOEXEC
# O_NONBLOCK: opening a FIFO that slipped past the type check must not hang the call.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _O_CLOEXEC
_TEMP_PREFIX = ".yoi-write-"
_SHOWN_PATH_BYTES = 200


class FsPathError(ValueError):
    """A guest path that is not a plain relative path inside a root."""


@dataclass(frozen=True)
class DeclaredRoot:
    """A manifest `[[fs]]` entry: a root name and the operations the plugin asks for."""

    name: str
    operations: tuple[str, ...]


def normalize_relative_path(path: Any, *, directory: bool) -> tuple[str, ...]:
    """The segments of a guest path, or `FsPathError`.

    `directory=True` (listing) accepts the root itself (`""`, `"."`, `"/"` is still
    refused as absolute) and a trailing slash; a file path needs at least one segment
    and no trailing slash."""
    if not isinstance(path, str):
        raise FsPathError("the path must be a string")
    if len(path.encode("utf-8", "surrogatepass")) > FS_PATH_MAX_BYTES:
        raise FsPathError(f"the path is longer than {FS_PATH_MAX_BYTES} bytes")
    if "\0" in path:
        raise FsPathError("the path contains a NUL character")
    if "\\" in path:
        # `\` is a separator on some systems and an ordinary character on others; a
        # path that means different things in different places is refused.
        raise FsPathError("the path contains a backslash (use '/')")
    if _CONTROL_RE.search(path):
        raise FsPathError("the path contains a control character")
    if path.startswith("/"):
        raise FsPathError("the path is absolute; paths are relative to the root")
    segments = tuple(seg for seg in path.split("/") if seg not in ("", "."))
    if ".." in segments:
        raise FsPathError("the path contains '..'; paths never leave the root")
    for seg in segments:
        if len(seg.encode("utf-8", "surrogatepass")) > FS_SEGMENT_MAX_BYTES:
            raise FsPathError(f"a path segment is longer than {FS_SEGMENT_MAX_BYTES} bytes")
    if not directory:
        if not segments:
            raise FsPathError("the path names the root directory, not a file")
        if path.endswith("/"):
            raise FsPathError("the path ends with '/', which names a directory, not a file")
    return segments


class _Failure(Exception):
    """An fs-error on its way to becoming an `Err` value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _err(code: str, message: str) -> Any:
    return Err({"code": code, "message": redact_bounded(message, HOST_API_MESSAGE_MAX_BYTES)})


def _show(segments: Sequence[str]) -> str:
    """The guest's own path, normalized and bounded: safe to show (it has no host part)."""
    shown = "/".join(segments) or "."
    return repr(bound_text(shown, _SHOWN_PATH_BYTES))


def _os_failure(exc: OSError, shown: str) -> _Failure:
    # `str(exc)` would contain the host path (`[Errno 2] ...: '/srv/data/x'`); only the
    # errno and its text are used.
    code = exc.errno
    if code == errno.ENOENT:
        return _Failure("not_found", f"{shown} does not exist")
    if code == errno.ENOTDIR:
        return _Failure("not_found", f"a parent of {shown} is not a directory")
    if code == errno.ELOOP:
        return _Failure("invalid_path", f"{shown} goes through a symbolic link")
    if code == errno.EISDIR:
        return _Failure("invalid_path", f"{shown} is a directory")
    if code == errno.ENAMETOOLONG:
        return _Failure("invalid_path", f"{shown} is too long for the host filesystem")
    if code == errno.EFBIG:
        return _Failure("too_large", f"{shown} is too large for the host filesystem")
    return _Failure("io", f"{shown}: {exc.strerror or 'I/O error'}")


class FsBackend:
    """`read_file` / `write_file` / `list_dir` for one plugin."""

    def __init__(self, grants: GrantSet, declared_roots: Sequence[DeclaredRoot], *, api_declared: bool = True) -> None:
        """`api_declared`: whether the manifest lists `fs` in `host_apis`."""
        self.grants = grants
        self.declared_roots = tuple(declared_roots)
        self.api_declared = api_declared

    @classmethod
    def for_manifest(cls, grants: GrantSet, manifest: Manifest) -> FsBackend:
        roots = tuple(DeclaredRoot(root.name, root.operations) for root in manifest.fs_roots)
        return cls(grants, roots, api_declared="fs" in manifest.host_apis)

    # -- the three imports ---------------------------------------------------------------------

    def read_file(self, root: str, path: str) -> Any:
        return self._run(self._read, "read", root, path)

    def write_file(self, root: str, path: str, data: bytes) -> Any:
        return self._run(self._write, "write", root, path, data)

    def list_dir(self, root: str, path: str) -> Any:
        return self._run(self._list, "list", root, path)

    # -- plumbing ------------------------------------------------------------------------------

    def _run(self, op: Any, operation: str, root: Any, path: Any, *extra: Any) -> Any:
        segments: tuple[str, ...] = ()
        try:
            host_path = self._authorize(root, operation)
            segments = normalize_relative_path(path, directory=operation == "list")
            root_fd = self._open_root(root, host_path)
            try:
                return Ok(op(root_fd, segments, *extra))
            finally:
                os.close(root_fd)
        except _Failure as failure:
            return _err(failure.code, failure.message)
        except FsPathError as exc:
            return _err("invalid_path", str(exc))
        except OSError as exc:
            mapped = _os_failure(exc, _show(segments))
            return _err(mapped.code, mapped.message)
        except Exception as exc:  # a host import never raises; say what, never where
            return _err("io", f"host error: {type(exc).__name__}")

    def _authorize(self, root: Any, operation: str) -> str:
        if not isinstance(root, str) or not root:
            raise _Failure("denied", "the root must be a non-empty root name")
        name = repr(bound_text(root, 64))
        if not self.api_declared:
            raise _Failure("denied", "the fs host API is not declared in the manifest (host_apis)")
        if not self.grants.allows_host_api("fs"):
            raise _Failure("denied", "the fs host API is not granted to this plugin")
        declared = next((r for r in self.declared_roots if r.name == root), None)
        if declared is None:
            raise _Failure("denied", f"root {name} is not declared in the manifest ([[fs]])")
        if operation not in declared.operations:
            raise _Failure("denied", f"operation {operation!r} on root {name} is not declared in the manifest")
        granted = self.grants.fs_root(root)
        if granted is None:
            raise _Failure("denied", f"root {name} is not granted to this plugin")
        if operation not in granted.operations:
            raise _Failure("denied", f"operation {operation!r} on root {name} is not granted")
        if granted.path is None:
            # Dev grants repeat the manifest, which has no host paths: there is no
            # directory to use, and inventing one would be authority nobody granted.
            raise _Failure("denied", f"root {name} has no host directory (dev grants carry none; use a grants file)")
        return granted.path

    @staticmethod
    def _open_root(root: str, host_path: str) -> int:
        try:
            # The operator's root path itself may be a symlink: that is the operator's call.
            return os.open(host_path, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        except OSError:
            raise _Failure("io", f"root {bound_text(root, 64)!r} is not available on the host") from None

    @staticmethod
    def _walk(root_fd: int, segments: Sequence[str], *, create: bool) -> int:
        """Open the directory `segments` below `root_fd` without following any symlink;
        returns a new fd (the caller closes it). `create` makes missing directories."""
        current = os.dup(root_fd)
        try:
            for index, seg in enumerate(segments):
                shown = _show(segments[: index + 1])
                try:
                    nxt = os.open(seg, _DIR_FLAGS, dir_fd=current)
                except FileNotFoundError:
                    if not create:
                        raise _Failure("not_found", f"{shown} does not exist") from None
                    try:
                        os.mkdir(seg, 0o777, dir_fd=current)
                    except FileExistsError:
                        pass  # made concurrently; the no-follow open below judges it
                    nxt = FsBackend._open_dir_or_explain(current, seg, shown)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        nxt = FsBackend._open_dir_or_explain(current, seg, shown)
                    else:
                        raise _os_failure(exc, shown) from None
                os.close(current)
                current = nxt
            return current
        except BaseException:
            os.close(current)
            raise

    @staticmethod
    def _open_dir_or_explain(parent_fd: int, seg: str, shown: str) -> int:
        try:
            return os.open(seg, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise _os_failure(exc, shown) from None
        # O_NOFOLLOW | O_DIRECTORY refuses both symlinks and non-directories; lstat says which.
        st = os.stat(seg, dir_fd=parent_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise _Failure("invalid_path", f"{shown} is a symbolic link; links are never followed")
        raise _Failure("not_found", f"{shown} is not a directory")

    @staticmethod
    def _leaf_stat(parent_fd: int, leaf: str, shown: str) -> os.stat_result | None:
        try:
            st = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise _Failure("invalid_path", f"{shown} is a symbolic link; links are never followed")
        if stat.S_ISDIR(st.st_mode):
            raise _Failure("invalid_path", f"{shown} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise _Failure("invalid_path", f"{shown} is not a regular file")
        return st

    # -- operations ------------------------------------------------------------------------------

    def _read(self, root_fd: int, segments: tuple[str, ...]) -> bytes:
        shown = _show(segments)
        parent = self._walk(root_fd, segments[:-1], create=False)
        try:
            # Judge the type before opening: opening a device can have side effects.
            if self._leaf_stat(parent, segments[-1], shown) is None:
                raise _Failure("not_found", f"{shown} does not exist")
            fd = os.open(segments[-1], _READ_FLAGS, dir_fd=parent)
        finally:
            os.close(parent)
        try:
            st = os.fstat(fd)  # the same check again, on what was really opened
            if not stat.S_ISREG(st.st_mode):
                raise _Failure("invalid_path", f"{shown} is not a regular file")
            if st.st_size > FS_READ_MAX_BYTES:
                raise _Failure("too_large", f"{shown} is {st.st_size} bytes; the read limit is {FS_READ_MAX_BYTES}")
            chunks: list[bytes] = []
            total = 0
            while total <= FS_READ_MAX_BYTES:  # the file may grow while we read it
                chunk = os.read(fd, min(1 << 16, FS_READ_MAX_BYTES + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            if total > FS_READ_MAX_BYTES:
                raise _Failure("too_large", f"{shown} is larger than the read limit of {FS_READ_MAX_BYTES} bytes")
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _write(self, root_fd: int, segments: tuple[str, ...], data: Any) -> None:
        shown = _show(segments)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise _Failure("io", "the data must be bytes")
        if len(data) > FS_WRITE_MAX_BYTES:
            # Refused before the disk is touched: the old content stays as it was.
            raise _Failure("too_large", f"{len(data)} bytes for {shown}; the write limit is {FS_WRITE_MAX_BYTES}")
        parent = self._walk(root_fd, segments[:-1], create=True)
        leaf = segments[-1]
        try:
            existing = self._leaf_stat(parent, leaf, shown)
            temp = f"{_TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
            fd = os.open(temp, _TEMP_FLAGS, 0o666, dir_fd=parent)  # the umask applies
            try:
                try:
                    if existing is not None:
                        os.fchmod(fd, stat.S_IMODE(existing.st_mode))  # replacing keeps the mode
                    view = memoryview(data)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, leaf, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                try:
                    os.unlink(temp, dir_fd=parent)
                except OSError:
                    pass
                raise
            try:
                os.fsync(parent)  # make the rename itself durable
            except OSError:
                pass
        except OSError as exc:
            raise _os_failure(exc, shown) from None
        finally:
            os.close(parent)

    def _list(self, root_fd: int, segments: tuple[str, ...]) -> list[dict[str, Any]]:
        shown = _show(segments)
        directory = self._walk(root_fd, segments, create=False)
        entries: list[dict[str, Any]] = []
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if len(entries) >= FS_LIST_MAX_ENTRIES:
                        raise _Failure("too_large", f"{shown} has more than {FS_LIST_MAX_ENTRIES} entries")
                    try:
                        entry.name.encode("utf-8")
                    except UnicodeEncodeError:
                        continue  # not valid UTF-8: no WIT string can name it, so it cannot be used
                    entries.append(_entry(entry))
        finally:
            os.close(directory)
        # Sorted by name (code point order): the same tree lists the same way everywhere.
        entries.sort(key=lambda e: e["name"])
        return entries


def _entry(entry: os.DirEntry[str]) -> dict[str, Any]:
    # Symlinks are `other`: they are listed (they exist) but never followed.
    if entry.is_dir(follow_symlinks=False):
        return {"name": entry.name, "kind": "directory", "size": 0}
    if entry.is_file(follow_symlinks=False):
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except OSError:
            size = 0  # removed while listing
        return {"name": entry.name, "kind": "file", "size": size}
    return {"name": entry.name, "kind": "other", "size": 0}
