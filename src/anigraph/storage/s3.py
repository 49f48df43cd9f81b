"""The scale-out store: objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, moto, …).

It keeps the promises of ``anigraph.storage.base`` with what S3 offers:

- **Atomic publication.** A PUT (or a completed multipart upload) makes an object visible
  whole, and S3 has offered strong read-after-write consistency since 2020. ``writer`` spools
  to a local temp file and uploads only at a clean exit, so a failed block publishes nothing.
- **Cheap stat.** ``stat`` is one HEAD. The MD5 cannot come from the S3 ETag (for a multipart
  upload that is an MD5 of MD5s), so the store hashes the source before uploading it (S3 takes
  metadata when an upload starts, never after) and keeps the MD5 in user metadata
  (``x-amz-meta-md5``), next to the content type (also kept in metadata, because some
  S3-compatible servers normalise ``Content-Type``). Objects that arrived by other means
  (``aws s3 cp``) are hashed once and their metadata rewritten, like the local store's sidecar
  rebuild.
- **Bounded memory.** Uploads go through s3transfer (multipart above a threshold, parts of a
  fixed size, few threads); ``open`` streams a ranged GET in ``CHUNK_SIZE`` pieces.
- **Links.** ``presigned_url`` signs a GET locally (no request) with the client's credentials
  and signature version (SigV4 for clients this module makes); the URL names the client's
  endpoint, so that endpoint must be one the downloading clients can reach.
- **Key checks.** Every method passes the key through ``keys.validate_key`` before any request,
  and keys live under an optional ``prefix`` so that one bucket can hold several deployments.

- **Leftovers.** A process killed mid-write leaves a spool file, or an unfinished multipart
  upload; ``sweep_leftovers`` removes both once they are older than its cutoff.

Limits: ``delete`` answers "did it exist" with a HEAD before the DELETE (S3's DELETE is
idempotent and does not say), so two concurrent deletes may both answer ``True``. Without the
``s3:ListBucket`` permission AWS answers 403 instead of 404 for a missing key; that surfaces as
a ``botocore`` ``ClientError`` rather than "missing", which is the honest answer.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from anigraph.settings import MAX_PRESIGN_SECONDS
from anigraph.storage import keys
from anigraph.storage.base import (
    CHUNK_SIZE,
    ListedObject,
    StoredObject,
    validate_content_type,
)
from anigraph.storage.keys import InvalidKey, validate_key
from anigraph.storage.sweeping import remove_stale_files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

log = logging.getLogger("anigraph.storage")

__all__ = ["DEFAULT_TRANSFER", "S3Store"]

MIB = 1024 * 1024

DEFAULT_TRANSFER = TransferConfig(
    multipart_threshold=16 * MIB,
    multipart_chunksize=16 * MIB,
    max_concurrency=4,
    use_threads=True,
)
"""Multipart above 16 MiB in 16 MiB parts with 4 threads. Uploading from a *file name*, s3transfer
reads each part lazily from the file at its offset, so memory stays at a few I/O buffers
whatever the size; S3's limit of 10,000 parts then allows objects up to 160 GiB."""

META_MD5 = "md5"
META_CONTENT_TYPE = "content-type"
"""User-metadata names (sent as ``x-amz-meta-…``; S3 lowercases them)."""

SPOOL_PREFIX = ".anigraph-"
SPOOL_NAME = re.compile(r"\.anigraph-[A-Za-z0-9_]+\.part", re.ASCII)
"""``writer``'s spool files (``tempfile.mkstemp`` names), which ``sweep_leftovers`` may remove."""

_MD5 = re.compile(r"[0-9a-f]{32}", re.ASCII)
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_HASH_CHUNK = MIB


