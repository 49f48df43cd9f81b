"""The blob-store interface every backend implements (local files by default, S3 at scale).

The interface is small on purpose, so that a second backend is cheap to write and one shared
test suite can hold every backend to the same contract:

- the store chooses keys (``new_key``); callers never build paths;
- an object becomes visible whole or not at all (``put_file``, ``writer``);
- ``stat`` is cheap (it is called on every file request) and returns ``None`` for a missing
  object, while ``open`` raises ``FileNotFoundError``;
- ``presigned_url`` is optional in effect: a store without public links answers ``None``;
- every method raises ``InvalidKey`` for a malformed key before doing any I/O;
- ``list_objects`` walks the whole store: it is for operator tools (``anigraph migrate-store``),
  never for request paths; ``sweep_leftovers`` is for the workers' periodic sweep
  (``jobs.sweep``), never for request paths either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from anigraph.storage.keys import InvalidKey

__all__ = [
    "CHUNK_SIZE",
    "InvalidKey",
    "ListedObject",
    "Store",
    "StoredObject",
    "validate_content_type",
]

CHUNK_SIZE = 64 * 1024
"""Size of the chunks ``Store.open`` yields: small enough to keep memory flat per request."""

_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+([ \t]*;[\x20-\x7e]*)?", re.ASCII
)


def validate_content_type(content_type: str) -> str:
    """Return ``content_type`` if it can be sent back verbatim as a ``Content-Type`` header.

    The stored value is replayed to HTTP clients, so a CR/LF or non-ASCII byte here would be a
    header-injection bug; refuse it when the object is written, not when it is served.
    """
    if len(content_type) > 255 or _CONTENT_TYPE.fullmatch(content_type) is None:
        raise ValueError("content_type must be a printable-ASCII type/subtype[; params]")
    return content_type


@dataclass(frozen=True)
class StoredObject:
    """What the store knows about one object, enough to serve it with validators."""

    key: str
    size: int
    etag: str
    """The MD5 as a quoted strong entity tag, ``"<md5 hex>"``, ready for the ``ETag`` header."""
    md5: str
    """Lowercase hex MD5 of the content (Tencent's responses and COS-style uploads use it)."""
    content_type: str
    modified: float
    """When the object was published, seconds since the epoch."""


@dataclass(frozen=True)
class ListedObject:
    """One entry of a store listing: what a listing gives without reading each object."""

    key: str
    size: int


class Store(Protocol):
    """A flat namespace of immutable blobs addressed by server-chosen keys."""

    def new_key(self, sub_app_id: int, kind: str, suffix: str) -> str:
        """A fresh key ``<sub_app_id>/<kind>/<yyyymmdd>/<random><suffix>``.

        ``kind`` is ``media``, ``output`` or ``upload``; ``suffix`` is ``""`` or matches
        ``^\\.[a-z0-9]{1,8}$``. Nothing is created: the key is only reserved by being random.
        """
        ...

    def put_file(
        self,
        key: str,
        source: Path,
        content_type: str,
        *,
        move: bool = False,
        md5: str | None = None,
    ) -> StoredObject:
        """Store the content of ``source`` under ``key`` and return its metadata.

        With ``move=True`` the source file is consumed (renamed into place when possible),
        which saves a copy for engine outputs written to a scratch file first. ``md5`` is the
        content's MD5 (hex) when the caller already computed it from the final bytes (the
        engine does): the store then does not read the file again to hash it.
        """
        ...

    def writer(self, key: str, content_type: str) -> AbstractContextManager[BinaryIO]:
        """A file to write (and seek in) whose content is published at a clean ``with`` exit.

        If the block raises, nothing is published and nothing is left behind.
        """
        ...

    def stat(self, key: str) -> StoredObject | None:
        """The object's metadata, or ``None`` if there is no such object. Cheap."""
        ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (``None``: to the end) in chunks of ``CHUNK_SIZE``.

        Raises ``FileNotFoundError`` at once (not on first iteration) for a missing object.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """A real file the media engine can open directly, or ``None``.

        ``None`` means "stream it with ``open``": the store is remote, or the object is missing.
        """
        ...

    def delete(self, key: str) -> bool:
        """Remove the object; ``True`` if something was removed. A missing object is no error."""
        ...

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        """A URL anyone can GET the object from for ``expires_seconds``, or ``None``.

        ``None`` means the store cannot hand out such links (local files: the service's
        ``/files`` endpoint serves them). Made without a request, so it is cheap and says
        nothing about whether the object exists.
        """
        ...

    def list_objects(self) -> Iterator[ListedObject]:
        """Every published object (key and size), in no particular order.

        Names no key can address (temp files, metadata, foreign files with other names) are
        left out, so everything listed can be read with ``open``. Walks the whole store.
        """
        ...

    def sweep_leftovers(self, cutoff: float) -> int:
        """Remove what writes killed mid-way left, untouched since ``cutoff`` (epoch seconds).

        Hidden temp files (local), spool files and unfinished multipart uploads (S3): nothing
        any key names, never a published object. A live write is recognised by being younger
        than ``cutoff``, so pass one well before any write still running could have started
        or last written. Safe to run from several processes at once; returns how many
        leftovers were removed.
        """
        ...
