"""The embedded default store: one file per object under a root folder.

What this module guarantees, and how:

- **Containment.** A key is validated (``keys.validate_key``) and its path resolved; if the
  resolved path is not inside the resolved root (a symlink pointing out, say) the key is refused
  with ``InvalidKey``. Data files are opened with ``O_NOFOLLOW`` so the last component cannot be
  swapped for a symlink between the check and the open.
- **Atomic publication.** Content goes to a hidden temp file (``.<name>.<random>.tmp``) in the
  object's own folder, is fsynced, and is renamed over the final name with ``os.replace``; the
  folder is fsynced after the rename. Readers see the whole object or no object, and a crash at
  any point leaves at most a hidden temp file that no key can name (``sweep_leftovers``
  removes it once it is old).
- **Cheap stat.** The content type and MD5 live in a sidecar ``<file>.meta.json`` (written the
  same atomic way, before the data file). The sidecar also records the data file's size, mtime
  and inode; if they no longer match (no sidecar, a crash between the two renames, an operator
  who copied files by hand) ``stat`` hashes the file once and rewrites the sidecar.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
import stat as st_mode
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from anigraph.storage import keys
from anigraph.storage.base import (
    CHUNK_SIZE,
    ListedObject,
    StoredObject,
    validate_content_type,
)
from anigraph.storage.keys import META_SUFFIX, InvalidKey, validate_key
from anigraph.storage.sweeping import remove_stale_files

log = logging.getLogger("anigraph.storage")

COPY_CHUNK = 1024 * 1024
"""Read size when copying or hashing whole files: large enough to amortise syscalls."""

_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY: int = getattr(os, "O_DIRECTORY", 0)

_KNOWN_TYPES = {
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".json": "application/json",
}
"""Content types by suffix, used only when a sidecar has to be rebuilt."""

_MISSING = (FileNotFoundError, NotADirectoryError)
"""What the OS raises for a path that does not exist (or runs through a regular file)."""


def _new_md5() -> hashlib._Hash:
    """MD5 is an integrity checksum here (ETag, Tencent's Md5 fields), not a security boundary."""
    return hashlib.md5(usedforsecurity=False)


@dataclass(frozen=True)
class _Meta:
    """The sidecar's content: the object's metadata and the identity of the file it describes."""

    content_type: str
    md5: str
    size: int
    mtime_ns: int
    ino: int

    def describes(self, status: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ino) == (
            status.st_size,
            status.st_mtime_ns,
            status.st_ino,
        )

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, **asdict(self)}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> _Meta | None:
        try:
            data = json.loads(raw)
            meta = cls(
                content_type=data["content_type"],
                md5=data["md5"],
                size=data["size"],
                mtime_ns=data["mtime_ns"],
                ino=data["ino"],
            )
            validate_content_type(meta.content_type)
        except (ValueError, TypeError, KeyError):
            return None
        if not all(isinstance(v, int) for v in (meta.size, meta.mtime_ns, meta.ino)):
            return None
        if not isinstance(meta.md5, str) or re.fullmatch(r"[0-9a-f]{32}", meta.md5) is None:
            return None
        return meta