def _new_md5() -> hashlib._Hash:
    """MD5 is an integrity checksum here (ETag, Tencent's Md5 fields), not a security boundary."""
    return hashlib.md5(usedforsecurity=False)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Store:
    """Objects in ``bucket`` under ``prefix``; see the module docstring for the guarantees.

    ``client`` is any boto3 S3 client (tests and callers with special credentials pass one);
    otherwise one is made from the standard AWS chain (``AWS_ACCESS_KEY_ID``…, profiles,
    instance roles) with ``endpoint_url`` and ``region``. Boto3 clients are thread-safe, so
    one store serves every request thread and worker.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        client: S3Client | None = None,
        transfer_config: TransferConfig | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("bucket must not be empty")
        prefix = prefix.strip("/")
        if prefix:
            # The prefix is operator input, not a key, but it obeys the same syntax so that
            # the full object name can never contain "..", "//" or odd bytes.
            validate_key(prefix)
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.client: S3Client = client or _make_client(endpoint_url, region)
        self.transfer_config = transfer_config or DEFAULT_TRANSFER
        self.spool_dir = spool_dir
        """Where ``writer`` spools before uploading (``None``: the system temp folder)."""

    def __repr__(self) -> str:
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3Store({self.bucket!r}, prefix={self.prefix!r}{where})"

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
        name = self._name(key)
        validate_content_type(content_type)
        # S3 takes user metadata when an upload starts (PUT or CreateMultipartUpload) and an
        # object is immutable afterwards, so the MD5 must be known before the first byte is
        # sent: hash in one sequential pass, then upload (the second read is mostly served from
        # the page cache, and costs far less than the network transfer or a server-side copy).
        md5 = md5 or _hash_file(source)
        self.client.upload_file(
            str(source),
            self.bucket,
            name,
            ExtraArgs={
                "ContentType": content_type,
                "Metadata": {META_MD5: md5, META_CONTENT_TYPE: content_type},
            },
            Config=self.transfer_config,
        )
        obj = self.stat(key)  # one HEAD: the server's Last-Modified, and proof it landed
        if obj is None:
            raise OSError(errno.EIO, "object not visible after upload", key)
        if move:
            source.unlink(missing_ok=True)
        return obj

    @contextmanager
    def writer(self, key: str, content_type: str) -> Iterator[BinaryIO]:
        self._name(key)
        validate_content_type(content_type)
        fd, spool_name = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=".part", dir=self.spool_dir)
        spool = Path(spool_name)
        handle: BinaryIO = os.fdopen(fd, "w+b")
        try:
            yield handle
            # Close (if the caller did not) before uploading: muxers seek back to patch
            # headers, so only the bytes present at the end of the block are the object.
            handle.close()
            self.put_file(key, spool, content_type, move=True)
        finally:
            handle.close()
            spool.unlink(missing_ok=True)

    def stat(self, key: str) -> StoredObject | None:
        name = self._name(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise
        metadata = head.get("Metadata", {})
        md5 = metadata.get(META_MD5, "")
        content_type = metadata.get(META_CONTENT_TYPE) or head.get("ContentType", "")
        if _MD5.fullmatch(md5) is None:
            try:
                return self._rebuild_meta(key, name, head)
            except FileNotFoundError:
                return None  # deleted meanwhile
        try:
            validate_content_type(content_type)
        except ValueError:
            content_type = "application/octet-stream"
        return StoredObject(
            key=key,
            size=head["ContentLength"],
            etag=f'"{md5}"',
            md5=md5,
            content_type=content_type,
            modified=head["LastModified"].timestamp(),
        )

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start):
            raise ValueError("need 0 <= start <= end")
        name = self._name(key)
        # The GET is sent here, not inside the generator, so a missing object fails at the call.
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if start > 0 or end is not None:
            # Without a Range header for the whole object: S3 answers 416 to "bytes=0-" on an
            # empty object.
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self.client.get_object(**request)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING_CODES:
                raise FileNotFoundError(errno.ENOENT, "no such object", key) from None
            if code == "InvalidRange":
                return iter(())  # the object exists; the range starts past its end
            raise
        return _read_body(response["Body"])

    def local_path(self, key: str) -> Path | None:
        self._name(key)
        return None  # remote: the engine streams with ``open``

    def delete(self, key: str) -> bool:
        name = self._name(key)
        existed = self.stat(key) is not None
        if existed:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        return existed

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        name = self._name(key)
        if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_seconds must be 1 to {MAX_PRESIGN_SECONDS}")
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": name},
            ExpiresIn=expires_seconds,
        )

    def list_objects(self) -> Iterator[ListedObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                try:
                    validate_key(key)
                except InvalidKey:
                    continue  # put there by other tools: no key can name it, so not ours
                yield ListedObject(key, item["Size"])

    def sweep_leftovers(self, cutoff: float) -> int:
        spool = self.spool_dir or Path(tempfile.gettempdir())
        return remove_stale_files(spool, SPOOL_NAME, cutoff, walk=False) + self._abort_uploads(
            cutoff
        )

    # -- internals -----------------------------------------------------------------------------

    def _abort_uploads(self, cutoff: float) -> int:
        """Abort multipart uploads under the prefix started before ``cutoff``: s3transfer's,
        orphaned when their process died (the parts are billed until then). Uploads whose
        name no key can be are someone else's and left alone."""
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                name = upload["Key"]
                try:
                    validate_key(name[len(self.prefix) :])
                except InvalidKey:
                    continue
                if upload["Initiated"].timestamp() >= cutoff:
                    continue
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if _error_code(exc) == "NoSuchUpload":  # another sweeper was first
                        continue
                    raise
                aborted += 1
        return aborted

    def _name(self, key: str) -> str:
        """The S3 object name of a key, after checking the key (before any request)."""
        return self.prefix + validate_key(key)

    def _rebuild_meta(self, key: str, name: str, head: HeadObjectOutputTypeDef) -> StoredObject:
        """Hash an object that has no MD5 metadata (uploaded by other tools) and record it.

        Run once per such object: the metadata is rewritten with a server-side ``CopyObject``
        onto itself, so later ``stat`` calls are one HEAD again. If the copy fails (read-only
        credentials, objects over 5 GiB) the object is still served; it is hashed again next time.
        The copy moves Last-Modified to now, once: acceptable for objects nobody has served yet
        with our validators, since the ETag we send (the MD5) does not change.
        """
        md5 = _new_md5()
        for chunk in self.open(key):
            md5.update(chunk)
        digest = md5.hexdigest()
        content_type = head.get("Metadata", {}).get(META_CONTENT_TYPE) or head.get(
            "ContentType", ""
        )
        try:
            validate_content_type(content_type)
        except ValueError:
            content_type = "application/octet-stream"
        log.info("rebuilt metadata of %s", key)
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=name,
                CopySource={"Bucket": self.bucket, "Key": name},
                CopySourceIfMatch=head["ETag"],
                MetadataDirective="REPLACE",
                ContentType=content_type,
                Metadata={META_MD5: digest, META_CONTENT_TYPE: content_type},
            )
            refreshed = self.client.head_object(Bucket=self.bucket, Key=name)
            modified = refreshed["LastModified"].timestamp()
            size = refreshed["ContentLength"]
        except ClientError as exc:
            log.warning("cannot write metadata of %s: %s", key, _error_code(exc))
            modified = head["LastModified"].timestamp()
            size = head["ContentLength"]
        return StoredObject(
            key=key,
            size=size,
            etag=f'"{digest}"',
            md5=digest,
            content_type=content_type,
            modified=modified,
        )


