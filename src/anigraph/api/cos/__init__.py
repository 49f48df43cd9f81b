"""A COS-compatible object endpoint, just enough for uploads (spec 6.2-6.5).

``CosS3Client`` with ``CosConfig(Domain="<host:port>", Scheme="http")`` talks to the API's own
listener: the URL is ``http://<host:port>/<key>`` and the bucket appears nowhere on the wire,
so the object key alone says which upload session a request is for. What is served, exactly as
``cos-python-sdk-v5`` sends it:

- ``PUT /<key>``: simple upload (``put_object``, and ``upload_file`` for files up to a part);
- ``GET /?uploads&prefix=<key>``: list multipart uploads (``upload_file`` looks for one to
  resume), and ``GET /<key>?uploadId=``: list its parts;
- ``POST /<key>?uploads``: initiate, ``PUT /<key>?partNumber=N&uploadId=``: a part (any order,
  concurrently), ``POST /<key>?uploadId=``: complete, ``DELETE /<key>?uploadId=``: abort;
- ``HEAD /<key>``: the staged object's size and ETag;
- ``OPTIONS``: CORS preflight, for the browser SDK (cos-js-sdk-v5) of the client-upload flow.

Every request is signed with a session's temporary credential (``Authorization:
q-sign-algorithm=sha1&q-ak=...``, verified like ``cos_auth.CosS3Auth`` computes it, compared in
constant time) and carries its ``x-cos-security-token``. That credential may write only its
session's media and cover keys, only while the session is open and unexpired. Bodies stream to
the store (bounded memory, a size cap enforced while reading, not trusted from
``Content-Length``), under staging keys: nothing is visible in ``/files`` or in media before
CommitUpload.

The modules: :mod:`.auth` (signatures), :mod:`.wire` (query, XML, answers), :mod:`.errors` (COS
codes and statuses), :mod:`.bodies` (streamed bodies), :mod:`.endpoint` (the handlers) and
:mod:`.routes` (which requests are COS requests). Failures are COS error XML with a 4xx status,
never a 3xx, since the SDK does not follow redirects.
"""

from __future__ import annotations

from anigraph.api.cos.routes import cos_routes

__all__ = ["cos_routes"]