class LocalStore:
    """Objects as files under ``root``; see the module docstring for the guarantees."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        # Resolved once so that containment checks compare real paths with real paths.
        self.root = root.resolve(strict=True)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- the Store interface -------------------------------------------------------------------

    def new_key(self, sub_app_id: int, kind: str, suffix: str) -> str:
        return keys.new_key(sub_app_id, kind, suffix)

    def put_file(
        self,
        key: str,
        source: Path,
        content_type: str,
        *,
        move: bool = False,
        md5: str | None = None,
    ) -> StoredObject:
        lexical, _ = self._paths(key)
        validate_content_type(content_type)
        self._makedirs(lexical.parent)
        tmp = _temp_name(lexical)
        moved = False
        try:
            if move and _movable(source):
                try:
                    os.rename(source, tmp)
                    moved = True
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
            if moved:
                os.utime(tmp)  # Last-Modified is the publication time, not the scratch file's.
                digest = _hash_path(tmp, fsync=True) if md5 is None else _fsync_path(tmp, md5)
            else:
                digest = _copy_hashing(source, tmp)  # read once anyway: hash what was copied
            obj = self._publish(key, tmp, lexical, digest, content_type)
        except BaseException:
            if moved:
                _restore(tmp, source)
            else:
                _unlink_quietly(tmp)
            raise
        if move and not moved:
            source.unlink(missing_ok=True)
        return obj

    @contextmanager
    def writer(self, key: str, content_type: str) -> Iterator[BinaryIO]:
        lexical, _ = self._paths(key)
        validate_content_type(content_type)
        self._makedirs(lexical.parent)
        tmp = _temp_name(lexical)
        handle = _create_exclusive(tmp)
        try:
            yield handle
            # Hash after the block, not while writing: muxers seek back to patch headers
            # (MP4's moov, WebP's RIFF size), so only the final bytes have a meaningful MD5.
            # The re-read comes from the page cache.
            if handle.closed:
                md5 = _hash_path(tmp, fsync=True)
            else:
                handle.flush()
                os.fsync(handle.fileno())
                handle.seek(0)
                md5 = _hash_stream(handle)
                handle.close()
            self._publish(key, tmp, lexical, md5, content_type)
        except BaseException:
            handle.close()
            _unlink_quietly(tmp)
            raise

    def stat(self, key: str) -> StoredObject | None:
        lexical, resolved = self._paths(key)
        try:
            status = os.stat(resolved)
        except _MISSING:
            return None
        if not st_mode.S_ISREG(status.st_mode):
            return None
        meta = _read_meta(_meta_name(lexical))
        if meta is None or not meta.describes(status):
            try:
                meta = self._rebuild_meta(key, lexical, resolved)
            except FileNotFoundError:
                return None  # deleted meanwhile
        return StoredObject(
            key=key,
            size=meta.size,
            etag=f'"{meta.md5}"',
            md5=meta.md5,
            content_type=meta.content_type,
            modified=meta.mtime_ns / 1e9,
        )

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start):
            raise ValueError("need 0 <= start <= end")
        _, resolved = self._paths(key)
        # Opened here, not inside the generator, so a missing object fails at the call.
        handle = _open_regular(resolved, key)
        return _read_range(handle, start, end)

    def local_path(self, key: str) -> Path | None:
        _, resolved = self._paths(key)
        try:
            status = os.stat(resolved)
        except _MISSING:
            return None
        return resolved if st_mode.S_ISREG(status.st_mode) else None

    def delete(self, key: str) -> bool:
        lexical, _ = self._paths(key)
        removed = False
        try:
            if not st_mode.S_ISDIR(os.lstat(lexical).st_mode):
                # lexical, not resolved: a symlink key loses the link, never the link's target.
                os.unlink(lexical)
                removed = True
        except _MISSING:
            pass
        # Also clears a sidecar orphaned by a crash between the two renames of a publication.
        _meta_name(lexical).unlink(missing_ok=True)
        if removed:
            _fsync_dir(lexical.parent)
        return removed

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        validate_key(key)
        if expires_seconds < 1:
            raise ValueError("expires_seconds must be at least 1")
        return None  # files on this machine: the service's /files endpoint is their link

    def list_objects(self) -> Iterator[ListedObject]:
        for folder, subfolders, names in os.walk(self.root):
            # Hidden names are temp files (and never keys); os.walk does not follow symlinked
            # folders, so the walk stays inside the root.
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            relative = Path(folder).relative_to(self.root).parts
            for name in sorted(names):
                if name.startswith(".") or name.endswith(META_SUFFIX):
                    continue
                listed = self._listed("/".join((*relative, name)))
                if listed is not None:
                    yield listed

    def sweep_leftovers(self, cutoff: float) -> int:
        return remove_stale_files(self.root, TEMP_NAME, cutoff, walk=True)

    # -- internals -----------------------------------------------------------------------------

    def _listed(self, key: str) -> ListedObject | None:
        """``key``'s listing entry if ``open`` would serve it (a valid key whose path resolves
        to a regular file inside the root), else ``None``."""
        try:
            _, resolved = self._paths(key)
            status = os.stat(resolved)
        except (InvalidKey, *_MISSING):
            return None
        return ListedObject(key, status.st_size) if st_mode.S_ISREG(status.st_mode) else None

    def _paths(self, key: str) -> tuple[Path, Path]:
        """(path as named, path with symlinks resolved), after proving both stay in the root."""
        validate_key(key)
        lexical = self.root.joinpath(*key.split("/"))
        try:
            resolved = lexical.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
            raise InvalidKey("key does not resolve to a file in the store") from exc
        if resolved == self.root or not resolved.is_relative_to(self.root):
            raise InvalidKey("key resolves outside the store")
        return lexical, resolved

    def _makedirs(self, directory: Path) -> None:
        """``mkdir -p`` that fsyncs each new folder's parent, so a published file's folder
        survives a power cut along with the file."""
        missing: list[Path] = []
        while not directory.is_dir() and directory != self.root:
            missing.append(directory)
            directory = directory.parent
        for folder in reversed(missing):
            # FileExistsError: a concurrent writer made it (or it is a file: the open says so).
            with suppress(FileExistsError):
                os.mkdir(folder)
            _fsync_dir(folder.parent)

    def _publish(
        self, key: str, tmp: Path, final: Path, md5: str, content_type: str
    ) -> StoredObject:
        """Sidecar first, then the data file: a crash between the two leaves an orphan sidecar
        (harmless, and ``stat`` ignores it) rather than an object without metadata."""
        status = os.stat(tmp)
        meta = _Meta(content_type, md5, status.st_size, status.st_mtime_ns, status.st_ino)
        _write_meta(_meta_name(final), meta)
        os.replace(tmp, final)  # rename keeps the inode and mtime the sidecar recorded
        _fsync_dir(final.parent)
        return StoredObject(
            key=key,
            size=meta.size,
            etag=f'"{md5}"',
            md5=md5,
            content_type=content_type,
            modified=meta.mtime_ns / 1e9,
        )

    def _rebuild_meta(self, key: str, lexical: Path, resolved: Path) -> _Meta:
        """Hash the file once and record the result, for files without a valid sidecar."""
        with _open_regular(resolved, key) as handle:
            status = os.fstat(handle.fileno())
            md5 = _hash_stream(handle)
        suffix = resolved.suffix.lower()
        content_type = (
            _KNOWN_TYPES.get(suffix)
            or mimetypes.guess_type(f"x{suffix}")[0]
            or "application/octet-stream"
        )
        meta = _Meta(content_type, md5, status.st_size, status.st_mtime_ns, status.st_ino)
        log.info("rebuilt metadata of %s", key)
        try:
            _write_meta(_meta_name(lexical), meta)
        except OSError as exc:  # a read-only store still serves, it just hashes again next time
            log.warning("cannot write metadata of %s: %s", key, exc)
        return meta


# -- file helpers ------------------------------------------------------------------------------


TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{16}\.tmp", re.ASCII)
"""The names ``_temp_name`` makes (of data files and sidecars), and nothing else."""


def _temp_name(final: Path) -> Path:
    """A hidden name next to ``final``: same filesystem (atomic rename), unreachable by keys."""
    return final.with_name(f".{final.name}.{secrets.token_hex(8)}.tmp")


def _meta_name(final: Path) -> Path:
    return final.with_name(final.name + META_SUFFIX)


def _create_exclusive(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o666)
    return os.fdopen(fd, "w+b")


def _open_regular(path: Path, key: str) -> BinaryIO:
    """Open a data file for reading, refusing symlinks and anything but a regular file.

    Every failure to find the object is a ``FileNotFoundError`` naming the key, not the path.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, _MISSING) or exc.errno == errno.ELOOP:
            raise FileNotFoundError(errno.ENOENT, "no such object", key) from None
        raise
    if not st_mode.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(errno.ENOENT, "no such object", key)
    return os.fdopen(fd, "rb", buffering=0)


