"""Request bodies of the COS endpoint: objects streamed to the store, small XML documents.

An object body streams to the store (bounded memory, the size cap enforced while reading, not
trusted from ``Content-Length``) and is kept only if it arrived whole: within the cap, as long
as its ``Content-Length`` said, matching its ``Content-MD5``.
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from anigraph.api.cos.errors import CosError
from anigraph.api.cos.wire import content_length, content_md5
from anigraph.context import Context
from anigraph.services.uploads.errors import too_large

WRITE_BUFFER: Final = 1024 * 1024
"""Body bytes gathered before one write to the store (one thread hop per MiB, not per chunk)."""
MAX_XML_BODY: Final = 4 * 1024 * 1024
"""Largest CompleteMultipartUpload body: 10000 parts take about 0.8 MB."""


async def receive(ctx: Context, request: Request, key: str, content_type: str, limit: int) -> str:
    """Stream the body into the store under ``key``; returns its MD5 (hex).

    Nothing is published unless the whole body arrived within ``limit`` bytes, matched its
    ``Content-Length`` and its ``Content-MD5``. Over ``limit`` (declared, or while reading) it
    raises the service's ``EntityTooLarge`` refusal, so that the caller can end a multipart
    upload that can no longer complete.
    """
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise too_large(ctx.settings.max_upload_bytes)
    expected_md5 = content_md5(request)
    manager = ctx.store.writer(key, content_type)
    handle = await run_in_threadpool(manager.__enter__)
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    buffer = bytearray()
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(ctx.settings.max_upload_bytes)
            digest.update(chunk)
            buffer += chunk
            if len(buffer) >= WRITE_BUFFER:
                data = bytes(buffer)
                buffer.clear()
                await run_in_threadpool(handle.write, data)
        if buffer:
            await run_in_threadpool(handle.write, bytes(buffer))
        if declared is not None and size != declared:
            raise CosError(
                "IncompleteBody",
                "You did not provide the number of bytes specified by Content-Length.",
            )
        if expected_md5 is not None and not hmac.compare_digest(expected_md5, digest.digest()):
            raise CosError(
                "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
    except BaseException as exc:
        # Inline, not in a thread: on cancellation (client gone) an await would not run.
        # Aborting only closes and unlinks the temporary file.
        manager.__exit__(type(exc), exc, exc.__traceback__)
        raise
    await run_in_threadpool(manager.__exit__, None, None, None)
    return digest.hexdigest()


async def read_xml(request: Request) -> ElementTree.Element:
    declared = content_length(request)
    if declared is not None and declared > MAX_XML_BODY:
        raise CosError("MalformedXML", f"The XML body exceeds {MAX_XML_BODY} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_XML_BODY:
            raise CosError("MalformedXML", f"The XML body exceeds {MAX_XML_BODY} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    # No DTDs at all: entity expansion is the classic XML bomb.
    if b"<!" in body.replace(b"<![CDATA[", b""):
        raise CosError("MalformedXML", "DOCTYPE and ENTITY declarations are not allowed.")
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise CosError("MalformedXML", "The XML you provided was not well-formed.") from None
