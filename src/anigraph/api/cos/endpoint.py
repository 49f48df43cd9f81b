"""The COS object endpoint's handlers: who may write (the session grant), and each operation.

Every request is signed with a session's temporary credential and carries its
``x-cos-security-token``; that credential may write only its session's media and cover keys,
only while the session is open and unexpired. Bodies go to staging keys: nothing is visible in
``/files`` or in media before CommitUpload.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from anigraph.api.cos.auth import (
    SIGNED_OPERATION_PARAMS,
    check_time,
    parse_authorization,
    verify_signature,
)
from anigraph.api.cos.bodies import read_xml, receive
from anigraph.api.cos.errors import CosError
from anigraph.api.cos.wire import (
    Call,
    Query,
    element,
    int_param,
    iso,
    parse_query,
    part_list,
    preflight,
    xml_body,
)
from anigraph.context import Context
from anigraph.services.uploads import joining, multipart
from anigraph.services.uploads.errors import ObjectError, ObjectRefusal
from anigraph.services.uploads.grants import Grant, grant_for, session_is_open
from anigraph.services.uploads.objects import content_type_of

log = logging.getLogger("anigraph.api.cos")


class CosEndpoint:
    """The handlers; one instance per app, holding the context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- authorisation --

    async def authorize(self, call: Call) -> Grant:
        """The session grant behind a correctly signed, current request with its token."""
        request = call.request
        header = request.headers.get("authorization")
        if not header:
            raise CosError(
                "AccessDenied",
                "Anonymous access is not allowed: sign the request with the TempCertificate "
                "that ApplyUpload returned.",
            )
        auth = parse_authorization(header)
        grant = await run_in_threadpool(grant_for, self.ctx, auth.secret_id)
        if grant is None:
            raise CosError(
                "InvalidAccessKeyId", "The SecretId you provided does not exist in our records."
            )
        now = self.ctx.now().timestamp()
        check_time(auth, now)
        for name in SIGNED_OPERATION_PARAMS:
            if name in call.query.encoded and name not in auth.param_list:
                raise CosError(
                    "AccessDenied", f"The query parameter {name} must be covered by the signature."
                )
        verify_signature(
            auth,
            grant.secret_key,
            request.method,
            call.path,
            call.query.encoded,
            {name.lower(): value for name, value in request.headers.items()},
        )
        if not grant.token_matches(request.headers.get("x-cos-security-token")):
            raise CosError(
                "AccessDenied",
                "The x-cos-security-token header is missing or does not belong to this key.",
            )
        if grant.expires_at.timestamp() <= now:
            raise CosError("AccessDenied", "The temporary credential has expired.")
        if not grant.is_open:
            raise CosError(
                "AccessDenied",
                "The upload session of this credential has been committed (or is being "
                "committed); its objects can no longer change.",
            )
        return grant

    @staticmethod
    def staging_key(grant: Grant, key: str) -> str:
        staging = grant.staging_key(key)
        if staging is None:
            raise CosError(
                "AccessDenied",
                "This temporary credential may only write the MediaStoragePath and "
                "CoverStoragePath of its own upload session.",
            )
        return staging

    # -- operations --

    async def put_object(self, call: Call, grant: Grant, key: str) -> Response:
        staging = self.staging_key(grant, key)
        md5 = await receive(
            self.ctx,
            call.request,
            staging,
            content_type_of(key),
            self.ctx.settings.max_upload_bytes,
        )
        if not await run_in_threadpool(session_is_open, self.ctx, grant.session_key):
            await run_in_threadpool(self.ctx.store.delete, staging)
            raise CosError("AccessDenied", "The upload session was committed during the upload.")
        return call.answer(200, headers={"ETag": f'"{md5}"'})

    async def upload_part(self, call: Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        number = int_param(call.query, "partNumber", 0, 1, multipart.MAX_PART_NUMBER)
        upload_id = call.query.get("uploadId")
        budget = await run_in_threadpool(
            multipart.part_budget, self.ctx, grant, key, upload_id, number
        )
        part_key = multipart.new_part_key(self.ctx, grant)
        try:
            md5 = await receive(
                self.ctx, call.request, part_key, "application/octet-stream", budget
            )
        except ObjectError as error:
            if error.reason is not ObjectRefusal.TOO_LARGE:
                raise
            raise await run_in_threadpool(
                multipart.oversized, self.ctx, grant, key, upload_id
            ) from None
        size = await run_in_threadpool(self._size_of, part_key)
        await run_in_threadpool(
            functools.partial(
                multipart.record_part,
                self.ctx,
                grant,
                key,
                upload_id,
                number,
                md5=md5,
                size=size,
                store_key=part_key,
            )
        )
        return call.answer(200, headers={"ETag": f'"{md5}"'})

    def _size_of(self, key: str) -> int:
        stored = self.ctx.store.stat(key)
        if stored is None:
            raise CosError("InternalError", "The part vanished after it was written.")
        return stored.size

    async def initiate(self, call: Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        info = await run_in_threadpool(multipart.initiate_multipart, self.ctx, grant, key)
        body = element("Bucket", grant.bucket) + element("Key", key)
        return call.answer(
            200,
            xml_body("InitiateMultipartUploadResult", body + element("UploadId", info.upload_id)),
        )

    async def complete(self, call: Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        root = await read_xml(call.request)
        wanted = part_list(root)
        upload_id = call.query.get("uploadId")
        etag = await run_in_threadpool(
            joining.complete_multipart, self.ctx, grant, key, upload_id, wanted
        )
        host = call.request.headers.get("host", "")
        body = (
            element("Location", f"{host}/{key}")
            + element("Bucket", grant.bucket)
            + element("Key", key)
            + element("ETag", etag)
        )
        return call.answer(200, xml_body("CompleteMultipartUploadResult", body))

    async def abort(self, call: Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        upload_id = call.query.get("uploadId")
        await run_in_threadpool(multipart.abort_multipart, self.ctx, grant, key, upload_id)
        return call.answer(204)

    async def list_parts(self, call: Call, grant: Grant, key: str) -> Response:
        self.staging_key(grant, key)
        upload_id = call.query.get("uploadId")
        marker = int_param(call.query, "part-number-marker", 0, 0, multipart.MAX_PART_NUMBER)
        limit = int_param(call.query, "max-parts", multipart.MAX_LIST, 1, multipart.MAX_LIST)
        url_encoded = call.query.get("encoding-type") == "url"
        parts, truncated = await run_in_threadpool(
            multipart.list_parts, self.ctx, grant, key, upload_id, marker, limit
        )
        body = (
            element("Bucket", grant.bucket)
            + (element("Encoding-type", "url") if url_encoded else "")
            + element("Key", quote(key, safe="/") if url_encoded else key)
            + element("UploadId", upload_id)
            + element("StorageClass", "STANDARD")
            + element("PartNumberMarker", marker)
            + element("NextPartNumberMarker", parts[-1].number if parts else marker)
            + element("MaxParts", limit)
            + element("IsTruncated", "true" if truncated else "false")
        )
        for part in parts:
            body += (
                "<Part>"
                + (
                    element("PartNumber", part.number)
                    + element("LastModified", iso(part.updated_at.timestamp()))
                    + element("ETag", part.etag)
                    + element("Size", part.size)
                )
                + "</Part>"
            )
        return call.answer(200, xml_body("ListPartsResult", body))

    async def list_uploads(self, call: Call, grant: Grant) -> Response:
        prefix = call.query.get("prefix")
        url_encoded = call.query.get("encoding-type") == "url"
        found = await run_in_threadpool(multipart.list_multipart, self.ctx, grant, prefix)

        def text(value: str) -> str:
            return quote(value, safe="/") if url_encoded else value

        body = (
            element("Bucket", grant.bucket)
            + (element("Encoding-Type", "url") if url_encoded else "")
            + element("Prefix", text(prefix))
            + element("MaxUploads", multipart.MAX_LIST)
            + element("IsTruncated", "false")
        )
        for info in found:
            body += (
                "<Upload>"
                + (
                    element("Key", text(info.object_key))
                    + element("UploadId", info.upload_id)
                    + element("StorageClass", "STANDARD")
                    + element("Initiated", iso(info.created_at.timestamp()))
                )
                + "</Upload>"
            )
        return call.answer(200, xml_body("ListMultipartUploadsResult", body))

    async def head(self, call: Call, grant: Grant, key: str) -> Response:
        staging = self.staging_key(grant, key)
        stored = await run_in_threadpool(self.ctx.store.stat, staging)
        if stored is None:
            return call.answer(404)
        return call.answer(200, headers={"ETag": stored.etag, "Content-Length": str(stored.size)})

    # -- dispatch --

    async def object_request(self, request: Request) -> Response:
        return await self._run(request, self._object)

    async def bucket_request(self, request: Request) -> Response:
        return await self._run(request, self._bucket)

    async def _object(self, call: Call) -> Response:
        key = call.path[1:]
        method = call.request.method
        grant = await self.authorize(call)
        query = call.query
        if method == "PUT":
            if query.has("partNumber") or query.has("uploadId"):
                return await self.upload_part(call, grant, key)
            return await self.put_object(call, grant, key)
        if method == "POST" and query.has("uploads"):
            return await self.initiate(call, grant, key)
        if method == "POST" and query.has("uploadId"):
            return await self.complete(call, grant, key)
        if method == "DELETE" and query.has("uploadId"):
            return await self.abort(call, grant, key)
        if method == "GET" and query.has("uploadId"):
            return await self.list_parts(call, grant, key)
        if method == "HEAD":
            return await self.head(call, grant, key)
        raise CosError(
            "AccessDenied", "A temporary upload credential may only write its session's objects."
        )

    async def _bucket(self, call: Call) -> Response:
        grant = await self.authorize(call)
        return await self.list_uploads(call, grant)

    async def _run(
        self, request: Request, handler: Callable[[Call], Awaitable[Response]]
    ) -> Response:
        request_id = uuid.uuid4().hex
        path: str = request.scope["path"]
        call = Call(request, request_id, path, Query({}, {}))
        try:
            if request.method == "OPTIONS":
                return preflight(request)
            call = Call(
                request,
                request_id,
                path,
                parse_query(request.scope["query_string"].decode("latin-1")),
            )
            response = await handler(call)
        except CosError as error:
            log.info("cos %s %s refused: %s: %s", request.method, path, error.code, error.message)
            return call.error(error.code, error.message)
        except ObjectError as error:
            refused = CosError.of(error)
            log.info("cos %s %s refused: %s: %s", request.method, path, refused.code, error.message)
            return call.error(refused.code, refused.message)
        except Exception:
            log.exception("cos %s %s failed", request.method, path)
            return call.error("InternalError", "We encountered an internal error; retry later.")
        log.debug("cos %s %s -> %s", request.method, path, response.status_code)
        return response
