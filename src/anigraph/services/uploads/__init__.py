"""Server-side uploads: ApplyUpload, the COS-compatible object writes, CommitUpload.

The flow, as Tencent's SDKs drive it (spec 2.5, 6.1):

1. ``apply`` (:mod:`.sessions`) opens an upload session: the store chooses the object keys, a
   random temporary credential is minted, and everything CommitUpload will need is stored with
   the session.
2. The client writes the object with the COS protocol (``api/cos``), signing with the temporary
   credential (:mod:`.grants`), which may write only this session's media and cover keys, only
   until it expires. The bytes land under a staging key the client never learns, so nothing is
   visible in ``/files`` or in media before the commit; multipart uploads keep their parts in
   :mod:`.multipart` until they are joined (:mod:`.joining`).
3. ``commit`` (:mod:`.commit`) publishes the staged object under the key ApplyUpload promised,
   probes it, then in ONE transaction: closes the session, creates the media item, queues
   ``NewFileUpload`` and starts the task flow ApplyUpload named. A session commits at most
   once, so a repeated or concurrent commit never makes two media items.

Refusals are values (:mod:`.errors`): :class:`UploadError` with a :class:`Refusal` for the use
cases, shared by the API actions and the browser/mobile upload endpoint (``api/ugc.py``);
:class:`~.errors.ObjectError` for the COS object operations. The API layer maps them to
Tencent and COS codes.
"""

from __future__ import annotations

from anigraph.services.uploads.commit import commit
from anigraph.services.uploads.errors import Refusal, UploadError
from anigraph.services.uploads.requests import (
    MEDIA_NAME_MAX,
    PROCEDURE_MAX,
    SESSION_CONTEXT_MAX,
    SOURCE_CONTEXT_MAX,
    UploadRequest,
)
from anigraph.services.uploads.sessions import MAX_SESSION_SECONDS, apply, resume
from anigraph.services.uploads.sweep import sweep

__all__ = [
    "MAX_SESSION_SECONDS",
    "MEDIA_NAME_MAX",
    "PROCEDURE_MAX",
    "SESSION_CONTEXT_MAX",
    "SOURCE_CONTEXT_MAX",
    "Refusal",
    "UploadError",
    "UploadRequest",
    "apply",
    "commit",
    "resume",
    "sweep",
]