def _make_client(endpoint_url: str | None, region: str | None) -> S3Client:
    """A client from the standard AWS credential chain, tuned for S3-compatible servers.

    Path-style addressing when an endpoint is given, because MinIO, Ceph and moto are usually
    reached by IP or a single host name without wildcard DNS for virtual-hosted buckets.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path"} if endpoint_url else {},
        # Presigned URLs would otherwise be SigV2 in some regions, which AWS no longer accepts
        # for new buckets; SigV4 is what every S3-compatible server speaks.
        signature_version="s3v4",
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config
    )


def _hash_file(path: Path) -> str:
    md5 = _new_md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            md5.update(chunk)
    return md5.hexdigest()


def _read_body(body: Any) -> Iterator[bytes]:
    """Yield a GET body in chunks of exactly ``CHUNK_SIZE`` (the last may be shorter).

    A socket read may return less than asked; refill so callers see the same chunking as the
    local store. The body is closed however the iteration ends, returning the connection.
    """
    try:
        while True:
            chunk = body.read(CHUNK_SIZE)
            if not chunk:
                return
            while len(chunk) < CHUNK_SIZE:
                more = body.read(CHUNK_SIZE - len(chunk))
                if not more:
                    break
                chunk += more
            yield chunk
    finally:
        with suppress(Exception):
            body.close()