def _read_range(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _hash_stream(handle: BinaryIO) -> str:
    md5 = _new_md5()
    while chunk := handle.read(COPY_CHUNK):
        md5.update(chunk)
    return md5.hexdigest()


def _fsync_path(path: Path, md5: str) -> str:
    """Make ``path``'s data durable without reading it; its known ``md5``."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return md5


def _hash_path(path: Path, *, fsync: bool) -> str:
    with open(path, "rb") as handle:
        md5 = _hash_stream(handle)
        if fsync:
            os.fsync(handle.fileno())
    return md5


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy ``source`` to a new file ``target`` and return the MD5, reading the source once."""
    md5 = _new_md5()
    with open(source, "rb") as src, _create_exclusive(target) as dst:
        while chunk := src.read(COPY_CHUNK):
            md5.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return md5.hexdigest()


def _movable(source: Path) -> bool:
    """Rename only a plain, singly linked file: renaming a symlink would store the link, and a
    second hard link would let someone change the object after publication."""
    try:
        status = os.lstat(source)
    except OSError:
        return False  # let the copy path report the problem
    return st_mode.S_ISREG(status.st_mode) and status.st_nlink == 1


def _read_meta(path: Path) -> _Meta | None:
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return _Meta.from_json(handle.read(4096))


def _write_meta(path: Path, meta: _Meta) -> None:
    tmp = _temp_name(path)
    try:
        with _create_exclusive(tmp) as handle:
            handle.write(meta.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove temp file %s: %s", path.name, exc)


def _restore(tmp: Path, source: Path) -> None:
    """Undo a move after a failed publication, so ``move=True`` never loses the caller's file."""
    try:
        os.rename(tmp, source)
    except OSError as exc:
        # Keep the hidden temp file: it may be the only copy of the caller's data.
        log.error("cannot move %s back to %s: %s", tmp, source, exc)
